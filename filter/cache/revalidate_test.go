package cache_test

import (
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/filter/cache"
)

// TestRevalidation follows RFC 9111 §4.3: a stale entry with a validator is
// revalidated with a conditional request; a 304 freshens it (§4.3.4) and the
// client gets the stored response; a 200 replaces it.
func TestRevalidation(t *testing.T) {
	for _, tc := range []struct {
		name        string
		stored      [][2]string // the first response's fields
		after       time.Duration
		conditional [][2]string // what the revalidation asks
	}{
		{"ETag, stale", [][2]string{h("cache-control", "max-age=10"), h("etag", `"v1"`)}, 11 * time.Second,
			[][2]string{h("if-none-match", `"v1"`)}},
		{"weak ETag", [][2]string{h("cache-control", "max-age=10"), h("etag", `W/"v1"`)}, 11 * time.Second,
			[][2]string{h("if-none-match", `W/"v1"`)}},
		{"Last-Modified, stale", [][2]string{h("cache-control", "max-age=10"), h("last-modified", httpDate(t0.Add(-time.Hour)))}, 11 * time.Second,
			[][2]string{h("if-modified-since", httpDate(t0.Add(-time.Hour)))}},
		{"both validators", [][2]string{h("cache-control", "max-age=10"), h("etag", `"v1"`), h("last-modified", httpDate(t0.Add(-time.Hour)))}, 11 * time.Second,
			[][2]string{h("if-none-match", `"v1"`), h("if-modified-since", httpDate(t0.Add(-time.Hour)))}},
		{"no-cache: revalidated at once", [][2]string{h("cache-control", "no-cache, max-age=3600"), h("etag", `"v1"`)}, 0,
			[][2]string{h("if-none-match", `"v1"`)}},
		{"max-age=0", [][2]string{h("cache-control", "max-age=0"), h("etag", `"v1"`)}, 0,
			[][2]string{h("if-none-match", `"v1"`)}},
		{"must-revalidate, stale", [][2]string{h("cache-control", "max-age=10, must-revalidate"), h("etag", `"v1"`)}, 11 * time.Second,
			[][2]string{h("if-none-match", `"v1"`)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, svc := testConfig(), newService()
			up := okOrigin("the body", tc.stored...)
			expect(t, do(t, cfg, svc, private, get("/r"), up, t0, 1), cache.XCacheMiss)

			// The origin confirms with a 304 that carries a new freshness
			// and a changed field: the client gets the stored body, with them.
			up.validates = true
			up.headers = append(tc.stored[:len(tc.stored):len(tc.stored)], h("x-version", "2"))
			got := do(t, cfg, svc, private, get("/r"), up, t0.Add(tc.after), 2)
			expect(t, got, cache.XCacheRevalidated)
			if len(up.conditional) != len(tc.conditional) {
				t.Fatalf("conditional %q, want %q", up.conditional, tc.conditional)
			}
			for i := range tc.conditional {
				if up.conditional[i] != tc.conditional[i] {
					t.Fatalf("conditional %q, want %q", up.conditional, tc.conditional)
				}
			}
			if got.status != 200 || got.body != "the body" || got.header("x-version") != "2" || up.full != 1 {
				t.Fatalf("revalidated: %+v (full answers %d)", got, up.full)
			}
			if cs := got.header("cache-status"); cs[:len("Portcullis; fwd=stale; fwd-status=304")] != "Portcullis; fwd=stale; fwd-status=304" {
				t.Fatalf("cache-status %q", cs)
			}
		})
	}
}

// TestRevalidationKeepsBodyFields: a 304 updates the stored fields but
// those the stored body depends on (RFC 9111 §3.2).
func TestRevalidationKeepsBodyFields(t *testing.T) {
	cfg, svc := testConfig(), newService()
	stored := [][2]string{h("cache-control", "max-age=1"), h("etag", `"a"`), h("content-encoding", "gzip"),
		h("content-md5", "m1"), h("content-range", "r1"), h("x-meta", "1")}
	up := okOrigin("b", stored...)
	expect(t, do(t, cfg, svc, private, get("/k"), up, t0, 1), cache.XCacheMiss)
	up.validates, up.headers = true, [][2]string{h("cache-control", "max-age=60"), h("etag", `"b"`), h("content-encoding", "br"),
		h("content-md5", "m2"), h("content-range", "r2"), h("x-meta", "2")}
	got := do(t, cfg, svc, private, get("/k"), up, t0.Add(5*time.Second), 2)
	expect(t, got, cache.XCacheRevalidated)
	for name, want := range map[string]string{"etag": `"a"`, "content-encoding": "gzip", "content-md5": "m1",
		"content-range": "r1", "x-meta": "2", "cache-control": "max-age=60"} {
		if v := got.header(name); v != want {
			t.Errorf("%s = %q, want %q", name, v, want)
		}
	}
}

