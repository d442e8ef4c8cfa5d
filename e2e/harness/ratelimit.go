package harness

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// RateLimitBinEnv names the envoyproxy/ratelimit binary (service_cmd of the
// pinned module); `make test` installs it and sets it.
const RateLimitBinEnv = "RATELIMIT_BIN"

// RateLimitCluster is the Envoy cluster of the ratelimit service in the
// shipped envoy.yaml, which fleet mode calls.
const RateLimitCluster = "ratelimit"

// RateLimitService is one envoyproxy/ratelimit process.
type RateLimitService struct {
	// Addr is its HTTP listener ("127.0.0.1:port"), which serves /json.
	Addr string
	// GRPCAddr is its gRPC listener (HTTP/2 without TLS), which serves
	// RateLimitService/ShouldRateLimit.
	GRPCAddr string
	cmd      *exec.Cmd
	log      *bytes.Buffer
	once     sync.Once
	done     chan struct{}
}

// StartRateLimitService starts envoyproxy/ratelimit on free loopback ports
// with Redis at redisAddr and the descriptor configs found in
// runtimeRoot/ratelimit/config/*.yaml (the service's RUNTIME_ROOT layout), and
// waits until it answers. It is stopped when t ends; Stop stops it earlier.
func StartRateLimitService(t testing.TB, redisAddr, runtimeRoot string) *RateLimitService {
	t.Helper()
	bin := os.Getenv(RateLimitBinEnv)
	if bin == "" {
		Unavailable(t, "%s is not set (make test installs envoyproxy/ratelimit and sets it)", RateLimitBinEnv)
	}
	if _, err := os.Stat(bin); err != nil {
		Unavailable(t, "envoyproxy/ratelimit binary: %v", err)
	}
	ports := freePorts(t, 3)
	s := &RateLimitService{Addr: "127.0.0.1:" + strconv.Itoa(ports[0]), GRPCAddr: "127.0.0.1:" + strconv.Itoa(ports[1]), log: &bytes.Buffer{}, done: make(chan struct{})}
	s.cmd = exec.Command(bin)
	s.cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOST=127.0.0.1", "PORT=" + strconv.Itoa(ports[0]),
		"GRPC_HOST=127.0.0.1", "GRPC_PORT=" + strconv.Itoa(ports[1]),
		"DEBUG_HOST=127.0.0.1", "DEBUG_PORT=" + strconv.Itoa(ports[2]),
		"USE_STATSD=false", "LOG_LEVEL=warn",
		"REDIS_SOCKET_TYPE=tcp", "REDIS_URL=" + redisAddr,
		"RUNTIME_ROOT=" + runtimeRoot, "RUNTIME_SUBDIRECTORY=ratelimit", "RUNTIME_WATCH_ROOT=false",
	}
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	dieWithParent(s.cmd)
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("harness: start envoyproxy/ratelimit: %v", err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(s.Stop)
	if err := s.waitReady(15 * time.Second); err != nil {
		t.Fatalf("harness: envoyproxy/ratelimit did not become ready: %v\n%s", err, s.log)
	}
	return s
}

// waitReady polls /json until the service answers a request it understands.
func (s *RateLimitService) waitReady(limit time.Duration) error {
	return pollReady(s.done, limit, 50*time.Millisecond, func(c *http.Client) (*http.Response, error) {
		return c.Post("http://"+s.Addr+"/json", "application/json",
			bytes.NewReader([]byte(`{"domain":"harness-probe","descriptors":[{"entries":[{"key":"probe"}]}]}`)))
	})
}

// Stop kills the service (as a crash would) and waits for it to exit.
func (s *RateLimitService) Stop() {
	s.once.Do(func() {
		_ = s.cmd.Process.Kill()
		<-s.done
	})
}

// WriteDescriptorConfig writes a descriptor config (YAML) where
// StartRateLimitService looks for it under a new runtime root, which it returns.
func WriteDescriptorConfig(t testing.TB, yaml string) string {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "ratelimit", "config")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "test.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// freePorts returns n distinct free loopback ports. They are free when
// returned; a race with another process is possible and would fail the start.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("harness: free port: %v", err)
		}
		held = append(held, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}
