package cache_test

import (
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/filter/cache"
)

func TestMissThenHit(t *testing.T) {
	cfg, svc := testConfig(), newService()
	up := okOrigin(`{"orders":[1,2]}`, h("content-type", "application/json"), h("x-request-id", "r1"),
		h("x-ratelimit-remaining", "9"), h("connection", "x-trace"), h("x-trace", "t"), h("etag", `"v1"`))
	req := get("/api/orders?b=2&a=1")

	expect(t, do(t, cfg, svc, private, req, up, t0, 1), cache.XCacheMiss)
	got := do(t, cfg, svc, private, req, up, t0.Add(30*time.Second+900*time.Millisecond), 2)
	expect(t, got, cache.XCacheHit)
	if got.status != 200 || got.body != up.body || got.header("age") != "30" || got.header("x-cache") != "HIT" {
		t.Fatalf("hit = %+v", got)
	}
	want := [][2]string{h("content-type", "application/json"), h("etag", `"v1"`), h("x-cache", "HIT"), h("age", "30"),
		h("cache-status", "Portcullis; hit; ttl=29")}
	if len(got.headers) != len(want) {
		t.Fatalf("headers = %q, want %q", got.headers, want)
	}
	for i := range want {
		if got.headers[i] != want[i] {
			t.Fatalf("headers = %q, want %q", got.headers, want)
		}
	}
	// Another order of the same parameters, another letter case of the host
	// and its default port, and HEAD: the same entry.
	for _, r := range []*cache.Request{
		get("/api/orders?a=1&b=2"),
		with(req, func(r *cache.Request) { r.Authority = "API.Example.com:443" }),
		with(req, func(r *cache.Request) { r.Method = "HEAD" }),
	} {
		expect(t, do(t, cfg, svc, private, r, up, t0.Add(time.Second), 3), cache.XCacheHit)
	}
	if up.calls != 1 {
		t.Fatalf("upstream called %d times, want 1", up.calls)
	}
	// Other paths, queries, hosts or ports: other entries.
	for _, r := range []*cache.Request{
		get("/api/orders"),
		get("/api/orders?a=1&b=3"),
		get("/api/orders/?a=1&b=2"),
		with(req, func(r *cache.Request) { r.Authority = "api.example.com:8443" }),
		with(req, func(r *cache.Request) { r.Authority = "other.example.com" }),
	} {
		expect(t, do(t, cfg, svc, private, r, up, t0.Add(time.Second), 4), cache.XCacheMiss)
	}
	// Fresh until the TTL, then a miss again, conditional on the stored
	// ETag (the origin answers it in full here).
	expect(t, do(t, cfg, svc, private, req, up, t0.Add(time.Minute-time.Millisecond), 5), cache.XCacheHit)
	got = do(t, cfg, svc, private, req, up, t0.Add(time.Minute), 5)
	if got.xcache != cache.XCacheMiss || got.reason != cache.MissRevalidate || len(up.conditional) != 1 ||
		up.conditional[0] != h("if-none-match", `"v1"`) {
		t.Fatalf("at the TTL: %s %q, conditional %q; want MISS entry_revalidate with If-None-Match", got.xcache, got.reason, up.conditional)
	}
	if cs := got.header("cache-status"); cs != "Portcullis; fwd=stale; stored" {
		t.Fatalf("cache-status %q", cs)
	}
	// Without a validator an expired entry is a plain miss.
	plain := okOrigin("p")
	expect(t, do(t, cfg, svc, private, get("/plain"), plain, t0, 6), cache.XCacheMiss)
	got = do(t, cfg, svc, private, get("/plain"), plain, t0.Add(time.Minute), 7)
	if got.reason != cache.MissExpired || plain.conditional != nil {
		t.Fatalf("expired without a validator: %q, conditional %q", got.reason, plain.conditional)
	}
}

func TestHeadNeverFills(t *testing.T) {
	cfg, svc := testConfig(), newService()
	up := okOrigin("")
	head := with(get("/x"), func(r *cache.Request) { r.Method = "HEAD" })
	expect(t, do(t, cfg, svc, private, head, up, t0, 1), cache.XCacheMiss)
	expect(t, do(t, cfg, svc, private, head, up, t0, 1), cache.XCacheMiss)
	if len(svc.m) != 0 {
		t.Fatalf("HEAD stored %d values", len(svc.m))
	}
}

