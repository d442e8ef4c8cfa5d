// Package wasmtest holds the helpers the tests of the module rewrites
// (cmd/pollfix, cmd/pclnstrip) share.
package wasmtest

import (
	"os"
	"testing"

	"github.com/tetratelabs/wabin/binary"
	"github.com/tetratelabs/wabin/wasm"
)

// Decode decodes a module, failing the test if it does not decode.
func Decode(t testing.TB, module []byte) *wasm.Module {
	t.Helper()
	m, err := binary.DecodeModule(module, wasm.CoreFeaturesV2)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return m
}

// ReadFile reads a file, failing the test if it cannot.
func ReadFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
