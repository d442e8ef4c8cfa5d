package scenarios

import (
	"bytes"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/e2e/harness"
)

// CacheConfig is the shipped plugin configuration with caching on every
// route (per tenant), a rule whose entries are shared across tenants
// (/api/shared), a rule that does not cache (/api/nocache), and a callout
// timeout generous enough for a loaded CI machine. Without rate limiting:
// these scenarios poll for HITs as one tenant, as often as a slow fill needs
// (caching and limiting together are wholeGateway's scenarios).
func CacheConfig(t *testing.T) string {
	return patchConfig(t, harness.ShippedPluginConfig(t), func(cfg map[string]any) {
		delete(cfg, "rate_limit")
		routes := cfg["routes"].([]any)
		extra := []any{
			map[string]any{"name": "shared", "prefix": "/api/shared", "cache": map[string]any{"public": true}},
			map[string]any{"name": "nocache", "prefix": "/api/nocache", "cache": map[string]any{"enabled": false}},
		}
		cfg["routes"] = append(extra, routes...)
		cfg["cache"] = map[string]any{"timeout_ms": 1000}
	})
}

// cacheGet sends a GET as sub and returns the response.
func cacheGet(t *testing.T, gw *harness.Gateway, sub, path string, header map[string][]string) Response {
	t.Helper()
	h := Bearer(Token(harness.TestSecret, sub, nil))
	for k, v := range header {
		h[k] = v
	}
	return Send(t, gw, Request{Path: path, Header: h})
}

// expectCache checks status 200 and the X-Cache value.
func expectCache(t *testing.T, resp Response, want string) {
	t.Helper()
	if resp.Status != http.StatusOK {
		t.Fatalf("want 200, got:\n%s", resp)
	}
	if got := resp.Header.Get("X-Cache"); got != want {
		t.Fatalf("X-Cache %q, want %q:\n%s", got, want, resp)
	}
}