func TestTenantsAreIsolated(t *testing.T) {
	cfg := testConfig()
	alice, bob := get("/api/me"), with(get("/api/me"), func(r *cache.Request) { r.Tenant = "bob" })
	anonymous := with(get("/api/me"), func(r *cache.Request) { r.Tenant = "" })

	t.Run("private rule", func(t *testing.T) {
		svc := newService()
		expect(t, do(t, cfg, svc, private, alice, okOrigin("alice"), t0, 1), cache.XCacheMiss)
		expect(t, do(t, cfg, svc, private, alice, okOrigin("-"), t0, 1), cache.XCacheHit)
		for _, r := range []*cache.Request{bob, anonymous} {
			got := do(t, cfg, svc, private, r, okOrigin(r.Tenant), t0, 1)
			if got.xcache != cache.XCacheMiss || got.body != r.Tenant {
				t.Fatalf("%q got %s %q", r.Tenant, got.xcache, got.body)
			}
		}
		// Each has an entry of their own now.
		for _, r := range []*cache.Request{alice, bob, anonymous} {
			if got := do(t, cfg, svc, private, r, okOrigin("-"), t0, 1); got.xcache != cache.XCacheHit || got.body != r.Tenant {
				t.Fatalf("%q got %s %q", r.Tenant, got.xcache, got.body)
			}
		}
	})
	t.Run("public rule", func(t *testing.T) {
		svc := newService()
		expect(t, do(t, cfg, svc, public, alice, okOrigin("shared", h("cache-control", "public, max-age=60")), t0, 1), cache.XCacheMiss)
		for _, r := range []*cache.Request{alice, bob, anonymous} {
			if got := do(t, cfg, svc, public, r, okOrigin("-"), t0, 1); got.xcache != cache.XCacheHit || got.body != "shared" {
				t.Fatalf("%q got %s %q", r.Tenant, got.xcache, got.body)
			}
		}
	})
	t.Run("private and public entries of one path differ", func(t *testing.T) {
		svc := newService()
		do(t, cfg, svc, private, alice, okOrigin("alice", h("cache-control", "public")), t0, 1)
		expect(t, do(t, cfg, svc, public, alice, okOrigin("shared", h("cache-control", "public")), t0, 1), cache.XCacheMiss)
	})
}

// RFC 9111 §3.5: a shared entry holds a response to a request with
// credentials only when the response allows it.
func TestSharedEntryOfAnAuthorizedRequest(t *testing.T) {
	cfg := testConfig()
	anonymous := with(get("/pub"), func(r *cache.Request) { r.Tenant = "" })
	bearer := with(anonymous, func(r *cache.Request) { r.Headers = [][2]string{h("Authorization", "Bearer x")} })
	for _, tc := range []struct {
		name         string
		policy       *cache.RoutePolicy
		req          *cache.Request
		cacheControl string
		reason       string
	}{
		{"tenant, public rule, no permission", public, get("/pub"), "max-age=60", cache.ReasonAuthorizedNotPublic},
		{"tenant, public rule, public", public, get("/pub"), "public", ""},
		{"tenant, public rule, s-maxage", public, get("/pub"), "s-maxage=60", ""},
		{"tenant, public rule, must-revalidate", public, get("/pub"), "must-revalidate", ""},
		{"tenant, public rule, public with an argument", public, get("/pub"), `public="x"`, cache.ReasonAuthorizedNotPublic},
		{"anonymous with Authorization", private, bearer, "", cache.ReasonAuthorizedNotPublic},
		{"anonymous with Authorization, public", private, bearer, "public", ""},
		{"anonymous without credentials", public, anonymous, "", ""},
		{"tenant, private rule: its own entry", private, get("/pub"), "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := okOrigin("b")
			if tc.cacheControl != "" {
				up.headers = [][2]string{h("cache-control", tc.cacheControl)}
			}
			got := do(t, cfg, newService(), tc.policy, tc.req, up, t0, 1)
			if got.xcache == cache.XCacheBypass != (tc.reason != "") || got.xcache == cache.XCacheBypass && got.reason != tc.reason {
				t.Fatalf("%s %q, want reason %q", got.xcache, got.reason, tc.reason)
			}
		})
	}
}

