// Package redistest starts private Redis servers (Debian's redis-server)
// for tests: on a free loopback port, without persistence, stopped when the
// test ends.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Server is one redis-server process.
type Server struct {
	// Addr is "127.0.0.1:port".
	Addr string
	Port int
	cmd  *exec.Cmd
	// exited is closed when the process has exited; err is then its Wait error.
	exited chan struct{}
	err    error
	once   sync.Once
}

// Start starts a redis-server of its own for t and returns once it answers
// PING; t's cleanup stops it. Without redis-server on PATH the test fails
// under CI=true (a missing service is a failure there) and is skipped
// otherwise.
func Start(t testing.TB) *Server {
	t.Helper()
	return startWith(t, func(string) []string { return nil })
}

// startWith starts a redis-server with the arguments args gives for its
// temporary directory after the common ones (a config file, when it
// returns one first, goes before them all).
func startWith(t testing.TB, args func(dir string) []string) *Server {
	t.Helper()
	bin := tool(t, "redis-server")
	// The free port is found by listening and closing, so another process
	// can take it before redis-server binds it: try again on a new port.
	const attempts = 3
	for i := 1; ; i++ {
		s, err := start(t, bin, args)
		if err == nil {
			t.Cleanup(s.Stop)
			return s
		}
		if i == attempts {
			t.Fatalf("redistest: %v", err)
		}
	}
}

// tool finds a Redis program on PATH: without it the test fails under
// CI=true (a missing service is a failure there) and is skipped otherwise.
func tool(t testing.TB, name string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redistest: %s is not on PATH (CI=true: a missing service fails the run)", name)
		}
		t.Skipf("redistest: %s is not on PATH (apt-get install redis-server); skipping, CI=true would fail", name)
	}
	return bin
}

// start runs redis-server on a free port and waits until it answers PING.
func start(t testing.TB, bin string, extra func(dir string) []string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir := t.TempDir()
	logPath := filepath.Join(dir, "redis.log")
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Port: port, exited: make(chan struct{})}
	args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir, "--logfile", logPath}
	more := extra(dir)
	if len(more) > 0 && filepath.IsAbs(more[0]) { // a config file must come first
		args = append(more[:1:1], append(args, more[1:]...)...)
	} else {
		args = append(args, more...)
	}
	s.cmd = exec.Command(bin, args...)
	dieWithParent(s.cmd)
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := ping(s.Addr)
		if err == nil {
			return s, nil
		}
		select {
		case <-s.exited:
			log, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("redis-server on %s exited (%v) before answering PING; its log:\n%s", s.Addr, s.err, log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("redis-server on %s did not answer PING within 10 s: %w", s.Addr, err)
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ping sends PING in Redis's inline protocol and expects +PONG: a server
// that only accepts connections (still loading) is not ready yet.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return fmt.Errorf("send PING: %w", err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read PING's answer: %w", err)
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// Stop kills the server at once, as a crash would, and waits for it to
// exit: from then on its port refuses connections. Tests call it to kill
// Redis under a running client; t's cleanup calls it too. Safe to call twice.
func (s *Server) Stop() {
	s.once.Do(func() {
		_ = s.cmd.Process.Kill()
		<-s.exited
	})
}
