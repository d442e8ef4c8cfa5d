package cacheserver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/redistest"
)

// backends runs test once per backend, each time on a fresh store.
func backends(t *testing.T, test func(t *testing.T, store Store)) {
	t.Run("memory", func(t *testing.T) {
		m, err := NewMemory(8 << 20)
		if err != nil {
			t.Fatal(err)
		}
		test(t, m)
	})
	t.Run("redis", func(t *testing.T) {
		// 1 s rather than the 100 ms default: a loaded test machine can stall a healthy Redis.
		test(t, redisStore(t, RedisOptions{Addrs: []string{redistest.Start(t).Addr}}))
	})
	t.Run("redis-cluster", func(t *testing.T) {
		test(t, redisStore(t, RedisOptions{Mode: RedisCluster, Addrs: redistest.StartCluster(t, 3).Addrs()}))
	})
	t.Run("redis-sentinel", func(t *testing.T) {
		s := redistest.StartSentinel(t)
		test(t, redisStore(t, RedisOptions{Mode: RedisSentinel, Addrs: []string{s.Sentinel.Addr}, MasterName: s.Name}))
	})
}

// redisStore is a store over o with the prefix "test:" and a 1 s timeout,
// closed when t ends.
func redisStore(t *testing.T, o RedisOptions) *Redis {
	t.Helper()
	o.Prefix, o.Timeout = "test:", time.Second
	r, err := NewRedis(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func key(n int) string { return fmt.Sprintf("%064x", n) }

func entry(n int) string { return "/v1/entries/" + key(n) }

// do sends one request to h; header is name, value, name, value...
func do(t testing.TB, h http.Handler, method, path string, body []byte, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func stats(t testing.TB, h http.Handler) map[string]int64 {
	t.Helper()
	w := do(t, h, "GET", "/v1/stats", nil)
	var s map[string]int64
	if err := json.Unmarshal(w.Body.Bytes(), &s); w.Code != 200 || err != nil {
		t.Fatalf("/v1/stats: %d %q (%v)", w.Code, w.Body, err)
	}
	return s
}

// TestProtocol walks one key through every answer of the protocol. The steps
// run in order: each starts from the state the previous ones left.
func TestProtocol(t *testing.T) {
	backends(t, func(t *testing.T, store Store) {
		const limit = 1024
		h := NewHandler(store, Options{MaxEntryBytes: limit})
		k := entry(1)
		steps := []struct {
			name         string
			method, path string
			body         string
			header       []string
			status       int
			wantBody     string            // checked when status is 200
			wantHeader   map[string]string // checked whatever the status
		}{
			{name: "miss", method: "GET", path: k, status: 404},
			{name: "put with a TTL", method: "PUT", path: k, body: "value-1", header: []string{TTLHeader, "60"}, status: 204},
			{name: "hit", method: "GET", path: k, status: 200, wantBody: "value-1",
				wantHeader: map[string]string{"Content-Type": "application/octet-stream", "Content-Length": "7"}},
			{name: "put without a TTL: the default", method: "PUT", path: k, body: "value-2", status: 204},
			{name: "overwritten", method: "GET", path: k, status: 200, wantBody: "value-2"},
			{name: "longest TTL", method: "PUT", path: k, body: "value-3", header: []string{TTLHeader, "86400"}, status: 204},
			{name: "value of exactly the limit", method: "PUT", path: k, body: strings.Repeat("x", limit), status: 204},
			{name: "binary value", method: "PUT", path: k, body: "\x00\xff\r\n", status: 204},
			{name: "binary value kept", method: "GET", path: k, status: 200, wantBody: "\x00\xff\r\n"},
			{name: "delete", method: "DELETE", path: k, status: 204},
			{name: "deleted", method: "GET", path: k, status: 404},
			{name: "delete an absent key", method: "DELETE", path: k, status: 204},
			{name: "empty value", method: "PUT", path: k, body: "", status: 204},
			{name: "empty value kept", method: "GET", path: k, status: 200, wantBody: ""},

			{name: "upper-case key", method: "GET", path: "/v1/entries/" + strings.ToUpper(key(0xabc)), status: 400},
			{name: "short key", method: "GET", path: "/v1/entries/abc", status: 400},
			{name: "empty key", method: "PUT", path: "/v1/entries/", body: "v", status: 400},
			{name: "long key", method: "GET", path: k + "0", status: 400},
			{name: "non-hex key", method: "DELETE", path: "/v1/entries/" + strings.Repeat("g", 64), status: 400},
			{name: "key with a suffix", method: "GET", path: k + "/x", status: 400},

			{name: "TTL 0", method: "PUT", path: k, body: "v", header: []string{TTLHeader, "0"}, status: 400},
			{name: "TTL over a day", method: "PUT", path: k, body: "v", header: []string{TTLHeader, "86401"}, status: 400},
			{name: "TTL in words", method: "PUT", path: k, body: "v", header: []string{TTLHeader, "ten"}, status: 400},
			{name: "TTL with a sign", method: "PUT", path: k, body: "v", header: []string{TTLHeader, "+60"}, status: 400},
			{name: "negative TTL", method: "PUT", path: k, body: "v", header: []string{TTLHeader, "-60"}, status: 400},
			{name: "TTL with a fraction", method: "PUT", path: k, body: "v", header: []string{TTLHeader, "1.5"}, status: 400},
			{name: "empty TTL", method: "PUT", path: k, body: "v", header: []string{TTLHeader, ""}, status: 400},
			{name: "huge TTL", method: "PUT", path: k, body: "v", header: []string{TTLHeader, "99999999999999999999"}, status: 400},
			{name: "two TTLs", method: "PUT", path: k, body: "v", header: []string{TTLHeader, "60", TTLHeader, "60"}, status: 400},
			{name: "value over the limit", method: "PUT", path: k, body: strings.Repeat("x", limit+1), status: 413},
			{name: "refused writes left the entry", method: "GET", path: k, status: 200, wantBody: ""},

			{name: "POST an entry", method: "POST", path: k, status: 405, wantHeader: map[string]string{"Allow": "GET, PUT, DELETE"}},
			{name: "HEAD an entry", method: "HEAD", path: k, status: 405, wantHeader: map[string]string{"Allow": "GET, PUT, DELETE"}},
			{name: "health", method: "GET", path: "/healthz", status: 200},
			{name: "PUT health", method: "PUT", path: "/healthz", status: 405, wantHeader: map[string]string{"Allow": "GET"}},
			{name: "stats", method: "GET", path: "/v1/stats", status: 200, wantHeader: map[string]string{"Content-Type": "application/json"}},
			{name: "DELETE stats", method: "DELETE", path: "/v1/stats", status: 405, wantHeader: map[string]string{"Allow": "GET"}},
			{name: "unknown path", method: "GET", path: "/v1/entries", status: 404},
			{name: "another unknown path", method: "GET", path: "/", status: 404},
		}
		for _, s := range steps {
			w := do(t, h, s.method, s.path, []byte(s.body), s.header...)
			if w.Code != s.status {
				t.Fatalf("%s: %s %s: status %d, want %d: %s", s.name, s.method, s.path, w.Code, s.status, w.Body)
			}
			if s.status == 200 && s.path == k && w.Body.String() != s.wantBody {
				t.Errorf("%s: body %q, want %q", s.name, w.Body, s.wantBody)
			}
			for name, want := range s.wantHeader {
				if got := w.Header().Get(name); got != want {
					t.Errorf("%s: %s: %q, want %q", s.name, name, got, want)
				}
			}
			if s.status >= 400 {
				var e map[string]string
				if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e["error"] == "" || e["message"] == "" || len(e) != 2 {
					t.Errorf("%s: error body %q is not {\"error\", \"message\"}", s.name, w.Body)
				}
				if ct := w.Header().Get("Content-Type"); ct != "application/json" {
					t.Errorf("%s: error Content-Type %q", s.name, ct)
				}
			}
		}
	})
}

func TestStatsCount(t *testing.T) {
	backends(t, func(t *testing.T, store Store) {
		h := NewHandler(store, Options{})
		do(t, h, "PUT", entry(1), []byte("a"))
		do(t, h, "PUT", entry(2), []byte("bb"))
		do(t, h, "GET", entry(1), nil)
		do(t, h, "GET", entry(1), nil)
		do(t, h, "GET", entry(3), nil)
		do(t, h, "DELETE", entry(2), nil)
		do(t, h, "GET", "/v1/entries/bad", nil)
		do(t, h, "PUT", entry(1), []byte("a"), TTLHeader, "x")
		do(t, h, "POST", entry(1), nil)
		got := stats(t, h)
		want := map[string]int64{"entries": 1, "hits": 2, "misses": 1, "puts": 2, "deletes": 1, "rejected": 3, "errors": 0}
		for name, n := range want {
			if got[name] != n {
				t.Errorf("stats[%q] = %d, want %d (all: %v)", name, got[name], n, got)
			}
		}
		for _, name := range []string{"bytes", "budget_bytes"} {
			if _, ok := got[name]; !ok {
				t.Errorf("stats without %q: %v", name, got)
			}
		}
		// The entry left holds a 1-byte value, whose clone has the allocator's
		// smallest size class: 8 bytes.
		if _, isMemory := store.(*Memory); isMemory && got["bytes"] != KeyLen+8+EntryOverhead {
			t.Errorf("memory bytes = %d for one 1-byte entry, want %d", got["bytes"], KeyLen+8+EntryOverhead)
		}
	})
}

// endless is a body that never ends, counting what was read of it.
type endless struct{ read int64 }

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	e.read += int64(len(p))
	return len(p), nil
}

// A value without Content-Length is read only up to the limit, then refused.
func TestPutOverLimitIsNotReadWhole(t *testing.T) {
	m, err := NewMemory(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	const limit = 100 << 10
	h := NewHandler(m, Options{MaxEntryBytes: limit})
	body := &endless{}
	req := httptest.NewRequest("PUT", entry(2), body)
	req.ContentLength = -1 // chunked: the server learns the size only by reading
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != 413 {
		t.Fatalf("status %d, want 413", w.Code)
	}
	if body.read > 2*limit {
		t.Errorf("read %d bytes of an endless body to refuse it; the limit is %d", body.read, limit)
	}
	// A declared length over the limit is refused before reading anything.
	body = &endless{}
	req = httptest.NewRequest("PUT", entry(2), io.LimitReader(body, limit+1))
	req.ContentLength = limit + 1
	w = httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != 413 || body.read != 0 {
		t.Errorf("declared length over the limit: status %d after reading %d bytes, want 413 after none", w.Code, body.read)
	}
}

// Entries expire after their TTL hint, or after the default TTL without
// one: the store's own expiry, with a 1 s TTL and a bounded wait.
func TestTTLExpires(t *testing.T) {
	backends(t, func(t *testing.T, store Store) {
		h := NewHandler(store, Options{DefaultTTL: time.Second})
		if w := do(t, h, "PUT", entry(3), []byte("hinted"), TTLHeader, "1"); w.Code != 204 {
			t.Fatal(w.Code)
		}
		if w := do(t, h, "PUT", entry(4), []byte("default")); w.Code != 204 {
			t.Fatal(w.Code)
		}
		if w := do(t, h, "PUT", entry(5), []byte("kept"), TTLHeader, "3600"); w.Code != 204 {
			t.Fatal(w.Code)
		}
		put := time.Now()
		for _, k := range []int{3, 4} {
			for do(t, h, "GET", entry(k), nil).Code == 200 {
				if time.Since(put) > 5*time.Second {
					t.Fatalf("entry %d outlived its 1 s TTL by 4 s", k)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		if w := do(t, h, "GET", entry(5), nil); w.Code != 200 {
			t.Errorf("an entry with a 1 h TTL is gone: %d", w.Code)
		}
	})
}

// Concurrent PUT, GET and DELETE on shared keys (run with -race): a GET
// answers a whole value some PUT wrote for that key, or 404.
func TestConcurrentPutGet(t *testing.T) {
	backends(t, func(t *testing.T, store Store) {
		h := NewHandler(store, Options{})
		const writers, keys, rounds = 8, 16, 100
		var wg sync.WaitGroup
		for g := range writers {
			wg.Go(func() {
				for i := range rounds {
					k := (g + i) % keys
					value := fmt.Sprintf("key %d from %d round %d %s", k, g, i, strings.Repeat("x", i*37))
					switch i % 10 {
					case 9:
						if w := do(t, h, "DELETE", entry(k), nil); w.Code != 204 {
							t.Errorf("DELETE: %d", w.Code)
						}
					default:
						if w := do(t, h, "PUT", entry(k), []byte(value)); w.Code != 204 {
							t.Errorf("PUT: %d %s", w.Code, w.Body)
						}
					}
					w := do(t, h, "GET", entry(k), nil)
					switch {
					case w.Code == 404:
					case w.Code != 200:
						t.Errorf("GET: %d %s", w.Code, w.Body)
					case !strings.HasPrefix(w.Body.String(), fmt.Sprintf("key %d from ", k)):
						t.Errorf("GET key %d: %.40q is another key's value", k, w.Body)
					}
				}
			})
		}
		wg.Wait()
		s := stats(t, h)
		if s["puts"]+s["deletes"] != writers*rounds || s["hits"]+s["misses"] != writers*rounds || s["errors"] != 0 {
			t.Errorf("stats %v after %d PUT or DELETE and %d GET", s, writers*rounds, writers*rounds)
		}
	})
}

func BenchmarkMemoryGet(b *testing.B) {
	m, _ := NewMemory(64 << 20)
	h := NewHandler(m, Options{})
	path := entry(5)
	do(b, h, "PUT", path, make([]byte, 4096))
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}

func BenchmarkMemoryGetParallel(b *testing.B) {
	m, _ := NewMemory(64 << 20)
	h := NewHandler(m, Options{})
	for i := range 1000 {
		do(b, h, "PUT", entry(i), make([]byte, 4096))
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest("GET", entry(i%1000), nil))
			if w.Code != 200 {
				b.Error(w.Code)
				return
			}
		}
	})
}

func BenchmarkMemoryPut(b *testing.B) {
	m, _ := NewMemory(64 << 20)
	h := NewHandler(m, Options{})
	value := make([]byte, 4096)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("PUT", entry(i%10000), bytes.NewReader(value)))
		if w.Code != 204 {
			b.Fatal(w.Code)
		}
	}
}

// PUTs from every core into a full store: each one evicts.
func BenchmarkMemoryPutParallelEvicting(b *testing.B) {
	m, _ := NewMemory(4 << 20)
	h := NewHandler(m, Options{})
	value := make([]byte, 4096)
	b.ReportAllocs()
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest("PUT", entry(int(n.Add(1))), bytes.NewReader(value)))
			if w.Code != 204 {
				b.Error(w.Code)
				return
			}
		}
	})
}

// A body shorter than its Content-Length (the client went away) is 400, and
// nothing is stored.
func TestPutShortBody(t *testing.T) {
	m, err := NewMemory(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	h := NewHandler(m, Options{})
	req := httptest.NewRequest("PUT", entry(6), strings.NewReader("short"))
	req.ContentLength = 100
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != 400 || !strings.Contains(w.Body.String(), `"bad_body"`) {
		t.Fatalf("status %d %s, want 400 bad_body", w.Code, w.Body)
	}
	if w := do(t, h, "GET", entry(6), nil); w.Code != 404 {
		t.Errorf("a truncated value was stored: %d", w.Code)
	}
}
