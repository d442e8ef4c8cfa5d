package harness

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SupportedEnvoy are the Envoy minor releases the plugin supports (README
// "Envoy and Istio versions"); `make test-matrix` runs the Envoy suite on each.
var SupportedEnvoy = []string{"1.36", "1.37", "1.38", "1.39", "1.40"}

// envoyVersion extracts "1.40.0" from `envoy --version` output
// ("envoy  version: <sha>/1.40.0/Clean/RELEASE/BoringSSL").
var envoyVersion = regexp.MustCompile(`/(1\.(\d+)\.\d+)/`)

// startTimeout bounds how long Envoy may take to become ready (V8 compiles
// the Go module once per worker; a loaded 2-core CI box is slow).
const startTimeout = 90 * time.Second

// Envoy runs the plugin in a real Envoy, configured from the shipped envoy.yaml.
type Envoy struct {
	Bin     string // the envoy binary
	Version string // its release, "1.40.0"
	Wasm    string // build/portcullis.wasm, absolute
	Shipped string // envoy.yaml, absolute
}

// NewEnvoy finds Envoy ($ENVOY_BIN, else `envoy` on PATH, else
// <repo>/.venv/bin/envoy), the compiled plugin and envoy.yaml. Anything
// missing fails t under CI=true and skips it otherwise. Envoy must be a
// supported release, and exactly $ENVOY_VERSION when that is set (the version
// matrix sets it, so a run always tests the release it names).
func NewEnvoy(t testing.TB) *Envoy {
	t.Helper()
	root := RepoRoot(t)
	e := &Envoy{Shipped: filepath.Join(root, "envoy.yaml")}
	bin := os.Getenv("ENVOY_BIN")
	if bin == "" {
		if p, err := exec.LookPath("envoy"); err == nil {
			bin = p
		} else {
			bin = filepath.Join(root, ".venv", "bin", "envoy")
		}
	}
	if _, err := os.Stat(bin); err != nil {
		Unavailable(t, "Envoy not found (ENVOY_BIN, PATH, .venv/bin/envoy); run `make envoy`")
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		Unavailable(t, "%s --version: %v: %s", bin, err, out)
	}
	m := envoyVersion.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("harness: %s --version names no release: %s", bin, strings.TrimSpace(string(out)))
	}
	if minor := "1." + m[2]; !slices.Contains(SupportedEnvoy, minor) {
		t.Fatalf("harness: %s is Envoy %s; supported are %s", bin, m[1], strings.Join(SupportedEnvoy, ", "))
	}
	if want := os.Getenv("ENVOY_VERSION"); want != "" && want != m[1] {
		t.Fatalf("harness: %s is Envoy %s, but ENVOY_VERSION asks for %s", bin, m[1], want)
	}
	e.Bin, e.Version = bin, m[1]
	e.Wasm = WasmPath(t)
	if _, err := os.Stat(e.Shipped); err != nil {
		t.Fatalf("harness: %v", err)
	}
	return e
}

// Name implements Target.
func (*Envoy) Name() string { return "envoy" }

// Start implements Target.
func (e *Envoy) Start(t testing.TB, opts Options) *Gateway {
	t.Helper()
	inst := e.launch(t, opts)
	began := time.Now()
	if err := inst.waitReady(); err != nil {
		t.Fatalf("envoy did not become ready: %v\n--- envoy log (tail) ---\n%s", err, tail(inst.hostLogs(), 60))
	}
	port, err := inst.listenerPort()
	if err != nil {
		t.Fatalf("envoy: %v", err)
	}
	t.Logf("envoy %s ready in %v on 127.0.0.1:%d (admin %s)", inst.nodeID, time.Since(began).Round(time.Millisecond), port, inst.admin)
	hooks := Hooks{
		PluginLogs: inst.pluginLogs,
		HostLogs:   inst.hostLogs,
		Counter:    func(name string) (int64, bool) { return inst.stat("wasmcustom." + name) },
		HostStat:   inst.stat,
		HostStats:  inst.stats,
	}
	gw := NewGateway(fmt.Sprintf("http://127.0.0.1:%d", port), inst.nodeID, opts.Region, inst.upstream, hooks)
	gw.PID = inst.cmd.Process.Pid
	gw.Admin = inst.admin
	return gw
}

