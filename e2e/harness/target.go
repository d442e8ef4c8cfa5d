// Package harness runs the gateway for the e2e scenarios (package
// e2e/scenarios). A Target starts one gateway — the compiled plugin inside a
// host, in front of the demo upstream — and hands back a Gateway to talk to.
// The scenarios are written once against Target; Envoy (envoy.go) is one
// implementation, the wazero host is another.
package harness

import (
	"crypto/rand"
	"encoding/hex"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/e2e/upstream"
)

// SecretEnv is the environment variable the shipped plugin configuration
// reads its HS256 secret from.
const SecretEnv = "JWT_SECRET"

// TestSecret is the HS256 secret every gateway gets in SecretEnv unless
// Options.Env says otherwise. It is random per test process, so nothing can
// depend on its value.
var TestSecret = func() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return "e2e-" + hex.EncodeToString(b)
}()

// Options describe one gateway. The zero value is the shipped envoy.yaml with
// TestSecret, the demo upstream and a generated node id.
type Options struct {
	// PluginConfig is the plugin's JSON configuration; "" keeps the one shipped in envoy.yaml.
	PluginConfig string
	// Env is the VM's environment; nil means {SecretEnv: TestSecret}. Pass an
	// empty, non-nil map for a VM without any variable.
	Env map[string]string
	// RouteTimeout replaces the upstream routes' timeout when non-zero.
	RouteTimeout time.Duration
	// NodeID is the proxy's node id ("" = generated, see Gateway.NodeID).
	NodeID string
	// Region is the node's locality region ("" = none, so /health says "unknown").
	Region string
	// Wasm replaces the plugin module (an absolute path); "" is build/portcullis.wasm.
	Wasm string
	// FailurePolicy replaces the shipped wasm failure_policy; for tests of the policy itself.
	FailurePolicy string
	// Concurrency is the number of worker threads (and so of plugin VMs); 0 means 2, as `make run`.
	Concurrency int
	// BootstrapOverride, when non-empty, replaces the shipped stats_config
	// with a bootstrap fragment (JSON or YAML) Envoy merges in from
	// --config-yaml, the way Istio's pilot-agent passes a pod's
	// sidecar.istio.io/bootstrapOverride file. Envoy only.
	BootstrapOverride string
	// Clusters point clusters of the shipped envoy.yaml that the plugin calls
	// (RateLimitCluster, ...) at "host:port" endpoints started by the test
	// (Envoy: several separated by commas, or "" for none; the wazero host
	// takes one). A scheme sets the protocol on both hosts: "h2c://" HTTP/2
	// without TLS (H2C), "http://" HTTP/1.1; without one, Envoy keeps the
	// shipped cluster's and the wazero host speaks HTTP/1.1.
	Clusters map[string]string
	// Upstream ("host:port", Envoy only) replaces the demo upstream, which is
	// then not started: benchmarks share one lighter upstream between gateways.
	Upstream string
	// EditConfig (Envoy only) changes the derived configuration last, e.g.
	// ReplacePlugin to compare the plugin with Envoy's own filters.
	EditConfig func(root map[string]any) error
	// WithoutPlugin starts Envoy without the wasm filter (Envoy only; the
	// plugin options are then ignored).
	WithoutPlugin bool
	// Walltime (wazero host only) is the plugin's wall clock in place of the
	// machine's (wasmhost.Options.Walltime).
	Walltime func() time.Time
}

// VMEnv returns the VM environment the options ask for.
func (o Options) VMEnv() map[string]string {
	if o.Env == nil {
		return map[string]string{SecretEnv: TestSecret}
	}
	return o.Env
}

// Target is a host the compiled plugin runs in.
type Target interface {
	// Name names the host in test output ("envoy", "wasmhost").
	Name() string
	// Start starts a gateway with opts and stops it when t ends. It fails t
	// (t.Fatal) when the gateway does not become ready.
	Start(t testing.TB, opts Options) *Gateway
	// StartRefused starts a gateway whose plugin must refuse opts (a bad
	// configuration). It fails t if the gateway becomes ready anyway, and
	// returns everything the host logged.
	StartRefused(t testing.TB, opts Options) (hostLogs string)
}

