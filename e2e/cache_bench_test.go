package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/e2e/harness"
	"github.com/portcullis/portcullis/e2e/wasmhost"
	"github.com/portcullis/portcullis/internal/cacheserver/cachetest"
)

// Budgets of crossings between the host and the module (host calls and the
// allocations they make in the module, as in maxHostCallsLimited) for a
// cache HIT of a verified request, from its request headers to its
// stream's end; the counters' rare flush on the tick is the one call of
// slack in each.
const (
	// maxHostCallsHotHit: the request headers in one call (and its
	// allocation), the index copy read from shared data (and its
	// allocation), the access record published, the local reply: 6. The
	// identity edits are made only on a forwarded request, so a HIT makes
	// none.
	maxHostCallsHotHit = 7
	// maxHostCallsClusterHit: as a hot HIT, plus the entry's callout, two
	// effective-context switches when it answers, and its headers and body
	// (each with its allocation): 13.
	maxHostCallsClusterHit = 14
	// maxHostCallsStaleHit: a hot HIT's 6, and the key's fill lock read
	// from shared data (and its allocation): held, another request is
	// refreshing, so the stale hot entry answers with no callout.
	maxHostCallsStaleHit = 9
	// maxHostCallsRevalidated and maxCalloutsRevalidated bound a
	// revalidation (an entry stored no-cache with an ETag, every request
	// revalidated): a forwarded request with its validator written, the
	// stored entry's callout, the 304's headers, the local reply, the access
	// record, and the refreshed entry's PUT from the root context: 2
	// callouts and 32.4–34.3 crossings measured (the tick's flushes and
	// background calls land on some requests).
	maxHostCallsRevalidated = 36
	maxCalloutsRevalidated  = 2.1 // the index copy's refresh from the cluster is a rare third
)

// benchCacheHost runs the shipped configuration with caching, a cache
// server in this process, an upstream whose 200s are fresh for an hour,
// and patch applied to the cache block. It returns the host and a request
// that has been answered from the cache (after its MISS and fill).
func benchCacheHost(b *testing.B, cache map[string]any) (*wasmhost.Host, *http.Request) {
	return benchCacheHostWith(b, cache, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("cache-control", "max-age=3600")
		writeOrders(w)
	}, "HIT")
}

func writeOrders(w http.ResponseWriter) {
	w.Header().Set("content-type", "application/json")
	_, _ = io.WriteString(w, `{"orders":[1,2,3]}`)
}

