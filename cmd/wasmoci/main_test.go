package main

import (
	"bytes"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// build, then push to a registry: each prints what the manifests pin, and
// the pushed image is the built one.
func TestBuildAndPush(t *testing.T) {
	dir := t.TempDir()
	wasm := filepath.Join(dir, "plugin.wasm")
	if err := os.WriteFile(wasm, []byte("\x00asm\x01\x00\x00\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	manifests := filepath.Join(dir, "istio")
	if err := os.Mkdir(manifests, 0o755); err != nil {
		t.Fatal(err)
	}
	wp := filepath.Join(manifests, "wasmplugin.yaml")
	zero := "sha256:" + strings.Repeat("0", 64)
	if err := os.WriteFile(wp, []byte("  url: oci://registry.invalid/p@"+zero+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	if err := run([]string{"build", "-wasm", wasm, "-out", filepath.Join(dir, "oci"), "-pin", manifests}, &out); err != nil {
		t.Fatal(err)
	}
	digest := strings.TrimSpace(out.String())
	if !strings.HasPrefix(digest, "sha256:") || len(digest) != len(zero) {
		t.Fatalf("build printed %q, want a sha256 digest", out.String())
	}
	if got := read(t, wp); got != "  url: oci://registry.invalid/p@"+digest+"\n" {
		t.Errorf("build -pin wrote %q", got)
	}

	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	repo := strings.TrimPrefix(srv.URL, "http://") + "/team/portcullis"
	out.Reset()
	if err := run([]string{"push", "-layout", filepath.Join(dir, "oci"), "-to", repo, "-pin", manifests}, &out); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(out.String()), repo+"@"+digest; got != want {
		t.Errorf("push printed %q, want %q", got, want)
	}
	if got := read(t, wp); got != "  url: oci://"+repo+"@"+digest+"\n" {
		t.Errorf("push -pin wrote %q", got)
	}
	ref, err := name.NewDigest(repo+"@"+digest, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Get(ref); err != nil {
		t.Errorf("the registry does not have %s: %v", ref, err)
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"frobnicate"}, {"build"}, {"build", "-wasm", "x"}, {"push", "-layout", "x"}} {
		if err := run(args, io.Discard); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