// TestRevalidationFreshens: after a 304 the entry is fresh again for the
// 304's freshness (§4.3.4) and answers hits without the origin; a 200 to a
// revalidation replaces the entry.
func TestRevalidationFreshens(t *testing.T) {
	cfg, svc := testConfig(), newService()
	up := okOrigin("v1", h("cache-control", "max-age=10"), h("etag", `"v1"`))
	expect(t, do(t, cfg, svc, private, get("/f"), up, t0, 1), cache.XCacheMiss)
	up.validates = true
	expect(t, do(t, cfg, svc, private, get("/f"), up, t0.Add(20*time.Second), 2), cache.XCacheRevalidated)
	got := do(t, cfg, svc, private, get("/f"), up, t0.Add(25*time.Second), 3)
	expect(t, got, cache.XCacheHit)
	if got.body != "v1" || got.header("age") != "5" || up.calls != 2 || up.full != 1 {
		t.Fatalf("after the 304: %+v, %d calls, %d full", got, up.calls, up.full)
	}

	// Stale again; the resource changed: the origin answers 200.
	up.validates, up.body, up.headers = false, "v2", [][2]string{h("cache-control", "max-age=10"), h("etag", `"v2"`)}
	expect(t, do(t, cfg, svc, private, get("/f"), up, t0.Add(31*time.Second), 4), cache.XCacheMiss)
	got = do(t, cfg, svc, private, get("/f"), up, t0.Add(32*time.Second), 5)
	expect(t, got, cache.XCacheHit)
	if got.body != "v2" || got.header("etag") != `"v2"` {
		t.Fatalf("after the 200: %+v", got)
	}

	// A 304 that forbids storing answers the client but is not stored.
	cfg2, svc2 := testConfig(), newService()
	up2 := okOrigin("b", h("cache-control", "max-age=10"), h("etag", `"e"`))
	expect(t, do(t, cfg2, svc2, private, get("/n"), up2, t0, 1), cache.XCacheMiss)
	before := svc2.snapshot()
	up2.validates, up2.headers = true, [][2]string{h("cache-control", "no-store"), h("etag", `"e"`)}
	expect(t, do(t, cfg2, svc2, private, get("/n"), up2, t0.Add(time.Minute), 2), cache.XCacheRevalidated)
	for k, v := range before {
		if string(svc2.m[k]) != string(v) {
			t.Fatal("a 304 with no-store was stored")
		}
	}
}