// benchCacheHostWith is benchCacheHost with the upstream's handler, and
// the X-Cache value that shows the entry stored.
func benchCacheHostWith(b *testing.B, cache map[string]any, origin http.HandlerFunc, stored string) (*wasmhost.Host, *http.Request) {
	upstream := httptest.NewServer(origin)
	b.Cleanup(upstream.Close)
	srv := cachetest.StartBackend(b, cachetest.Memory)
	// The index copy is read again from the cluster (one callout) once per
	// local_index_ttl_ms per path: a minute keeps that out of the run, which
	// measures the requests between two refreshes.
	cache["cluster"], cache["timeout_ms"], cache["local_index_ttl_ms"] = harness.CacheCluster, 1000, 60_000
	h := benchHostWith(b, func(cfg map[string]any) { cfg["cache"] = cache }, wasmhost.Options{
		Upstream: upstream.URL, Clusters: map[string]string{harness.CacheCluster: srv.URL()},
	})
	req := httptest.NewRequest(http.MethodGet, "/api/orders?page=2", nil)
	req.Header.Set("Authorization", benchToken("alice"))
	// The fill is written from the tick after the MISS was answered.
	for deadline := time.Now().Add(5 * time.Second); ; {
		w := httptest.NewRecorder()
		h.Handler().ServeHTTP(w, req)
		if w.Code == http.StatusOK && w.Header().Get("X-Cache") == stored {
			return h, req
		}
		if time.Now().After(deadline) {
			b.Fatalf("no %s after 5 s: %d %s %s", stored, w.Code, w.Header().Get("X-Cache"), w.Body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// benchCacheHits measures HITs of req, reports host calls and callouts per
// request, and fails past the budgets.
func benchCacheHits(b *testing.B, h *wasmhost.Host, req *http.Request, maxHostCalls int, maxCallouts float64) {
	benchCacheAnswers(b, h, req, "HIT", maxHostCalls, maxCallouts)
}

// benchCacheAnswers is benchCacheHits for answers with X-Cache xcache.
func benchCacheAnswers(b *testing.B, h *wasmhost.Host, req *http.Request, xcache string, maxHostCalls int, maxCallouts float64) {
	handler := h.Handler()
	before := h.HostCalls()
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, req)
		if w.Code != http.StatusOK || w.Header().Get("X-Cache") != xcache || w.Body.String() != `{"orders":[1,2,3]}` {
			b.Fatalf("want a %s, got %d %q: %s", xcache, w.Code, w.Header().Get("X-Cache"), w.Body)
		}
	}
	after := h.HostCalls()
	perRequest := reportHostCalls(b, before, after)
	callouts := float64(after["proxy_http_call"]-before["proxy_http_call"]) / float64(b.N)
	b.ReportMetric(callouts, "callouts/op")
	if callouts > maxCallouts {
		b.Fatalf("%.2f callouts per %s, want at most %.0f", callouts, xcache, maxCallouts)
	}
	if perRequest > float64(maxHostCalls) {
		b.Fatalf("%.1f host calls per %s, more than the budget of %d", perRequest, xcache, maxHostCalls)
	}
}

// BenchmarkPluginCacheHotHit: a HIT from the in-proxy tier (the index copy
// in shared data, the entry in the VM): no callout, and the benchmark fails
// if one is made or the host calls exceed maxHostCallsHotHit.
func BenchmarkPluginCacheHotHit(b *testing.B) {
	h, req := benchCacheHost(b, map[string]any{})
	benchCacheHits(b, h, req, maxHostCallsHotHit, 0)
}

// BenchmarkPluginCacheClusterHit: a HIT whose entry is too big for the VM
// table (local_max_entry_bytes 1), with the index copy: one callout (the
// entry), never the index's as well.
func BenchmarkPluginCacheClusterHit(b *testing.B) {
	h, req := benchCacheHost(b, map[string]any{"local_max_entry_bytes": 1})
	benchCacheHits(b, h, req, maxHostCallsClusterHit, 1)
}

// BenchmarkPluginCacheStaleHit: an entry past max-age within its
// stale-while-revalidate window while another request's refresh is in
// flight (its upstream answer held until the run ends; fill_wait_ms 10 s so
// the refresh's fill lock outlasts the run), so every request is answered
// STALE at once, from this VM's hot entries: the store cannot hold a newer
// response while the key's refresh is in flight. No callout.
func BenchmarkPluginCacheStaleHit(b *testing.B) {
	var refreshing atomic.Bool
	held, release := make(chan struct{}, 1), make(chan struct{})
	h, req := benchCacheHostWith(b, map[string]any{"fill_wait_ms": 10_000}, func(w http.ResponseWriter, _ *http.Request) {
		if refreshing.Load() {
			held <- struct{}{}
			<-release
		}
		w.Header().Set("cache-control", "max-age=1, stale-while-revalidate=3600")
		writeOrders(w)
	}, "HIT")
	time.Sleep(1100 * time.Millisecond) // past max-age
	refreshing.Store(true)
	refreshed := make(chan string, 1)
	go func() {
		w := httptest.NewRecorder()
		h.Handler().ServeHTTP(w, req)
		refreshed <- w.Header().Get("X-Cache")
	}()
	select {
	case <-held:
	case <-time.After(5 * time.Second):
		b.Fatal("the stale entry's refresh never reached the upstream")
	}
	benchCacheAnswers(b, h, req, "STALE", maxHostCallsStaleHit, 0)
	close(release)
	if got := <-refreshed; got != "MISS" {
		b.Errorf("the refresh answered X-Cache %q, want MISS", got)
	}
}

// BenchmarkPluginCacheRevalidated: an entry stored no-cache with an ETag,
// so every request is revalidated: one upstream round trip whose answer is
// a 304 without a body, and the stored 200 for the client. It fails if the
// upstream sends a body or is asked more than once per request.
func BenchmarkPluginCacheRevalidated(b *testing.B) {
	var asked, bodies atomic.Int64
	h, req := benchCacheHostWith(b, map[string]any{}, func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		w.Header().Set("cache-control", "no-cache")
		w.Header().Set("etag", `"v1"`)
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		bodies.Add(1)
		writeOrders(w)
	}, "REVALIDATED")
	asked0, bodies0 := asked.Load(), bodies.Load()
	benchCacheAnswers(b, h, req, "REVALIDATED", maxHostCallsRevalidated, maxCalloutsRevalidated)
	perRequest := float64(asked.Load()-asked0) / float64(b.N)
	b.ReportMetric(perRequest, "upstream/op")
	if n := bodies.Load() - bodies0; n != 0 || perRequest != 1 {
		b.Fatalf("%d bodies and %.2f upstream requests per request, want 0 and 1", n, perRequest)
	}
}