// eventuallyHit repeats the GET until it is a HIT: the fill is written after
// the response was passed on, so the very next request may still miss. It
// returns the hit.
func eventuallyHit(t *testing.T, gw *harness.Gateway, sub, path string, header map[string][]string) Response {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp := cacheGet(t, gw, sub, path, header)
		if resp.Header.Get("X-Cache") == "HIT" || time.Now().After(deadline) {
			expectCache(t, resp, "HIT")
			return resp
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cacheScenarios runs every cache scenario against gw (whose cache cluster
// is a running cache server).
func cacheScenarios(t *testing.T, gw *harness.Gateway) {
	for _, s := range []struct {
		name string
		run  func(*testing.T, *harness.Gateway)
	}{
		{"second_get_is_a_hit", secondGetHits},
		{"another_tenant_misses", otherTenantMisses},
		{"private_and_no_store_are_never_stored", privateNotStored},
		{"set_cookie_is_never_stored", setCookieNotStored},
		{"vary_is_honoured", varyHonoured},
		{"unsafe_method_invalidates", postInvalidates},
		{"invalidation_is_immediate_on_this_gateway", invalidationImmediate},
		{"entry_expires", entryExpires},
		{"request_no_cache_skips_the_lookup", requestNoCache},
		{"shared_rule_across_tenants", sharedRule},
		{"disabled_rule_bypasses", disabledRule},
		{"head_after_get_hits_without_body", headHits},
		{"concurrent_misses_fill_once", stampede},
		{"stale_entry_revalidated_with_304", revalidatedWith304},
		{"must_revalidate_never_served_stale", mustRevalidateNeverStale},
		{"client_conditional_answered_304", clientConditional304},
		{"cache_status_says_what_happened", cacheStatusValues},
		{"stale_while_revalidate_serves_stale_then_refreshed", staleWhileRevalidate},
		{"stale_if_error_answers_an_upstream_5xx", staleIfError5xx},
	} {
		t.Run(s.name, func(t *testing.T) { s.run(t, gw) })
	}
}

func uniquePath(prefix string) string { return prefix + "/" + freshKey("p") }

func secondGetHits(t *testing.T, gw *harness.Gateway) {
	path := uniquePath("/api/cache") + "?b=2&a=1"
	first := cacheGet(t, gw, "alice", path, nil)
	expectCache(t, first, "MISS")
	// The fill is written after the response went out: a GET before it
	// lands is another MISS, which fills the entry too (the upstream echoes
	// a request count, so each MISS body differs). The HIT is one of them.
	misses := []Response{first}
	var hit Response
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp := cacheGet(t, gw, "alice", path, nil)
		if resp.Header.Get("X-Cache") == "HIT" || time.Now().After(deadline) {
			expectCache(t, resp, "HIT")
			hit = resp
			break
		}
		misses = append(misses, resp)
	}
	count := gw.Upstream.Count()
	if !slices.ContainsFunc(misses, func(m Response) bool { return bytes.Equal(hit.Body, m.Body) }) {
		t.Errorf("HIT body differs from every MISS body:\n%s\n%s", hit.Body, first.Body)
	}
	if age, err := strconv.Atoi(hit.Header.Get("Age")); err != nil || age < 0 || age > 5 {
		t.Errorf("HIT Age %q, want a small number of seconds", hit.Header.Get("Age"))
	}
	if ct := hit.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("HIT Content-Type %q, want the stored one", ct)
	}
	// Parameters in another order are the same resource.
	expectCache(t, cacheGet(t, gw, "alice", uniquePathSameAs(path), nil), "HIT")
	if got := gw.Upstream.Count(); got != count {
		t.Errorf("the upstream received %d more requests while the entry was fresh", got-count)
	}
}

// uniquePathSameAs reorders the query "?b=2&a=1" as "?a=1&b=2".
func uniquePathSameAs(path string) string {
	base := path[:len(path)-len("?b=2&a=1")]
	return base + "?a=1&b=2"
}

func otherTenantMisses(t *testing.T, gw *harness.Gateway) {
	path := uniquePath("/api/cache")
	expectCache(t, cacheGet(t, gw, "alice", path, nil), "MISS")
	eventuallyHit(t, gw, "alice", path, nil)
	bob := cacheGet(t, gw, "bob", path, nil)
	expectCache(t, bob, "MISS")
	if got := Header(t, Echo(t, bob), "x-api-key"); got != "bob" {
		t.Errorf("bob got an answer made for %q", got)
	}
}

// neverStored sends the GET three times (with the origin's header h) and
// expects BYPASS each time, every one reaching the upstream.
func neverStored(t *testing.T, gw *harness.Gateway, h map[string][]string) {
	t.Helper()
	path := uniquePath("/api/cache")
	before := gw.Upstream.Count()
	for range 3 {
		expectCache(t, cacheGet(t, gw, "alice", path, h), "BYPASS")
		time.Sleep(50 * time.Millisecond) // time for a (wrong) fill to land
	}
	if got := gw.Upstream.Count() - before; got != 3 {
		t.Errorf("the upstream saw %d of 3 requests", got)
	}
}

func privateNotStored(t *testing.T, gw *harness.Gateway) {
	for _, cc := range []string{"private, max-age=60", "no-store", "no-cache"} {
		t.Run(cc, func(t *testing.T) {
			neverStored(t, gw, map[string][]string{"X-Upstream-Cache-Control": {cc}})
		})
	}
}

func setCookieNotStored(t *testing.T, gw *harness.Gateway) {
	neverStored(t, gw, map[string][]string{"X-Upstream-Set-Cookie": {"session=1"}})
}

func varyHonoured(t *testing.T, gw *harness.Gateway) {
	path := uniquePath("/api/cache")
	vary := func(lang string) map[string][]string {
		return map[string][]string{"X-Upstream-Vary": {"Accept-Language"}, "Accept-Language": {lang}}
	}
	expectCache(t, cacheGet(t, gw, "alice", path, vary("en")), "MISS")
	en := eventuallyHit(t, gw, "alice", path, vary("en"))
	fr := cacheGet(t, gw, "alice", path, vary("fr"))
	expectCache(t, fr, "MISS")
	if got := Header(t, Echo(t, fr), "accept-language"); got != "fr" {
		t.Errorf("the fr request was answered for %q", got)
	}
	eventuallyHit(t, gw, "alice", path, vary("fr"))
	if again := cacheGet(t, gw, "alice", path, vary("en")); !bytes.Equal(again.Body, en.Body) {
		t.Errorf("en after fr: the en entry is gone:\n%s", again)
	}
	neverStored(t, gw, map[string][]string{"X-Upstream-Vary": {"*"}})
}

func postInvalidates(t *testing.T, gw *harness.Gateway) {
	path := uniquePath("/api/cache")
	for _, q := range []string{"?x=1", "?x=2"} {
		expectCache(t, cacheGet(t, gw, "alice", path+q, nil), "MISS")
		eventuallyHit(t, gw, "alice", path+q, nil)
	}
	post := Send(t, gw, Request{Method: "POST", Path: path, Body: `{}`,
		Header: With(Bearer(Token(harness.TestSecret, "alice", nil)), "Content-Type", "application/json")})
	if post.Status != http.StatusOK {
		t.Fatalf("POST: %s", post)
	}
	// The invalidation is sent after the POST's answer: wait for it to land.
	ok := eventually(5*time.Second, func() bool {
		return cacheGet(t, gw, "alice", path+"?x=1", nil).Header.Get("X-Cache") == "MISS"
	})
	if !ok {
		t.Fatal("after the POST the GET is still a HIT")
	}
	expectCache(t, cacheGet(t, gw, "alice", path+"?x=2", nil), "MISS")
}

// invalidationImmediate: hot entries (hit often enough to be answered from
// the in-proxy tier in every VM) are never served again once a POST to
// their path was answered, not even by the very next request.
func invalidationImmediate(t *testing.T, gw *harness.Gateway) {
	path := uniquePath("/api/cache")
	old := cacheGet(t, gw, "alice", path, nil)
	expectCache(t, old, "MISS")
	eventuallyHit(t, gw, "alice", path, nil)
	for range 8 { // every VM of the gateway gets its chance to keep it hot
		expectCache(t, cacheGet(t, gw, "alice", path, nil), "HIT")
	}
	if !eventually(5*time.Second, func() bool { n, _ := gw.Counter("portcullis.cache.local_hit"); return n > 0 }) {
		t.Fatal("cache.local_hit stayed 0: no hit came from the in-proxy tier")
	}
	post := Send(t, gw, Request{Method: "POST", Path: path, Body: `{}`,
		Header: With(Bearer(Token(harness.TestSecret, "alice", nil)), "Content-Type", "application/json")})
	if post.Status != http.StatusOK {
		t.Fatalf("POST: %s", post)
	}
	for i := range 8 {
		resp := cacheGet(t, gw, "alice", path, nil)
		if resp.Status != http.StatusOK || bytes.Equal(resp.Body, old.Body) {
			t.Fatalf("GET %d after the POST served the old body:\n%s", i, resp)
		}
	}
}

func entryExpires(t *testing.T, gw *harness.Gateway) {
	path := uniquePath("/api/cache")
	h := map[string][]string{"X-Upstream-Cache-Control": {"max-age=1"}}
	expectCache(t, cacheGet(t, gw, "alice", path, h), "MISS")
	eventuallyHit(t, gw, "alice", path, h)
	time.Sleep(1100 * time.Millisecond)
	if got := cacheGet(t, gw, "alice", path, h).Header.Get("X-Cache"); got != "MISS" {
		t.Errorf("after max-age: X-Cache %q, want MISS", got)
	}
}

func requestNoCache(t *testing.T, gw *harness.Gateway) {
	path := uniquePath("/api/cache")
	expectCache(t, cacheGet(t, gw, "alice", path, nil), "MISS")
	eventuallyHit(t, gw, "alice", path, nil)
	before := gw.Upstream.Count()
	resp := cacheGet(t, gw, "alice", path, map[string][]string{"Cache-Control": {"no-cache"}})
	if resp.Status != http.StatusOK || resp.Header.Get("X-Cache") == "HIT" || gw.Upstream.Count() != before+1 {
		t.Errorf("Cache-Control: no-cache was answered from the cache:\n%s", resp)
	}
}

func sharedRule(t *testing.T, gw *harness.Gateway) {
	path := uniquePath("/api/shared")
	public := map[string][]string{"X-Upstream-Cache-Control": {"public, max-age=60"}}
	expectCache(t, cacheGet(t, gw, "alice", path, public), "MISS")
	eventuallyHit(t, gw, "alice", path, public)
	expectCache(t, cacheGet(t, gw, "bob", path, public), "HIT")
	// RFC 9111 §3.5: an answer to an authorized request without public,
	// s-maxage or must-revalidate is not shared.
	neverShared := uniquePath("/api/shared")
	expectCache(t, cacheGet(t, gw, "alice", neverShared, nil), "BYPASS")
	expectCache(t, cacheGet(t, gw, "bob", neverShared, nil), "BYPASS")
}

func disabledRule(t *testing.T, gw *harness.Gateway) {
	path := uniquePath("/api/nocache")
	for range 2 {
		expectCache(t, cacheGet(t, gw, "alice", path, nil), "BYPASS")
	}
}

func headHits(t *testing.T, gw *harness.Gateway) {
	path := uniquePath("/api/cache")
	expectCache(t, cacheGet(t, gw, "alice", path, nil), "MISS")
	eventuallyHit(t, gw, "alice", path, nil)
	resp := Send(t, gw, Request{Method: "HEAD", Path: path, Header: Bearer(Token(harness.TestSecret, "alice", nil))})
	expectCache(t, resp, "HIT")
	if len(resp.Body) != 0 {
		t.Errorf("HEAD HIT has a body of %d bytes", len(resp.Body))
	}
}

// stampede: concurrent misses of one cold key on a slow upstream cause one
// upstream fill; every client gets the same answer.
func stampede(t *testing.T, gw *harness.Gateway) {
	const clients = 12
	path := "/api/slow?ms=300&k=" + freshKey("s")
	before := gw.Upstream.Count()
	responses := make([]Response, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			responses[i] = cacheGet(t, gw, "alice", path, nil)
		}()
	}
	wg.Wait()
	for i, r := range responses {
		if r.Status != http.StatusOK {
			t.Errorf("client %d: %s", i, r)
		}
	}
	if got := gw.Upstream.Count() - before; got != 1 {
		t.Errorf("%d concurrent misses reached the upstream %d times, want once", clients, got)
	}
}

