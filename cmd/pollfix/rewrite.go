package main

import (
	"errors"
	"fmt"
	"slices"

	"github.com/tetratelabs/wabin/binary"
	"github.com/tetratelabs/wabin/leb128"
	"github.com/tetratelabs/wabin/wasm"
)

const (
	wasiModule = "wasi_snapshot_preview1"
	pollOneoff = "poll_oneoff"
	// wrapperName is the Go runtime's function around the import
	// (//go:wasmimport in runtime/os_wasip1.go), the only code that may call it.
	wrapperName = "runtime.poll_oneoff"
	// localName names the appended function in the name section, so that
	// stack traces and disassembly show what answered.
	localName = "portcullis.poll_oneoff_local"
)

// Result says what Rewrite changed, by function index.
type Result struct {
	Import  uint32 // the poll_oneoff import, left in place but no longer called
	Wrapper uint32 // runtime.poll_oneoff, whose one call now targets Local
	Local   uint32 // the appended function
}

// Rewrite makes a Go wasip1 module answer WASI poll_oneoff itself: it
// appends localPollOneoff as a new function and points the one call to the
// import, inside runtime.poll_oneoff, at it. Appending keeps every existing
// function index valid; nothing else changes. It refuses any module where the
// import is not called exactly once, from that wrapper, and named nowhere
// else, so that a toolchain change fails the build instead of producing a
// wrong module. The output depends on the input bytes only.
func Rewrite(module []byte) ([]byte, Result, error) {
	m, err := binary.DecodeModule(module, wasm.CoreFeaturesV2)
	if err != nil {
		return nil, Result{}, fmt.Errorf("decode: %w", err)
	}
	var res Result
	var typeIndex uint32
	if res.Import, typeIndex, err = findImport(m); err != nil {
		return nil, res, err
	}
	imported := m.ImportFuncCount()
	if err := notReferencedElsewhere(m, res.Import); err != nil {
		return nil, res, err
	}
	if res.Wrapper, err = wrapper(m); err != nil {
		return nil, res, err
	}

	var site span
	for i, code := range m.CodeSection {
		fn := imported + uint32(i)
		calls, other, err := references(code.Body, res.Import)
		if err != nil {
			return nil, res, fmt.Errorf("function %d (%s): %w", fn, funcName(m, fn), err)
		}
		switch {
		case other > 0:
			return nil, res, fmt.Errorf("function %d (%s) takes a reference to the %s import", fn, funcName(m, fn), pollOneoff)
		case len(calls) == 0:
		case fn != res.Wrapper:
			return nil, res, fmt.Errorf("function %d (%s) calls the %s import; only %s may", fn, funcName(m, fn), pollOneoff, wrapperName)
		case len(calls) != 1:
			return nil, res, fmt.Errorf("%s calls the %s import %d times, want exactly 1", wrapperName, pollOneoff, len(calls))
		default:
			site = calls[0]
		}
	}
	if site.end == 0 {
		return nil, res, fmt.Errorf("%s does not call the %s import", wrapperName, pollOneoff)
	}

	res.Local = imported + uint32(len(m.FunctionSection))
	code := m.CodeSection[res.Wrapper-imported]
	code.Body = slices.Concat(code.Body[:site.start], leb128.EncodeUint32(res.Local), code.Body[site.end:])
	m.FunctionSection = append(m.FunctionSection, typeIndex)
	m.CodeSection = append(m.CodeSection, &wasm.Code{Body: slices.Clone(localPollOneoff)})
	// Names are sorted by index; the new function has the highest.
	m.NameSection.FunctionNames = append(m.NameSection.FunctionNames, &wasm.NameAssoc{Index: res.Local, Name: localName})
	return binary.EncodeModule(m), res, nil
}

// findImport returns the function index and the type index of the
// poll_oneoff import, whose signature must be (i32, i32, i32, i32) -> i32.
func findImport(m *wasm.Module) (fn, typeIndex uint32, err error) {
	var found []*wasm.Import
	var idx uint32
	for _, imp := range m.ImportSection {
		if imp.Type != wasm.ExternTypeFunc {
			continue
		}
		if imp.Module == wasiModule && imp.Name == pollOneoff {
			if int(imp.DescFunc) >= len(m.TypeSection) {
				return 0, 0, fmt.Errorf("%s.%s has an unknown type %d", wasiModule, pollOneoff, imp.DescFunc)
			}
			i32 := wasm.ValueTypeI32
			if !m.TypeSection[imp.DescFunc].EqualsSignature([]wasm.ValueType{i32, i32, i32, i32}, []wasm.ValueType{i32}) {
				return 0, 0, fmt.Errorf("%s.%s has type %v, want (i32, i32, i32, i32) -> i32", wasiModule, pollOneoff, m.TypeSection[imp.DescFunc])
			}
			fn, found = idx, append(found, imp)
		}
		idx++
	}
	if len(found) != 1 {
		return 0, 0, fmt.Errorf("the module imports %s.%s %d times, want exactly 1", wasiModule, pollOneoff, len(found))
	}
	return fn, found[0].DescFunc, nil
}

// notReferencedElsewhere refuses a module that exports the import, starts
// with it or puts it in a table: a call the rewrite cannot see.
func notReferencedElsewhere(m *wasm.Module, fn uint32) error {
	for _, e := range m.ExportSection {
		if e.Type == wasm.ExternTypeFunc && e.Index == fn {
			return fmt.Errorf("the module exports the %s import as %q", pollOneoff, e.Name)
		}
	}
	if m.StartSection != nil && *m.StartSection == fn {
		return fmt.Errorf("the module's start function is the %s import", pollOneoff)
	}
	for _, seg := range m.ElementSection {
		for _, init := range seg.Init {
			if init != nil && *init == fn {
				return fmt.Errorf("an element segment holds the %s import", pollOneoff)
			}
		}
	}
	return nil
}

// wrapper finds runtime.poll_oneoff by name: the one defined function so named.
func wrapper(m *wasm.Module) (uint32, error) {
	if m.NameSection == nil {
		return 0, errors.New("the module has no name section; cannot find " + wrapperName)
	}
	var found []uint32
	for _, na := range m.NameSection.FunctionNames {
		if na.Name == wrapperName {
			found = append(found, na.Index)
		}
	}
	if len(found) != 1 {
		return 0, fmt.Errorf("the name section names %s %d times, want exactly 1", wrapperName, len(found))
	}
	imported := m.ImportFuncCount()
	if found[0] < imported || found[0]-imported >= uint32(len(m.CodeSection)) {
		return 0, fmt.Errorf("%s is function %d, which is not defined in the module", wrapperName, found[0])
	}
	return found[0], nil
}

func funcName(m *wasm.Module, fn uint32) string {
	if m.NameSection != nil {
		for _, na := range m.NameSection.FunctionNames {
			if na.Index == fn {
				return na.Name
			}
		}
	}
	return "unnamed"
}
