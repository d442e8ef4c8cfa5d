package wasmhost

import (
	"context"
	"encoding/binary"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// hostFunc is one proxy-wasm host function: it reads its arguments from
// stack and returns the WasmResult.
type hostFunc func(in *instance, mod api.Module, stack []uint64) status

type hostFuncDef struct {
	name   string
	params []api.ValueType
	fn     hostFunc
}

const (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

func i32s(n int) []api.ValueType {
	p := make([]api.ValueType, n)
	for i := range p {
		p[i] = i32
	}
	return p
}

// hostFuncs are the proxy-wasm 0.2.1 functions the Go SDK imports.
var hostFuncs = []hostFuncDef{
	{"proxy_log", i32s(3), (*instance).log},
	{"proxy_get_property", i32s(4), (*instance).getProperty},
	{"proxy_set_property", i32s(4), (*instance).setProperty},
	{"proxy_send_local_response", i32s(8), (*instance).sendLocalResponse},
	{"proxy_continue_stream", i32s(1), (*instance).continueStream},
	{"proxy_close_stream", i32s(1), (*instance).closeStream},
	{"proxy_get_header_map_value", i32s(5), (*instance).getHeaderMapValue},
	{"proxy_add_header_map_value", i32s(5), (*instance).addHeaderMapValue},
	{"proxy_replace_header_map_value", i32s(5), (*instance).replaceHeaderMapValue},
	{"proxy_remove_header_map_value", i32s(3), (*instance).removeHeaderMapValue},
	{"proxy_get_header_map_pairs", i32s(3), (*instance).getHeaderMapPairs},
	{"proxy_set_header_map_pairs", i32s(3), (*instance).setHeaderMapPairs},
	{"proxy_get_buffer_bytes", i32s(5), (*instance).getBufferBytes},
	{"proxy_set_buffer_bytes", i32s(5), (*instance).setBufferBytes},
	{"proxy_get_shared_data", i32s(5), (*instance).getSharedData},
	{"proxy_set_shared_data", i32s(5), (*instance).setSharedData},
	{"proxy_register_shared_queue", i32s(3), (*instance).registerSharedQueue},
	{"proxy_resolve_shared_queue", i32s(5), (*instance).resolveSharedQueue},
	{"proxy_enqueue_shared_queue", i32s(3), (*instance).enqueueSharedQueue},
	{"proxy_dequeue_shared_queue", i32s(3), (*instance).dequeueSharedQueue},
	{"proxy_http_call", i32s(10), (*instance).httpCall},
	{"proxy_call_foreign_function", i32s(6), (*instance).callForeignFunction},
	{"proxy_set_tick_period_milliseconds", i32s(1), (*instance).setTickPeriod},
	{"proxy_set_effective_context", i32s(1), (*instance).setEffectiveContext},
	{"proxy_done", nil, (*instance).done},
	{"proxy_define_metric", i32s(4), (*instance).defineMetric},
	{"proxy_increment_metric", []api.ValueType{i32, i64}, (*instance).incrementMetric},
	{"proxy_record_metric", []api.ValueType{i32, i64}, (*instance).recordMetric},
	{"proxy_get_metric", i32s(2), (*instance).getMetric},
}

// CallCounts are how many times each host function was called, and
// proxy_on_memory_allocate (under that name) for the data they returned.
type CallCounts map[string]int64

// Total is the number of crossings between the host and the module that
// host calls caused: the calls and the allocations they made.
func (c CallCounts) Total() int64 {
	var n int64
	for _, v := range c {
		n += v
	}
	return n
}

// HostCalls returns the counts since the host started (every VM).
func (h *Host) HostCalls() CallCounts {
	out := CallCounts{}
	for i := range h.calls {
		if n := h.calls[i].Load(); n > 0 {
			out[hostFuncs[i].name] = n
		}
	}
	if n := h.allocs.Load(); n > 0 {
		out["proxy_on_memory_allocate"] = n
	}
	return out
}

// instantiateEnv instantiates the "env" host module in r and returns the
// names it provides. The functions find their instance in the call's context.
func instantiateEnv(ctx context.Context, r wazero.Runtime) (map[string]bool, error) {
	b := r.NewHostModuleBuilder("env")
	provided := make(map[string]bool, len(hostFuncs))
	for i, d := range hostFuncs {
		fn := d.fn
		b.NewFunctionBuilder().
			WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
				in := instanceFrom(ctx)
				in.h.calls[i].Add(1)
				stack[0] = uint64(fn(in, mod, stack))
			}), d.params, []api.ValueType{i32}).
			Export(d.name)
		provided[d.name] = true
	}
	_, err := b.Instantiate(ctx)
	return provided, err
}

func u32(v uint64) uint32 { return uint32(v) }

func (in *instance) log(mod api.Module, s []uint64) status {
	msg, ok := readString(mod, u32(s[1]), u32(s[2]))
	if !ok {
		return statusInvalidMemoryAccess
	}
	in.h.logs.add(FromPlugin, Level(u32(s[0])), in.vm.index, msg)
	return statusOK
}

// current returns the stream the active context is, nil for the root.
func (in *instance) current() *stream { return in.streams[in.active] }

