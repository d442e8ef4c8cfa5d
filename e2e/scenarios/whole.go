package scenarios

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/portcullis/portcullis/e2e/harness"
	"github.com/portcullis/portcullis/internal/jwttest"
)

// The shipped configuration's rate limit (README "Rate limiting"): the
// documented default, 100 requests per 60 s per key.
const (
	shippedLimit         = 100
	shippedWindowSeconds = 60
)

// wholeGatewayConfig is the shipped plugin configuration — JWT, local rate
// limiting and caching all on — with only the cache call timeout raised, so
// that a loaded CI machine does not turn a lookup into a BYPASS.
func wholeGatewayConfig(t *testing.T) string {
	return patchConfig(t, harness.ShippedPluginConfig(t), func(cfg map[string]any) {
		cfg["cache"].(map[string]any)["timeout_ms"] = 1000
	})
}

// wholeGateway runs the scenarios where authentication, rate limiting and
// caching meet, on gw (wholeGatewayConfig, with a cache server).
func wholeGateway(t *testing.T, gw *harness.Gateway) {
	for _, s := range []struct {
		name string
		run  func(*testing.T, *harness.Gateway)
	}{
		{"hit_is_counted_and_carries_the_headers", hitIsCounted},
		{"key_over_its_limit_gets_429_on_a_cached_path", overLimitOnCachedPath},
		{"hits_of_one_tenant_never_count_against_another", hitsPerTenant},
		{"401_is_neither_counted_nor_cached", unauthorizedNotCounted},
	} {
		t.Run(s.name, func(t *testing.T) { s.run(t, gw) })
	}
}

// remaining returns X-RateLimit-Remaining of resp, after checking that resp
// carries every rate-limit header of the shipped limit.
func remaining(t *testing.T, resp Response) int {
	t.Helper()
	if got := resp.Header.Get("X-RateLimit-Limit"); got != strconv.Itoa(shippedLimit) {
		t.Errorf("X-RateLimit-Limit %q, want %d:\n%s", got, shippedLimit, resp)
	}
	if got, want := withoutPK(t, resp.Header.Get("RateLimit-Policy")), `"default";q=100;w=60`; got != want {
		t.Errorf("RateLimit-Policy %q, want %q", got, want)
	}
	if resp.Header.Get("RateLimit") == "" || resp.Header.Get("X-RateLimit-Reset") == "" {
		t.Errorf("RateLimit %q, X-RateLimit-Reset %q: want both set", resp.Header.Get("RateLimit"), resp.Header.Get("X-RateLimit-Reset"))
	}
	n, err := strconv.Atoi(resp.Header.Get("X-RateLimit-Remaining"))
	if err != nil {
		t.Fatalf("X-RateLimit-Remaining %q:\n%s", resp.Header.Get("X-RateLimit-Remaining"), resp)
	}
	return n
}

// emissionInterval is the shipped limit's GCRA interval, ⌈60 s / 100⌉: a
// key regains one request per interval.
const emissionInterval = 600 * time.Millisecond

// regained bounds how many requests a key can have regained in d (one per
// emission interval, and one for the rounding of X-RateLimit-Remaining).
func regained(d time.Duration) int { return int(d/emissionInterval) + 2 }

// hitIsCounted: a MISS and the HITs after it each cost the caller one
// request, and every HIT says so in its rate-limit headers.
func hitIsCounted(t *testing.T, gw *harness.Gateway) {
	key, path := freshKey("whole"), uniquePath("/api/whole")
	miss := cacheGet(t, gw, key, path, nil)
	expectCache(t, miss, "MISS")
	if got := remaining(t, miss); got != shippedLimit-1 {
		t.Errorf("after the MISS X-RateLimit-Remaining %d, want %d", got, shippedLimit-1)
	}
	first := eventuallyHit(t, gw, key, path, nil)
	before, start := remaining(t, first), time.Now()
	const hits = 5
	last := first
	for range hits {
		last = cacheGet(t, gw, key, path, nil)
		expectCache(t, last, "HIT")
	}
	// Uncounted HITs would leave the budget where it was, or fuller.
	if got, most := remaining(t, last), before-hits+regained(time.Since(start)); got > most || got >= before {
		t.Errorf("%d more HITs left X-RateLimit-Remaining at %d (from %d): the HITs were not counted", hits, got, before)
	}
}

