// Package istio_test checks the Istio manifests in istio/ against the rest of
// the repository: Istio's validator accepts them, their plugin configuration
// is envoy.yaml's, the compiled plugin accepts it, the pinned image digest is
// the one of build/portcullis.wasm, and the image unpacks the way Istio
// unpacks it.
package istio_test

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/portcullis/portcullis/e2e/harness"
)

// update rewrites the generated parts of the manifests (the WasmPlugins'
// pluginConfig, the rate limiter's ConfigMap) instead of failing on them.
var update = flag.Bool("update", false, "rewrite the generated parts of istio/*.yaml")

// object is one Kubernetes object of a manifest.
type object struct {
	file string
	doc  map[string]any
}

func (o object) kind() string { return str(o.doc, "kind") }
func (o object) name() string { return str(o.doc, "metadata", "name") }

// manifestDir is istio/, absolute.
func manifestDir(t *testing.T) string {
	t.Helper()
	return filepath.Join(harness.RepoRoot(t), "istio")
}

// manifestFiles are the manifests: istio/*.yaml (testdata excluded).
func manifestFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(manifestDir(t), "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no istio/*.yaml")
	}
	return files
}

// objects decodes every document of every manifest except the kustomization.
func objects(t *testing.T) []object {
	t.Helper()
	var out []object
	for _, f := range manifestFiles(t) {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var doc map[string]any
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if doc != nil {
				out = append(out, object{file: f, doc: doc})
			}
		}
	}
	return out
}

// objectsOfKind returns the objects of one kind, failing when there are none.
func objectsOfKind(t *testing.T, kind string) []object {
	t.Helper()
	var out []object
	for _, o := range objects(t) {
		if o.kind() == kind {
			out = append(out, o)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no %s in istio/*.yaml", kind)
	}
	return out
}

// str follows keys through nested maps and returns the string found ("" if none).
func str(m map[string]any, keys ...string) string {
	s, _ := dig(m, keys...).(string)
	return s
}

// dig follows keys through nested maps; nil when a key is missing.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// list returns v as a list of maps (nil entries skipped).
func list(v any) []map[string]any {
	items, _ := v.([]any)
	var out []map[string]any
	for _, it := range items {
		if m, ok := it.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// Every manifest is in the kustomization, and the kustomization names no
// file that is missing: `kubectl apply -k istio/` installs all of it.
func TestKustomizationListsEveryManifest(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(manifestDir(t), "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Resources []string `yaml:"resources"`
	}
	if err := yaml.Unmarshal(b, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	var files []string
	for _, f := range manifestFiles(t) {
		if base := filepath.Base(f); base != "kustomization.yaml" {
			files = append(files, base)
		}
	}
	for _, f := range files {
		if !slices.Contains(k.Resources, f) {
			t.Errorf("istio/%s is not in kustomization.yaml's resources", f)
		}
	}
	for _, r := range k.Resources {
		if !slices.Contains(files, r) {
			t.Errorf("kustomization.yaml lists %s, which is not a file in istio/", r)
		}
	}
}
