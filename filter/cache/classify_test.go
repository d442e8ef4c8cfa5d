package cache_test

import (
	"slices"
	"testing"

	"github.com/portcullis/portcullis/filter/cache"
)

func TestClassify(t *testing.T) {
	cfg := testConfig()
	method := func(m string) *cache.Request { return with(get("/p?x=1"), func(r *cache.Request) { r.Method = m }) }
	for _, tc := range []struct {
		name    string
		policy  *cache.RoutePolicy
		req     *cache.Request
		action  cache.Action
		reason  string
		refresh bool
	}{
		{"GET", private, get("/p"), cache.ActionLookup, "", false},
		{"HEAD", private, method("HEAD"), cache.ActionLookup, "", false},
		{"GET on a rule without caching", nil, get("/p"), cache.ActionBypass, cache.ReasonRouteDisabled, false},
		{"OPTIONS", private, method("OPTIONS"), cache.ActionBypass, cache.ReasonMethod, false},
		{"TRACE", private, method("TRACE"), cache.ActionBypass, cache.ReasonMethod, false},
		{"POST", private, method("POST"), cache.ActionInvalidate, "", false},
		{"POST on a rule without caching", nil, method("POST"), cache.ActionInvalidate, "", false},
		{"PUT", private, method("PUT"), cache.ActionInvalidate, "", false},
		{"PATCH", private, method("PATCH"), cache.ActionInvalidate, "", false},
		{"DELETE", private, method("DELETE"), cache.ActionInvalidate, "", false},
		{"an unknown method", private, method("PURGE"), cache.ActionInvalidate, "", false},
		{"lower-case get is not GET", private, method("get"), cache.ActionInvalidate, "", false},
		{"no-store", private, get("/p", h("cache-control", "no-store")), cache.ActionBypass, cache.ReasonRequestNoStore, false},
		{"no-store on a second line", private, get("/p", h("cache-control", "max-age=5"), h("cache-control", "no-store")), cache.ActionBypass, cache.ReasonRequestNoStore, false},
		{"no-cache", private, get("/p", h("cache-control", "no-cache")), cache.ActionLookup, "", true},
		{"Pragma: no-cache", private, get("/p", h("Pragma", "no-cache")), cache.ActionLookup, "", true},
		{"Pragma with Cache-Control", private, get("/p", h("pragma", "no-cache"), h("cache-control", "max-age=5")), cache.ActionLookup, "", false},
		{"Pragma: something else", private, get("/p", h("pragma", "x-no-cache")), cache.ActionLookup, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := cfg.Classify(tc.policy, tc.req)
			if p.Action != tc.action || p.Reason != tc.reason {
				t.Fatalf("plan %+v, want action %d reason %q", p, tc.action, tc.reason)
			}
			if (p.Lookup != nil) != (tc.action == cache.ActionLookup) || (len(p.Invalidate) > 0) != (tc.action == cache.ActionInvalidate) {
				t.Fatalf("plan %+v carries the wrong parts", p)
			}
			if p.Lookup != nil && p.Lookup.Refresh != tc.refresh {
				t.Fatalf("Refresh = %v, want %v", p.Lookup.Refresh, tc.refresh)
			}
		})
	}
}

// An unsafe request names the index keys of its path's GETs: the caller's
// own and the shared one, whatever the query.
func TestInvalidationKeys(t *testing.T) {
	cfg := testConfig()
	indexKey := func(p *cache.RoutePolicy, r *cache.Request) string { return cfg.Classify(p, r).Lookup.IndexKey }
	post := with(get("/p?x=1"), func(r *cache.Request) { r.Method = "POST" })
	want := []string{indexKey(public, get("/p?y=2")), indexKey(private, get("/p"))}
	if got := cfg.Classify(nil, post).Invalidate; !slices.Equal(got, want) {
		t.Fatalf("Invalidate = %q, want %q", got, want)
	}
	anonymous := with(post, func(r *cache.Request) { r.Tenant = "" })
	if got := cfg.Classify(nil, anonymous).Invalidate; !slices.Equal(got, want[:1]) {
		t.Fatalf("anonymous Invalidate = %q, want %q", got, want[:1])
	}
	for status, invalidates := range map[int]bool{100: false, 200: true, 201: true, 204: true, 301: true, 399: true, 400: false, 404: false, 500: false} {
		if cache.Invalidates(status) != invalidates {
			t.Errorf("Invalidates(%d) = %v", status, !invalidates)
		}
	}
}

