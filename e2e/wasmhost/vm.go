package wasmhost

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// vm is one simulated Envoy worker: a slot holding the current instance of
// the module. mu serializes every call into it, as a worker thread does.
type vm struct {
	h     *Host
	index int
	mu    sync.Mutex
	inst  *instance
	gen   int // instances created so far, for unique module names
}

// exports are the guest callbacks; a nil one is a callback the module does
// not have, which the host treats as a no-op returning Continue.
type exports struct {
	alloc, vmStart, configure, contextCreate, done, delete, log           api.Function
	reqHeaders, reqBody, reqTrailers, respHeaders, respBody, respTrailers api.Function
	httpCallResponse, tick, queueReady                                    api.Function
}

// instance is one instantiation of the module in a vm. All its fields are
// guarded by vm.mu.
type instance struct {
	vm     *vm
	h      *Host
	mod    api.Module
	ctx    context.Context // carries the instance to the host functions
	fns    exports
	stderr *lineWriter

	rootID    uint32
	nextID    uint32
	active    uint32 // the context host calls act on (proxy_set_effective_context)
	streams   map[uint32]*stream
	rootProps map[string][]byte

	nextCallout uint32
	callout     *calloutResponse // set during proxy_on_http_call_response

	tickStop chan struct{}
	dead     *VMError
}

type instanceKey struct{}

func instanceFrom(ctx context.Context) *instance { return ctx.Value(instanceKey{}).(*instance) }

// instantiate creates and starts a new instance in v: _initialize,
// proxy_on_vm_start, the root context and proxy_on_configure.
func (h *Host) instantiate(v *vm) (*instance, error) {
	v.gen++
	in := &instance{
		vm: v, h: h,
		rootID: 1, nextID: 2, active: 1,
		streams: map[uint32]*stream{}, rootProps: map[string][]byte{},
	}
	in.ctx = context.WithValue(h.ctx, instanceKey{}, in)
	in.stderr = &lineWriter{logs: h.logs, src: FromStderr, level: Error, vm: v.index}
	stdout := &lineWriter{logs: h.logs, src: FromStdout, level: Info, vm: v.index}
	cfg := wazero.NewModuleConfig().
		WithName(fmt.Sprintf("vm%d.%d", v.index, v.gen)).
		WithStartFunctions("_initialize").
		WithSysWalltime().WithSysNanotime().WithSysNanosleep().
		WithRandSource(randSource).
		WithStdout(stdout).WithStderr(in.stderr)
	if now := h.opts.Walltime; now != nil {
		cfg = cfg.WithWalltime(func() (int64, int32) {
			t := now()
			return t.Unix(), int32(t.Nanosecond())
		}, sys.ClockResolution(time.Microsecond))
	}
	for _, k := range sortedEnv(h.opts.Env) {
		cfg = cfg.WithEnv(k, h.opts.Env[k])
	}
	mod, err := h.runtime.InstantiateModule(in.ctx, h.compiled, cfg)
	in.stderr.flush()
	if err != nil {
		return nil, fmt.Errorf("wasmhost: vm %d: instantiate: %w", v.index, err)
	}
	in.mod = mod
	fn := mod.ExportedFunction
	in.fns = exports{
		alloc: fn("proxy_on_memory_allocate"), vmStart: fn("proxy_on_vm_start"),
		configure: fn("proxy_on_configure"), contextCreate: fn("proxy_on_context_create"),
		done: fn("proxy_on_done"), delete: fn("proxy_on_delete"), log: fn("proxy_on_log"),
		reqHeaders: fn("proxy_on_request_headers"), reqBody: fn("proxy_on_request_body"),
		reqTrailers: fn("proxy_on_request_trailers"), respHeaders: fn("proxy_on_response_headers"),
		respBody: fn("proxy_on_response_body"), respTrailers: fn("proxy_on_response_trailers"),
		httpCallResponse: fn("proxy_on_http_call_response"), tick: fn("proxy_on_tick"),
		queueReady: fn("proxy_on_queue_ready"),
	}
	// start runs under the vm lock like every call, so timers and callouts
	// the plugin starts cannot run before it is done.
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := in.start(); err != nil {
		in.stopTick()
		mod.Close(context.Background())
		return nil, err
	}
	return in, nil
}

