// Package wasmimage packages a Wasm module as an OCI image that Istio can
// pull for a WasmPlugin, and keeps the manifests' digest pins up to date.
//
// The format is the "compat" variant of the Wasm image specification
// (solo-io/wasm spec/spec-compat.md): a standard OCI image whose single
// gzip-compressed tar layer holds one file, plugin.wasm. Istio's agent
// (istio/istio pkg/wasm/imagefetcher.go) tries this variant first for OCI
// manifests. The "oci" artifact variant (application/vnd.module.wasm.*
// media types) is not used: Istio insists on exactly two layers for it,
// which other tools do not produce, and ordinary registries and tools
// handle a standard image better.
//
// The image is reproducible: the same module bytes always give the same
// manifest digest, so the digest pinned in istio/ can be checked in CI.
package wasmimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// PluginFile is the name Istio looks for in the layer (spec-compat.md).
const PluginFile = "plugin.wasm"

// The image's platform: the GOOS/GOARCH the module is built for.
const (
	OS           = "wasip1"
	Architecture = "wasm"
)

// epoch is every timestamp in the image: the layer's file and the config's
// "created". A wall-clock time would change the digest on every build.
var epoch = time.Unix(0, 0).UTC()

// wasmMagic starts every binary Wasm module ("\0asm").
var wasmMagic = []byte{0x00, 0x61, 0x73, 0x6d}

// New returns the image holding module as /plugin.wasm.
func New(module []byte) (v1.Image, error) {
	if !bytes.HasPrefix(module, wasmMagic) {
		return nil, errors.New("wasmimage: not a binary Wasm module (no \\0asm header)")
	}
	layerBytes, err := layerArchive(module)
	if err != nil {
		return nil, err
	}
	// Handing the library an already-compressed layer keeps the gzip stream
	// (and so the layer digest) ours, whatever the library's defaults are.
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBytes)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("wasmimage: layer: %w", err)
	}

	// empty.Image has Docker media types; Istio reads this variant as an OCI
	// manifest with an OCI layer, so both are set explicitly.
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: epoch},
			CreatedBy: "portcullis wasmoci: " + PluginFile,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("wasmimage: %w", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("wasmimage: config: %w", err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = OS, Architecture
	cfg.Created = v1.Time{Time: epoch}
	return mutate.ConfigFile(img, cfg)
}

// layerArchive is a gzip-compressed tar holding module as PluginFile, with
// fixed owner, mode and times and an empty gzip header.
func layerArchive(module []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     PluginFile,
		Size:     int64(len(module)),
		Mode:     0o444,
		ModTime:  epoch,
		Format:   tar.FormatUSTAR,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, err
	}
	if _, err := tw.Write(module); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
