package cache_test

import (
	"fmt"
	"time"

	"github.com/portcullis/portcullis/filter/cache"
)

// The plugin's side of one request, with a map for the cache service and
// the fill lock left out: look up, and on a miss forward and fill.
func Example() {
	cfg := &cache.Config{MaxBodyBytes: 1 << 20, Statuses: map[int]time.Duration{200: time.Minute}}
	policy := &cache.RoutePolicy{} // the matched rule's route.Rule.Cache
	store := map[string][]byte{}   // GET, PUT and DELETE on the cache cluster
	now := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)

	serve := func(req *cache.Request) {
		plan := cfg.Classify(policy, req)
		if plan.Action != cache.ActionLookup {
			fmt.Println(cache.XCacheBypass, plan.Reason)
			return
		}
		l := plan.Lookup
		index, found := store[l.IndexKey] // GET /<IndexKey>: 404 is found=false
		if key, ok := l.UseIndex(index, found); ok {
			hit, reason := l.Answer(store[key], now) // GET /<key>
			if reason == "" {
				fmt.Println(cache.XCacheHit, hit.Status, string(hit.Body))
				return
			}
		}
		// Forward upstream; on its response headers:
		resp := &cache.Response{Status: 200, Headers: [][2]string{{"content-type", "application/json"}}}
		fill, reason := l.Fill(resp, now, 0x5eed) // a fresh random epoch
		if reason != "" {
			fmt.Println(cache.XCacheBypass, reason)
			return
		}
		fmt.Println(cache.XCacheMiss)
		fill.Append([]byte(`{"orders":[]}`)) // each body chunk as it streams
		if fill.Index != nil {
			store[fill.IndexKey] = fill.Index // PUT, TTL hint fill.IndexTTL
		}
		store[fill.EntryKey] = fill.Envelope() // PUT, TTL hint fill.TTL
	}

	req := &cache.Request{Method: "GET", Scheme: "https", Authority: "api.example.com", Path: "/api/orders", Tenant: "alice"}
	serve(req)
	serve(req)
	serve(&cache.Request{Method: "GET", Path: "/api/orders", Headers: [][2]string{{"cache-control", "no-store"}}})
	// Output:
	// MISS
	// HIT 200 {"orders":[]}
	// BYPASS request_no_store
}