// TestClientConditionals: a fresh entry answers a request whose conditionals
// match it with a 304 and no body (RFC 9110 §13.1, §13.2.2).
func TestClientConditionals(t *testing.T) {
	lm := httpDate(t0.Add(-time.Hour))
	for _, tc := range []struct {
		name   string
		req    [][2]string
		status int
	}{
		{"no conditional", nil, 200},
		{"If-None-Match matching", [][2]string{h("if-none-match", `"v1"`)}, 304},
		{"If-None-Match in a list", [][2]string{h("if-none-match", `"x", "v1"`)}, 304},
		{"If-None-Match weak against strong", [][2]string{h("if-none-match", `W/"v1"`)}, 304},
		{"If-None-Match *", [][2]string{h("if-none-match", "*")}, 304},
		{"If-None-Match other", [][2]string{h("if-none-match", `"v2"`)}, 200},
		{"If-None-Match with a quoted comma", [][2]string{h("if-none-match", `"v1,x"`)}, 200},
		{"If-Modified-Since at Last-Modified", [][2]string{h("if-modified-since", lm)}, 304},
		{"If-Modified-Since later", [][2]string{h("if-modified-since", httpDate(t0))}, 304},
		{"If-Modified-Since earlier", [][2]string{h("if-modified-since", httpDate(t0.Add(-2*time.Hour)))}, 200},
		{"If-Modified-Since invalid", [][2]string{h("if-modified-since", "yesterday")}, 200},
		{"If-None-Match wins over If-Modified-Since", [][2]string{h("if-none-match", `"v2"`), h("if-modified-since", lm)}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, svc := testConfig(), newService()
			up := okOrigin("body", h("cache-control", "max-age=60"), h("etag", `"v1"`), h("last-modified", lm))
			expect(t, do(t, cfg, svc, private, get("/c"), up, t0, 1), cache.XCacheMiss)
			got := do(t, cfg, svc, private, get("/c", tc.req...), up, t0.Add(time.Second), 2)
			expect(t, got, cache.XCacheHit)
			wantBody := "body"
			if tc.status == 304 {
				wantBody = ""
			}
			if got.status != tc.status || got.body != wantBody || got.header("etag") != `"v1"` || up.calls != 1 {
				t.Fatalf("got %d %q (etag %q, %d upstream calls), want %d", got.status, got.body, got.header("etag"), up.calls, tc.status)
			}
		})
	}
	// Per tenant: another tenant's conditional never reaches alice's entry.
	cfg, svc := testConfig(), newService()
	up := okOrigin("body", h("cache-control", "max-age=60"), h("etag", `"v1"`))
	expect(t, do(t, cfg, svc, private, get("/c"), up, t0, 1), cache.XCacheMiss)
	bob := with(get("/c", h("if-none-match", `"v1"`)), func(r *cache.Request) { r.Tenant = "bob" })
	if got := do(t, cfg, svc, private, bob, up, t0.Add(time.Second), 2); got.xcache != cache.XCacheMiss || got.status != 200 {
		t.Fatalf("bob: %+v", got)
	}
}

// TestCacheStatus: RFC 9211 values for each way a request goes.
func TestCacheStatus(t *testing.T) {
	cfg, svc := testConfig(), newService()
	up := okOrigin("b", h("cache-control", "max-age=60"), h("vary", "accept"))
	for _, tc := range []struct {
		req  *cache.Request
		at   time.Duration
		want string
	}{
		{get("/s", h("accept", "a")), 0, "Portcullis; fwd=uri-miss; stored"},
		{get("/s", h("accept", "a")), 10 * time.Second, "Portcullis; hit; ttl=50"},
		{get("/s", h("accept", "b")), 10 * time.Second, "Portcullis; fwd=vary-miss; stored"},
		{get("/s", h("accept", "a")), 61 * time.Second, "Portcullis; fwd=stale; stored"},
		{get("/s", h("accept", "a"), h("cache-control", "no-cache")), 62 * time.Second, "Portcullis; fwd=request; stored"},
	} {
		if got := do(t, cfg, svc, private, tc.req, up, t0.Add(tc.at), 1).header("cache-status"); got != tc.want {
			t.Errorf("%s at %v: %q, want %q", tc.req.Path, tc.at, got, tc.want)
		}
	}
	for _, tc := range []struct {
		method string
		p      *cache.RoutePolicy
		cc     string
		want   string
	}{
		{"POST", private, "", "Portcullis; fwd=method"},
		{"OPTIONS", private, "", "Portcullis; fwd=method"},
		{"GET", nil, "", "Portcullis; fwd=bypass"},
		{"GET", private, "no-store", "Portcullis; fwd=request"},
	} {
		req := with(get("/s", h("cache-control", tc.cc)), func(r *cache.Request) { r.Method = tc.method })
		plan := cfg.Classify(tc.p, req)
		if got := plan.CacheStatus(); got != tc.want {
			t.Errorf("%s %q: %q, want %q", tc.method, tc.cc, got, tc.want)
		}
	}
}

// TestMaxStale: a request's max-stale accepts a stale entry (RFC 9111
// §5.2.1.2), unless the response forbids serving it stale.
func TestMaxStale(t *testing.T) {
	for _, tc := range []struct {
		cc, req string
		want    string
	}{
		{"max-age=10", "max-stale=30", cache.XCacheStale},
		{"max-age=10", "max-stale", cache.XCacheStale},
		{"max-age=10", "max-stale=5", cache.XCacheMiss},
		{"max-age=10, must-revalidate", "max-stale=30", cache.XCacheMiss},
		{"s-maxage=10", "max-stale", cache.XCacheMiss},
	} {
		cfg, svc := testConfig(), newService()
		up := okOrigin("b", h("cache-control", tc.cc))
		expect(t, do(t, cfg, svc, private, get("/m"), up, t0, 1), cache.XCacheMiss)
		got := do(t, cfg, svc, private, get("/m", h("cache-control", tc.req)), up, t0.Add(20*time.Second), 2)
		if got.xcache != tc.want {
			t.Errorf("%q then %q: %s, want %s", tc.cc, tc.req, got.xcache, tc.want)
		}
	}
}

