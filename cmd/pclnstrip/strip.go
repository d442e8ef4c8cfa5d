package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strconv"

	wasmbinary "github.com/tetratelabs/wabin/binary"
	"github.com/tetratelabs/wabin/leb128"
	"github.com/tetratelabs/wabin/wasm"
)

// The layout of Go's function table (runtime/symtab.go, pcHeader and _func;
// cmd/link/internal/ld/pcln.go writes it), for the pointer size of wasm.
const (
	pclntabMagic = 0xFFFFFFF1 // abi.Go120PCLnTabMagic, still current in Go 1.26
	wasmMinLC    = 1          // sys.PCQuantum on wasm
	ptrSize      = 8
	headerSize   = 8 + 8*ptrSize // magic, pads, minLC, ptrSize, then 8 uintptr fields

	// Offsets of the fields of a _func.
	funcPCSP      = 16
	funcPCFile    = 20
	funcPCLn      = 24
	funcNPCData   = 28
	funcNFuncData = 43 // after funcID, flag and a pad byte
	funcFixedLen  = 44 // then npcdata uint32 pcdata offsets, then nfuncdata uint32 funcdata offsets

	pcdataInlTreeIndex = 2  // abi.PCDATA_InlTreeIndex
	funcdataInlTree    = 3  // abi.FUNCDATA_InlTree
	inlinedCallSize    = 16 // runtime.inlinedCall
	noFuncdata         = ^uint32(0)

	// Offsets in runtime.moduledata: the pcHeader pointer, then six slices
	// (funcnametab, cutab, filetab, pctab, pclntable, ftab), then uintptrs
	// up to gofunc and epclntab.
	moduledataFuncnametab = 8
	moduledataPctab       = 8 + 3*24
	moduledataPclntable   = 8 + 4*24
	moduledataGofunc      = 8 + 6*24 + 21*ptrSize
	moduledataEpclntab    = moduledataGofunc + ptrSize
)

// minZeroRun is the shortest run of zero bytes worth its own cut in a data
// segment: a segment's header (flags, i32.const offset, end, size) is about
// 6 bytes, and linear memory starts zeroed.
const minZeroRun = 8

// Result says what Strip left out, in bytes of the module's memory image.
type Result struct {
	Funcs     int // functions in the table
	Names     int // function names (funcnametab)
	Files     int // source file names (cutab and filetab)
	LineTable int // non-zero bytes of the pc → file, pc → line and pc → inline-index tables
	InlTrees  int // the inlined-call trees (FUNCDATA_InlTree)
}

// Strip drops from a Go wasm module what only a traceback reads: the
// function names, the pc → file:line tables and the inlined-call trees of
// Go's function table (pclntab). Go on wasm keeps that table in the
// module's data, which every VM copies into its memory; the runtime reads it
// to unwind and scan stacks (the pc → stack-pointer and pc → stack-map
// tables, kept byte for byte) and to print a traceback, which then shows "?"
// for names, files and lines.
//
// Names and files are zeroed where they are; each function's file, line and
// inline-index table offsets become 0 and its inline tree's ^0, which the
// runtime reads as "no table" (a traceback, and recover's walk over the
// frames, then see each physical frame as one function: recover works as
// before, since a function that calls recover is never inlined); the trees
// are zeroed, and so is every byte of the pc tables that is not part of a
// kept table; every data segment is then cut around its runs of zeros
// (memory starts zeroed, so the memory image is the same but for what was
// stripped). Strip refuses a module whose table it does not recognise, or
// one that links the reflect stubs whose stack maps the runtime finds by
// name. The output depends on the input bytes only.
func Strip(module []byte) ([]byte, Result, error) {
	m, err := wasmbinary.DecodeModule(module, wasm.CoreFeaturesV2)
	if err != nil {
		return nil, Result{}, err
	}
	if err := checkNoNamedStubs(m); err != nil {
		return nil, Result{}, err
	}
	image, starts, err := memoryImage(m)
	if err != nil {
		return nil, Result{}, err
	}
	t, err := findTable(image)
	if err != nil {
		return nil, Result{}, err
	}
	res, err := t.strip(image)
	if err != nil {
		return nil, Result{}, err
	}
	m.DataSection = resegment(m.DataSection, starts, image)
	return wasmbinary.EncodeModule(m), res, nil
}

