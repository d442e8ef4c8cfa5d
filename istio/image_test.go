package istio_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/portcullis/portcullis/cmd/wasmoci/wasmimage"
	"github.com/portcullis/portcullis/e2e/harness"
)

// builtImage is the OCI image of the current build/portcullis.wasm (or
// $PORTCULLIS_WASM), as `make oci` builds it.
func builtImage(t *testing.T) (module []byte, img v1.Image, digest v1.Hash) {
	t.Helper()
	module, err := os.ReadFile(harness.WasmPath(t))
	if err != nil {
		t.Fatal(err)
	}
	img, err = wasmimage.New(module)
	if err != nil {
		t.Fatal(err)
	}
	digest, err = img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return module, img, digest
}

// Each WasmPlugin pins, by digest, the image of the plugin as built now.
func TestWasmPluginsPinTheBuiltImage(t *testing.T) {
	_, _, digest := builtImage(t)
	pinned, err := wasmimage.Pinned(manifestDir(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, wp := range objectsOfKind(t, "WasmPlugin") {
		u := str(wp.doc, "spec", "url")
		refs := pinned[wp.file]
		if len(refs) != 1 || "oci://"+refs[0] != u {
			t.Errorf("%s: spec.url %q is not an oci:// image pinned by sha256 digest", wp.file, u)
			continue
		}
		if _, got, _ := strings.Cut(u, "@"); got != digest.String() {
			t.Errorf("%s pins %s, but build/portcullis.wasm is image %s: run make oci", filepath.Base(wp.file), got, digest)
		}
		if s := str(wp.doc, "spec", "sha256"); s != "" && s != digest.Hex {
			t.Errorf("%s: spec.sha256 %s contradicts the pinned digest %s", wp.file, s, digest.Hex)
		}
	}
}

// The image, pushed to a registry and pulled back, unpacks the way Istio's
// agent unpacks it into the module bytes of build/portcullis.wasm.
func TestImagePullsLikeIstio(t *testing.T) {
	module, img, digest := builtImage(t)
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")

	repo, err := name.NewRepository(host+"/portcullis/portcullis", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(repo.Digest(digest.String()), img); err != nil {
		t.Fatalf("push: %v", err)
	}

	// What a WasmPlugin url "oci://<host>/portcullis/portcullis@sha256:..." makes Istio fetch.
	u, err := url.Parse("oci://" + repo.Name() + "@" + digest.String())
	if err != nil {
		t.Fatal(err)
	}
	got, err := fetchLikeIstio(u.Host+u.Path, digest.Hex)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, module) {
		t.Fatalf("the module pulled back (%d bytes) is not build/portcullis.wasm (%d bytes)", len(got), len(module))
	}
}

// fetchLikeIstio re-implements what Istio's agent does with an oci:// url,
// for the image format wasmimage builds. It follows istio/istio
// pkg/wasm/imagefetcher.go (PrepareFetch, extractOCIStandardImage,
// extractWasmPluginBinary) and pkg/wasm/cache.go (getOrFetch: the manifest
// digest must equal the one pinned in the url; isValidWasmBinary).
func fetchLikeIstio(ref, wantChecksum string) ([]byte, error) {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return nil, fmt.Errorf("could not parse url in image reference: %w", err)
	}
	desc, err := remote.Get(r)
	if err != nil {
		return nil, fmt.Errorf("could not fetch manifest: %w", err)
	}
	img, err := desc.Image()
	if err != nil {
		return nil, fmt.Errorf("could not fetch image: %w", err)
	}
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	if d.Hex != wantChecksum {
		return nil, fmt.Errorf("module has checksum %s, which does not match %s", d.Hex, wantChecksum)
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	// Istio reads a Docker manifest as the Docker variant; ours must be OCI,
	// which Istio first tries as the "compat" variant.
	if m.MediaType != types.OCIManifestSchema1 {
		return nil, fmt.Errorf("manifest media type %q, want %q", m.MediaType, types.OCIManifestSchema1)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	if len(layers) == 0 {
		return nil, errors.New("number of layers must be greater than zero")
	}
	last := layers[len(layers)-1]
	mt, err := last.MediaType()
	if err != nil {
		return nil, err
	}
	if mt != types.OCILayer {
		return nil, fmt.Errorf("invalid media type %s (expect %s)", mt, types.OCILayer)
	}
	rc, err := last.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	module, err := pluginFromLayer(rc)
	if err != nil {
		return nil, err
	}
	// isValidWasmBinary: the "\0asm" magic and version 1.
	if !bytes.HasPrefix(module, []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}) {
		return nil, errors.New("fetched Wasm binary is invalid")
	}
	return module, nil
}

// istioPluginFile is the file Istio looks for, spelt out here rather than
// taken from wasmimage, so that the two sides do not share a mistake.
const istioPluginFile = "plugin.wasm"

// maxWasmBinarySize is Istio's default limit on the unpacked layer
// (pilot/pkg/features: MaxWasmBinarySizeBytes, 256 MiB).
const maxWasmBinarySize = 256 << 20

// pluginFromLayer returns the first file named plugin.wasm, in any
// directory, of a gzip-compressed tar.
func pluginFromLayer(r io.Reader) ([]byte, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("failed to parse layer as tar.gz: %w", err)
	}
	tr := tar.NewReader(io.LimitReader(zr, maxWasmBinarySize))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, errors.New("plugin.wasm not found in the archive")
		}
		if err != nil {
			return nil, err
		}
		if filepath.Base(h.Name) == istioPluginFile {
			return io.ReadAll(tr)
		}
	}
}