// cacheServerKilled: with the cache server gone, every request still
// succeeds: a path the in-proxy tier holds may still be a HIT from it
// (fresh by its envelope), any other goes to the upstream, and the fault
// is counted.
func cacheServerKilled(t *testing.T, gw *harness.Gateway, kill func()) {
	path := uniquePath("/api/cache")
	expectCache(t, cacheGet(t, gw, "alice", path, nil), "MISS")
	eventuallyHit(t, gw, "alice", path, nil)
	kill()
	if resp := cacheGet(t, gw, "alice", path, nil); resp.Status != http.StatusOK {
		t.Errorf("a cached path with the cache down: want 200, got:\n%s", resp)
	}
	cold := uniquePath("/api/cache")
	before := gw.Upstream.Count()
	for i := range 5 {
		resp := cacheGet(t, gw, "alice", cold, nil)
		if resp.Status != http.StatusOK || resp.Header.Get("X-Cache") == "HIT" {
			t.Errorf("request %d with the cache down: want 200 from the upstream, got:\n%s", i, resp)
		}
	}
	if got := gw.Upstream.Count() - before; got != 5 {
		t.Errorf("the upstream saw %d of 5 requests", got)
	}
	if !eventually(5*time.Second, func() bool { n, _ := gw.Counter("portcullis.cache.unavailable"); return n >= 5 }) {
		n, _ := gw.Counter("portcullis.cache.unavailable")
		t.Errorf("cache.unavailable = %d, want ≥ 5", n)
	}
}