func TestVary(t *testing.T) {
	cfg, svc := testConfig(), newService()
	gzip := get("/v", h("accept-encoding", "gzip"))
	br := get("/v", h("Accept-Encoding", "br"))
	none := get("/v")
	empty := get("/v", h("accept-encoding", ""))
	vary := func(body string) *origin { return okOrigin(body, h("vary", "Accept-Encoding")) }

	expect(t, do(t, cfg, svc, private, gzip, vary("gzip"), t0, 1), cache.XCacheMiss)
	expect(t, do(t, cfg, svc, private, br, vary("br"), t0, 2), cache.XCacheMiss)
	expect(t, do(t, cfg, svc, private, none, vary("none"), t0, 3), cache.XCacheMiss)
	expect(t, do(t, cfg, svc, private, empty, vary("empty"), t0, 4), cache.XCacheMiss) // absent and empty differ (RFC 9111 §4.1)
	for _, r := range []*cache.Request{gzip, br, none, empty,
		get("/v", h("accept-encoding", " gzip "))} { // surrounding whitespace is not part of a value
		got := do(t, cfg, svc, private, r, vary("-"), t0, 9)
		want, _ := fieldOf(r.Headers, "accept-encoding")
		want = strings.TrimSpace(want)
		if len(r.Headers) == 0 {
			want = "none"
		} else if want == "" {
			want = "empty"
		}
		if got.xcache != cache.XCacheHit || got.body != want {
			t.Fatalf("%q: %s %q, want HIT %q", r.Headers, got.xcache, got.body, want)
		}
	}

	// The path starts varying on one more field: a new generation, and the
	// union of the names keys every variant from now on. (A gzip request in
	// French would still be answered by the gzip entry, which varies on
	// Accept-Encoding only.)
	expect(t, do(t, cfg, svc, private, get("/v", h("accept-encoding", "gzip"), h("accept-language", "fr")), vary("-"), t0, 9), cache.XCacheHit)
	lang := get("/v", h("accept-encoding", "zstd"), h("accept-language", "fr"))
	up := okOrigin("fr", h("vary", "accept-language"))
	expect(t, do(t, cfg, svc, private, lang, up, t0, 10), cache.XCacheMiss)
	expect(t, do(t, cfg, svc, private, lang, up, t0, 11), cache.XCacheHit)
	expect(t, do(t, cfg, svc, private, gzip, vary("gzip"), t0, 12), cache.XCacheMiss) // the old generation is gone
	expect(t, do(t, cfg, svc, private, gzip, vary("gzip"), t0, 13), cache.XCacheHit)
	expect(t, do(t, cfg, svc, private, lang, up, t0, 14), cache.XCacheHit) // the names did not change again

	t.Run("unstorable Vary", func(t *testing.T) {
		for value, reason := range map[string]string{
			"*":                                 cache.ReasonVaryStar,
			"accept, *":                         cache.ReasonVaryStar,
			"accept encoding":                   cache.ReasonVaryInvalid,
			"a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q": cache.ReasonVaryTooMany,
		} {
			got := do(t, cfg, newService(), private, gzip, okOrigin("x", h("vary", value)), t0, 1)
			if got.reason != reason {
				t.Errorf("Vary %q: %s %q, want %q", value, got.xcache, got.reason, reason)
			}
		}
	})
}

func fieldOf(headers [][2]string, name string) (string, bool) {
	for _, h := range headers {
		if strings.EqualFold(h[0], name) {
			return h[1], true
		}
	}
	return "", false
}

