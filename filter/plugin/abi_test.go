//go:build !wasip1

package plugin

import (
	"context"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
)

// TestModuleABI checks the compiled plugin's contract with its host: it
// imports only proxy-wasm ("env") and WASI preview 1, and exports the reactor
// initializer, the ABI version marker (the SDK declares 0.2.0; Envoy
// speaks 0.2.x) and every callback Envoy drives an HTTP filter through.
func TestModuleABI(t *testing.T) {
	newWasmVM(t) // builds or loads the module once
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	mod, err := rt.CompileModule(ctx, wasmModule)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	for _, fn := range mod.ImportedFunctions() {
		module, name, _ := fn.Import()
		if module != "env" && module != "wasi_snapshot_preview1" {
			t.Errorf("unexpected import %s.%s", module, name)
		}
		if module == "env" && !strings.HasPrefix(name, "proxy_") {
			t.Errorf("env import %q is not a proxy-wasm host function", name)
		}
	}
	exports := mod.ExportedFunctions()
	for _, name := range []string{
		"_initialize", "proxy_abi_version_0_2_0", "proxy_on_memory_allocate",
		"proxy_on_vm_start", "proxy_on_configure", "proxy_on_context_create",
		"proxy_on_request_headers", "proxy_on_request_body", "proxy_on_response_headers",
		"proxy_on_response_body", "proxy_on_log", "proxy_on_done", "proxy_on_delete",
		"proxy_on_http_call_response", "proxy_on_tick",
	} {
		if _, ok := exports[name]; !ok {
			t.Errorf("missing export %s", name)
		}
	}
	if _, ok := exports["_start"]; ok {
		t.Errorf("module exports _start: it is a command, not a reactor (build with -buildmode=c-shared)")
	}
}