// revalidatedWith304: a stale entry with an ETag is revalidated: the
// upstream sees If-None-Match and answers 304 (its NotModified counter), and
// the client gets 200 with the stored body (the first answer's, counter
// included: no full fetch), freshened for another max-age.
func revalidatedWith304(t *testing.T, gw *harness.Gateway) {
	path := uniquePath("/api/cache")
	h := map[string][]string{"X-Upstream-Cache-Control": {"max-age=2"}, "X-Upstream-Etag": {`"r1"`}}
	first := cacheGet(t, gw, "alice", path, h)
	expectCache(t, first, "MISS")
	eventuallyHit(t, gw, "alice", path, h)
	time.Sleep(2100 * time.Millisecond)
	count, notModified := gw.Upstream.Count(), gw.Upstream.NotModified()
	resp := cacheGet(t, gw, "alice", path, h)
	expectCache(t, resp, "REVALIDATED")
	if !bytes.Equal(resp.Body, first.Body) || resp.Header.Get("ETag") != `"r1"` {
		t.Fatalf("revalidated answer is not the stored one:\n%s\nfirst:\n%s", resp, first)
	}
	if gw.Upstream.Count() != count+1 || gw.Upstream.NotModified() != notModified+1 {
		t.Fatalf("upstream: %d requests, %d answered 304; want one, a 304", gw.Upstream.Count()-count, gw.Upstream.NotModified()-notModified)
	}
	if cs := resp.Header.Get("Cache-Status"); !strings.HasPrefix(cs, "Portcullis; fwd=stale; fwd-status=304; ttl=") {
		t.Errorf("Cache-Status %q", cs)
	}
	// Fresh again: the next GET is a HIT without the upstream.
	hit := cacheGet(t, gw, "alice", path, h)
	expectCache(t, hit, "HIT")
	if !bytes.Equal(hit.Body, first.Body) || gw.Upstream.Count() != count+1 {
		t.Errorf("after the 304: %d more upstream requests:\n%s", gw.Upstream.Count()-count-1, hit)
	}
	if n, _ := gw.Counter("portcullis.cache.revalidated"); n < 1 {
		t.Errorf("cache.revalidated = %d", n)
	}
}