func TestInvalidation(t *testing.T) {
	cfg := testConfig()
	up := okOrigin("v1", h("vary", "accept"), h("cache-control", "public"))
	variants := []*cache.Request{get("/api/items?page=1"), get("/api/items?page=2"), get("/api/items", h("accept", "text/csv"))}
	fill := func(t *testing.T, svc *service, p *cache.RoutePolicy, tenant string) {
		for i, r := range variants {
			r = with(r, func(r *cache.Request) { r.Tenant = tenant })
			do(t, cfg, svc, p, r, up, t0, uint64(i+1))
			expect(t, do(t, cfg, svc, p, r, up, t0, 9), cache.XCacheHit)
		}
	}
	write := func(method, tenant string) *cache.Request {
		return with(get("/api/items?page=1"), func(r *cache.Request) { r.Method, r.Tenant = method, tenant })
	}
	for _, tc := range []struct {
		name        string
		policy      *cache.RoutePolicy
		filler      string
		writer      *cache.Request
		status      int
		invalidated bool
	}{
		{"POST 201 by the same tenant", private, "alice", write("POST", "alice"), 201, true},
		{"PUT 200", private, "alice", write("PUT", "alice"), 200, true},
		{"PATCH 204", private, "alice", write("PATCH", "alice"), 204, true},
		{"DELETE 302", private, "alice", write("DELETE", "alice"), 302, true},
		{"an unknown method", private, "alice", write("PURGE", "alice"), 200, true},
		{"a failed POST", private, "alice", write("POST", "alice"), 500, false},
		{"a refused POST", private, "alice", write("POST", "alice"), 403, false},
		{"another tenant's POST", private, "alice", write("POST", "bob"), 201, false},
		{"a shared entry, any tenant's POST", public, "alice", write("POST", "bob"), 201, true},
		{"a shared entry, an anonymous POST", public, "alice", write("POST", ""), 201, true},
		{"another path", private, "alice", with(write("POST", "alice"), func(r *cache.Request) { r.Path = "/api/items/7" }), 201, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := newService()
			fill(t, svc, tc.policy, tc.filler)
			got := do(t, cfg, svc, private, tc.writer, &origin{status: tc.status}, t0, 0)
			expect(t, got, cache.XCacheBypass)
			for _, r := range variants {
				r = with(r, func(r *cache.Request) { r.Tenant = tc.filler })
				want := cache.XCacheHit
				if tc.invalidated {
					want = cache.XCacheMiss
				}
				expect(t, do(t, cfg, svc, tc.policy, r, up, t0, 20), want)
			}
		})
	}
}

func TestRequestDirectives(t *testing.T) {
	cfg, svc := testConfig(), newService()
	req := get("/d")
	do(t, cfg, svc, private, req, okOrigin("v1"), t0, 1)
	at := t0.Add(10 * time.Second) // the entry is 10 s old, fresh for 50 s more
	for _, tc := range []struct {
		name    string
		headers [][2]string
		xcache  string
		reason  string
	}{
		{"no directive", nil, cache.XCacheHit, ""},
		{"max-age above the age", [][2]string{h("cache-control", "max-age=10")}, cache.XCacheHit, ""},
		{"max-age below the age", [][2]string{h("cache-control", "max-age=9")}, cache.XCacheMiss, cache.MissTooOld},
		{"max-age=0", [][2]string{h("cache-control", "max-age=0")}, cache.XCacheMiss, cache.MissTooOld},
		{"min-fresh within", [][2]string{h("cache-control", "min-fresh=50")}, cache.XCacheHit, ""},
		{"min-fresh beyond", [][2]string{h("cache-control", "min-fresh=51")}, cache.XCacheMiss, cache.MissTooOld},
		{"invalid min-fresh", [][2]string{h("cache-control", "min-fresh=soon")}, cache.XCacheMiss, cache.MissTooOld},
		{"Pragma ignored with Cache-Control", [][2]string{h("cache-control", "max-age=60"), h("pragma", "no-cache")}, cache.XCacheHit, ""},
		{"no-store", [][2]string{h("cache-control", "no-store")}, cache.XCacheBypass, cache.ReasonRequestNoStore},
		{"no-cache", [][2]string{h("Cache-Control", "No-Cache")}, cache.XCacheMiss, cache.MissRefresh},
		{"Pragma: no-cache", [][2]string{h("pragma", "no-cache")}, cache.XCacheMiss, cache.MissRefresh},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := okOrigin("v2")
			before := svc.snapshot()
			got := do(t, cfg, svc, private, get("/d", tc.headers...), up, at, 2)
			if got.xcache != tc.xcache || got.reason != tc.reason {
				t.Fatalf("%s %q, want %s %q", got.xcache, got.reason, tc.xcache, tc.reason)
			}
			if tc.xcache == cache.XCacheBypass && len(svc.snapshot()) != len(before) {
				t.Fatal("a no-store request's response was stored")
			}
			svc.m = before // each case sees the original entry
		})
	}
	t.Run("a no-cache request refreshes the entry", func(t *testing.T) {
		do(t, cfg, svc, private, get("/d", h("cache-control", "no-cache")), okOrigin("v2"), at, 2)
		if got := do(t, cfg, svc, private, req, okOrigin("-"), at, 3); got.xcache != cache.XCacheHit || got.body != "v2" {
			t.Fatalf("after a refresh: %s %q, want HIT v2", got.xcache, got.body)
		}
	})
}

