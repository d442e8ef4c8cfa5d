package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/redistest"
)

func TestParseFlags(t *testing.T) {
	c, err := parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := config{listen: "127.0.0.1:10002", backend: "memory", memoryBytes: 64 << 20, maxEntry: 2 << 20,
		defaultTTL: time.Hour, redisAddr: "127.0.0.1:6379", redisPrefix: "portcullis:cache:", redisMode: "standalone",
		redisTimeout: 100 * time.Millisecond}
	if c != want {
		t.Errorf("defaults %+v, want %+v", c, want)
	}
	for _, bad := range [][]string{
		{"-backend", "disk"},
		{"-default-ttl", "0s"},
		{"-default-ttl", "25h"},
		{"-max-entry-bytes", "0"},
		{"-redis-timeout", "0s"},
		{"-backend", "redis", "-redis-mode", "ring"},
		{"-backend", "redis", "-redis-addr", "a:1,b:2"},
		{"-backend", "redis", "-redis-addr", " , "},
		{"-backend", "redis", "-redis-mode", "sentinel", "-redis-addr", "a:26379"},
		{"-redis-mode", "cluster"},
		{"-redis-master", "cache"},
		{"-nonsense"},
		{"extra"},
	} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// syncBuffer is a log destination the server and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs the program with args on a free port until the test ends, and
// returns its base URL, its log and a function that stops it (as SIGTERM
// does) and returns run's error.
func start(t *testing.T, args ...string) (url string, logs *syncBuffer, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs = &syncBuffer{}
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"-listen", "127.0.0.1:0"}, args...), log.New(logs, "", 0), func(a string) { addr <- a })
	}()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(10 * time.Second):
				runErr = fmt.Errorf("run did not return 10 s after the stop")
			}
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	select {
	case a := <-addr:
		return "http://" + a, logs, stop
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not start within 10 s")
	}
	return "", nil, nil
}

func send(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var entry = "/v1/entries/" + strings.Repeat("ab", 32)

func TestServesAndStopsGracefully(t *testing.T) {
	url, logs, stop := start(t, "-memory-bytes", "1048576", "-max-entry-bytes", "100")
	if status, _ := send(t, "PUT", url+entry, "secret-envelope"); status != 204 {
		t.Fatalf("PUT: %d", status)
	}
	if status, body := send(t, "GET", url+entry, ""); status != 200 || body != "secret-envelope" {
		t.Fatalf("GET: %d %q", status, body)
	}
	if status, _ := send(t, "PUT", url+entry, strings.Repeat("x", 101)); status != 413 {
		t.Fatalf("PUT over -max-entry-bytes: %d", status)
	}
	if err := stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	out := logs.String()
	if !strings.Contains(out, "serving on 127.0.0.1:") || !strings.Contains(out, "memory store of 1048576 bytes") ||
		!strings.Contains(out, "entries up to 100 bytes") || !strings.HasSuffix(out, "stopped\n") {
		t.Errorf("log:\n%s", out)
	}
	if strings.Contains(out, "secret-envelope") {
		t.Errorf("the log shows an entry's contents:\n%s", out)
	}
}

func TestRefusesBadSettings(t *testing.T) {
	for _, args := range [][]string{
		{"-memory-bytes", "10"},
		{"-listen", "256.0.0.1:1"},
	} {
		if err := run(context.Background(), args, log.New(io.Discard, "", 0), nil); err == nil {
			t.Errorf("%q: run started", args)
		}
	}
}

func TestRedisBackend(t *testing.T) {
	redis := redistest.Start(t)
	url, logs, _ := start(t, "-backend", "redis", "-redis-addr", redis.Addr, "-redis-prefix", "maintest:", "-redis-timeout", "1s")
	if status, _ := send(t, "PUT", url+entry, "v"); status != 204 {
		t.Fatalf("PUT: %d", status)
	}
	if status, body := send(t, "GET", url+entry, ""); status != 200 || body != "v" {
		t.Fatalf("GET: %d %q", status, body)
	}
	if !strings.Contains(logs.String(), `redis store (standalone) at `+redis.Addr+`, prefix "maintest:";`) {
		t.Errorf("start line:\n%s", logs)
	}
}

// The cluster and Sentinel modes, from the flags to a stored entry.
func TestRedisClusterAndSentinelFlags(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	sentinel := redistest.StartSentinel(t)
	for name, args := range map[string][]string{
		"cluster":  {"-redis-mode", "cluster", "-redis-addr", strings.Join(cluster.Addrs(), ",")},
		"sentinel": {"-redis-mode", "sentinel", "-redis-master", sentinel.Name, "-redis-addr", sentinel.Sentinel.Addr},
	} {
		t.Run(name, func(t *testing.T) {
			url, logs, _ := start(t, append([]string{"-backend", "redis", "-redis-timeout", "1s"}, args...)...)
			if status, _ := send(t, "PUT", url+entry, "v"); status != 204 {
				t.Fatalf("PUT: %d", status)
			}
			if status, body := send(t, "GET", url+entry, ""); status != 200 || body != "v" {
				t.Fatalf("GET: %d %q", status, body)
			}
			if !strings.Contains(logs.String(), "redis store ("+name+")") {
				t.Errorf("start line:\n%s", logs)
			}
		})
	}
}

// A Redis that is down at start does not stop the server: it says so once,
// answers 503 and logs one line per failed request.
func TestRedisDownAtStart(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close() // nothing listens there now
	url, logs, _ := start(t, "-backend", "redis", "-redis-addr", dead)
	if !strings.Contains(logs.String(), "not answering yet") {
		t.Errorf("start line:\n%s", logs)
	}
	before := strings.Count(logs.String(), "\n")
	if status, body := send(t, "GET", url+entry, ""); status != 503 || !strings.Contains(body, `"error":"store_unavailable"`) {
		t.Fatalf("GET: %d %s", status, body)
	}
	if lines := strings.Count(logs.String(), "\n") - before; lines != 1 {
		t.Errorf("%d log lines for one failed request:\n%s", lines, logs)
	}
}