// mustRevalidateNeverStale: once a must-revalidate entry is stale, every
// request goes to the upstream (revalidated, never served stale), even with
// stale-if-error and the upstream failing: the failure goes to the client.
func mustRevalidateNeverStale(t *testing.T, gw *harness.Gateway) {
	path := uniquePath("/api/cache")
	h := map[string][]string{"X-Upstream-Cache-Control": {"max-age=1, must-revalidate, stale-if-error=60, stale-while-revalidate=60"},
		"X-Upstream-Etag": {`"m1"`}}
	expectCache(t, cacheGet(t, gw, "alice", path, h), "MISS")
	eventuallyHit(t, gw, "alice", path, h)
	time.Sleep(1100 * time.Millisecond)
	count := gw.Upstream.Count()
	expectCache(t, cacheGet(t, gw, "alice", path, h), "REVALIDATED")
	if gw.Upstream.Count() != count+1 {
		t.Fatalf("a stale must-revalidate entry was answered without the upstream")
	}
	time.Sleep(1100 * time.Millisecond)
	failing := map[string][]string{"X-Upstream-Cache-Control": h["X-Upstream-Cache-Control"], "X-Upstream-Status": {"503"}}
	resp := cacheGet(t, gw, "alice", path, failing)
	if resp.Status != http.StatusServiceUnavailable || resp.Header.Get("X-Cache") == "STALE" {
		t.Fatalf("must-revalidate with the upstream failing: want its 503, got:\n%s", resp)
	}
}

