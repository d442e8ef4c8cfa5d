// Package wasmhost is a proxy-wasm host on wazero: a small, faithful stand-in
// for Envoy that runs a compiled plugin (a Go WASI reactor built with
// GOOS=wasip1 GOARCH=wasm -buildmode=c-shared) in several VMs and serves real
// HTTP through it.
//
// Like Envoy, it compiles the module once and instantiates it once per
// simulated worker; calls into one VM are serialized, several VMs run
// concurrently and share one shared-data store and one set of metrics. It
// implements the proxy-wasm 0.2.1 host functions the Go SDK imports, with
// Envoy's semantics where they matter (shared-data cas, header maps, buffers,
// pause/continue, local replies passing through the plugin's response
// callbacks, upstream failures reported through response.code_details).
//
// A test starts a host with New, serves Handler() (or calls Start for a
// listener and base URL) and reads Logs, Metric and SharedData; Admin serves
// Envoy's /ready and /stats for it.
//
// Known differences from Envoy: HTTP/1.1 trailers reach the plugin and pass
// on both ways here, where Envoy's HTTP/1 codec drops them unless
// http_protocol_options.enable_trailers is set (envoy.yaml does not set it);
// a callback returning no valid action fails its request here, where Envoy
// pauses the stream for good; request bodies are buffered whole before
// proxy_on_request_body, where Envoy streams them in chunks.
package wasmhost

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// FailurePolicy says what happens to a VM after a callback traps or panics.
type FailurePolicy int

const (
	// FailReload replaces a failed VM with a fresh one for the next request
	// (Envoy's FAIL_RELOAD, the policy envoy.yaml ships with).
	FailReload FailurePolicy = iota
	// FailClosed answers every later request of a failed VM with FailStatus
	// (Envoy's FAIL_CLOSED).
	FailClosed
)

// Fault is an injected failure for the callouts to one cluster.
type Fault struct {
	// Delay holds each call this long before it is sent (the call's own
	// timeout still applies).
	Delay time.Duration
	// Reset fails each call as a connection failure: the plugin gets
	// proxy_on_http_call_response with no headers, as from Envoy.
	Reset bool
	// Status answers each call with this status and an empty body instead
	// of calling the cluster.
	Status int
}

// Options configure a Host. The zero value is one VM with an empty
// configuration and no upstream.
type Options struct {
	// Workers is the number of VMs (Envoy's --concurrency); 0 means 1.
	Workers int
	// PluginConfig is the plugin configuration (proxy_on_configure).
	PluginConfig string
	// VMConfig is the VM configuration (proxy_on_vm_start).
	VMConfig string
	// Env is the VMs' environment, as vm_config.environment_variables.
	Env map[string]string
	// PluginName, RootID and VMID are the plugin_name, plugin_root_id and
	// plugin_vm_id properties.
	PluginName, RootID, VMID string

	// NodeID and Region fill the node properties (xds.node.id,
	// xds.node.locality.region and their node.* forms).
	NodeID, Region string
	// RouteName is the route_name property of every request.
	RouteName string
	// Properties are further properties by dotted path ("xds.cluster_name");
	// they override the node and plugin ones above. The per-request ones
	// (request.*, source.*, destination.*, response.*) always come from the
	// request itself.
	Properties map[string]string

	// Upstream is the base URL requests are proxied to after the request
	// callbacks ("http://127.0.0.1:10001"); "" answers 404 route_not_found
	// like an Envoy without a matching route.
	Upstream string
	// StripPrefix routes only paths under this prefix and strips it
	// (Envoy's prefix: /api/ with prefix_rewrite: /, plus path: /api).
	StripPrefix string
	// UpstreamTimeout is the route timeout; 0 means Envoy's default 15s.
	UpstreamTimeout time.Duration
	// ConnectTimeout bounds connecting to upstreams and clusters; 0 means 2s.
	ConnectTimeout time.Duration
	// Clusters map cluster names for proxy_http_call to base URLs:
	// http://host:port for HTTP/1.1, h2c://host:port for HTTP/2 without TLS
	// (an Envoy cluster with http2_protocol_options, as a gRPC service needs).
	Clusters map[string]string
	// PreserveRequestID keeps a client's x-request-id; by default the host
	// replaces it, as an edge Envoy (envoy.yaml) does.
	PreserveRequestID bool
	// MaxRequestBody bounds a request body (a longer one gets 413); 0 means
	// 1 MiB, the limit of envoy.yaml's buffer filter.
	MaxRequestBody int64

	// FailurePolicy is what happens to a VM whose callback failed.
	FailurePolicy FailurePolicy
	// FailStatus is the status of a request whose callback failed; 0 means 500.
	FailStatus int
	// CallTimeout bounds every callback; a callback that runs longer kills its
	// VM. 0 means no bound.
	CallTimeout time.Duration

	// PollOneoffENOSYS answers WASI poll_oneoff with ENOSYS, as the
	// proxy-wasm host of Envoy 1.36–1.38 does, instead of wazero's
	// implementation. Go's wasip1 runtime calls it after a stop-the-world
	// once a runtime timer exists and dies on ENOSYS, unless the module
	// answers poll_oneoff itself (cmd/pollfix): with this, a test shows
	// which a module does without an old Envoy. PollOneoffCalls counts the calls.
	PollOneoffENOSYS bool

	// Walltime, when set, is the VMs' wall clock (WASI's realtime clock,
	// which Go's time.Now reads) in place of the machine's, so a test can
	// put the plugin at any date, e.g. just before a month ends. Envoy has
	// no such switch: tests using it run on this host only.
	Walltime func() time.Time

	// LogOutput, when set, receives every log line as it is captured.
	LogOutput io.Writer
	// Cache is the compilation cache; nil means one cache per process, so a
	// module is compiled once however many hosts load it.
	Cache wazero.CompilationCache
}