// Hooks are how a Target lets the scenarios look inside its gateway.
type Hooks struct {
	// PluginLogs returns every line the plugin has logged so far.
	PluginLogs func() string
	// HostLogs returns everything the host has logged so far (plugin lines included).
	HostLogs func() string
	// Counter returns a plugin metric by the name the plugin defined it with
	// (e.g. "portcullis.requests"); ok is false when it does not exist.
	Counter func(name string) (value int64, ok bool)
	// HostStat returns a host-specific statistic (Envoy: a /stats name such as
	// "cluster.demo_upstream.upstream_rq_retry"; the wazero host: WasmHostVMFailures,
	// WasmHostPollOneoffCalls); nil when the host has none.
	HostStat func(name string) (value int64, ok bool)
	// HostStats returns every host statistic whose name matches a regular
	// expression (Envoy: admin /stats?filter=); nil when the host has none.
	HostStats func(pattern string) map[string]int64
}

// Gateway is one running gateway.
type Gateway struct {
	// BaseURL is the gateway's listener, e.g. "http://127.0.0.1:41234".
	BaseURL string
	// NodeID and Region are what /health must report (Region "" = "unknown").
	NodeID, Region string
	// Upstream is the demo upstream behind the gateway.
	Upstream *upstream.Handler
	// PID is the host's process when it runs in its own (Envoy), else 0.
	PID int
	// Admin is the host's admin listener ("127.0.0.1:port": Envoy's, which
	// serves /stats/prometheus), "" when the host has none.
	Admin    string
	upstream *UpstreamServer
	hooks    Hooks
}

// NewGateway is how a Target builds the Gateway it returns; up is the
// upstream it started with StartUpstream.
func NewGateway(baseURL, nodeID, region string, up *UpstreamServer, hooks Hooks) *Gateway {
	g := &Gateway{BaseURL: baseURL, NodeID: nodeID, Region: region, upstream: up, hooks: hooks}
	if up != nil {
		g.Upstream = up.Handler
	}
	return g
}

// StopUpstream stops the demo upstream behind the gateway: from then on the
// upstream's port refuses connections, as a crashed service's would.
func (g *Gateway) StopUpstream() {
	if g.upstream != nil {
		g.upstream.Stop()
	}
}

// Logs returns the plugin's log lines so far.
func (g *Gateway) Logs() string { return g.hooks.PluginLogs() }

// HostLogs returns everything the host logged so far.
func (g *Gateway) HostLogs() string { return g.hooks.HostLogs() }

// CounterDelay is how long Counter waits before reading: the plugin counts
// inside each VM and flushes to the proxy on its tick, every 100 ms
// (filter/plugin, metrics.go), so a count is visible after at most that and
// a tick's lateness.
const CounterDelay = 300 * time.Millisecond

// Counter returns a plugin metric (see Hooks.Counter) as it stands once the
// counts of the requests made so far have been flushed.
func (g *Gateway) Counter(name string) (int64, bool) {
	time.Sleep(CounterDelay)
	return g.hooks.Counter(name)
}

// HostStat returns a host statistic; ok is false when the host has no such
// statistic or no statistics at all.
func (g *Gateway) HostStat(name string) (int64, bool) {
	if g.hooks.HostStat == nil {
		return 0, false
	}
	return g.hooks.HostStat(name)
}

// HostStats returns the host statistics whose names match pattern, a
// regular expression; nil when the host has no statistics.
func (g *Gateway) HostStats(pattern string) map[string]int64 {
	if g.hooks.HostStats == nil {
		return nil
	}
	return g.hooks.HostStats(pattern)
}

// UpstreamServer is a demo upstream started by StartUpstream.
type UpstreamServer struct {
	Addr    string // "127.0.0.1:port"
	Handler *upstream.Handler
	srv     *httptest.Server
	once    sync.Once
}

// Stop closes the listener and every connection; safe to call twice.
func (u *UpstreamServer) Stop() {
	u.once.Do(func() {
		u.srv.CloseClientConnections()
		u.srv.Close()
	})
}

