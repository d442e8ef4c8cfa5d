//go:build !wasip1

package plugin

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// The HTTP-context tests are written once and run twice: natively, with the
// plugin's Go code driven by proxytest, and against the compiled .wasm through
// proxytest.NewWasmVMContext (wazero). The wasm run never skips: see loadWasm.
// They build natively only (//go:build !wasip1 on every test file here):
// proxytest itself does not build for wasip1.

type runner struct {
	name string
	// hasEnv is false when the VM cannot see environment variables:
	// proxytest.NewWasmVMContext instantiates the module with an empty WASI
	// environment, so a JWT secret cannot reach the compiled plugin there.
	// Those cases run against the compiled plugin in e2e/ (wazero host, Envoy).
	hasEnv bool
	// realClock is false when the VM's clock does not follow the machine's:
	// proxytest.NewWasmVMContext leaves wazero's fake walltime in place, so
	// waiting cannot age anything there. Those cases run against the
	// compiled plugin in e2e/ (wazero host with the real clock, Envoy).
	realClock bool
	newVM     func(t *testing.T) types.VMContext
}

var runners = []runner{
	{name: "native", hasEnv: true, realClock: true, newVM: func(*testing.T) types.VMContext { return &VM{} }},
	{name: "wasm", newVM: newWasmVM},
}

// eachRunner runs test once per runner.
func eachRunner(t *testing.T, test func(t *testing.T, r runner)) {
	for _, r := range runners {
		t.Run(r.name, func(t *testing.T) { test(t, r) })
	}
}

var (
	wasmOnce   sync.Once
	wasmModule []byte
	wasmVM     proxytest.WasmVMContext
	wasmErr    error
)

// newWasmVM returns the one compiled-plugin VM shared by every wasm test:
// compiling the module takes seconds, and each test starts a fresh plugin
// context on a fresh emulated host, as Envoy does on a configuration update.
func newWasmVM(t *testing.T) types.VMContext {
	wasmOnce.Do(func() {
		if wasmModule, wasmErr = loadWasm(); wasmErr == nil {
			wasmVM, wasmErr = proxytest.NewWasmVMContext(wasmModule)
		}
	})
	if wasmErr != nil {
		t.Fatalf("compiled plugin: %v", wasmErr)
	}
	return wasmVM
}

// loadWasm reads the module named by PORTCULLIS_WASM (`make test` points it
// at build/portcullis.wasm, the artifact Envoy loads) or, when unset, builds a
// fresh one so that a stale build/ can never stand in for the current code.
func loadWasm() ([]byte, error) {
	if path := os.Getenv("PORTCULLIS_WASM"); path != "" {
		return os.ReadFile(path)
	}
	_, here, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(here), "..", "..")
	dir, err := os.MkdirTemp("", "portcullis-wasm-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "portcullis.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, ".")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, &buildError{output: string(msg), err: err}
	}
	return os.ReadFile(out)
}

type buildError struct {
	output string
	err    error
}

func (e *buildError) Error() string { return "go build: " + e.err.Error() + "\n" + e.output }

// property is one Envoy attribute the emulated host answers.
type property struct {
	path  []string
	value string
}

// startPlugin starts the plugin with config on a fresh emulated host and
// returns the host and the plugin's start status.
func startPlugin(t *testing.T, r runner, config string, props ...property) (proxytest.HostEmulator, types.OnPluginStartStatus) {
	t.Helper()
	opt := proxytest.NewEmulatorOption().WithVMContext(r.newVM(t)).WithPluginConfiguration([]byte(config))
	for _, p := range props {
		opt = opt.WithProperty(p.path, []byte(p.value))
	}
	host, reset := proxytest.NewHostEmulator(opt)
	t.Cleanup(reset)
	return host, host.StartPlugin()
}

// mustStart is startPlugin for configurations that must be accepted.
func mustStart(t *testing.T, r runner, config string, props ...property) proxytest.HostEmulator {
	t.Helper()
	host, status := startPlugin(t, r, config, props...)
	if status != types.OnPluginStartStatusOK {
		t.Fatalf("plugin refused to start: %v", host.GetCriticalLogs())
	}
	return host
}

func headerValue(headers [][2]string, name string) (string, bool) {
	for _, h := range headers {
		if h[0] == name {
			return h[1], true
		}
	}
	return "", false
}

// assertRefused starts the plugin with config and checks that it refuses,
// logging exactly one critical line that names field.
func assertRefused(t *testing.T, r runner, config, field string) {
	t.Helper()
	host, status := startPlugin(t, r, config)
	if status != types.OnPluginStartStatusFailed {
		t.Fatalf("plugin started with a bad config")
	}
	logs := host.GetCriticalLogs()
	if len(logs) != 1 || !strings.Contains(logs[0], "invalid plugin configuration: "+field) {
		t.Errorf("critical logs = %q, want one line naming %q", logs, field)
	}
}

// counterValue reads the counter portcullis.<name> after a tick has
// flushed the plugin's counts.
func counterValue(t *testing.T, host proxytest.HostEmulator, name string) uint64 {
	t.Helper()
	host.Tick() // counts reach the proxy on the tick (metrics.go)
	n, err := host.GetCounterMetric("portcullis." + name)
	if err != nil {
		t.Fatalf("metric %s: %v", name, err)
	}
	return n
}
