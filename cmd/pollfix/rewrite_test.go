package main

import (
	"bytes"
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/e2e/harness"
	"github.com/portcullis/portcullis/internal/wasmtest"
	"github.com/tetratelabs/wabin/binary"
	"github.com/tetratelabs/wabin/wasm"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

const enosys = 52 // errno_t nosys, what Envoy 1.36–1.38 answer poll_oneoff with

// Function indices of the synthetic module: two WASI imports, then the
// wrapper and one other function.
const (
	pollImport = 1
	wrapperFn  = 2
	otherFn    = 3
)

var (
	i32      = wasm.ValueTypeI32
	pollType = &wasm.FunctionType{Params: []wasm.ValueType{i32, i32, i32, i32}, Results: []wasm.ValueType{i32}}
	// callPoll forwards the wrapper's four parameters to the import.
	callPoll = []byte{0x20, 0, 0x20, 1, 0x20, 2, 0x20, 3, 0x10, pollImport}
	// busy holds 0x10 (call's opcode) and the import's index 1 in many
	// immediates, none of them a call: the walker must not mistake them.
	busy = []byte{
		0x41, 0x10, 0x1a, // i32.const 16; drop
		0x42, 0x01, 0x1a, // i64.const 1; drop
		0x43, 0x10, 0x10, 0x10, 0x10, 0x1a, // f32.const; drop
		0x02, 0x40, 0x0c, 0x01, 0x0b, // block; br 1 (to the function's end); end
		0x41, 0x00, 0x28, 0x02, 0x10, 0x1a, // i32.const 0; i32.load offset=16; drop
		0x41, 0x00, 0x41, 0x10, 0x41, 0x10, 0xfc, 0x0b, 0x00, // memory.fill 16 bytes of 16 at 0
		0x02, 0x40, 0x41, 0x01, 0x0e, 0x01, 0x00, 0x00, 0x0b, // block; br_table 0 0; end
	}
)

// synthetic builds a small module shaped like Go's: WASI imports, a function
// named runtime.poll_oneoff whose body calls the import, another function
// (body: busy), a memory and exports. change edits it before it is encoded.
func synthetic(change func(m *wasm.Module)) []byte {
	m := &wasm.Module{
		TypeSection: []*wasm.FunctionType{pollType, {}},
		ImportSection: []*wasm.Import{
			{Type: wasm.ExternTypeFunc, Module: wasiModule, Name: "fd_write", DescFunc: 0},
			{Type: wasm.ExternTypeFunc, Module: wasiModule, Name: pollOneoff, DescFunc: 0},
		},
		FunctionSection: []wasm.Index{0, 1},
		CodeSection: []*wasm.Code{
			{Body: slices.Concat(callPoll, []byte{0x0b})},
			{Body: slices.Concat(busy, []byte{0x0b})},
		},
		MemorySection: &wasm.Memory{Min: 1},
		ExportSection: []*wasm.Export{
			{Type: wasm.ExternTypeFunc, Name: "poll", Index: wrapperFn},
			{Type: wasm.ExternTypeFunc, Name: "other", Index: otherFn},
			{Type: wasm.ExternTypeMemory, Name: "memory", Index: 0},
		},
		NameSection: &wasm.NameSection{FunctionNames: wasm.NameMap{
			{Index: wrapperFn, Name: wrapperName},
			{Index: otherFn, Name: "main.other"},
		}},
	}
	if change != nil {
		change(m)
	}
	return encode(m)
}

func encode(m *wasm.Module) []byte { return binary.EncodeModule(m) }

// TestRewriteSynthetic runs the synthetic module on a host whose poll_oneoff
// answers ENOSYS: before the rewrite the wrapper gets ENOSYS, after it the
// module answers itself and the host is never called.
func TestRewriteSynthetic(t *testing.T) {
	module := synthetic(nil)
	rewritten, res, err := Rewrite(module)
	if err != nil {
		t.Fatalf("Rewrite: %v", err)
	}
	if want := (Result{Import: pollImport, Wrapper: wrapperFn, Local: 4}); res != want {
		t.Errorf("result %+v, want %+v", res, want)
	}
	again, _, err := Rewrite(module)
	if err != nil || !bytes.Equal(again, rewritten) {
		t.Errorf("a second Rewrite of the same module gave other bytes (err %v)", err)
	}

	for _, tc := range []struct {
		name      string
		module    []byte
		errno     uint32
		hostCalls int
	}{
		{"as_built", module, enosys, 1},
		{"rewritten", rewritten, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			rt := wazero.NewRuntime(ctx)
			defer rt.Close(ctx)
			calls := 0
			_, err := rt.NewHostModuleBuilder(wasiModule).
				NewFunctionBuilder().WithFunc(func(context.Context, api.Module, uint32, uint32, uint32, uint32) uint32 { return enosys }).Export("fd_write").
				NewFunctionBuilder().WithFunc(func(context.Context, api.Module, uint32, uint32, uint32, uint32) uint32 {
				calls++
				return enosys
			}).Export(pollOneoff).
				Instantiate(ctx)
			if err != nil {
				t.Fatal(err)
			}
			mod, err := rt.Instantiate(ctx, tc.module)
			if err != nil {
				t.Fatalf("instantiate: %v", err)
			}
			mod.Memory().WriteByte(1024+8, tagClock)
			if errno := call(t, mod.ExportedFunction("poll"), 1024, 2048, 1, 4096); errno != tc.errno {
				t.Errorf("poll: errno %d, want %d", errno, tc.errno)
			}
			if calls != tc.hostCalls {
				t.Errorf("the host's poll_oneoff was called %d times, want %d", calls, tc.hostCalls)
			}
			if _, err := mod.ExportedFunction("other").Call(ctx); err != nil {
				t.Errorf("other: %v", err)
			}
		})
	}
}