// overLimitOnCachedPath: once a key has spent its limit, a path cached for
// it is refused 429 like any other, and nothing reaches the upstream.
func overLimitOnCachedPath(t *testing.T, gw *harness.Gateway) {
	key, path := freshKey("whole"), uniquePath("/api/whole")
	expectCache(t, cacheGet(t, gw, key, path, nil), "MISS")
	left := remaining(t, eventuallyHit(t, gw, key, path, nil))
	upstream, start := gw.Upstream.Count(), time.Now()
	// Every answer is a HIT until the budget is spent, whatever the key
	// regains meanwhile (bounded: requests come far faster than one per
	// emission interval).
	hits := 0
	var resp Response
	for hits <= 3*shippedLimit {
		resp = cacheGet(t, gw, key, path, nil)
		if resp.Status != http.StatusOK {
			break
		}
		expectCache(t, resp, "HIT")
		hits++
	}
	checkTooMany(t, gw, resp, shippedLimit, shippedWindowSeconds, 1)
	if most := left + regained(time.Since(start)); hits < left || hits > most {
		t.Errorf("%d HITs before the 429, want %d..%d (the budget left, and what was regained)", hits, left, most)
	}
	if got := resp.Header.Get("X-Cache"); got != "" {
		t.Errorf("the 429 says X-Cache %q: a refused request must not be answered from the cache", got)
	}
	if got := gw.Upstream.Count() - upstream; got != 0 {
		t.Errorf("the upstream received %d requests while the entry was fresh", got)
	}
}

// hitsPerTenant: many HITs of one tenant leave another tenant's budget whole.
func hitsPerTenant(t *testing.T, gw *harness.Gateway) {
	alice, bob, path := freshKey("alice"), freshKey("bob"), uniquePath("/api/whole")
	expectCache(t, cacheGet(t, gw, alice, path, nil), "MISS")
	eventuallyHit(t, gw, alice, path, nil)
	for range 5 {
		expectCache(t, cacheGet(t, gw, alice, path, nil), "HIT")
	}
	first := cacheGet(t, gw, bob, path, nil)
	expectCache(t, first, "MISS") // bob's entry is his own
	if got := remaining(t, first); got != shippedLimit-1 {
		t.Errorf("bob's first request left X-RateLimit-Remaining %d, want %d", got, shippedLimit-1)
	}
}

// unauthorizedNotCounted: refused tokens naming a key cost that key nothing,
// and their 401 is not stored, so the key's first real request is a MISS
// with its whole budget.
func unauthorizedNotCounted(t *testing.T, gw *harness.Gateway) {
	key, path := freshKey("whole"), uniquePath("/api/whole")
	forged := jwttest.HS256([]byte("not-the-gateway-secret-0123456789abcdef"), Claims(key, nil))
	for range 3 {
		resp := Send(t, gw, Request{Path: path, Header: Bearer(forged)})
		ExpectError(t, gw, resp, http.StatusUnauthorized, "unauthorized")
		for _, h := range []string{"X-Cache", "X-RateLimit-Limit", "X-RateLimit-Remaining", "RateLimit"} {
			if v := resp.Header.Get(h); v != "" {
				t.Errorf("the 401 carries %s %q", h, v)
			}
		}
	}
	first := cacheGet(t, gw, key, path, nil)
	expectCache(t, first, "MISS")
	if got := remaining(t, first); got != shippedLimit-1 {
		t.Errorf("after three 401s the key's first request left X-RateLimit-Remaining %d, want %d", got, shippedLimit-1)
	}
}
