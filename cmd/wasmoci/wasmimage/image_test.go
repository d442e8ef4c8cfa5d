package wasmimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/types"
)

// fakeModule is a minimal binary Wasm module (magic and version) plus payload.
func fakeModule(payload string) []byte {
	return append([]byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}, payload...)
}

func TestNewIsReproducible(t *testing.T) {
	a, err := New(fakeModule("same"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(fakeModule("same"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(fakeModule("other"))
	if err != nil {
		t.Fatal(err)
	}
	da, _ := a.Digest()
	db, _ := b.Digest()
	dc, _ := c.Digest()
	if da != db {
		t.Errorf("two images of the same module have different digests: %s, %s", da, db)
	}
	if da == dc {
		t.Errorf("images of different modules share the digest %s", da)
	}
}

// The image is the compat variant Istio reads: an OCI manifest, one
// tar+gzip layer holding plugin.wasm and nothing else, fixed metadata.
func TestNewLayout(t *testing.T) {
	module := fakeModule("payload")
	img, err := New(module)
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON {
		t.Errorf("media types: manifest %s, config %s; want %s, %s", m.MediaType, m.Config.MediaType, types.OCIManifestSchema1, types.OCIConfigJSON)
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != types.OCILayer {
		t.Fatalf("layers %+v, want one %s", m.Layers, types.OCILayer)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OS != OS || cfg.Architecture != Architecture || !cfg.Created.Equal(time.Unix(0, 0)) {
		t.Errorf("config: os %q architecture %q created %v; want %q %q and the epoch", cfg.OS, cfg.Architecture, cfg.Created, OS, Architecture)
	}

	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	zr, err := gzip.NewReader(rc)
	if err != nil {
		t.Fatal(err)
	}
	if !zr.ModTime.IsZero() || zr.Name != "" {
		t.Errorf("gzip header carries name %q, time %v; want neither", zr.Name, zr.ModTime)
	}
	tr := tar.NewReader(zr)
	h, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Clean(h.Name) != PluginFile || h.Typeflag != tar.TypeReg || !h.ModTime.Equal(time.Unix(0, 0)) {
		t.Errorf("entry %q type %c time %v; want regular file %q at the epoch", h.Name, h.Typeflag, h.ModTime, PluginFile)
	}
	got, err := io.ReadAll(tr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, module) {
		t.Errorf("%s holds %q, want the module", PluginFile, got)
	}
	if _, err := tr.Next(); err != io.EOF {
		t.Errorf("the layer holds more than %s (%v)", PluginFile, err)
	}
}

func TestNewRefusesNonWasm(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("#!/bin/sh\n"), []byte("\x7fELF")} {
		if _, err := New(b); err == nil {
			t.Errorf("New(%q) succeeded", b)
		}
	}
}

// Writing a layout twice leaves one image, which reads back with the same digest.
func TestLayoutRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "oci")
	old, _ := New(fakeModule("old"))
	img, _ := New(fakeModule("new"))
	if err := WriteLayout(dir, old); err != nil {
		t.Fatal(err)
	}
	if err := WriteLayout(dir, img); err != nil {
		t.Fatal(err)
	}
	back, err := ReadLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	got, _ := back.Digest()
	if got != want {
		t.Errorf("layout holds %s, want %s", got, want)
	}
}