// The reflect stubs argMapInternal tells apart by name (runtime/stkframe.go):
// with their names gone, a garbage collection during a reflect call would
// scan their frames wrongly.
var namedStubs = []string{"reflect.makeFuncStub", "reflect.methodValueCall"}

func checkNoNamedStubs(m *wasm.Module) error {
	if m.NameSection == nil {
		return errors.New("the module has no name section: run before anything strips it")
	}
	for _, n := range m.NameSection.FunctionNames {
		for _, stub := range namedStubs {
			if n.Name == stub {
				return errors.New("the module links " + stub + ", which the runtime finds by its name")
			}
		}
	}
	return nil
}

// memoryImage lays the data segments out as the memory they initialise,
// and returns each segment's address.
func memoryImage(m *wasm.Module) ([]byte, []uint32, error) {
	starts := make([]uint32, len(m.DataSection))
	end := uint64(0)
	for i, d := range m.DataSection {
		e := d.OffsetExpression
		if e == nil || e.Opcode != wasm.OpcodeI32Const {
			return nil, nil, errors.New("data segment " + strconv.Itoa(i) + " is not active at a constant address")
		}
		addr, _, err := leb128.DecodeInt32(bytes.NewReader(e.Data))
		if err != nil {
			return nil, nil, errors.New("data segment " + strconv.Itoa(i) + ": " + err.Error())
		}
		starts[i] = uint32(addr)
		end = max(end, uint64(starts[i])+uint64(len(d.Init)))
	}
	if end > 1<<31 {
		return nil, nil, errors.New("data segments reach past 2 GiB")
	}
	image := make([]byte, end)
	for i, d := range m.DataSection {
		copy(image[starts[i]:], d.Init)
	}
	return image, starts, nil
}

// table is Go's function table in a memory image: the pcHeader's offsets,
// made absolute.
type table struct {
	nfunc                                      int
	header                                     uint64 // the pcHeader
	names, cutab, filetab, pctab, funcs, limit uint64 // funcs: the functab and the _func records
	gofunc, end                                uint64 // the funcdata (go:func.*), and the table's end
}

func findTable(image []byte) (*table, error) {
	var magic [8]byte
	binary.LittleEndian.PutUint32(magic[:], pclntabMagic)
	magic[6], magic[7] = wasmMinLC, ptrSize
	at := bytes.Index(image, magic[:])
	if at < 0 {
		return nil, errors.New("no Go function table (pcHeader magic 0xFFFFFFF1, minLC 1, pointer size 8) in the data")
	}
	if bytes.Contains(image[at+1:], magic[:]) {
		return nil, errors.New("two candidate Go function tables in the data")
	}
	if len(image)-at < headerSize {
		return nil, errors.New("the function table's header is cut short")
	}
	field := func(i int) uint64 { return binary.LittleEndian.Uint64(image[at+8+8*i:]) }
	base := uint64(at)
	t := &table{
		nfunc:   int(field(0)),
		header:  base,
		names:   base + field(3),
		cutab:   base + field(4),
		filetab: base + field(5),
		pctab:   base + field(6),
		funcs:   base + field(7),
		limit:   uint64(len(image)),
	}
	if !(base+headerSize <= t.names && t.names <= t.cutab && t.cutab <= t.filetab && t.filetab <= t.pctab && t.pctab <= t.funcs &&
		t.funcs < t.limit) || field(0) == 0 || field(0) >= (t.limit-t.funcs)/8 {
		return nil, errors.New("the function table's header has offsets out of order")
	}
	// moduledata points at the header, then at the names: find it by that,
	// and check it points at the other parts where the header says.
	var refs [16]byte
	binary.LittleEndian.PutUint64(refs[:], base)
	binary.LittleEndian.PutUint64(refs[moduledataFuncnametab:], t.names)
	md := bytes.Index(image, refs[:])
	if md < 0 || md+moduledataEpclntab+ptrSize > len(image) || bytes.Contains(image[md+1:], refs[:]) {
		return nil, errors.New("no single runtime.moduledata pointing at the function table")
	}
	u64 := func(off int) uint64 { return binary.LittleEndian.Uint64(image[md+off:]) }
	t.gofunc, t.end = u64(moduledataGofunc), u64(moduledataEpclntab)
	if u64(moduledataPctab) != t.pctab || u64(moduledataPclntable) != t.funcs || !(t.funcs < t.gofunc && t.gofunc <= t.end && t.end <= t.limit) {
		return nil, errors.New("runtime.moduledata does not match the function table (another Go release?)")
	}
	return t, nil
}