// TestRewriteRefuses: every module the rewrite cannot prove right is refused.
func TestRewriteRefuses(t *testing.T) {
	rewritten, _, err := Rewrite(synthetic(nil))
	if err != nil {
		t.Fatal(err)
	}
	call := func(idx byte) []byte { return []byte{0x41, 0, 0x41, 0, 0x41, 0, 0x41, 0, 0x10, idx} }
	for _, tc := range []struct {
		name   string
		module []byte
		want   string
	}{
		{"already_rewritten", rewritten, "does not call the poll_oneoff import"},
		{"another_caller", synthetic(func(m *wasm.Module) {
			m.CodeSection[1].Body = slices.Concat(call(pollImport), []byte{0x1a, 0x0b})
		}), "main.other) calls the poll_oneoff import"},
		{"two_calls_in_wrapper", synthetic(func(m *wasm.Module) {
			m.CodeSection[0].Body = slices.Concat(call(pollImport), []byte{0x1a}, callPoll, []byte{0x0b})
		}), "calls the poll_oneoff import 2 times"},
		{"wrapper_does_not_call", synthetic(func(m *wasm.Module) {
			m.CodeSection[0].Body = []byte{0x41, 0, 0x0b}
		}), "does not call the poll_oneoff import"},
		{"no_name_section", synthetic(func(m *wasm.Module) { m.NameSection = nil }), "no name section"},
		{"wrapper_renamed", synthetic(func(m *wasm.Module) {
			m.NameSection.FunctionNames[0].Name = "runtime.poll_oneoff2"
		}), "names runtime.poll_oneoff 0 times"},
		{"wrapper_is_an_import", synthetic(func(m *wasm.Module) {
			m.NameSection.FunctionNames = wasm.NameMap{{Index: pollImport, Name: wrapperName}}
		}), "not defined in the module"},
		{"no_import", synthetic(func(m *wasm.Module) {
			m.ImportSection[1].Name = "sched_yield"
		}), "imports wasi_snapshot_preview1.poll_oneoff 0 times"},
		{"wrong_signature", synthetic(func(m *wasm.Module) {
			m.TypeSection = append(m.TypeSection, &wasm.FunctionType{Params: []wasm.ValueType{i32}, Results: []wasm.ValueType{i32}})
			m.ImportSection[1].DescFunc = 2
		}), "want (i32, i32, i32, i32) -> i32"},
		{"import_exported", synthetic(func(m *wasm.Module) {
			m.ExportSection = append(m.ExportSection, &wasm.Export{Type: wasm.ExternTypeFunc, Name: "p", Index: pollImport})
		}), "exports the poll_oneoff import"},
		{"import_in_a_table", synthetic(func(m *wasm.Module) {
			idx := uint32(pollImport)
			m.TableSection = []*wasm.Table{{Min: 1, Type: wasm.RefTypeFuncref}}
			m.ElementSection = []*wasm.ElementSegment{{
				OffsetExpr: &wasm.ConstantExpression{Opcode: wasm.OpcodeI32Const, Data: []byte{0}},
				Init:       []*wasm.Index{&idx}, Type: wasm.RefTypeFuncref, Mode: wasm.ElementModeActive,
			}}
		}), "element segment holds the poll_oneoff import"},
		{"ref_func", synthetic(func(m *wasm.Module) {
			m.CodeSection[1].Body = []byte{0xd2, pollImport, 0x1a, 0x0b}
		}), "takes a reference to the poll_oneoff import"},
		{"unknown_opcode", synthetic(func(m *wasm.Module) {
			m.CodeSection[1].Body = []byte{0xfd, 0x0c, 0x0b} // a SIMD v128.const prefix
		}), "unknown opcode 0xfd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := Rewrite(tc.module)
			if err == nil {
				t.Fatalf("Rewrite accepted the module (%d bytes out)", len(out))
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to say %q", err, tc.want)
			}
		})
	}
}