// clientConditional304: a client's If-None-Match matching a fresh entry is
// answered 304 by the cache, without a body or the upstream; only for the
// tenant whose entry it is.
func clientConditional304(t *testing.T, gw *harness.Gateway) {
	path := uniquePath("/api/cache")
	h := map[string][]string{"X-Upstream-Cache-Control": {"max-age=60"}, "X-Upstream-Etag": {`"c1"`}}
	expectCache(t, cacheGet(t, gw, "alice", path, h), "MISS")
	eventuallyHit(t, gw, "alice", path, h)
	count := gw.Upstream.Count()
	cond := map[string][]string{"X-Upstream-Cache-Control": h["X-Upstream-Cache-Control"], "X-Upstream-Etag": h["X-Upstream-Etag"],
		"If-None-Match": {`W/"c1"`}}
	resp := cacheGet(t, gw, "alice", path, cond)
	if resp.Status != http.StatusNotModified || len(resp.Body) != 0 || resp.Header.Get("X-Cache") != "HIT" ||
		resp.Header.Get("ETag") != `"c1"` || gw.Upstream.Count() != count {
		t.Fatalf("alice's conditional GET: want a 304 HIT from the cache, got:\n%s", resp)
	}
	other := map[string][]string{"X-Upstream-Cache-Control": h["X-Upstream-Cache-Control"], "X-Upstream-Etag": h["X-Upstream-Etag"],
		"If-None-Match": {`"other"`}}
	expectCache(t, cacheGet(t, gw, "alice", path, other), "HIT")
	// bob has no entry: his conditional goes to the upstream.
	if bob := cacheGet(t, gw, "bob", path, cond); bob.Header.Get("X-Cache") == "HIT" || gw.Upstream.Count() != count+1 {
		t.Fatalf("bob's conditional was answered from alice's entry:\n%s", bob)
	}
}

// cacheStatusValues: Cache-Status (RFC 9211) next to X-Cache.
func cacheStatusValues(t *testing.T, gw *harness.Gateway) {
	path := uniquePath("/api/cache")
	h := map[string][]string{"X-Upstream-Cache-Control": {"max-age=60"}}
	if cs := cacheGet(t, gw, "alice", path, h).Header.Get("Cache-Status"); cs != "Portcullis; fwd=uri-miss; stored" {
		t.Errorf("MISS: Cache-Status %q", cs)
	}
	if cs := eventuallyHit(t, gw, "alice", path, h).Header.Get("Cache-Status"); !strings.HasPrefix(cs, "Portcullis; hit; ttl=") {
		t.Errorf("HIT: Cache-Status %q", cs)
	}
	noStore := map[string][]string{"Cache-Control": {"no-store"}}
	if cs := cacheGet(t, gw, "alice", path, noStore).Header.Get("Cache-Status"); cs != "Portcullis; fwd=request" {
		t.Errorf("request no-store: Cache-Status %q", cs)
	}
	if cs := cacheGet(t, gw, "alice", uniquePath("/api/nocache"), nil).Header.Get("Cache-Status"); cs != "Portcullis; fwd=bypass" {
		t.Errorf("disabled rule: Cache-Status %q", cs)
	}
}