func (t *table) strip(image []byte) (Result, error) {
	u32 := func(at uint64) uint32 { return binary.LittleEndian.Uint32(image[at:]) }
	res := Result{Funcs: t.nfunc, Names: int(t.cutab - t.names), Files: int(t.pctab - t.cutab)}
	// keep marks the bytes of the tables the runtime unwinds and scans
	// stacks with; every other byte of pctab belongs to a file or line table.
	keep := make([]bool, t.funcs-t.pctab)
	mark := func(off uint32) error {
		if off == 0 { // no table
			return nil
		}
		if t.pctab+uint64(off) >= t.funcs {
			return errors.New("pc table at " + strconv.FormatUint(uint64(off), 10) + " is outside the pc tables")
		}
		n, err := pcTableLen(image[t.pctab+uint64(off) : t.funcs])
		if err != nil {
			return errors.New("pc table at " + strconv.FormatUint(uint64(off), 10) + ": " + err.Error())
		}
		for i := range n {
			keep[int(off)+i] = true
		}
		return nil
	}
	var trees [][2]uint64         // [from, to) of each inline tree
	funcdata := map[uint64]bool{} // the other funcdata the runtime reads
	for i := range t.nfunc {
		f := t.funcs + uint64(u32(t.funcs+uint64(i)*8+4))
		if f+funcFixedLen > t.limit {
			return Result{}, errors.New("function " + strconv.Itoa(i) + "'s record is outside the data")
		}
		npcdata, nfuncdata := uint64(u32(f+funcNPCData)), uint64(image[f+funcNFuncData])
		if f+funcFixedLen+4*(npcdata+nfuncdata) > t.limit {
			return Result{}, errors.New("function " + strconv.Itoa(i) + "'s record is outside the data")
		}
		pcdata, fdata := f+funcFixedLen, f+funcFixedLen+4*npcdata
		for k := range nfuncdata {
			off := u32(fdata + 4*k)
			switch {
			case off == noFuncdata:
			case t.gofunc+uint64(off) >= t.end:
				return Result{}, errors.New("function " + strconv.Itoa(i) + "'s funcdata " + strconv.Itoa(int(k)) + " is outside the table")
			case k == funcdataInlTree && npcdata > pcdataInlTreeIndex:
				n, err := inlineTreeLen(image[t.pctab:t.funcs], u32(pcdata+4*pcdataInlTreeIndex))
				if err != nil {
					return Result{}, errors.New("function " + strconv.Itoa(i) + "'s inline tree: " + err.Error())
				}
				from := t.gofunc + uint64(off)
				trees = append(trees, [2]uint64{from, min(from+uint64(n), t.end)})
				binary.LittleEndian.PutUint32(image[fdata+4*k:], noFuncdata)
				binary.LittleEndian.PutUint32(image[pcdata+4*pcdataInlTreeIndex:], 0)
			default:
				funcdata[t.gofunc+uint64(off)] = true
			}
		}
		if err := mark(u32(f + funcPCSP)); err != nil {
			return Result{}, err
		}
		for k := range npcdata {
			if err := mark(u32(pcdata + 4*k)); err != nil {
				return Result{}, err
			}
		}
		binary.LittleEndian.PutUint32(image[f+funcPCFile:], 0)
		binary.LittleEndian.PutUint32(image[f+funcPCLn:], 0)
	}
	for i, k := range keep {
		if !k && image[t.pctab+uint64(i)] != 0 {
			image[t.pctab+uint64(i)] = 0
			res.LineTable++
		}
	}
	clear(image[t.names:t.pctab])
	// The linker writes each function's tree as a symbol of its own; a kept
	// funcdata starting inside one would mean it does not any more.
	for _, tree := range trees {
		for at := tree[0]; at < tree[1]; at++ {
			if funcdata[at] {
				return Result{}, errors.New("an inline tree overlaps other funcdata")
			}
		}
		res.InlTrees += int(tree[1] - tree[0])
		clear(image[tree[0]:tree[1]])
	}
	return res, nil
}