var processCache = wazero.NewCompilationCache()

// Host runs one plugin module in Options.Workers VMs.
type Host struct {
	opts     Options
	runtime  wazero.Runtime
	compiled wazero.CompiledModule
	upstream *url.URL
	props    map[string][]byte

	shared  *SharedData
	metrics *metrics
	// calls counts host function calls by index in hostFuncs; allocs the
	// host's calls of the guest's proxy_on_memory_allocate, which every host
	// function returning data makes (as Envoy does), each an entry into the
	// Go runtime (HostCalls).
	calls  []atomic.Int64
	allocs atomic.Int64
	logs   *logs
	queues *queues

	vms  []*vm
	next atomic.Uint32

	client *http.Client
	h2c    *http.Client // for the h2c:// clusters

	ctx    context.Context
	cancel context.CancelFunc

	pollOneoffCalls atomic.Int64 // answered ENOSYS (Options.PollOneoffENOSYS)

	mu       sync.Mutex
	faults   map[string]Fault
	failures []*VMError
	closed   bool
}

// StartError is returned by New when a VM cannot start; Logs holds
// everything captured until then, including the plugin's reason.
type StartError struct {
	Err  error
	Logs []LogEntry
}

func (e *StartError) Error() string {
	var b strings.Builder
	b.WriteString(e.Err.Error())
	for _, l := range e.Logs {
		b.WriteString("\n  ")
		b.WriteString(l.String())
	}
	return b.String()
}

func (e *StartError) Unwrap() error { return e.Err }

