package main

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/tetratelabs/wabin/leb128"
)

// span is where one function-index immediate sits in a function body.
type span struct{ start, end int }

// references walks a function body instruction by instruction and returns
// the index immediates of every `call fn`, plus how many other instructions
// name fn (ref.func, which could reach it indirectly). It decodes the opcodes
// of WebAssembly 2.0 without SIMD (what Go's wasm backend emits) and refuses
// any other opcode: a body it cannot walk is never rewritten.
func references(body []byte, fn uint32) (calls []span, other int, err error) {
	r := &codeReader{Reader: bytes.NewReader(body), size: len(body)}
	for r.Len() > 0 {
		at := r.pos()
		op, _ := r.ReadByte()
		switch {
		case op == 0x10, op == 0xd2: // call funcidx, ref.func funcidx
			start := r.pos()
			idx, err := r.u32()
			if err != nil {
				return nil, 0, fmt.Errorf("opcode %#x at %d: %w", op, at, err)
			}
			switch {
			case idx != fn:
			case op == 0x10:
				calls = append(calls, span{start, r.pos()})
			default:
				other++
			}
			continue
		case op <= 0x01, op == 0x05, op == 0x0b, op == 0x0f, op == 0x1a, op == 0x1b,
			op >= 0x45 && op <= 0xc4, op == 0xd1:
			// no immediate
		case op >= 0x02 && op <= 0x04: // block, loop, if: blocktype (s33)
			_, _, err = leb128.DecodeInt33AsInt64(r.Reader)
		case op == 0x0c, op == 0x0d, // br, br_if
			op >= 0x20 && op <= 0x26: // local.*, global.*, table.get/set
			err = r.skipU32(1)
		case op == 0x0e: // br_table: vec(labelidx) labelidx
			var n uint32
			if n, err = r.u32(); err == nil {
				err = r.skipU32(int(n) + 1)
			}
		case op == 0x11, // call_indirect typeidx tableidx
			op >= 0x28 && op <= 0x3e: // loads and stores: memarg (align, offset)
			err = r.skipU32(2)
		case op == 0x1c: // select t*: vec(valtype)
			var n uint32
			if n, err = r.u32(); err == nil {
				err = r.skip(int(n))
			}
		case op == 0x3f, op == 0x40, op == 0xd0: // memory.size, memory.grow, ref.null: one byte
			err = r.skip(1)
		case op == 0x41:
			_, _, err = leb128.DecodeInt32(r.Reader)
		case op == 0x42:
			_, _, err = leb128.DecodeInt64(r.Reader)
		case op == 0x43:
			err = r.skip(4)
		case op == 0x44:
			err = r.skip(8)
		case op == 0xfc:
			err = r.skipMisc()
		default:
			return nil, 0, fmt.Errorf("unknown opcode %#x at %d", op, at)
		}
		if err != nil {
			return nil, 0, fmt.Errorf("opcode %#x at %d: %w", op, at, err)
		}
	}
	return calls, other, nil
}

type codeReader struct {
	*bytes.Reader
	size int
}

func (r *codeReader) pos() int { return r.size - r.Len() }

func (r *codeReader) u32() (uint32, error) {
	v, _, err := leb128.DecodeUint32(r.Reader)
	return v, err
}

func (r *codeReader) skipU32(n int) error {
	for range n {
		if _, err := r.u32(); err != nil {
			return err
		}
	}
	return nil
}

var errTruncated = errors.New("truncated immediate")

func (r *codeReader) skip(n int) error {
	if r.Len() < n {
		return errTruncated
	}
	_, err := r.Seek(int64(n), 1)
	return err
}

// skipMisc skips the immediates of one 0xfc-prefixed instruction
// (saturating truncation, bulk memory, table instructions).
func (r *codeReader) skipMisc() error {
	sub, err := r.u32()
	if err != nil {
		return err
	}
	switch {
	case sub <= 7: // i*.trunc_sat_f*
		return nil
	case sub == 8: // memory.init dataidx 0x00
		if err := r.skipU32(1); err != nil {
			return err
		}
		return r.skip(1)
	case sub == 9, sub == 13, sub >= 15 && sub <= 17: // data.drop, elem.drop, table.grow/size/fill
		return r.skipU32(1)
	case sub == 10: // memory.copy 0x00 0x00
		return r.skip(2)
	case sub == 11: // memory.fill 0x00
		return r.skip(1)
	case sub == 12, sub == 14: // table.init, table.copy
		return r.skipU32(2)
	}
	return fmt.Errorf("unknown 0xfc instruction %d", sub)
}