func (in *instance) getProperty(mod api.Module, s []uint64) status {
	raw, ok := readString(mod, u32(s[0]), u32(s[1]))
	if !ok {
		return statusInvalidMemoryAccess
	}
	v, found := in.property(strings.ReplaceAll(raw, "\x00", "."))
	if !found {
		return statusNotFound
	}
	return in.writeResult(in.ctx, mod, v, u32(s[2]), u32(s[3]))
}

func (in *instance) setProperty(mod api.Module, s []uint64) status {
	raw, ok1 := readString(mod, u32(s[0]), u32(s[1]))
	v, ok2 := read(mod, u32(s[2]), u32(s[3]))
	if !ok1 || !ok2 {
		return statusInvalidMemoryAccess
	}
	path := strings.ReplaceAll(raw, "\x00", ".")
	if st := in.current(); st != nil {
		st.props[path] = v
	} else {
		in.rootProps[path] = v
	}
	return statusOK
}

// property looks a path up in the active stream, then the root context,
// then the host's static properties.
func (in *instance) property(path string) ([]byte, bool) {
	if st := in.current(); st != nil {
		if v, ok := st.props[path]; ok {
			return v, true
		}
	}
	if v, ok := in.rootProps[path]; ok {
		return v, true
	}
	v, ok := in.h.props[path]
	return v, ok
}

// int64Property encodes an integer property as Envoy does: 8 bytes, little endian.
func int64Property(v int64) []byte {
	return binary.LittleEndian.AppendUint64(nil, uint64(v))
}

func (in *instance) sendLocalResponse(mod api.Module, s []uint64) status {
	st := in.current()
	if st == nil {
		return statusBadArgument
	}
	details, ok1 := readString(mod, u32(s[1]), u32(s[2]))
	body, ok2 := read(mod, u32(s[3]), u32(s[4]))
	raw, ok3 := read(mod, u32(s[5]), u32(s[6]))
	if !ok1 || !ok2 || !ok3 {
		return statusInvalidMemoryAccess
	}
	pairs, ok := decodePairs(raw)
	if !ok {
		return statusBadArgument
	}
	var hdr headers
	hdr.set(pairs)
	st.local = &localReply{status: int(u32(s[0])), details: details, body: body, headers: hdr}
	st.signal()
	return statusOK
}

func (in *instance) continueStream(_ api.Module, s []uint64) status {
	st := in.current()
	if st == nil {
		return statusBadArgument
	}
	switch u32(s[0]) {
	case 0: // request
		if st.phase == phaseRequest {
			st.signal()
		}
	case 1: // response
		if st.phase == phaseResponse {
			st.signal()
		}
	default:
		return statusBadArgument
	}
	return statusOK
}

func (in *instance) closeStream(_ api.Module, s []uint64) status {
	st := in.current()
	if st == nil || u32(s[0]) > 1 {
		return statusBadArgument
	}
	st.reset = true
	st.signal()
	return statusOK
}

func (in *instance) setEffectiveContext(_ api.Module, s []uint64) status {
	id := u32(s[0])
	if id != in.rootID && in.streams[id] == nil {
		return statusBadArgument
	}
	in.active = id
	return statusOK
}

func (in *instance) done(api.Module, []uint64) status { return statusOK }

func (in *instance) callForeignFunction(api.Module, []uint64) status { return statusNotFound }

func (in *instance) setTickPeriod(_ api.Module, s []uint64) status {
	in.setTick(time.Duration(u32(s[0])) * time.Millisecond)
	return statusOK
}

func (in *instance) defineMetric(mod api.Module, s []uint64) status {
	name, ok := readString(mod, u32(s[1]), u32(s[2]))
	if !ok {
		return statusInvalidMemoryAccess
	}
	id, st := in.h.metrics.define(MetricType(u32(s[0])), name)
	if st != statusOK {
		return st
	}
	return writeU32(mod, u32(s[3]), id)
}

func (in *instance) incrementMetric(_ api.Module, s []uint64) status {
	return in.h.metrics.increment(u32(s[0]), int64(s[1]))
}

func (in *instance) recordMetric(_ api.Module, s []uint64) status {
	return in.h.metrics.record(u32(s[0]), s[1])
}

func (in *instance) getMetric(mod api.Module, s []uint64) status {
	v, st := in.h.metrics.get(u32(s[0]))
	if st != statusOK {
		return st
	}
	if !mod.Memory().WriteUint64Le(u32(s[1]), v) {
		return statusInvalidMemoryAccess
	}
	return statusOK
}

func (in *instance) getSharedData(mod api.Module, s []uint64) status {
	key, ok := readString(mod, u32(s[0]), u32(s[1]))
	if !ok {
		return statusInvalidMemoryAccess
	}
	v, cas, st := in.h.shared.get(key)
	if st != statusOK {
		return st
	}
	if st := in.writeResult(in.ctx, mod, v, u32(s[2]), u32(s[3])); st != statusOK {
		return st
	}
	return writeU32(mod, u32(s[4]), cas)
}

func (in *instance) setSharedData(mod api.Module, s []uint64) status {
	key, ok1 := readString(mod, u32(s[0]), u32(s[1]))
	v, ok2 := read(mod, u32(s[2]), u32(s[3]))
	if !ok1 || !ok2 {
		return statusInvalidMemoryAccess
	}
	return in.h.shared.set(key, v, u32(s[4]))
}