// New compiles wasm and starts opts.Workers VMs: each runs _initialize,
// proxy_on_vm_start, creates the root context and runs proxy_on_configure.
// It fails when the module imports a function the host lacks (naming it),
// lacks the proxy-wasm ABI exports, or when the plugin refuses to start.
func New(ctx context.Context, wasm []byte, opts Options) (*Host, error) {
	if opts.Workers <= 0 {
		opts.Workers = 1
	}
	if opts.UpstreamTimeout <= 0 {
		opts.UpstreamTimeout = 15 * time.Second
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 2 * time.Second
	}
	if opts.FailStatus == 0 {
		opts.FailStatus = http.StatusInternalServerError
	}
	if opts.MaxRequestBody <= 0 {
		opts.MaxRequestBody = 1 << 20
	}
	h := &Host{
		opts:    opts,
		shared:  newSharedData(),
		metrics: newMetrics(),
		calls:   make([]atomic.Int64, len(hostFuncs)),
		logs:    &logs{out: opts.LogOutput},
		queues:  newQueues(),
		faults:  map[string]Fault{},
	}
	if opts.Upstream != "" {
		u, err := url.Parse(opts.Upstream)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return nil, fmt.Errorf("wasmhost: upstream %q is not an absolute URL", opts.Upstream)
		}
		h.upstream = u
	}
	for name, raw := range opts.Clusters {
		if u, err := url.Parse(raw); err != nil || (u.Scheme != "http" && u.Scheme != "h2c") || u.Host == "" {
			return nil, fmt.Errorf("wasmhost: cluster %s: %q is not an http:// or h2c:// URL", name, raw)
		}
	}
	h.props = h.staticProperties()
	h.client = calloutClient(opts.ConnectTimeout, nil)
	var h2c http.Protocols
	h2c.SetUnencryptedHTTP2(true)
	h.h2c = calloutClient(opts.ConnectTimeout, &h2c)
	h.ctx, h.cancel = context.WithCancel(context.Background())

	cache := opts.Cache
	if cache == nil {
		cache = processCache
	}
	cfg := wazero.NewRuntimeConfig().WithCompilationCache(cache).WithCloseOnContextDone(opts.CallTimeout > 0)
	h.runtime = wazero.NewRuntimeWithConfig(ctx, cfg)
	if err := h.load(ctx, wasm); err != nil {
		h.runtime.Close(ctx)
		return nil, err
	}
	for i := range opts.Workers {
		v := &vm{h: h, index: i}
		in, err := h.instantiate(v)
		if err != nil {
			h.Close()
			return nil, &StartError{Err: err, Logs: h.logs.snapshot()}
		}
		v.inst = in
		h.vms = append(h.vms, v)
	}
	return h, nil
}

// load instantiates WASI and the env module and compiles wasm, checking its
// imports and exports.
func (h *Host) load(ctx context.Context, wasm []byte) error {
	if err := h.instantiateWASI(ctx); err != nil {
		return fmt.Errorf("wasmhost: wasi: %w", err)
	}
	provided, err := instantiateEnv(ctx, h.runtime)
	if err != nil {
		return fmt.Errorf("wasmhost: env module: %w", err)
	}
	compiled, err := h.runtime.CompileModule(ctx, wasm)
	if err != nil {
		return fmt.Errorf("wasmhost: compile: %w", err)
	}
	h.compiled = compiled
	for _, f := range compiled.ImportedFunctions() {
		mod, name, _ := f.Import()
		switch mod {
		case wasi_snapshot_preview1.ModuleName:
			// wazero reports a missing WASI function itself, by name.
		case "env":
			if !provided[name] {
				return fmt.Errorf("wasmhost: the module imports env.%s, which this host does not provide", name)
			}
		default:
			return fmt.Errorf("wasmhost: the module imports %s.%s from an unknown module", mod, name)
		}
	}
	exports := compiled.ExportedFunctions()
	if exports["proxy_abi_version_0_2_1"] == nil && exports["proxy_abi_version_0_2_0"] == nil {
		return errors.New("wasmhost: the module exports no supported proxy-wasm ABI version (proxy_abi_version_0_2_1)")
	}
	for _, name := range []string{"proxy_on_memory_allocate", "proxy_on_context_create"} {
		if exports[name] == nil {
			return fmt.Errorf("wasmhost: the module does not export %s", name)
		}
	}
	return nil
}

// errnoNOSYS is WASI preview 1's errno_t nosys.
const errnoNOSYS = 52

// instantiateWASI provides wazero's WASI preview 1, with poll_oneoff
// answering ENOSYS when Options.PollOneoffENOSYS asks for Envoy 1.36–1.38's.
func (h *Host) instantiateWASI(ctx context.Context) error {
	if !h.opts.PollOneoffENOSYS {
		_, err := wasi_snapshot_preview1.Instantiate(ctx, h.runtime)
		return err
	}
	b := h.runtime.NewHostModuleBuilder(wasi_snapshot_preview1.ModuleName)
	wasi_snapshot_preview1.NewFunctionExporter().ExportFunctions(b)
	i32 := api.ValueTypeI32
	// Exported after the built-in one, so it replaces it.
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, _ api.Module, stack []uint64) {
		h.pollOneoffCalls.Add(1)
		stack[0] = errnoNOSYS
	}), []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}).Export("poll_oneoff")
	_, err := b.Instantiate(ctx)
	return err
}