// StartRefused implements Target.
func (e *Envoy) StartRefused(t testing.TB, opts Options) string {
	t.Helper()
	inst := e.launch(t, opts)
	err := inst.waitReady()
	if err == nil {
		t.Errorf("envoy started and became ready although the plugin configuration is invalid")
		return inst.hostLogs()
	}
	if !errors.Is(err, errExited) {
		t.Errorf("envoy neither became ready nor exited: %v", err)
	}
	return inst.hostLogs()
}

type envoyInstance struct {
	t         testing.TB
	cmd       *exec.Cmd
	dir       string
	logPath   string
	adminPath string
	admin     string // "127.0.0.1:port" once known
	nodeID    string
	upstream  *UpstreamServer
	exited    chan struct{}
	waitErr   error
}

var errExited = errors.New("envoy exited")

func (e *Envoy) launch(t testing.TB, opts Options) *envoyInstance {
	t.Helper()
	if opts.Walltime != nil {
		t.Fatalf("harness: Envoy's clock cannot be injected; Walltime is for the wazero host")
	}
	inst := &envoyInstance{t: t, dir: t.TempDir(), exited: make(chan struct{})}
	inst.logPath = filepath.Join(inst.dir, "envoy.log")
	inst.adminPath = filepath.Join(inst.dir, "admin.address")

	upstream := opts.Upstream
	if upstream == "" {
		inst.upstream = StartUpstream(t)
		upstream = inst.upstream.Addr
	}
	inst.nodeID = opts.NodeID
	if inst.nodeID == "" {
		inst.nodeID = uniqueName(t)
	}
	wasm := opts.Wasm
	if wasm == "" {
		wasm = e.Wasm
	}
	env := opts.VMEnv()
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	shipped, err := os.ReadFile(e.Shipped)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	cfg, err := RenderEnvoyConfig(shipped, EnvoyParams{
		Upstream:        upstream,
		Wasm:            wasm,
		PluginConfig:    opts.PluginConfig,
		EnvKeys:         keys,
		RouteTimeout:    opts.RouteTimeout,
		NodeID:          inst.nodeID,
		Region:          opts.Region,
		FailurePolicy:   opts.FailurePolicy,
		Clusters:        clustersFor(t, opts),
		DropStatsConfig: opts.BootstrapOverride != "",
		Edit:            opts.EditConfig,
		WithoutPlugin:   opts.WithoutPlugin,
	})
	if err != nil {
		t.Fatalf("harness: cannot derive a test config from %s: %v", e.Shipped, err)
	}
	cfgPath := filepath.Join(inst.dir, "envoy.json")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		t.Fatalf("harness: %v", err)
	}
	logFile, err := os.Create(inst.logPath)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	concurrency := opts.Concurrency
	if concurrency == 0 {
		concurrency = 2
	}
	inst.cmd = exec.Command(e.Bin,
		"-c", cfgPath,
		"--concurrency", strconv.Itoa(concurrency),
		// Parallel instances must not share hot-restart shared memory.
		"--disable-hot-restart",
		"--admin-address-path", inst.adminPath,
		"--log-level", "info",
		// Envoy's log and the stdout access log both go to envoy.log; the access
		// log is flushed every 100 ms instead of Envoy's default 10 s, so tests
		// can read a request's line right after it.
		"--file-flush-interval-msec", "100",
	)
	if opts.BootstrapOverride != "" {
		inst.cmd.Args = append(inst.cmd.Args, "--config-yaml", opts.BootstrapOverride)
	}
	inst.cmd.Stdout = logFile
	inst.cmd.Stderr = logFile
	inst.cmd.Dir = inst.dir
	dieWithParent(inst.cmd)
	// Only what Envoy needs, plus the VM's variables: the developer's own
	// JWT_SECRET must not leak into a test.
	inst.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + inst.dir}
	for k, v := range env {
		inst.cmd.Env = append(inst.cmd.Env, k+"="+v)
	}
	if err := inst.cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("harness: start envoy: %v", err)
	}
	go func() {
		inst.waitErr = inst.cmd.Wait()
		logFile.Close()
		close(inst.exited)
	}()
	t.Cleanup(func() {
		stopping := time.Now()
		inst.stop()
		t.Logf("envoy %s stopped in %v", inst.nodeID, time.Since(stopping).Round(time.Millisecond))
		if t.Failed() {
			t.Logf("--- envoy %s log (tail) ---\n%s", inst.nodeID, tail(inst.hostLogs(), 40))
		}
	})
	return inst
}

