package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/e2e/harness"
	"github.com/portcullis/portcullis/internal/wasmtest"
	wasmbinary "github.com/tetratelabs/wabin/binary"
	"github.com/tetratelabs/wabin/leb128"
	"github.com/tetratelabs/wabin/wasm"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

// TestPluginModule checks pclnstrip's step of `make build`
// (build/portcullis.pclnstrip.wasm) against its input
// (build/portcullis.pollfix.wasm): it is exactly Strip of it, the code and
// every section but the data are unchanged, and in the data every table the
// runtime unwinds and scans stacks with is where it was, byte for byte.
func TestPluginModule(t *testing.T) {
	in := wasmtest.ReadFile(t, harness.PollfixWasmPath(t))
	built := wasmtest.ReadFile(t, harness.PclnstripWasmPath(t))
	stripped, res, err := Strip(in)
	if err != nil {
		t.Fatalf("Strip: %v", err)
	}
	if !bytes.Equal(stripped, built) {
		t.Fatalf("PORTCULLIS_PCLNSTRIP_WASM is not Strip(PORTCULLIS_POLLFIX_WASM): run `make build`")
	}
	t.Logf("%+v; %d -> %d bytes", res, len(in), len(built))
	if res.Names == 0 || res.Files == 0 || res.LineTable == 0 || res.InlTrees == 0 {
		t.Errorf("nothing stripped: %+v", res)
	}
	checkKept(t, in, built)
}

// TestUnwindAfterStrip runs a program that grows and copies stacks, collects
// garbage with pointers deep in them, recovers a panic and then panics, before and after
// Strip: it computes the same, and the traceback is printed with "?" for
// what was left out.
func TestUnwindAfterStrip(t *testing.T) {
	module := buildUnwind(t)
	stripped, _, err := Strip(module)
	if err != nil {
		t.Fatalf("Strip: %v", err)
	}
	checkKept(t, module, stripped)
	want := 0
	for i := range 4 {
		n := 2000 + i
		want += n * (n + 1) / 2
	}
	wantOut := "sum " + strconv.Itoa(want) + "\nrecovered: in a callback\n"
	for _, tc := range []struct {
		name   string
		module []byte
		names  bool
	}{{"as built", module, true}, {"stripped", stripped, false}} {
		t.Run(tc.name, func(t *testing.T) {
			if out, _, code := runWASI(t, tc.module); out != wantOut || code != 0 {
				t.Errorf("without a panic: stdout %q, exit %d; want %q, 0", out, code, wantOut)
			}
			out, stderr, code := runWASI(t, tc.module, "panic")
			if out != wantOut || code != 2 {
				t.Errorf("stdout %q, exit %d; want %q, 2", out, code, wantOut)
			}
			if !strings.Contains(stderr, "panic: unwind: "+strconv.Itoa(want)) || !strings.Contains(stderr, "goroutine 1 [running]:") {
				t.Errorf("no traceback:\n%s", stderr)
			}
			if got := strings.Contains(stderr, "main.main") || strings.Contains(stderr, "main.go:"); got != tc.names {
				t.Errorf("traceback shows names and lines: %v, want %v:\n%s", got, tc.names, stderr)
			}
		})
	}
}