func (in *instance) start() error {
	ok, err := in.call(in.fns.vmStart, "proxy_on_vm_start", 0, uint64(len(in.h.opts.VMConfig)))
	if err != nil {
		return err
	}
	if in.fns.vmStart != nil && ok == 0 {
		return fmt.Errorf("wasmhost: vm %d: the plugin refused to start (proxy_on_vm_start returned false)", in.vm.index)
	}
	if _, err := in.call(in.fns.contextCreate, "proxy_on_context_create", uint64(in.rootID), 0); err != nil {
		return err
	}
	ok, err = in.call(in.fns.configure, "proxy_on_configure", uint64(in.rootID), uint64(len(in.h.opts.PluginConfig)))
	if err != nil {
		return err
	}
	if in.fns.configure != nil && ok == 0 {
		return fmt.Errorf("wasmhost: vm %d: the plugin refused its configuration (proxy_on_configure returned false)", in.vm.index)
	}
	return nil
}

// call runs one guest callback; the caller holds vm.mu. A missing callback
// returns 0 (Continue). An error (a trap, a Go panic's proc_exit, a callback
// that outran CallTimeout) kills the instance and is returned as *VMError.
func (in *instance) call(fn api.Function, name string, args ...uint64) (uint64, error) {
	if in.dead != nil {
		return 0, in.dead
	}
	if fn == nil {
		return 0, nil
	}
	ctx := in.ctx
	if t := in.h.opts.CallTimeout; t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	res, err := fn.Call(ctx, args...)
	if err != nil {
		in.fail(name, err)
		return 0, in.dead
	}
	if len(res) == 0 {
		return 0, nil
	}
	return res[0], nil
}

// fail marks the instance dead, records why and wakes every paused stream.
func (in *instance) fail(callback string, err error) {
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("callback ran longer than %s: %w", in.h.opts.CallTimeout, err)
	}
	in.stderr.flush()
	in.dead = &VMError{VM: in.vm.index, Callback: callback, Err: err, Output: in.recentStderr()}
	in.h.recordFailure(in.dead)
	in.stopTick()
	for _, s := range in.streams {
		s.signal()
	}
	in.mod.Close(context.Background())
}

// recentStderr returns the module's last stderr lines (a Go panic's message).
func (in *instance) recentStderr() string {
	var lines []string
	for _, e := range in.h.logs.snapshot() {
		if e.Source == FromStderr && e.VM == in.vm.index && time.Since(e.Time) < 5*time.Second {
			lines = append(lines, e.Message)
		}
	}
	if len(lines) > 20 {
		lines = lines[:20]
	}
	return strings.Join(lines, "\n")
}

// acquire locks v and returns its current instance, replacing a dead one
// under FailReload. The caller unlocks v.mu. in is nil when no live instance
// is available; err says why.
func (v *vm) acquire() (*instance, error) {
	v.mu.Lock()
	in := v.inst
	if in.dead == nil {
		return in, nil
	}
	if v.h.opts.FailurePolicy != FailReload {
		return nil, in.dead
	}
	v.mu.Unlock() // instantiate takes the lock for the start callbacks
	fresh, err := v.h.instantiate(v)
	v.mu.Lock()
	if err != nil {
		v.h.logs.hostf(v.index, Error, "wasmhost: vm %d: reload failed: %v", v.index, err)
		return nil, err
	}
	if v.inst.dead == nil { // another request reloaded it meanwhile
		fresh.stopTick()
		fresh.mod.Close(context.Background())
		return v.inst, nil
	}
	v.h.logs.hostf(v.index, Info, "wasmhost: vm %d reloaded after: %v", v.index, v.inst.dead.Err)
	v.inst = fresh
	return fresh, nil
}

// pick returns the next VM, round robin.
func (h *Host) pick() *vm {
	return h.vms[int(h.next.Add(1)-1)%len(h.vms)]
}

// setTick starts, changes or (period 0) stops the instance's timer.
func (in *instance) setTick(period time.Duration) {
	in.stopTick()
	if period <= 0 {
		return
	}
	stop := make(chan struct{})
	in.tickStop = stop
	go func() {
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-in.h.ctx.Done():
				return
			case <-t.C:
			}
			in.vm.mu.Lock()
			if in.dead == nil && in.tickStop == stop {
				in.active = in.rootID
				_, _ = in.call(in.fns.tick, "proxy_on_tick", uint64(in.rootID))
			}
			in.vm.mu.Unlock()
		}
	}()
}

func (in *instance) stopTick() {
	if in.tickStop != nil {
		close(in.tickStop)
		in.tickStop = nil
	}
}