// TestPluginModule checks pollfix's step of `make build`
// (build/portcullis.pollfix.wasm) against the module the Go toolchain wrote
// (build/portcullis.go.wasm): it is exactly Rewrite of it, and differs from
// it only by the appended function and the one call. (wasm-opt then shrinks
// it into build/portcullis.wasm, which the ENOSYS regression test in
// e2e/pollfix_test.go runs.)
func TestPluginModule(t *testing.T) {
	goWasm := wasmtest.ReadFile(t, harness.GoWasmPath(t))
	built := wasmtest.ReadFile(t, harness.PollfixWasmPath(t))

	rewritten, res, err := Rewrite(goWasm)
	if err != nil {
		t.Fatalf("Rewrite: %v", err)
	}
	if !bytes.Equal(rewritten, built) {
		t.Fatalf("PORTCULLIS_POLLFIX_WASM is not Rewrite(PORTCULLIS_GO_WASM): run `make build`")
	}
	t.Logf("%s: function %d; the import is %d, the local function %d; %d -> %d bytes", wrapperName, res.Wrapper, res.Import, res.Local, len(goWasm), len(built))

	before := wasmtest.Decode(t, goWasm)
	// wabin re-encodes some immediates with other LEB128 widths and moves
	// custom sections after the name section; what a module means must
	// survive the round trip unchanged.
	if again := wasmtest.Decode(t, binary.EncodeModule(before)); !reflect.DeepEqual(again, before) {
		t.Fatalf("wabin does not round-trip the Go module: decode(encode(m)) != m")
	}
	after := wasmtest.Decode(t, built)
	imported := before.ImportFuncCount()
	if !reflect.DeepEqual(after.ImportSection, before.ImportSection) {
		t.Errorf("imports changed")
	}
	if !reflect.DeepEqual(after.ExportSection, before.ExportSection) {
		t.Errorf("exports changed")
	}
	if !reflect.DeepEqual(after.CustomSections, before.CustomSections) {
		t.Errorf("custom sections changed")
	}
	if !slices.Equal(after.FunctionSection[:len(before.FunctionSection)], before.FunctionSection) ||
		len(after.FunctionSection) != len(before.FunctionSection)+1 {
		t.Fatalf("function section: want the original plus one function")
	}
	for i, code := range before.CodeSection {
		fn := imported + uint32(i)
		got := after.CodeSection[i]
		if fn == res.Wrapper {
			calls, _, err := references(got.Body, res.Local)
			if err != nil || len(calls) != 1 {
				t.Errorf("%s: %d calls to the local function (%v), want 1", wrapperName, len(calls), err)
			}
			continue
		}
		if !reflect.DeepEqual(got, code) {
			t.Errorf("function %d (%s) changed", fn, funcName(before, fn))
		}
		if calls, _, _ := references(got.Body, res.Local); len(calls) != 0 {
			t.Errorf("function %d (%s) calls the local function", fn, funcName(before, fn))
		}
	}
	for i, code := range after.CodeSection {
		if calls, other, err := references(code.Body, res.Import); err != nil || len(calls)+other != 0 {
			t.Errorf("function %d still names the %s import (%d calls, %v)", imported+uint32(i), pollOneoff, len(calls), err)
		}
	}
	if local := after.CodeSection[len(after.CodeSection)-1]; !bytes.Equal(local.Body, localPollOneoff) || len(local.LocalTypes) != 0 {
		t.Errorf("the appended function is not localPollOneoff")
	}
	if got := funcName(after, res.Local); got != localName {
		t.Errorf("the appended function is named %q, want %q", got, localName)
	}

	// The host sees the same contract: wazero validates and compiles it,
	// with the same imports and exports as before.
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	compiled := map[string]wazero.CompiledModule{}
	for name, m := range map[string][]byte{"go": goWasm, "rewritten": built} {
		c, err := rt.CompileModule(ctx, m)
		if err != nil {
			t.Fatalf("compile %s: %v", name, err)
		}
		compiled[name] = c
	}
	if !reflect.DeepEqual(importNames(compiled["go"]), importNames(compiled["rewritten"])) {
		t.Errorf("wazero sees other imports after the rewrite")
	}
	if len(compiled["go"].ExportedFunctions()) != len(compiled["rewritten"].ExportedFunctions()) {
		t.Errorf("wazero sees other exports after the rewrite")
	}
}

func importNames(c wazero.CompiledModule) []string {
	var out []string
	for _, f := range c.ImportedFunctions() {
		mod, name, _ := f.Import()
		out = append(out, mod+"."+name)
	}
	return out
}