func TestStripRefuses(t *testing.T) {
	module := buildUnwind(t)
	m := wasmtest.Decode(t, module)
	for _, tc := range []struct {
		name   string
		change func(m *wasm.Module)
		want   string
	}{
		{"no name section", func(m *wasm.Module) { m.NameSection = nil }, "no name section"},
		{"a reflect stub found by name", func(m *wasm.Module) {
			m.NameSection.FunctionNames = append(m.NameSection.FunctionNames, &wasm.NameAssoc{Index: 0, Name: "reflect.makeFuncStub"})
		}, "reflect.makeFuncStub"},
		{"no function table", func(m *wasm.Module) {
			for _, d := range m.DataSection {
				for i := 0; i+4 <= len(d.Init); i++ {
					if binary.LittleEndian.Uint32(d.Init[i:]) == pclntabMagic {
						d.Init[i] = 0xF2
					}
				}
			}
		}, "no Go function table"},
		{"a segment at a computed address", func(m *wasm.Module) {
			m.DataSection[0].OffsetExpression = &wasm.ConstantExpression{Opcode: wasm.OpcodeGlobalGet, Data: leb128.EncodeUint32(0)}
		}, "not active at a constant address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			changed := wasmtest.Decode(t, module)
			tc.change(changed)
			if _, _, err := Strip(wasmbinary.EncodeModule(changed)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Strip: %v, want an error saying %q", err, tc.want)
			}
		})
	}
	if _, _, err := Strip(wasmbinary.EncodeModule(m)); err != nil {
		t.Errorf("the unchanged module: %v", err)
	}
}

// checkKept compares the function tables of a module and its stripped form:
// same header, same records but for the file and line table offsets (now 0),
// the same stack-pointer and stack-map tables at the same offsets, nothing
// left of names and file names; and the same code, imports, exports and
// names.
func checkKept(t *testing.T, module, stripped []byte) {
	t.Helper()
	before, after := wasmtest.Decode(t, module), wasmtest.Decode(t, stripped)
	if !reflect.DeepEqual(before.CodeSection, after.CodeSection) || !reflect.DeepEqual(before.ImportSection, after.ImportSection) ||
		!reflect.DeepEqual(before.ExportSection, after.ExportSection) || !reflect.DeepEqual(before.NameSection, after.NameSection) {
		t.Fatalf("a section other than the data changed")
	}
	img, _, err := memoryImage(before)
	if err != nil {
		t.Fatal(err)
	}
	simg, _, err := memoryImage(after)
	if err != nil {
		t.Fatal(err)
	}
	tab, err := findTable(img)
	if err != nil {
		t.Fatal(err)
	}
	stab, err := findTable(simg)
	if err != nil {
		t.Fatal(err)
	}
	if *tab != (table{nfunc: stab.nfunc, header: stab.header, names: stab.names, cutab: stab.cutab, filetab: stab.filetab, pctab: stab.pctab, funcs: stab.funcs, limit: tab.limit, gofunc: stab.gofunc, end: stab.end}) {
		t.Fatalf("function table header %+v, stripped %+v", tab, stab)
	}
	if len(simg) > len(img) || !bytes.Equal(simg[:tab.names], img[:tab.names]) {
		t.Fatalf("the data before the function names changed")
	}
	if bytes.ContainsFunc(simg[tab.names:tab.pctab], func(r rune) bool { return r != 0 }) {
		t.Errorf("names or file names left")
	}
	u32 := func(b []byte, at uint64) uint32 { return binary.LittleEndian.Uint32(b[at:]) }
	sameTable := func(fn int, off uint32) {
		if off == 0 {
			return
		}
		at := tab.pctab + uint64(off)
		n, err := pcTableLen(img[at:tab.funcs])
		if err != nil {
			t.Fatalf("function %d: %v", fn, err)
		}
		if !bytes.Equal(simg[at:at+uint64(n)], img[at:at+uint64(n)]) {
			t.Errorf("function %d: the table at %d changed", fn, off)
		}
	}
	if !bytes.Equal(simg[tab.funcs:tab.funcs+uint64(tab.nfunc+1)*8], img[tab.funcs:tab.funcs+uint64(tab.nfunc+1)*8]) {
		t.Fatalf("the function index changed")
	}
	// Each record changes in four offsets only: the file, line and
	// inline-index tables become 0, the inline tree ^0.
	changed := map[uint64]bool{} // bytes of those offsets
	for i := range tab.nfunc {
		f := tab.funcs + uint64(u32(img, tab.funcs+uint64(i)*8+4))
		npcdata, nfuncdata := uint64(u32(img, f+funcNPCData)), uint64(img[f+funcNFuncData])
		end := f + funcFixedLen + 4*(npcdata+nfuncdata)
		want := bytes.Clone(img[f:end])
		zero := []uint64{funcPCFile, funcPCLn}
		if npcdata > pcdataInlTreeIndex && nfuncdata > funcdataInlTree && u32(img, f+funcFixedLen+4*npcdata+4*funcdataInlTree) != noFuncdata {
			zero = append(zero, funcFixedLen+4*pcdataInlTreeIndex)
			binary.LittleEndian.PutUint32(want[funcFixedLen+4*npcdata+4*funcdataInlTree:], noFuncdata)
			for at := range uint64(4) {
				changed[f+funcFixedLen+4*npcdata+4*funcdataInlTree+at] = true
			}
		}
		for _, off := range zero {
			clear(want[off : off+4])
			for at := range uint64(4) {
				changed[f+off+at] = true
			}
		}
		if !bytes.Equal(simg[f:end], want) {
			t.Errorf("function %d: record %x, want %x", i, simg[f:end], want)
		}
		sameTable(i, u32(img, f+funcPCSP))
		for k := range npcdata {
			if k != pcdataInlTreeIndex {
				sameTable(i, u32(img, f+funcFixedLen+4*k))
			}
		}
	}
	// Anything else that changed became zero, and lies in what Strip may
	// clear: names, file names, pc tables, the funcdata of inline trees. (The
	// stripped image may end early: memory past its last segment is zero.)
	for at := range uint64(len(img)) {
		var got byte
		if at < uint64(len(simg)) {
			got = simg[at]
		}
		if got == img[at] || changed[at] {
			continue
		}
		if got != 0 || !(at >= tab.names && at < tab.funcs || at >= tab.gofunc && at < tab.end) {
			t.Fatalf("data at %#x changed from %#x to %#x", at, img[at], got)
		}
	}
}

