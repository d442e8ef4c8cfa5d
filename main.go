// Command portcullis is the proxy-wasm plugin. `make build` builds it, then
// cmd/pollfix makes it answer WASI poll_oneoff itself, cmd/pclnstrip drops
// the function names and line tables from its data, and wasm-opt shrinks it:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o build/portcullis.go.wasm .
package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"

	"github.com/portcullis/portcullis/filter/plugin"
)

// main is never called: a c-shared reactor runs init and then the exported callbacks.
func main() {}

func init() { proxywasm.SetVMContext(&plugin.VM{}) }
