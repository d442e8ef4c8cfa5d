package cache_test

import (
	"testing"
	"time"

	"github.com/portcullis/portcullis/filter/cache"
)

// The races of the package documentation ("Two levels, and invalidation"),
// played step by step against the store.

// missed starts a request the way the plugin does and checks that it misses.
func missed(t *testing.T, cfg *cache.Config, svc *service, req *cache.Request, now time.Time) *cache.Lookup {
	t.Helper()
	l := cfg.Classify(private, req).Lookup
	idx, found := svc.m[l.IndexKey]
	if key, ok := l.UseIndex(idx, found); ok {
		if _, reason := l.Answer(svc.m[key], now); reason == "" {
			t.Fatal("hit, want a miss")
		}
	}
	return l
}

// filled decides the fill of l for a 200 with body and headers, body included.
func filled(t *testing.T, l *cache.Lookup, body string, now time.Time, epoch uint64, headers ...[2]string) *cache.Fill {
	t.Helper()
	f, reason := l.Fill(&cache.Response{Status: 200, Headers: headers}, now, epoch)
	if reason != "" || !f.Append([]byte(body)) {
		t.Fatalf("not stored: %q", reason)
	}
	return f
}

func putIndex(svc *service, f *cache.Fill) {
	if f.Index != nil {
		svc.m[f.IndexKey] = f.Index
	}
}

func putEntry(svc *service, f *cache.Fill) { svc.m[f.EntryKey] = f.Envelope() }

// read looks req up and returns the body of a hit ("" on a miss).
func read(t *testing.T, cfg *cache.Config, svc *service, req *cache.Request, now time.Time) string {
	t.Helper()
	got := do(t, cfg, svc, private, req, &origin{status: 500}, now, 0) // a 500 is never stored
	if got.xcache != cache.XCacheHit {
		return ""
	}
	return got.body
}

func TestRaceConcurrentFillsWithDifferentEpochs(t *testing.T) {
	cfg, svc := testConfig(), newService()
	req := get("/r")
	a, b := missed(t, cfg, svc, req, t0), missed(t, cfg, svc, req, t0)
	fa, fb := filled(t, a, "A", t0, 1), filled(t, b, "B", t0, 2)
	if fa.Index == nil || fb.Index == nil || fa.EntryKey == fb.EntryKey {
		t.Fatal("both fills must write an index, and their entries differ")
	}
	// Interleaved: A's index, B's index, A's entry (unreachable), B's entry.
	putIndex(svc, fa)
	putIndex(svc, fb)
	putEntry(svc, fa)
	if got := read(t, cfg, svc, req, t0); got != "" {
		t.Fatalf("served %q under B's index before B's entry", got)
	}
	putEntry(svc, fb)
	if got := read(t, cfg, svc, req, t0); got != "B" {
		t.Fatalf("served %q, want B (the last index wins)", got)
	}
}

func TestRaceEntryBeforeIndex(t *testing.T) {
	cfg, svc := testConfig(), newService()
	req := get("/r")
	f := filled(t, missed(t, cfg, svc, req, t0), "A", t0, 1)
	putEntry(svc, f)
	if got := read(t, cfg, svc, req, t0); got != "" {
		t.Fatalf("served %q before its index", got)
	}
	putIndex(svc, f)
	if got := read(t, cfg, svc, req, t0); got != "A" {
		t.Fatalf("served %q, want A", got)
	}
}

// A fill that read the index before an invalidation, and needs no index
// write, stores below an epoch that is gone for good.
func TestRaceFillAfterInvalidationWithoutIndexWrite(t *testing.T) {
	cfg, svc := testConfig(), newService()
	page1, page2 := get("/r?page=1"), get("/r?page=2")
	putIndex(svc, filled(t, missed(t, cfg, svc, page1, t0), "1", t0, 1)) // the index exists, epoch 1
	slow := missed(t, cfg, svc, page2, t0)                               // reads epoch 1
	do(t, cfg, svc, private, with(page1, func(r *cache.Request) { r.Method = "POST" }), &origin{status: 201}, t0, 0)
	f := filled(t, slow, "stale", t0, 2)
	if f.Index != nil {
		t.Fatal("the fill rewrote the index")
	}
	putEntry(svc, f)
	if got := read(t, cfg, svc, page2, t0); got != "" {
		t.Fatalf("served %q, stored below an invalidated epoch", got)
	}
	// The next fill starts a new generation; it never reuses epoch 1.
	g := filled(t, missed(t, cfg, svc, page2, t0), "fresh", t0, 3)
	putIndex(svc, g)
	putEntry(svc, g)
	if got := read(t, cfg, svc, page2, t0); got != "fresh" {
		t.Fatalf("served %q, want fresh", got)
	}
}

// The one window: a fill that writes the index after the invalidation
// stores the response it fetched before. It is served until its own
// expires-at, never longer.
func TestRaceFillAfterInvalidationWithIndexWrite(t *testing.T) {
	cfg, svc := testConfig(), newService()
	req := get("/r")
	slow := missed(t, cfg, svc, req, t0) // no index yet
	do(t, cfg, svc, private, with(req, func(r *cache.Request) { r.Method = "PUT" }), &origin{status: 204}, t0, 0)
	f := filled(t, slow, "old", t0, 1, h("cache-control", "max-age=30"))
	putIndex(svc, f)
	putEntry(svc, f)
	if got := read(t, cfg, svc, req, t0.Add(29*time.Second)); got != "old" {
		t.Fatalf("served %q within the TTL", got)
	}
	if got := read(t, cfg, svc, req, t0.Add(30*time.Second)); got != "" {
		t.Fatalf("served %q past its TTL", got)
	}
}

// Two fills growing the Vary names at once: the last index wins, the other
// variant refills once, and the names converge to the union.
func TestRaceVaryGrowth(t *testing.T) {
	cfg, svc := testConfig(), newService()
	base := get("/r")
	first := filled(t, missed(t, cfg, svc, base, t0), "base", t0, 1)
	putIndex(svc, first)
	putEntry(svc, first)
	ra := get("/r?v=a", h("accept", "a"), h("accept-language", "x"))
	rb := get("/r?v=b", h("accept", "b"), h("accept-language", "y"))
	fa := filled(t, missed(t, cfg, svc, ra, t0), "a", t0, 2, h("vary", "accept"))
	fb := filled(t, missed(t, cfg, svc, rb, t0), "b", t0, 3, h("vary", "accept-language"))
	for _, f := range []*cache.Fill{fa, fb} {
		putIndex(svc, f)
		putEntry(svc, f)
	}
	if got := read(t, cfg, svc, ra, t0); got != "" {
		t.Fatalf("a served %q under b's index", got)
	}
	if got := read(t, cfg, svc, rb, t0); got != "b" {
		t.Fatalf("b served %q", got)
	}
	fa = filled(t, missed(t, cfg, svc, ra, t0), "a", t0, 4, h("vary", "accept"))
	putIndex(svc, fa)
	putEntry(svc, fa)
	x, err := cache.DecodeIndex(svc.m[fa.IndexKey])
	if err != nil || len(x.Vary) != 2 || x.Vary[0] != "accept" || x.Vary[1] != "accept-language" {
		t.Fatalf("index %+v %v, want the union of the names", x, err)
	}
	if got := read(t, cfg, svc, ra, t0); got != "a" {
		t.Fatalf("a served %q after its refill", got)
	}
}