func TestRouteDisabledAndSafeMethods(t *testing.T) {
	cfg := testConfig()
	for _, tc := range []struct {
		req    *cache.Request
		policy *cache.RoutePolicy
		reason string
	}{
		{get("/x"), nil, cache.ReasonRouteDisabled},
		{with(get("/x"), func(r *cache.Request) { r.Method = "OPTIONS" }), private, cache.ReasonMethod},
		{with(get("/x"), func(r *cache.Request) { r.Method = "TRACE" }), private, cache.ReasonMethod},
	} {
		if p := cfg.Classify(tc.policy, tc.req); p.Action != cache.ActionBypass || p.Reason != tc.reason {
			t.Errorf("%s: %+v, want bypass %q", tc.req.Method, p, tc.reason)
		}
	}
}

// The store is not trusted: a value under the wrong key, or garbage, is a
// miss, never another scope's response.
func TestStoreAnswersWrongValues(t *testing.T) {
	cfg, svc := testConfig(), newService()
	alice, bob := get("/me"), with(get("/me"), func(r *cache.Request) { r.Tenant = "bob" })
	do(t, cfg, svc, private, alice, okOrigin("alice"), t0, 1)
	do(t, cfg, svc, private, bob, okOrigin("bob"), t0, 1) // the same epoch: only the keys differ
	aliceIndex := cfg.Classify(private, alice).Lookup.IndexKey
	bobIndex := cfg.Classify(private, bob).Lookup.IndexKey

	t.Run("another key's entry", func(t *testing.T) {
		l := cfg.Classify(private, bob).Lookup
		key, _ := l.UseIndex(svc.m[bobIndex], true)
		lA := cfg.Classify(private, alice).Lookup
		aliceKey, _ := lA.UseIndex(svc.m[aliceIndex], true)
		if _, reason := l.Answer(svc.m[aliceKey], t0); reason != cache.MissMismatch || key == aliceKey {
			t.Fatalf("alice's entry for bob: %q", reason)
		}
	})
	t.Run("another key's index", func(t *testing.T) {
		l := cfg.Classify(private, bob).Lookup
		if _, ok := l.UseIndex(svc.m[aliceIndex], true); ok {
			t.Fatal("alice's index accepted for bob")
		}
	})
	t.Run("garbage", func(t *testing.T) {
		l := cfg.Classify(private, alice).Lookup
		if _, ok := l.UseIndex([]byte("garbage"), true); ok {
			t.Fatal("a garbage index accepted")
		}
		l = cfg.Classify(private, alice).Lookup
		l.UseIndex(svc.m[aliceIndex], true)
		if _, reason := l.Answer([]byte("garbage"), t0); reason != cache.MissCorrupt {
			t.Fatalf("garbage entry: %q", reason)
		}
		if _, reason := l.Answer(nil, t0); reason != cache.MissCorrupt {
			t.Fatalf("empty entry: %q", reason)
		}
	})
	t.Run("a fill after an unreadable index starts over", func(t *testing.T) {
		svc := newService()
		l := cfg.Classify(private, alice).Lookup
		svc.m[l.IndexKey] = []byte("garbage")
		expect(t, do(t, cfg, svc, private, alice, okOrigin("a"), t0, 7), cache.XCacheMiss)
		expect(t, do(t, cfg, svc, private, alice, okOrigin("-"), t0, 8), cache.XCacheHit)
	})
}
