package cache_test

import (
	"maps"
	"testing"
	"time"

	"github.com/portcullis/portcullis/filter/cache"
)

// t0 is the tests' clock origin.
var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func testConfig() *cache.Config {
	return &cache.Config{
		Cluster: "cache", Authority: "portcullis-cache", Timeout: 50 * time.Millisecond,
		MaxBodyBytes: 1 << 10,
		Statuses:     map[int]time.Duration{200: time.Minute, 404: 10 * time.Second, 301: time.Hour},
		FillWait:     2 * time.Second, FillLockSlots: 64,
	}
}

var (
	private  = &cache.RoutePolicy{}
	public   = &cache.RoutePolicy{Public: true}
	shortTTL = &cache.RoutePolicy{TTL: 5 * time.Second}
)

func get(path string, headers ...[2]string) *cache.Request {
	return &cache.Request{Method: "GET", Scheme: "https", Authority: "api.example.com", Path: path, Tenant: "alice", Headers: headers}
}

func with(r *cache.Request, edit func(*cache.Request)) *cache.Request {
	c := *r
	edit(&c)
	return &c
}

func h(name, value string) [2]string { return [2]string{name, value} }

// service is the cache service as the plugin sees it: GET, PUT and DELETE
// of opaque values by key, no TTL.
type service struct{ m map[string][]byte }

func newService() *service { return &service{m: map[string][]byte{}} }

func (s *service) snapshot() map[string][]byte { return maps.Clone(s.m) }

// outcome is what the client saw of one request.
type outcome struct {
	xcache, reason string
	status         int
	headers        [][2]string
	body           string
	upstream       bool // the request went upstream
}

func (o outcome) header(name string) string {
	for _, h := range o.headers {
		if h[0] == name {
			return h[1]
		}
	}
	return ""
}

// origin is the upstream: the response it gives, and how many times it was asked.
type origin struct {
	status  int
	headers [][2]string
	body    string
	calls   int
	// validates: a conditional request is answered 304 with headers and no
	// body (as an origin whose resource did not change does).
	validates bool
	// conditional is the last request's conditional fields; full counts the
	// answers with a body.
	conditional [][2]string
	full        int
}

func okOrigin(body string, headers ...[2]string) *origin {
	return &origin{status: 200, headers: headers, body: body}
}

// do runs req through the cache as the plugin does (without the fill lock,
// which filllock_test.go covers): lookup, then upstream and fill on a miss,
// invalidation for unsafe methods. epoch is the random number a fill gets.
func do(t *testing.T, cfg *cache.Config, svc *service, p *cache.RoutePolicy, req *cache.Request, up *origin, now time.Time, epoch uint64) outcome {
	t.Helper()
	plan := cfg.Classify(p, req)
	forward := func() (cache.Response, string) {
		up.calls++
		up.conditional = nil
		if plan.Lookup != nil {
			up.conditional = plan.Lookup.Conditional()
		}
		if up.validates && up.conditional != nil {
			return cache.Response{Status: 304, Headers: up.headers}, ""
		}
		up.full++
		return cache.Response{Status: up.status, Headers: up.headers}, up.body
	}
	switch plan.Action {
	case cache.ActionBypass:
		resp, body := forward()
		return outcome{xcache: cache.XCacheBypass, reason: plan.Reason, status: resp.Status, headers: resp.Headers, body: body, upstream: true}
	case cache.ActionInvalidate:
		resp, body := forward()
		if cache.Invalidates(resp.Status) {
			for _, k := range plan.Invalidate {
				delete(svc.m, k)
			}
		}
		return outcome{xcache: cache.XCacheBypass, status: resp.Status, headers: resp.Headers, body: body, upstream: true}
	}
	l := plan.Lookup
	idx, found := svc.m[l.IndexKey]
	miss := cache.MissNoIndex
	if l.Refresh {
		miss = cache.MissRefresh
	}
	if key, ok := l.UseIndex(idx, found); ok {
		hit, reason := l.Answer(svc.m[key], now)
		if reason == "" {
			xcache := cache.XCacheHit
			if hit.Stale { // served at once; the plugin refreshes it with one request (not modelled here)
				xcache = cache.XCacheStale
			}
			return outcome{xcache: xcache, status: hit.Status, headers: hit.Headers, body: string(hit.Body)}
		}
		miss = reason
	}
	resp, body := forward()
	if rv, ok := l.Revalidated(&resp, now); ok {
		if rv.Envelope != nil {
			svc.m[rv.EntryKey] = rv.Envelope
		}
		hit := rv.Hit
		return outcome{xcache: cache.XCacheRevalidated, reason: miss, status: hit.Status, headers: hit.Headers, body: string(hit.Body), upstream: true}
	}
	if hit, ok := l.StaleIfError(resp.Status, now); ok {
		return outcome{xcache: cache.XCacheStale, reason: miss, status: hit.Status, headers: hit.Headers, body: string(hit.Body), upstream: true}
	}
	o := outcome{xcache: cache.XCacheMiss, reason: miss, status: resp.Status, headers: resp.Headers, body: body, upstream: true}
	o.headers = append(o.headers[:len(o.headers):len(o.headers)], h(cache.HeaderCacheStatus, l.CacheStatus(false)))
	if !l.CanFill() {
		return o
	}
	fill, reason := l.Fill(&resp, now, epoch)
	if reason != "" {
		o.xcache, o.reason = cache.XCacheBypass, reason
		return o
	}
	// The body streams in two chunks.
	if !fill.Append([]byte(body[:len(body)/2])) || !fill.Append([]byte(body[len(body)/2:])) {
		o.reason = cache.ReasonBodyTooLarge
		return o
	}
	if fill.Index != nil {
		svc.m[fill.IndexKey] = fill.Index
	}
	svc.m[fill.EntryKey] = fill.Envelope()
	o.headers[len(o.headers)-1][1] = l.CacheStatus(true)
	return o
}

// expect checks the x-cache of outcomes in order.
func expect(t *testing.T, got outcome, xcache string) {
	t.Helper()
	if got.xcache != xcache {
		t.Fatalf("x-cache %s (reason %q), want %s", got.xcache, got.reason, xcache)
	}
}