// StartUpstream starts the demo upstream on a free loopback port for the
// duration of t.
func StartUpstream(t testing.TB) *UpstreamServer {
	t.Helper()
	h := upstream.New()
	u := &UpstreamServer{Handler: h, srv: httptest.NewServer(h)}
	u.Addr = u.srv.Listener.Addr().String()
	t.Cleanup(u.Stop)
	return u
}

// InCI reports whether the tests run in CI (CI=true), where a missing
// dependency fails instead of skipping.
func InCI() bool { return os.Getenv("CI") == "true" }

// Unavailable fails t under CI=true and skips it otherwise: a test never
// skips its way to green in CI.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("harness: "+format+" (CI=true: a missing dependency fails the run)", args...)
	}
	t.Skipf("harness: "+format+" (skipping; CI=true would fail)", args...)
}

// RepoRoot returns the module root: the nearest directory at or above the
// working directory holding go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("harness: no go.mod above the working directory")
		}
		dir = parent
	}
}

// WasmPath returns the compiled plugin: $PORTCULLIS_WASM, else
// <repo>/build/portcullis.wasm. A missing file fails under CI, skips otherwise.
func WasmPath(t testing.TB) string {
	t.Helper()
	return artifact(t, "PORTCULLIS_WASM", "portcullis.wasm")
}

// GoWasmPath returns the plugin as the Go toolchain built it, before
// cmd/pollfix: $PORTCULLIS_GO_WASM, else <repo>/build/portcullis.go.wasm. A
// missing file fails under CI, skips otherwise.
func GoWasmPath(t testing.TB) string {
	t.Helper()
	return artifact(t, "PORTCULLIS_GO_WASM", "portcullis.go.wasm")
}

// PollfixWasmPath returns the plugin after cmd/pollfix, before cmd/pclnstrip:
// $PORTCULLIS_POLLFIX_WASM, else <repo>/build/portcullis.pollfix.wasm. A
// missing file fails under CI, skips otherwise.
func PollfixWasmPath(t testing.TB) string {
	t.Helper()
	return artifact(t, "PORTCULLIS_POLLFIX_WASM", "portcullis.pollfix.wasm")
}

// PclnstripWasmPath returns the plugin after cmd/pclnstrip, before wasm-opt:
// $PORTCULLIS_PCLNSTRIP_WASM, else <repo>/build/portcullis.pclnstrip.wasm. A
// missing file fails under CI, skips otherwise.
func PclnstripWasmPath(t testing.TB) string {
	t.Helper()
	return artifact(t, "PORTCULLIS_PCLNSTRIP_WASM", "portcullis.pclnstrip.wasm")
}

// artifact returns $env, else <repo>/build/name, as an absolute path that exists.
func artifact(t testing.TB, env, name string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		p = filepath.Join(RepoRoot(t), "build", name)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	if _, err := os.Stat(abs); err != nil {
		Unavailable(t, "the compiled plugin %s is missing; run `make build`", abs)
	}
	return abs
}

// uniqueName returns a short name unique within this process, for node ids.
func uniqueName(t testing.TB) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	return "e2e-" + strings.Trim(name, "-") + "-" + hex.EncodeToString(b)
}

// ShippedEnvoyYAML returns the repository's envoy.yaml.
func ShippedEnvoyYAML(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(RepoRoot(t), "envoy.yaml"))
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	return b
}

// ShippedPluginConfig returns the plugin configuration shipped in envoy.yaml,
// the one `make run` uses; every target runs the scenarios with it.
func ShippedPluginConfig(t testing.TB) string {
	t.Helper()
	cfg, err := PluginConfigFrom(ShippedEnvoyYAML(t))
	if err != nil {
		t.Fatalf("harness: envoy.yaml: %v", err)
	}
	return cfg
}

// H2C marks a cluster address (Options.Clusters) as speaking HTTP/2 without
// TLS, as a gRPC service does.
func H2C(addr string) string { return "h2c://" + addr }

// HTTP1 marks a cluster address (Options.Clusters) as speaking HTTP/1.1.
func HTTP1(addr string) string { return "http://" + addr }