// TestStaleServing follows RFC 5861 and RFC 9111 §4.2.4: within
// stale-while-revalidate a stale entry answers at once; within
// stale-if-error it answers an upstream 5xx; never when the response said
// must-revalidate, proxy-revalidate, s-maxage or no-cache; a rule's
// defaults apply to responses without their own.
func TestStaleServing(t *testing.T) {
	swrRule := &cache.RoutePolicy{StaleWhileRevalidate: 30 * time.Second, StaleIfError: time.Minute}
	for _, tc := range []struct {
		name   string
		policy *cache.RoutePolicy
		cc     string
		after  time.Duration // since the fill, max-age is 10 s
		failed bool          // the upstream answers 503
		want   string        // x-cache
		status int
	}{
		{"fresh", private, "max-age=10, stale-while-revalidate=30", 5 * time.Second, false, cache.XCacheHit, 200},
		{"within stale-while-revalidate", private, "max-age=10, stale-while-revalidate=30", 20 * time.Second, false, cache.XCacheStale, 200},
		{"past stale-while-revalidate", private, "max-age=10, stale-while-revalidate=30", 41 * time.Second, false, cache.XCacheMiss, 200},
		{"within stale-if-error, upstream 503", private, "max-age=10, stale-if-error=60", 30 * time.Second, true, cache.XCacheStale, 200},
		{"within stale-if-error, upstream fine", private, "max-age=10, stale-if-error=60", 30 * time.Second, false, cache.XCacheMiss, 200},
		{"past stale-if-error", private, "max-age=10, stale-if-error=60", 71 * time.Second, true, cache.XCacheMiss, 503},
		{"must-revalidate", private, "max-age=10, must-revalidate, stale-while-revalidate=30, stale-if-error=60", 20 * time.Second, true, cache.XCacheMiss, 503},
		{"proxy-revalidate", private, "max-age=10, proxy-revalidate, stale-while-revalidate=30", 20 * time.Second, false, cache.XCacheMiss, 200},
		{"s-maxage", private, "s-maxage=10, stale-while-revalidate=30, stale-if-error=60", 20 * time.Second, true, cache.XCacheMiss, 503},
		{"the rule's defaults", swrRule, "max-age=10", 20 * time.Second, false, cache.XCacheStale, 200},
		{"the rule's stale-if-error", swrRule, "max-age=10", 50 * time.Second, true, cache.XCacheStale, 200},
		{"the response's own window wins over the rule's", swrRule, "max-age=10, stale-while-revalidate=0", 20 * time.Second, false, cache.XCacheMiss, 200},
		{"the rule's defaults never override must-revalidate", swrRule, "max-age=10, must-revalidate", 20 * time.Second, true, cache.XCacheMiss, 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, svc := testConfig(), newService()
			up := okOrigin("stored", h("cache-control", tc.cc))
			expect(t, do(t, cfg, svc, tc.policy, get("/s"), up, t0, 1), cache.XCacheMiss)
			if tc.failed {
				up.status, up.body = 503, "down"
			}
			got := do(t, cfg, svc, tc.policy, get("/s"), up, t0.Add(tc.after), 2)
			if got.xcache == cache.XCacheBypass && tc.want == cache.XCacheMiss { // a 503 is not stored
				got.xcache = cache.XCacheMiss
			}
			expect(t, got, tc.want)
			if got.status != tc.status {
				t.Fatalf("status %d, want %d", got.status, tc.status)
			}
			if tc.want == cache.XCacheStale {
				if got.body != "stored" || !strings.HasPrefix(got.header("cache-status"), "Portcullis; hit;") ||
					!strings.Contains(got.header("cache-status"), "ttl=-") {
					t.Fatalf("stale answer: %+v", got)
				}
			}
		})
	}
}