func (inst *envoyInstance) stop() {
	select {
	case <-inst.exited:
		return
	default:
	}
	_ = inst.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-inst.exited:
	case <-time.After(10 * time.Second):
		_ = inst.cmd.Process.Kill()
		<-inst.exited
	}
}

// waitReady waits until admin /ready answers 200, or Envoy exits (errExited).
func (inst *envoyInstance) waitReady() error {
	deadline := time.Now().Add(startTimeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-inst.exited:
			return fmt.Errorf("%w: %v", errExited, inst.waitErr)
		default:
		}
		if inst.admin == "" {
			if b, err := os.ReadFile(inst.adminPath); err == nil && len(strings.TrimSpace(string(b))) > 0 {
				inst.admin = strings.TrimSpace(string(b))
			}
		}
		if inst.admin != "" {
			resp, err := client.Get("http://" + inst.admin + "/ready")
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return nil
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %v", startTimeout)
}

// listenerPort asks the admin API which port the gateway listener got.
func (inst *envoyInstance) listenerPort() (int, error) {
	var out struct {
		ListenerStatuses []struct {
			Name         string `json:"name"`
			LocalAddress struct {
				SocketAddress struct {
					PortValue int `json:"port_value"`
				} `json:"socket_address"`
			} `json:"local_address"`
		} `json:"listener_statuses"`
	}
	body, err := inst.adminGet("/listeners?format=json")
	if err != nil {
		return 0, err
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return 0, fmt.Errorf("admin /listeners: %w: %s", err, body)
	}
	for _, l := range out.ListenerStatuses {
		if l.Name == ListenerName && l.LocalAddress.SocketAddress.PortValue > 0 {
			return l.LocalAddress.SocketAddress.PortValue, nil
		}
	}
	return 0, fmt.Errorf("admin /listeners has no %q listener with a port: %s", ListenerName, body)
}

func (inst *envoyInstance) adminGet(path string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+inst.admin+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("admin %s: %d %v: %s", path, resp.StatusCode, err, body)
	}
	return body, nil
}

// stat reads one counter or gauge from admin /stats.
func (inst *envoyInstance) stat(name string) (int64, bool) {
	n, ok := inst.stats("^" + regexp.QuoteMeta(name) + "$")[name]
	return n, ok
}

// stats reads every counter and gauge whose name matches the regular
// expression pattern (admin /stats?filter=); nil when the admin API fails.
func (inst *envoyInstance) stats(pattern string) map[string]int64 {
	body, err := inst.adminGet("/stats?filter=" + url.QueryEscape(pattern))
	if err != nil {
		inst.t.Logf("harness: %v", err)
		return nil
	}
	out := map[string]int64{}
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
			out[k] = n
		}
	}
	return out
}

func (inst *envoyInstance) hostLogs() string {
	b, _ := os.ReadFile(inst.logPath)
	return string(b)
}

// pluginLogs keeps the lines Envoy wrote for the plugin ("... wasm log <name> ...: <message>").
func (inst *envoyInstance) pluginLogs() string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(inst.hostLogs(), "\n") {
		if strings.Contains(line, "] wasm log ") {
			b.WriteString(line)
		}
	}
	return b.String()
}

func tail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}