// staleWhileRevalidate: within stale-while-revalidate a stale entry is
// served at once (X-Cache: STALE) while one request refreshes it (a slow
// upstream keeps that one in flight); once the refresh landed the new
// response is a HIT. The upstream sees the one refresh only.
func staleWhileRevalidate(t *testing.T, gw *harness.Gateway) {
	path := "/api/slow?ms=600&k=" + freshKey("swr")
	// max-age 3: the refresh's own answer, 600 ms late and later still on
	// a loaded machine, must arrive fresh to be stored (its age counts).
	h := map[string][]string{"X-Upstream-Cache-Control": {"max-age=3, stale-while-revalidate=30"}}
	first := cacheGet(t, gw, "alice", path, h)
	expectCache(t, first, "MISS")
	eventuallyHit(t, gw, "alice", path, h)
	time.Sleep(4100 * time.Millisecond) // a whole second past max-age: Cache-Status ttl is negative
	count := gw.Upstream.Count()
	refresh := make(chan Response, 1)
	go func() { refresh <- cacheGet(t, gw, "alice", path, h) }()
	// While the refresh is in flight, the other requests get the stale entry.
	if !eventually(time.Second, func() bool { return gw.Upstream.Count() > count }) {
		t.Fatal("no request went upstream to refresh the stale entry")
	}
	for range 3 {
		resp := cacheGet(t, gw, "alice", path, h)
		expectCache(t, resp, "STALE")
		if !bytes.Equal(resp.Body, first.Body) || !strings.Contains(resp.Header.Get("Cache-Status"), "ttl=-") {
			t.Fatalf("a STALE answer is not the stored one:\n%s", resp)
		}
	}
	refreshed := <-refresh
	expectCache(t, refreshed, "MISS")
	hit := eventuallyHit(t, gw, "alice", path, h)
	if !bytes.Equal(hit.Body, refreshed.Body) || bytes.Equal(hit.Body, first.Body) {
		t.Fatalf("after the refresh: not the refreshed body:\n%s", hit)
	}
	if got := gw.Upstream.Count() - count; got != 1 {
		t.Errorf("the upstream saw %d requests during the window, want the one refresh", got)
	}
	if n, _ := gw.Counter("portcullis.cache.stale"); n < 3 {
		t.Errorf("cache.stale = %d, want ≥ 3", n)
	}
}

// staleIfError5xx: within stale-if-error an upstream 5xx is answered with
// the stale entry; past the window the error goes through.
func staleIfError5xx(t *testing.T, gw *harness.Gateway) {
	path := uniquePath("/api/cache")
	cc := []string{"max-age=1, stale-if-error=2"}
	first := cacheGet(t, gw, "alice", path, map[string][]string{"X-Upstream-Cache-Control": cc})
	expectCache(t, first, "MISS")
	eventuallyHit(t, gw, "alice", path, map[string][]string{"X-Upstream-Cache-Control": cc})
	time.Sleep(1100 * time.Millisecond)
	failing := map[string][]string{"X-Upstream-Cache-Control": cc, "X-Upstream-Status": {"500"}}
	resp := cacheGet(t, gw, "alice", path, failing)
	expectCache(t, resp, "STALE")
	if !bytes.Equal(resp.Body, first.Body) {
		t.Fatalf("stale-if-error answered another body:\n%s", resp)
	}
	time.Sleep(2 * time.Second)
	if resp := cacheGet(t, gw, "alice", path, failing); resp.Status != http.StatusInternalServerError {
		t.Fatalf("past stale-if-error: want the upstream's 500, got:\n%s", resp)
	}
}

// staleIfErrorUpstreamKilled: with the upstream gone (connection refused),
// a stale entry within stale-if-error answers instead of the gateway's 5xx.
func staleIfErrorUpstreamKilled(t *testing.T, gw *harness.Gateway) {
	path := uniquePath("/api/cache")
	h := map[string][]string{"X-Upstream-Cache-Control": {"max-age=1, stale-if-error=60"}}
	first := cacheGet(t, gw, "alice", path, h)
	expectCache(t, first, "MISS")
	eventuallyHit(t, gw, "alice", path, h)
	gw.StopUpstream()
	time.Sleep(1100 * time.Millisecond)
	resp := cacheGet(t, gw, "alice", path, h)
	expectCache(t, resp, "STALE")
	if !bytes.Equal(resp.Body, first.Body) {
		t.Fatalf("stale-if-error answered another body:\n%s", resp)
	}
	if cold := cacheGet(t, gw, "alice", uniquePath("/api/cache"), h); cold.Status < 500 || cold.Header.Get("X-Cache") == "STALE" {
		t.Fatalf("a path with no entry and the upstream down: want the gateway's 5xx, got:\n%s", cold)
	}
}
