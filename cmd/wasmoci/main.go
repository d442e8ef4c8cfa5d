// Command wasmoci packages the plugin as an OCI image for Istio's WasmPlugin,
// without Docker (see package wasmimage for the format).
//
//	wasmoci build -wasm build/portcullis.wasm -out build/oci [-pin istio]
//	    writes an OCI image layout, prints the manifest digest and, with -pin,
//	    rewrites the digest pinned in the WasmPlugin manifests of that directory.
//	wasmoci push -layout build/oci -to registry.example.com/team/portcullis [-pin istio]
//	    pushes the layout's image (credentials from the Docker config, as
//	    crane and ko use), prints repository@digest and, with -pin, points
//	    the WasmPlugin manifests at that repository.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/portcullis/portcullis/cmd/wasmoci/wasmimage"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "wasmoci:", err)
		os.Exit(1)
	}
}

const usage = "usage: wasmoci build -wasm FILE -out DIR [-pin DIR] | wasmoci push -layout DIR -to REPOSITORY [-pin DIR]"

func run(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "build":
		return build(args[1:], stdout)
	case "push":
		return push(args[1:], stdout)
	default:
		return errors.New(usage)
	}
}

func build(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	wasm := fs.String("wasm", "", "the Wasm module")
	out := fs.String("out", "", "the OCI image layout directory to (re)create")
	pin := fs.String("pin", "", "a directory of manifests whose pinned digest to update")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *wasm == "" || *out == "" || fs.NArg() > 0 {
		return errors.New(usage)
	}
	module, err := os.ReadFile(*wasm)
	if err != nil {
		return err
	}
	img, err := wasmimage.New(module)
	if err != nil {
		return err
	}
	if err := wasmimage.WriteLayout(*out, img); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	if *pin != "" {
		if err := repin(*pin, "", digest); err != nil {
			return err
		}
	}
	fmt.Fprintln(stdout, digest)
	return nil
}

func push(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("push", flag.ContinueOnError)
	dir := fs.String("layout", "", "the OCI image layout written by build")
	to := fs.String("to", "", "the repository to push to, e.g. registry.example.com/team/portcullis")
	pin := fs.String("pin", "", "a directory of manifests to point at the pushed repository")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" || *to == "" || fs.NArg() > 0 {
		return errors.New(usage)
	}
	repo, err := name.NewRepository(*to)
	if err != nil {
		return err
	}
	img, err := wasmimage.ReadLayout(*dir)
	if err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	// Pushed by digest: no tag to move, and the manifests name the digest.
	ref := repo.Digest(digest.String())
	if err := remote.Write(ref, img, remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		return err
	}
	if *pin != "" {
		if err := repin(*pin, repo.Name(), digest); err != nil {
			return err
		}
	}
	fmt.Fprintln(stdout, ref.Name())
	return nil
}

func repin(dir, repo string, digest v1.Hash) error {
	changed, err := wasmimage.Pin(dir, repo, digest)
	if err != nil {
		return err
	}
	for _, f := range changed {
		fmt.Fprintln(os.Stderr, "wasmoci: pinned", f)
	}
	return nil
}
