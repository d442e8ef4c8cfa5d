// Command pollfix makes the Go-built plugin answer WASI poll_oneoff inside the
// module (README "Envoy and Istio versions"): `make build` runs it on the module the Go
// toolchain writes and produces build/portcullis.wasm.
//
// Go's wasip1 runtime calls poll_oneoff after every stop-the-world once a
// runtime timer exists, and throws on any error but EINTR; Envoy 1.36–1.38
// answer ENOSYS, so the VM dies under load. A proxy-wasm VM never blocks, so
// the module can answer every call at once itself, and never calls the host's.
//
//	pollfix -in build/portcullis.go.wasm -out build/portcullis.wasm
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/portcullis/portcullis/internal/atomicfile"
)

func main() {
	in := flag.String("in", "", "the module as the Go toolchain wrote it")
	out := flag.String("out", "", "where to write the rewritten module")
	flag.Parse()
	if *in == "" || *out == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: pollfix -in module.wasm -out rewritten.wasm")
		os.Exit(2)
	}
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "pollfix:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	module, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	rewritten, res, err := Rewrite(module)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if err := atomicfile.Write(out, rewritten); err != nil {
		return err
	}
	fmt.Printf("pollfix: %s: %s (function %d) now calls %s (function %d) instead of the %s.%s import (function %d); %d -> %d bytes\n",
		out, wrapperName, res.Wrapper, localName, res.Local, wasiModule, pollOneoff, res.Import, len(module), len(rewritten))
	return nil
}
