package cacheserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/redistest"
)

// backends runs test against a fresh store of each backend.
func backends(t *testing.T, test func(t *testing.T, store Store)) {
	t.Run("memory", func(t *testing.T) {
		m, err := NewMemory(8 << 20)
		if err != nil {
			t.Fatal(err)
		}
		test(t, m)
	})
	t.Run("redis", func(t *testing.T) {
		r := NewRedis(redistest.Start(t).Addr, "test:", time.Second)
		t.Cleanup(func() { _ = r.Close() })
		test(t, r)
	})
}

func key(n int) string { return fmt.Sprintf("%064x", n) }

func do(t *testing.T, h http.Handler, method, path string, body []byte, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func TestProtocol(t *testing.T) {
	backends(t, func(t *testing.T, store Store) {
		h := NewHandler(store, Options{MaxEntryBytes: 1024})
		k := "/v1/entries/" + key(1)
		steps := []struct {
			method, path string
			body         string
			header       []string
			status       int
			want         string
		}{
			{"GET", k, "", nil, 404, ""},
			{"PUT", k, "value-1", []string{TTLHeader, "60"}, 204, ""},
			{"GET", k, "", nil, 200, "value-1"},
			{"PUT", k, "value-2", nil, 204, ""}, // no hint: the default TTL
			{"GET", k, "", nil, 200, "value-2"},
			{"DELETE", k, "", nil, 204, ""},
			{"GET", k, "", nil, 404, ""},
			{"DELETE", k, "", nil, 204, ""}, // absent: still 204
			{"GET", "/v1/entries/" + strings.Repeat("A", 64), "", nil, 400, ""},
			{"GET", "/v1/entries/abc", "", nil, 400, ""},
			{"GET", "/v1/entries/" + key(1) + "/x", "", nil, 400, ""},
			{"PUT", k, "v", []string{TTLHeader, "0"}, 400, ""},
			{"PUT", k, "v", []string{TTLHeader, "86401"}, 400, ""},
			{"PUT", k, "v", []string{TTLHeader, "ten"}, 400, ""},
			{"PUT", k, strings.Repeat("x", 1025), nil, 413, ""},
			{"POST", k, "", nil, 405, ""},
			{"GET", "/healthz", "", nil, 200, ""},
			{"GET", "/elsewhere", "", nil, 404, ""},
		}
		for i, s := range steps {
			w := do(t, h, s.method, s.path, []byte(s.body), s.header...)
			if w.Code != s.status {
				t.Fatalf("step %d %s %s: status %d, want %d: %s", i, s.method, s.path, w.Code, s.status, w.Body)
			}
			if s.want != "" && w.Body.String() != s.want {
				t.Fatalf("step %d: body %q, want %q", i, w.Body, s.want)
			}
			if s.status >= 400 && s.status != 404 || s.path == "/elsewhere" {
				var e map[string]string
				if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e["error"] == "" || e["message"] == "" {
					t.Errorf("step %d: error body %q is not the JSON envelope", i, w.Body)
				}
			}
		}
		if w := do(t, h, "POST", k, nil); w.Header().Get("Allow") != "GET, PUT, DELETE" {
			t.Errorf("405 without Allow")
		}
	})
}

// A value larger than the limit is refused while it streams, not read whole.
func TestPutOverLimitWithoutContentLength(t *testing.T) {
	m, _ := NewMemory(1 << 20)
	h := NewHandler(m, Options{MaxEntryBytes: 100})
	req := httptest.NewRequest("PUT", "/v1/entries/"+key(2), io.MultiReader(strings.NewReader(strings.Repeat("x", 200))))
	req.ContentLength = -1
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != 413 {
		t.Fatalf("status %d, want 413", w.Code)
	}
}

func TestTTLExpires(t *testing.T) {
	backends(t, func(t *testing.T, store Store) {
		h := NewHandler(store, Options{})
		k := "/v1/entries/" + key(3)
		if w := do(t, h, "PUT", k, []byte("v"), TTLHeader, "1"); w.Code != 204 {
			t.Fatal(w.Code)
		}
		deadline := time.Now().Add(5 * time.Second)
		for do(t, h, "GET", k, nil).Code == 200 {
			if time.Now().After(deadline) {
				t.Fatal("the entry outlived its 1 s TTL by 4 s")
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// Writing far more than the budget, from many goroutines and with many
// sizes, never leaves the store over its budget once eviction has run.
func TestMemoryBudget(t *testing.T) {
	const budget = 1 << 20
	m, err := NewMemory(budget)
	if err != nil {
		t.Fatal(err)
	}
	h := NewHandler(m, Options{MaxEntryBytes: 64 << 10})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 400 {
				size := (i*7919 + g*104729) % (64 << 10)
				do(t, h, "PUT", "/v1/entries/"+key(g*1000+i), bytes.Repeat([]byte{'x'}, size))
			}
		}()
	}
	wg.Wait()
	w := do(t, h, "GET", "/v1/stats", nil)
	var stats map[string]int64
	if err := json.Unmarshal(w.Body.Bytes(), &stats); err != nil {
		t.Fatal(err)
	}
	if stats["bytes"] > budget || stats["budget_bytes"] != budget || stats["puts"] != 3200 {
		t.Fatalf("stats %v: want bytes ≤ %d after 3200 puts of ~100 MiB in all", stats, budget)
	}
	if stats["entries"] == 0 {
		t.Fatal("the store evicted everything")
	}
	if _, err := NewMemory(10); err == nil {
		t.Error("a budget smaller than one entry was accepted")
	}
	if err := m.Put(context.Background(), key(9), make([]byte, budget), time.Minute); err != ErrTooLarge {
		t.Errorf("a value over the whole budget: %v, want ErrTooLarge", err)
	}
}

// Redis keeps entries across a restart of the server (a new Handler and
// client on the same Redis), and a dead Redis answers 503 quickly.
func TestRedisRestartAndFailure(t *testing.T) {
	srv := redistest.Start(t)
	first := NewRedis(srv.Addr, "p:", 0)
	if w := do(t, NewHandler(first, Options{}), "PUT", "/v1/entries/"+key(4), []byte("kept")); w.Code != 204 {
		t.Fatal(w.Code)
	}
	_ = first.Close()
	second := NewRedis(srv.Addr, "p:", 0)
	defer second.Close()
	h := NewHandler(second, Options{})
	if w := do(t, h, "GET", "/v1/entries/"+key(4), nil); w.Code != 200 || w.Body.String() != "kept" {
		t.Fatalf("after a restart: %d %q", w.Code, w.Body)
	}
	srv.Stop()
	began := time.Now()
	w := do(t, h, "GET", "/v1/entries/"+key(4), nil)
	if w.Code != 503 {
		t.Fatalf("Redis down: %d, want 503", w.Code)
	}
	if d := time.Since(began); d > time.Second {
		t.Errorf("Redis down: the answer took %v", d)
	}
}

func BenchmarkMemoryGet(b *testing.B) {
	m, _ := NewMemory(64 << 20)
	h := NewHandler(m, Options{})
	path := "/v1/entries/" + key(5)
	req := httptest.NewRequest("PUT", path, bytes.NewReader(make([]byte, 4096)))
	h.ServeHTTP(httptest.NewRecorder(), req)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
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
		h.ServeHTTP(w, httptest.NewRequest("PUT", "/v1/entries/"+key(i%10000), bytes.NewReader(value)))
		if w.Code != 204 {
			b.Fatal(w.Code)
		}
	}
}
