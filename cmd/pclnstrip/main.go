// Command pclnstrip drops the function names, the pc → file:line tables and
// the inlined-call trees from the Go function table (pclntab) of a Go wasm
// module: `make build` runs
// it after cmd/pollfix, before wasm-opt (README "Performance", module
// footprint).
//
// Go on wasm keeps that table in the module's data segments, which Envoy
// holds once per module and every VM copies into its linear memory; only a
// traceback reads the names and lines, and the plugin prints none (a panic in
// a callback is recovered into a JSON 500 and one log line with its value).
//
//	pclnstrip -in build/portcullis.pollfix.wasm -out build/portcullis.pclnstrip.wasm
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/portcullis/portcullis/internal/atomicfile"
)

func main() {
	in := flag.String("in", "", "a Go wasm module with its name section")
	out := flag.String("out", "", "where to write the stripped module")
	flag.Parse()
	if *in == "" || *out == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: pclnstrip -in module.wasm -out stripped.wasm")
		os.Exit(2)
	}
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "pclnstrip:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	module, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	stripped, res, err := Strip(module)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if err := atomicfile.Write(out, stripped); err != nil {
		return err
	}
	fmt.Printf("pclnstrip: %s: %d functions; left out %d bytes of names, %d of file names, %d of line and inline-index tables, %d of inline trees; %d -> %d bytes\n",
		out, res.Funcs, res.Names, res.Files, res.LineTable, res.InlTrees, len(module), len(stripped))
	return nil
}
