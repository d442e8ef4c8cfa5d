package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
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
)

// benchCacheHost runs the shipped configuration with caching, a cache
// server in this process, an upstream whose 200s are fresh for an hour,
// and patch applied to the cache block. It returns the host and a request
// that has been answered from the cache (after its MISS and fill).
func benchCacheHost(b *testing.B, cache map[string]any) (*wasmhost.Host, *http.Request) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("content-type", "application/json")
		w.Header().Set("cache-control", "max-age=3600")
		_, _ = io.WriteString(w, `{"orders":[1,2,3]}`)
	}))
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
		if w.Code == http.StatusOK && w.Header().Get("X-Cache") == "HIT" {
			return h, req
		}
		if time.Now().After(deadline) {
			b.Fatalf("no HIT after 5 s: %d %s %s", w.Code, w.Header().Get("X-Cache"), w.Body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// benchCacheHits measures HITs of req, reports host calls and callouts per
// request, and fails past the budgets.
func benchCacheHits(b *testing.B, h *wasmhost.Host, req *http.Request, maxHostCalls int, maxCallouts float64) {
	handler := h.Handler()
	before := h.HostCalls()
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, req)
		if w.Code != http.StatusOK || w.Header().Get("X-Cache") != "HIT" {
			b.Fatalf("want a HIT, got %d %q: %s", w.Code, w.Header().Get("X-Cache"), w.Body)
		}
	}
	after := h.HostCalls()
	perRequest := reportHostCalls(b, before, after)
	callouts := float64(after["proxy_http_call"]-before["proxy_http_call"]) / float64(b.N)
	b.ReportMetric(callouts, "callouts/op")
	if callouts > maxCallouts {
		b.Fatalf("%.2f callouts per HIT, want at most %.0f", callouts, maxCallouts)
	}
	if perRequest > float64(maxHostCalls) {
		b.Fatalf("%.1f host calls per HIT, more than the budget of %d", perRequest, maxHostCalls)
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
