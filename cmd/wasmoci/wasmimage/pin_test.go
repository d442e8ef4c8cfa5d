package wasmimage

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

const (
	oldDigest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	newDigest = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	// Another image pinned by digest, which Pin must leave alone.
	otherImage = "image: docker.io/library/redis@" + oldDigest
)

func writeManifests(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPin(t *testing.T) {
	dir := writeManifests(t, map[string]string{
		"wasmplugin.yaml": "spec:\n  url: oci://registry.invalid/team/portcullis@" + oldDigest + "\n",
		"quoted.yaml":     "spec:\n  url: \"oci://registry.invalid/team/portcullis@" + oldDigest + "\"\n",
		"deployment.yaml": "spec:\n  " + otherImage + "\n",
	})
	digest, err := v1.NewHash(newDigest)
	if err != nil {
		t.Fatal(err)
	}

	changed, err := Pin(dir, "", digest)
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) != 2 {
		t.Errorf("changed %v, want the two WasmPlugin files", changed)
	}
	if got := read(t, filepath.Join(dir, "wasmplugin.yaml")); !strings.Contains(got, "url: oci://registry.invalid/team/portcullis@"+newDigest+"\n") {
		t.Errorf("digest not pinned:\n%s", got)
	}
	if got := read(t, filepath.Join(dir, "quoted.yaml")); !strings.Contains(got, `url: "oci://registry.invalid/team/portcullis@`+newDigest+`"`) {
		t.Errorf("quoted url not pinned:\n%s", got)
	}
	if got := read(t, filepath.Join(dir, "deployment.yaml")); !strings.Contains(got, otherImage) {
		t.Errorf("a container image was rewritten:\n%s", got)
	}

	// Again, with a repository: it moves; a second identical run changes nothing.
	if _, err := Pin(dir, "registry.example.com/me/portcullis", digest); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(dir, "wasmplugin.yaml")); !strings.Contains(got, "url: oci://registry.example.com/me/portcullis@"+newDigest) {
		t.Errorf("repository not moved:\n%s", got)
	}
	if changed, err := Pin(dir, "registry.example.com/me/portcullis", digest); err != nil || len(changed) != 0 {
		t.Errorf("a repeated pin changed %v (err %v), want nothing", changed, err)
	}

	pinned, err := Pinned(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := pinned[filepath.Join(dir, "wasmplugin.yaml")]; len(got) != 1 || got[0] != "registry.example.com/me/portcullis@"+newDigest {
		t.Errorf("Pinned = %v", pinned)
	}
}

func TestPinRefuses(t *testing.T) {
	digest, _ := v1.NewHash(newDigest)
	noPins := writeManifests(t, map[string]string{"deployment.yaml": "spec:\n  " + otherImage + "\n"})
	if _, err := Pin(noPins, "", digest); err == nil {
		t.Error("Pin succeeded on manifests without a pinned WasmPlugin url")
	}
	dir := writeManifests(t, map[string]string{"wasmplugin.yaml": "  url: oci://r.invalid/p@" + oldDigest + "\n"})
	for _, repo := range []string{"oci://r.example/p", "r.example/p@sha256:00", "r.example/p x"} {
		if _, err := Pin(dir, repo, digest); err == nil {
			t.Errorf("Pin accepted the repository %q", repo)
		}
	}
}
