// Package cachetest runs cache servers (package cacheserver) inside a test
// process, on loopback ports, for tests that talk to one over HTTP — through
// Envoy or the wazero host — and kill or restart it mid-test.
package cachetest

import (
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/cacheserver"
	"github.com/portcullis/portcullis/internal/redistest"
)

// Backend names a kind of store, as cmd/cacheserver's -backend does.
type Backend string

// The backends.
const (
	Memory Backend = "memory"
	Redis  Backend = "redis"
)

// Backends lists every backend, for tests that run once per backend.
var Backends = []Backend{Memory, Redis}

// MemoryBudget is the byte budget of the memory stores NewStore makes.
const MemoryBudget = 16 << 20

// RedisTimeout is the command timeout of the Redis stores NewStore makes:
// longer than the server's 100 ms default, because a test machine running
// several suites at once can stall a healthy Redis that long.
const RedisTimeout = time.Second

// NewStore returns a fresh, empty store of backend for the duration of t:
// an in-memory store of MemoryBudget bytes, or a store in a private
// redis-server (redistest.Start: a missing redis-server fails t under
// CI=true and skips it otherwise).
func NewStore(t testing.TB, backend Backend) cacheserver.Store {
	t.Helper()
	switch backend {
	case Memory:
		m, err := cacheserver.NewMemory(MemoryBudget)
		if err != nil {
			t.Fatalf("cachetest: %v", err)
		}
		return m
	case Redis:
		return RedisStore(t, redistest.Start(t).Addr)
	}
	t.Fatalf("cachetest: unknown backend %q", backend)
	return nil
}

// RedisStore returns a store in the Redis at addr, under the prefix
// "cachetest:", closed when t ends. Two of them on one Redis share their
// entries, as replicas of the server do.
func RedisStore(t testing.TB, addr string) *cacheserver.Redis {
	t.Helper()
	return RedisStoreWith(t, cacheserver.RedisOptions{Addrs: []string{addr}})
}

// RedisStoreWith is RedisStore for any deployment (a cluster, Sentinels):
// o's Prefix defaults to "cachetest:" and its Timeout to RedisTimeout.
func RedisStoreWith(t testing.TB, o cacheserver.RedisOptions) *cacheserver.Redis {
	t.Helper()
	if o.Prefix == "" {
		o.Prefix = "cachetest:"
	}
	if o.Timeout == 0 {
		o.Timeout = RedisTimeout
	}
	r, err := cacheserver.NewRedis(o)
	if err != nil {
		t.Fatalf("cachetest: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// Server is a cache server running in the test process.
type Server struct {
	// Addr is "127.0.0.1:port".
	Addr string
	// Handler is the server's handler: Handler.Stats tells what the server
	// holds and has answered.
	Handler *cacheserver.Handler
	srv     *http.Server
	done    chan struct{}
	once    sync.Once
}

// Start serves store with the cache protocol on a free loopback port until
// t ends or Stop. opts are the handler's; the zero value is the defaults.
func Start(t testing.TB, store cacheserver.Store, opts cacheserver.Options) *Server {
	t.Helper()
	return StartAt(t, "127.0.0.1:0", store, opts)
}

// StartBackend starts a server over a fresh store of backend (NewStore),
// with the default options.
func StartBackend(t testing.TB, backend Backend) *Server {
	t.Helper()
	return Start(t, NewStore(t, backend), cacheserver.Options{})
}

// StartAt is Start on addr: the address of a server stopped before, to
// restart it where a gateway already points.
func StartAt(t testing.TB, addr string, store cacheserver.Store, opts cacheserver.Options) *Server {
	t.Helper()
	l, err := listen(addr)
	if err != nil {
		t.Fatalf("cachetest: %v", err)
	}
	h := cacheserver.NewHandler(store, opts)
	s := &Server{Addr: l.Addr().String(), Handler: h, srv: &http.Server{Handler: h}, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("cachetest: serve %s: %v", s.Addr, err)
		}
	}()
	t.Cleanup(s.Stop)
	return s
}

// listen listens on addr, retrying for a moment when the port is still
// held: a restart right after Stop may race the kernel releasing it.
func listen(addr string) (net.Listener, error) {
	deadline := time.Now().Add(2 * time.Second)
	for {
		l, err := net.Listen("tcp", addr)
		if err == nil || time.Now().After(deadline) {
			return l, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// URL is the server's base URL, "http://127.0.0.1:port".
func (s *Server) URL() string { return "http://" + s.Addr }

// Stop closes the listener and every connection at once, as a crash would:
// requests in flight fail, new connections are refused. Safe to call twice.
func (s *Server) Stop() {
	s.once.Do(func() {
		_ = s.srv.Close()
		<-s.done
	})
}