// PollOneoffCalls returns how many times the module called WASI poll_oneoff
// on a host with Options.PollOneoffENOSYS (always 0 without it).
func (h *Host) PollOneoffCalls() int64 { return h.pollOneoffCalls.Load() }

// staticProperties are the properties every context sees.
func (h *Host) staticProperties() map[string][]byte {
	o := h.opts
	p := map[string][]byte{}
	set := func(v string, keys ...string) {
		if v == "" {
			return
		}
		for _, k := range keys {
			p[k] = []byte(v)
		}
	}
	set(o.NodeID, "xds.node.id", "node.id")
	set(o.Region, "xds.node.locality.region", "node.locality.region")
	set(o.PluginName, "plugin_name")
	set(o.RootID, "plugin_root_id")
	set(o.VMID, "plugin_vm_id")
	set(o.RouteName, "route_name")
	for k, v := range o.Properties {
		p[k] = []byte(v)
	}
	return p
}

// SharedData is the store all VMs share.
func (h *Host) SharedData() *SharedData { return h.shared }

// Workers is the number of VMs.
func (h *Host) Workers() int { return len(h.vms) }

// SetFault injects f into every later callout to cluster; the zero Fault
// removes it.
func (h *Host) SetFault(cluster string, f Fault) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if f == (Fault{}) {
		delete(h.faults, cluster)
		return
	}
	h.faults[cluster] = f
}

func (h *Host) fault(cluster string) Fault {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.faults[cluster]
}

// VMError says why a VM failed: a trap, a Go panic, a callback that outran
// CallTimeout. It also reports a callback that returned no valid action (Err
// is then an *InvalidActionError); that request fails but the VM, which did
// not trap, keeps running whatever the FailurePolicy.
type VMError struct {
	VM       int    // the VM's index
	Callback string // the export that failed, e.g. "proxy_on_request_headers"
	Err      error  // wazero's error (the trap, or the exit code of a Go panic), or an *InvalidActionError
	Output   string // what the module wrote to stderr just before (a Go panic's message and stack)
}

func (e *VMError) Error() string {
	var bad *InvalidActionError
	if errors.As(e.Err, &bad) {
		return fmt.Sprintf("wasmhost: vm %d: %v; the request failed, the VM runs on", e.VM, bad)
	}
	msg := fmt.Sprintf("wasmhost: vm %d failed in %s: %v", e.VM, e.Callback, e.Err)
	if e.Output != "" {
		msg += "\n" + e.Output
	}
	return msg
}

func (e *VMError) Unwrap() error { return e.Err }

// Failures returns every VM failure so far.
func (h *Host) Failures() []*VMError {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.failures)
}

func (h *Host) recordFailure(e *VMError) {
	h.mu.Lock()
	h.failures = append(h.failures, e)
	h.mu.Unlock()
	h.logs.add(FromHost, Critical, e.VM, e.Error())
}

func (h *Host) isClosed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closed
}

// Close stops timers and callouts and releases every VM.
func (h *Host) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	h.mu.Unlock()
	h.cancel()
	for _, v := range h.vms {
		v.mu.Lock()
		if v.inst != nil {
			v.inst.stopTick()
		}
		v.mu.Unlock()
	}
	for _, c := range []*http.Client{h.client, h.h2c} {
		if t, ok := c.Transport.(*http.Transport); ok {
			t.CloseIdleConnections()
		}
	}
	return h.runtime.Close(context.Background())
}

// calloutClient is the client of the calls to clusters: HTTP/1.1, or the
// given protocols.
func calloutClient(connectTimeout time.Duration, protocols *http.Protocols) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: connectTimeout}).DialContext,
			DisableCompression:  true,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     30 * time.Second,
			Protocols:           protocols,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// sortedEnv returns env's keys in order, so every VM starts identically.
func sortedEnv(env map[string]string) []string { return slices.Sorted(maps.Keys(env)) }

// randSource is the VMs' WASI random source.
var randSource io.Reader = rand.Reader
