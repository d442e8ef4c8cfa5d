package wasmhost

import (
	"math"

	"github.com/tetratelabs/wazero/api"
)

// bufferType is a proxy-wasm buffer type.
type bufferType uint32

const (
	bufferRequestBody      bufferType = 0
	bufferResponseBody     bufferType = 1
	bufferHTTPCallResponse bufferType = 4
	bufferVMConfiguration  bufferType = 6
	bufferPluginConfig     bufferType = 7
)

// headerMap returns the map t of the active context, nil when it has none
// (yet): a trailer map exists only from its trailers callback on, or in the
// last body callback of a stream without trailers.
func (in *instance) headerMap(t mapType) *headers {
	switch t {
	case mapHTTPCallResponseHeads:
		if in.callout != nil {
			return &in.callout.headers
		}
		return nil
	case mapHTTPCallResponseTrail:
		if in.callout != nil {
			return &in.callout.trailers
		}
		return nil
	}
	st := in.current()
	if st == nil {
		return nil
	}
	switch t {
	case mapRequestHeaders:
		return &st.reqHeaders
	case mapRequestTrailers:
		if st.reqTrailersOpen {
			return &st.reqTrailers
		}
	case mapResponseHeaders:
		if st.phase == phaseResponse {
			return &st.respHeaders
		}
	case mapResponseTrailers:
		if st.phase == phaseResponse && st.respTrailersOpen {
			return &st.respTrailers
		}
	}
	return nil
}

// mapAndKey resolves the map and reads the key of a header host call.
func (in *instance) mapAndKey(mod api.Module, s []uint64) (*headers, string, status) {
	m := in.headerMap(mapType(u32(s[0])))
	if m == nil {
		return nil, "", statusBadArgument
	}
	key, ok := readString(mod, u32(s[1]), u32(s[2]))
	if !ok {
		return nil, "", statusInvalidMemoryAccess
	}
	return m, key, statusOK
}

func (in *instance) getHeaderMapValue(mod api.Module, s []uint64) status {
	m, key, st := in.mapAndKey(mod, s)
	if st != statusOK {
		return st
	}
	v, found := m.get(key)
	if !found {
		return statusNotFound
	}
	return in.writeResult(in.ctx, mod, []byte(v), u32(s[3]), u32(s[4]))
}

func (in *instance) addHeaderMapValue(mod api.Module, s []uint64) status {
	return in.setHeaderMapValue(mod, s, (*headers).add)
}

func (in *instance) replaceHeaderMapValue(mod api.Module, s []uint64) status {
	return in.setHeaderMapValue(mod, s, (*headers).replace)
}

// setHeaderMapValue reads the map, key and value arguments of
// proxy_add_header_map_value / proxy_replace_header_map_value and applies set.
func (in *instance) setHeaderMapValue(mod api.Module, s []uint64, set func(*headers, string, string)) status {
	m, key, st := in.mapAndKey(mod, s)
	if st != statusOK {
		return st
	}
	v, ok := readString(mod, u32(s[3]), u32(s[4]))
	if !ok {
		return statusInvalidMemoryAccess
	}
	set(m, key, v)
	return statusOK
}

func (in *instance) removeHeaderMapValue(mod api.Module, s []uint64) status {
	m, key, st := in.mapAndKey(mod, s)
	if st != statusOK {
		return st
	}
	m.remove(key)
	return statusOK
}

func (in *instance) getHeaderMapPairs(mod api.Module, s []uint64) status {
	m := in.headerMap(mapType(u32(s[0])))
	if m == nil {
		return statusBadArgument
	}
	return in.writeResult(in.ctx, mod, encodePairs(*m), u32(s[1]), u32(s[2]))
}

func (in *instance) setHeaderMapPairs(mod api.Module, s []uint64) status {
	m := in.headerMap(mapType(u32(s[0])))
	if m == nil {
		return statusBadArgument
	}
	raw, ok := read(mod, u32(s[1]), u32(s[2]))
	if !ok {
		return statusInvalidMemoryAccess
	}
	pairs, ok := decodePairs(raw)
	if !ok {
		return statusBadArgument
	}
	m.set(pairs)
	return statusOK
}

// buffer returns buffer t of the active context; writable is false for the
// configurations.
func (in *instance) buffer(t bufferType) (buf *[]byte, writable bool) {
	switch t {
	case bufferVMConfiguration:
		b := []byte(in.h.opts.VMConfig)
		return &b, false
	case bufferPluginConfig:
		b := []byte(in.h.opts.PluginConfig)
		return &b, false
	case bufferHTTPCallResponse:
		if in.callout != nil {
			return &in.callout.body, false
		}
		return nil, false
	}
	st := in.current()
	if st == nil {
		return nil, false
	}
	switch t {
	case bufferRequestBody:
		return &st.reqBody, true
	case bufferResponseBody:
		if st.phase == phaseResponse {
			return &st.respBody, true
		}
	}
	return nil, false
}

// getBufferBytes copies up to max bytes from start, as Envoy: an empty
// result stores nothing and is Ok (the SDK then reports NotFound).
func (in *instance) getBufferBytes(mod api.Module, s []uint64) status {
	buf, _ := in.buffer(bufferType(u32(s[0])))
	if buf == nil {
		return statusNotFound
	}
	start, max := uint64(u32(s[1])), uint64(u32(s[2]))
	size := uint64(len(*buf))
	if start > size {
		return statusBadArgument
	}
	end := min(start+max, size)
	if end == start {
		return statusOK
	}
	return in.writeResult(in.ctx, mod, (*buf)[start:end], u32(s[3]), u32(s[4]))
}

// setBufferBytes follows Envoy: start 0 and size 0 prepends, start 0 and a
// size covering the buffer replaces it, a start at or past the end appends.
func (in *instance) setBufferBytes(mod api.Module, s []uint64) status {
	buf, writable := in.buffer(bufferType(u32(s[0])))
	if buf == nil {
		return statusNotFound
	}
	if !writable {
		return statusBadArgument
	}
	data, ok := read(mod, u32(s[3]), u32(s[4]))
	if !ok {
		return statusInvalidMemoryAccess
	}
	start, size := uint64(u32(s[1])), uint64(u32(s[2]))
	cur := uint64(len(*buf))
	switch {
	case start == 0 && size == 0:
		*buf = append(data, *buf...)
	case start == 0 && (size >= cur || size == math.MaxInt32):
		*buf = data
	case start != 0 && start >= cur:
		*buf = append(*buf, data...)
	default:
		return statusBadArgument
	}
	return statusOK
}