// FuzzStripImage feeds damaged memory images to the table reader: it
// refuses or strips, and never reads outside the image.
func FuzzStripImage(f *testing.F) {
	img, _, err := memoryImage(wasmtest.Decode(f, buildUnwind(f)))
	if err != nil {
		f.Fatal(err)
	}
	tab, err := findTable(img)
	if err != nil {
		f.Fatal(err)
	}
	// The header and the first records, where damage reaches everything
	// else; the fuzzer writes over this window of the real image.
	window := func(from uint64) []byte { return bytes.Clone(img[from : from+4096]) }
	f.Add(uint64(0), window(tab.header))
	f.Add(tab.funcs-tab.header, window(tab.funcs))
	f.Fuzz(func(t *testing.T, at uint64, patch []byte) {
		damaged := bytes.Clone(img)
		if at >= uint64(len(damaged)) {
			return
		}
		copy(damaged[tab.header+at%(uint64(len(damaged))-tab.header):], patch)
		if tab, err := findTable(damaged); err == nil {
			_, _ = tab.strip(damaged)
		}
	})
}

// buildUnwind compiles testdata/unwind for wasip1 with the plugin's flags.
func buildUnwind(t testing.TB) []byte {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		harness.Unavailable(t, "no go toolchain to build testdata/unwind")
	}
	out := filepath.Join(t.TempDir(), "unwind.wasm")
	cmd := exec.Command(goBin, "build", "-trimpath", "-buildvcs=false", "-o", out, "./testdata/unwind")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building testdata/unwind: %v\n%s", err, b)
	}
	return wasmtest.ReadFile(t, out)
}

// runWASI runs a WASI command module under wazero.
func runWASI(t testing.TB, module []byte, args ...string) (stdout, stderr string, exit uint32) {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	var out, errs bytes.Buffer
	cfg := wazero.NewModuleConfig().WithStdout(&out).WithStderr(&errs).WithArgs(append([]string{"unwind"}, args...)...)
	_, err := rt.InstantiateWithConfig(ctx, module, cfg)
	var exitErr *sys.ExitError
	switch {
	case errors.As(err, &exitErr):
		exit = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("run: %v", err)
	}
	return out.String(), errs.String(), exit
}
