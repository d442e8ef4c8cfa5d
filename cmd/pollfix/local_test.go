package main

import (
	"context"
	"encoding/binary"
	"testing"

	"github.com/tetratelabs/wabin/wasm"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

const (
	subscriptionSize = 48
	eventSize        = 32
	tagClock         = 0
	tagFdRead        = 1
	tagFdWrite       = 2
)

// TestLocalPollOneoff calls the appended function's body on its own, under
// wazero, with subscriptions crafted in memory: it must answer the first
// subscription as occurred and touch nothing but that event and *nevents.
func TestLocalPollOneoff(t *testing.T) {
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	i32 := wasm.ValueTypeI32
	mod, err := rt.Instantiate(ctx, encode(&wasm.Module{
		TypeSection:     []*wasm.FunctionType{{Params: []wasm.ValueType{i32, i32, i32, i32}, Results: []wasm.ValueType{i32}}},
		FunctionSection: []wasm.Index{0},
		CodeSection:     []*wasm.Code{{Body: localPollOneoff}},
		MemorySection:   &wasm.Memory{Min: 1},
		ExportSection: []*wasm.Export{
			{Type: wasm.ExternTypeFunc, Name: "poll_oneoff", Index: 0},
			{Type: wasm.ExternTypeMemory, Name: "memory", Index: 0},
		},
	}))
	if err != nil {
		t.Fatalf("instantiate: %v", err)
	}
	poll := mod.ExportedFunction("poll_oneoff")
	mem := mod.Memory()

	const in, out, nevents = 1024, 4096, 8192
	for _, tc := range []struct {
		name string
		tags []byte
	}{
		{"one_clock", []byte{tagClock}},
		{"clock_then_fds", []byte{tagClock, tagFdRead, tagFdWrite}},
		{"fd_read_first", []byte{tagFdRead, tagClock}},
		{"fd_write_first", []byte{tagFdWrite}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fill(mem, 0, 65536, 0xa5) // garbage everywhere, events included
			for i, tag := range tc.tags {
				sub := uint32(in + i*subscriptionSize)
				mem.WriteUint64Le(sub, 0x1122334455667700+uint64(i))
				mem.WriteByte(sub+8, tag)
			}
			errno := call(t, poll, in, out, uint32(len(tc.tags)), nevents)
			if errno != 0 {
				t.Fatalf("errno %d, want 0", errno)
			}
			if n, _ := mem.ReadUint32Le(nevents); n != 1 {
				t.Errorf("nevents %d, want 1", n)
			}
			ev, _ := mem.Read(out, eventSize)
			if got := binary.LittleEndian.Uint64(ev[0:]); got != 0x1122334455667700 {
				t.Errorf("event userdata %#x, want the first subscription's", got)
			}
			if got := binary.LittleEndian.Uint16(ev[8:]); got != 0 {
				t.Errorf("event error %d, want 0", got)
			}
			if ev[10] != tc.tags[0] {
				t.Errorf("event type %d, want the first subscription's tag %d", ev[10], tc.tags[0])
			}
			for i := 11; i < eventSize; i++ {
				if ev[i] != 0 {
					t.Fatalf("event byte %d is %#x, want 0 (padding, fd_readwrite)", i, ev[i])
				}
			}
			untouched(t, mem, out+eventSize, nevents)
			untouched(t, mem, nevents+4, 65536)
		})
	}

	t.Run("no_subscriptions", func(t *testing.T) {
		fill(mem, 0, 65536, 0xa5)
		if errno := call(t, poll, in, out, 0, nevents); errno != errnoInval {
			t.Errorf("errno %d, want EINVAL (%d)", errno, errnoInval)
		}
		untouched(t, mem, 0, 65536)
	})
}

func call(t *testing.T, fn api.Function, args ...uint32) uint32 {
	t.Helper()
	params := make([]uint64, len(args))
	for i, a := range args {
		params[i] = uint64(a)
	}
	res, err := fn.Call(context.Background(), params...)
	if err != nil {
		t.Fatalf("call: %v", err)
	}
	return uint32(res[0])
}

func fill(mem api.Memory, from, to uint32, b byte) {
	buf, _ := mem.Read(from, to-from)
	for i := range buf {
		buf[i] = b
	}
}

// untouched checks that [from, to) still holds fill's 0xa5.
func untouched(t *testing.T, mem api.Memory, from, to uint32) {
	t.Helper()
	buf, _ := mem.Read(from, to-from)
	for i, b := range buf {
		if b != 0xa5 {
			t.Fatalf("memory at %d was written (%#x)", from+uint32(i), b)
		}
	}
}