// The fill key is the same for every request one entry would answer, and
// differs between entries.
func TestFillKey(t *testing.T) {
	cfg := testConfig()
	fillKey := func(r *cache.Request) string {
		l := cfg.Classify(private, r).Lookup
		l.UseIndex(nil, false)
		return l.FillKey()
	}
	same := []*cache.Request{get("/p?a=1&b=2"), get("/p?b=2&a=1"), with(get("/p?a=1&b=2"), func(r *cache.Request) { r.Method = "HEAD" })}
	for _, r := range same[1:] {
		if fillKey(r) != fillKey(same[0]) {
			t.Fatalf("%s %s has another fill key", r.Method, r.Path)
		}
	}
	if fillKey(get("/p?a=1")) == fillKey(same[0]) || fillKey(with(same[0], func(r *cache.Request) { r.Tenant = "bob" })) == fillKey(same[0]) {
		t.Fatal("two entries share a fill key")
	}
	// With an index, the fill key takes the varied values, and not the epoch.
	svc := newService()
	do(t, cfg, svc, private, get("/v", h("accept", "a")), okOrigin("a", h("vary", "accept")), t0, 1)
	withIndex := func(r *cache.Request) string {
		l := cfg.Classify(private, r).Lookup
		idx, found := svc.m[l.IndexKey]
		l.UseIndex(idx, found)
		return l.FillKey()
	}
	if withIndex(get("/v", h("accept", "a"))) == withIndex(get("/v", h("accept", "b"))) {
		t.Fatal("two variants share a fill key")
	}
	before := withIndex(get("/v", h("accept", "b")))
	clear(svc.m) // invalidated, then refilled: a new epoch, the same names
	do(t, cfg, svc, private, get("/v", h("accept", "a")), okOrigin("a", h("vary", "accept")), t0, 2)
	if withIndex(get("/v", h("accept", "b"))) != before {
		t.Fatal("the fill key depends on the epoch")
	}
	do(t, cfg, svc, private, get("/v", h("accept", "c"), h("x", "1")), okOrigin("c", h("vary", "x")), t0, 3) // the names grow
	if withIndex(get("/v", h("accept", "b"))) == before {
		t.Fatal("the fill key did not follow the index's names")
	}
}

// TestRelatedInvalidations: an unsafe request's Location and
// Content-Location invalidate their paths on the same host only (RFC 9111
// §4.4).
func TestRelatedInvalidations(t *testing.T) {
	cfg := testConfig()
	post := with(get("/api/orders/7"), func(r *cache.Request) { r.Method = "POST" })
	keysOf := func(path string) []string {
		return cfg.Classify(private, with(post, func(r *cache.Request) { r.Path = path })).Invalidate
	}
	for _, tc := range []struct {
		uri  string
		path string // "" when nothing is invalidated
	}{
		{"/api/orders", "/api/orders"},
		{"/api/orders?x=1#f", "/api/orders"},
		{"https://api.example.com/api/items", "/api/items"},
		{"HTTPS://API.example.com:443/api/items", "/api/items"},
		{"8", "/api/orders/8"},
		{"https://other.example.com/api/items", ""},
		{"https://api.example.com:8443/api/items", ""},
		{"//other.example.com/x", ""},
		{"../secrets", ""},
		{"/api/./x", ""},
		{"mailto:a@example.com", ""},
		{"", ""},
	} {
		got := cache.RelatedInvalidations(post, tc.uri)
		var want []string
		if tc.path != "" {
			want = keysOf(tc.path)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%q: %d keys, want those of %q", tc.uri, len(got), tc.path)
		}
	}
}
