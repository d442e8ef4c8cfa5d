package wasmhost

import (
	"context"
	"encoding/binary"

	"github.com/tetratelabs/wazero/api"
)

// status is a proxy-wasm WasmResult, what every host function returns.
type status uint32

const (
	statusOK                  status = 0
	statusNotFound            status = 1
	statusBadArgument         status = 2
	statusInvalidMemoryAccess status = 6
	statusEmpty               status = 7
	statusCasMismatch         status = 8
	statusInternalFailure     status = 10
	statusUnimplemented       status = 12
)

// read returns a copy of size bytes of guest memory at ptr.
func read(mod api.Module, ptr, size uint32) ([]byte, bool) {
	if size == 0 {
		return nil, true
	}
	b, ok := mod.Memory().Read(ptr, size)
	if !ok {
		return nil, false
	}
	return append([]byte(nil), b...), true
}

// readString is read as a string.
func readString(mod api.Module, ptr, size uint32) (string, bool) {
	if size == 0 {
		return "", true
	}
	b, ok := mod.Memory().Read(ptr, size)
	if !ok {
		return "", false
	}
	return string(b), true
}

// writeU32 stores v little-endian at ptr.
func writeU32(mod api.Module, ptr, v uint32) status {
	if !mod.Memory().WriteUint32Le(ptr, v) {
		return statusInvalidMemoryAccess
	}
	return statusOK
}

// writeResult hands data to the guest the proxy-wasm way: the host allocates
// guest memory with proxy_on_memory_allocate, copies data there and stores the
// pointer at ptrPtr and the size at sizePtr. Empty data stores 0 and 0 without
// allocating, as Envoy does (the Go SDK cannot allocate 0 bytes).
func (in *instance) writeResult(ctx context.Context, mod api.Module, data []byte, ptrPtr, sizePtr uint32) status {
	var ptr uint32
	if len(data) > 0 {
		in.h.allocs.Add(1)
		res, err := in.fns.alloc.Call(ctx, uint64(len(data)))
		if err != nil {
			return statusInternalFailure
		}
		ptr = uint32(res[0])
		if !mod.Memory().Write(ptr, data) {
			return statusInvalidMemoryAccess
		}
	}
	if st := writeU32(mod, ptrPtr, ptr); st != statusOK {
		return st
	}
	return writeU32(mod, sizePtr, uint32(len(data)))
}

// encodePairs serializes header pairs the proxy-wasm way: a count, then the
// key and value sizes, then every key and value followed by a NUL byte.
func encodePairs(pairs [][2]string) []byte {
	size := 4
	for _, p := range pairs {
		size += 8 + len(p[0]) + len(p[1]) + 2
	}
	b := make([]byte, size)
	binary.LittleEndian.PutUint32(b, uint32(len(pairs)))
	off := 4
	for _, p := range pairs {
		binary.LittleEndian.PutUint32(b[off:], uint32(len(p[0])))
		binary.LittleEndian.PutUint32(b[off+4:], uint32(len(p[1])))
		off += 8
	}
	for _, p := range pairs {
		off += copy(b[off:], p[0]) + 1
		off += copy(b[off:], p[1]) + 1
	}
	return b
}

// decodePairs is the inverse of encodePairs; ok is false for malformed input.
func decodePairs(b []byte) (pairs [][2]string, ok bool) {
	if len(b) < 4 {
		return nil, len(b) == 0
	}
	n := int(binary.LittleEndian.Uint32(b))
	if n < 0 || 4+8*n > len(b) {
		return nil, false
	}
	sizes := b[4 : 4+8*n]
	data := b[4+8*n:]
	pairs = make([][2]string, n)
	for i := range n {
		k := int(binary.LittleEndian.Uint32(sizes[8*i:]))
		v := int(binary.LittleEndian.Uint32(sizes[8*i+4:]))
		if k < 0 || v < 0 || k+v+2 > len(data) {
			return nil, false
		}
		pairs[i][0] = string(data[:k])
		data = data[k+1:]
		pairs[i][1] = string(data[:v])
		data = data[v+1:]
	}
	return pairs, true
}
