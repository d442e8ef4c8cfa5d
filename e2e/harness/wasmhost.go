package harness

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/e2e/wasmhost"
)

// WasmHost runs the plugin in the wazero host of e2e/wasmhost, in process,
// configured like the shipped envoy.yaml: its plugin configuration, its /api
// prefix strip, two workers, Envoy's 503 for a failed VM.
type WasmHost struct {
	Wasm    []byte // build/portcullis.wasm
	Shipped []byte // envoy.yaml
	// PollOneoffENOSYS makes the host answer WASI poll_oneoff with ENOSYS,
	// as Envoy 1.36–1.38 do (wasmhost.Options.PollOneoffENOSYS).
	PollOneoffENOSYS bool
}

// Statistics of the wazero host (Gateway.HostStat).
const (
	// WasmHostVMFailures counts VMs that trapped or panicked.
	WasmHostVMFailures = "wasmhost.vm_failures"
	// WasmHostPollOneoffCalls counts the module's calls to the host's WASI
	// poll_oneoff under WasmHost.PollOneoffENOSYS.
	WasmHostPollOneoffCalls = "wasmhost.poll_oneoff_calls"
)

// NewWasmHost reads the compiled plugin and envoy.yaml. A missing plugin
// fails t under CI=true and skips it otherwise.
func NewWasmHost(t testing.TB) *WasmHost {
	t.Helper()
	wasm, err := os.ReadFile(WasmPath(t))
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	shipped, err := os.ReadFile(filepath.Join(RepoRoot(t), "envoy.yaml"))
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	return &WasmHost{Wasm: wasm, Shipped: shipped}
}

// Name implements Target.
func (*WasmHost) Name() string { return "wasmhost" }

// Start implements Target.
func (w *WasmHost) Start(t testing.TB, opts Options) *Gateway {
	t.Helper()
	up := StartUpstream(t)
	host, err := w.newHost(t, opts, up)
	if err != nil {
		t.Fatalf("wasmhost did not start: %v", err)
	}
	srv, err := host.Start("127.0.0.1:0")
	if err != nil {
		t.Fatalf("wasmhost: %v", err)
	}
	t.Cleanup(func() {
		_ = srv.Close()
		_ = host.Close()
	})
	stats := func() map[string]int64 {
		return map[string]int64{
			WasmHostVMFailures:      int64(len(host.Failures())),
			WasmHostPollOneoffCalls: host.PollOneoffCalls(),
		}
	}
	hooks := Hooks{
		PluginLogs: host.PluginLogs,
		HostLogs:   host.HostLogs,
		Counter:    host.Metric,
		HostStat: func(name string) (int64, bool) {
			n, ok := stats()[name]
			return n, ok
		},
	}
	return NewGateway(srv.URL, w.nodeID(t, opts), opts.Region, up, hooks)
}

// StartRefused implements Target.
func (w *WasmHost) StartRefused(t testing.TB, opts Options) string {
	t.Helper()
	host, err := w.newHost(t, opts, nil)
	if err == nil {
		_ = host.Close()
		t.Errorf("wasmhost started although the plugin configuration is invalid")
		return host.HostLogs()
	}
	var refused *wasmhost.StartError
	if !errors.As(err, &refused) {
		t.Errorf("wasmhost failed for another reason than the plugin refusing: %v", err)
	}
	return err.Error()
}

func (w *WasmHost) newHost(t testing.TB, opts Options, up *UpstreamServer) (*wasmhost.Host, error) {
	if opts.WithoutPlugin {
		t.Fatalf("harness: the wazero host always runs the plugin; WithoutPlugin is for Envoy")
	}
	config := opts.PluginConfig
	if config == "" {
		var err error
		if config, err = PluginConfigFrom(w.Shipped); err != nil {
			t.Fatalf("harness: %v", err)
		}
	}
	wasm := w.Wasm
	if opts.Wasm != "" {
		var err error
		if wasm, err = os.ReadFile(opts.Wasm); err != nil {
			t.Fatalf("harness: %v", err)
		}
	}
	workers := opts.Concurrency
	if workers == 0 {
		workers = 2
	}
	hostOpts := wasmhost.Options{
		Workers:      workers,
		PluginConfig: config,
		Env:          opts.VMEnv(),
		PluginName:   "portcullis", RootID: "portcullis", VMID: "portcullis",
		NodeID:           w.nodeID(t, opts),
		Region:           opts.Region,
		StripPrefix:      "/api",
		UpstreamTimeout:  opts.RouteTimeout,
		FailStatus:       503, // Envoy's answer for a request whose VM failed
		PollOneoffENOSYS: w.PollOneoffENOSYS,
		Walltime:         opts.Walltime,
	}
	if opts.FailurePolicy == "FAIL_CLOSED" {
		hostOpts.FailurePolicy = wasmhost.FailClosed
	}
	if up != nil {
		hostOpts.Upstream = "http://" + up.Addr
	}
	hostOpts.Clusters = map[string]string{}
	for name, addr := range clustersFor(t, opts) {
		if !strings.Contains(addr, "://") {
			addr = "http://" + addr
		}
		hostOpts.Clusters[name] = addr
	}
	return wasmhost.New(context.Background(), wasm, hostOpts)
}

func (w *WasmHost) nodeID(t testing.TB, opts Options) string {
	if opts.NodeID != "" {
		return opts.NodeID
	}
	return "wasmhost-" + filepath.Base(t.Name())
}