// inlineTreeLen is the length of a function's inline tree: its entries are
// indexed by the values of its PCDATA_InlTreeIndex table (-1 where nothing
// is inlined), and every entry is reached that way, as each entry's parent
// is the entry at its parentPc.
func inlineTreeLen(pctab []byte, off uint32) (int, error) {
	if off == 0 {
		return 0, nil
	}
	if int(off) >= len(pctab) {
		return 0, errors.New("index table outside the pc tables")
	}
	b := pctab[off:]
	maxIndex, index := int32(-1), int32(-1)
	for at, first := 0, true; ; first = false {
		delta, n := binary.Uvarint(b[at:])
		if n <= 0 || n > 5 {
			return 0, errors.New("index table truncated")
		}
		at += n
		if delta == 0 && !first {
			return int(maxIndex+1) * inlinedCallSize, nil
		}
		index += int32(-(uint32(delta) & 1) ^ (uint32(delta) >> 1))
		maxIndex = max(maxIndex, index)
		if _, n = binary.Uvarint(b[at:]); n <= 0 {
			return 0, errors.New("index table truncated")
		}
		at += n
	}
}

// pcTableLen is the length of the pc-value table at the start of b: pairs of
// a zig-zag value delta and a pc delta, both varints, up to a zero value
// delta after the first pair (runtime.step).
func pcTableLen(b []byte) (int, error) {
	at := 0
	for first := true; ; first = false {
		delta, n := binary.Uvarint(b[at:])
		if n <= 0 {
			return 0, errors.New("truncated")
		}
		at += n
		if delta == 0 && !first {
			return at, nil
		}
		if _, n = binary.Uvarint(b[at:]); n <= 0 {
			return 0, errors.New("truncated")
		}
		at += n
	}
}

// resegment rebuilds the data segments from the image, each cut around its
// runs of at least minZeroRun zeros.
func resegment(segments []*wasm.DataSegment, starts []uint32, image []byte) []*wasm.DataSegment {
	var out []*wasm.DataSegment
	for i, d := range segments {
		data := image[starts[i] : starts[i]+uint32(len(d.Init))]
		begin := 0 // start of the pending non-zero part
		for begin < len(data) && data[begin] == 0 {
			begin++
		}
		for at := begin; at < len(data); {
			if data[at] != 0 {
				at++
				continue
			}
			run := at
			for run < len(data) && data[run] == 0 {
				run++
			}
			if run-at >= minZeroRun || run == len(data) {
				out = append(out, segment(starts[i]+uint32(begin), data[begin:at]))
				begin = run
			}
			at = run
		}
		if begin < len(data) {
			out = append(out, segment(starts[i]+uint32(begin), data[begin:]))
		}
	}
	return out
}

func segment(addr uint32, data []byte) *wasm.DataSegment {
	return &wasm.DataSegment{
		OffsetExpression: &wasm.ConstantExpression{Opcode: wasm.OpcodeI32Const, Data: leb128.EncodeInt32(int32(addr))},
		Init:             data,
	}
}
