package cache_test

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/portcullis/portcullis/filter/cache"
	"github.com/portcullis/portcullis/filter/shared"
	"github.com/portcullis/portcullis/filter/shared/sharedtest"
)

// tierConfig is testConfig with the in-proxy tier: slots index slots.
func tierConfig(slots int) *cache.Config {
	c := testConfig()
	c.LocalIndexTTL, c.LocalIndexSlots = time.Second, slots
	c.LocalEntries, c.LocalMaxEntryBytes, c.LocalBytes = 2, 4<<10, 64<<10
	return c
}

// lookup classifies req as a lookup.
func lookup(t *testing.T, cfg *cache.Config, p *cache.RoutePolicy, req *cache.Request) *cache.Lookup {
	t.Helper()
	plan := cfg.Classify(p, req)
	if plan.Action != cache.ActionLookup {
		t.Fatalf("%s %s: action %v, want a lookup", req.Method, req.Path, plan.Action)
	}
	return plan.Lookup
}

// stored fills req's entry (body, max-age 60) after a lookup that found
// no index, and returns the fill and its envelope.
func stored(t *testing.T, cfg *cache.Config, req *cache.Request, body string, now time.Time, epoch uint64) (*cache.Fill, []byte) {
	t.Helper()
	l := lookup(t, cfg, private, req)
	l.UseIndex(nil, false)
	f, reason := l.Fill(&cache.Response{Status: 200, Headers: [][2]string{h("cache-control", "max-age=60")}}, now, epoch)
	if reason != "" {
		t.Fatalf("not stored: %s", reason)
	}
	f.Append([]byte(body))
	return f, f.Envelope()
}

// useLocal runs UseLocalIndex and checks what it says.
func useLocal(t *testing.T, idx *cache.LocalIndex, l *cache.Lookup, now time.Time, wantOK, wantKnown bool) {
	t.Helper()
	if ok, known := l.UseLocalIndex(idx, now); ok != wantOK || known != wantKnown {
		t.Fatalf("UseLocalIndex = ok %v, known %v; want %v, %v", ok, known, wantOK, wantKnown)
	}
}

func invalidationKeys(t *testing.T, cfg *cache.Config, path, tenant string) []string {
	t.Helper()
	plan := cfg.Classify(private, &cache.Request{Method: "POST", Scheme: "https", Authority: "api.example.com", Path: path, Tenant: tenant})
	if plan.Action != cache.ActionInvalidate {
		t.Fatalf("POST: action %v", plan.Action)
	}
	return plan.Invalidate
}

func TestLocalIndexCopyFromFillAndExpiry(t *testing.T) {
	cfg := tierConfig(64)
	idx := cache.NewLocalIndex(sharedtest.New(), cfg)
	req := get("/orders?a=1")
	f, _ := stored(t, cfg, req, "one", t0, 7)
	useLocal(t, idx, lookup(t, cfg, private, req), t0, false, false) // nothing yet
	if err := idx.Fill(f, t0); err != nil {
		t.Fatal(err)
	}
	l := lookup(t, cfg, private, req)
	useLocal(t, idx, l, t0.Add(999*time.Millisecond), true, true)
	if l.EntryKey() != f.EntryKey {
		t.Fatalf("entry key from the copy %s, want the fill's %s", l.EntryKey(), f.EntryKey)
	}
	// Past LocalIndexTTL the copy is not used: the cluster is asked again.
	useLocal(t, idx, lookup(t, cfg, private, req), t0.Add(time.Second), false, false)
	// Another tenant's path is another K0: alice's copy never answers bob.
	useLocal(t, idx, lookup(t, cfg, private, with(req, func(r *cache.Request) { r.Tenant = "bob" })), t0, false, false)
	// A refresh knows the index (its fill keeps the epoch) but looks nothing up.
	useLocal(t, idx, lookup(t, cfg, private, with(req, func(r *cache.Request) { r.Headers = [][2]string{h("cache-control", "no-cache")} })), t0, false, true)
}

func TestLocalIndexRememberIsUndoneByNothing(t *testing.T) {
	cfg := tierConfig(64)
	idx := cache.NewLocalIndex(sharedtest.New(), cfg)
	req := get("/orders")
	f, _ := stored(t, cfg, req, "one", t0, 7)

	// A cluster read is remembered.
	l := lookup(t, cfg, private, req)
	useLocal(t, idx, l, t0, false, false)
	if _, ok := l.UseIndex(f.Index, true); !ok {
		t.Fatal("UseIndex refused the stored index")
	}
	if err := idx.Remember(l, t0); err != nil {
		t.Fatal(err)
	}
	useLocal(t, idx, lookup(t, cfg, private, req), t0, true, true)

	// An invalidation while a cluster read is in flight is not undone by
	// the read's answer (the old record).
	late := lookup(t, cfg, private, with(req, func(r *cache.Request) { r.Path = "/orders?late=1" }))
	useLocal(t, idx, late, t0.Add(2*time.Second), false, false) // the copy expired: the read goes out
	if err := idx.Invalidate(invalidationKeys(t, cfg, "/orders", "alice"), t0.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	late.UseIndex(f.Index, true)
	if err := idx.Remember(late, t0.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	miss := lookup(t, cfg, private, req)
	useLocal(t, idx, miss, t0.Add(2*time.Second), false, true)
	// The miss knows the index is gone: its fill starts a new epoch.
	f2, reason := miss.Fill(&cache.Response{Status: 200}, t0.Add(2*time.Second), 8)
	if reason != "" || f2.Index == nil || f2.EntryKey == f.EntryKey {
		t.Fatalf("fill after the invalidation: %q, index %v, same key %v", reason, f2.Index != nil, f2.EntryKey == f.EntryKey)
	}
}

func TestLocalIndexTombstoneLifetime(t *testing.T) {
	cfg := tierConfig(64)
	idx := cache.NewLocalIndex(sharedtest.New(), cfg)
	req := get("/orders")
	f, _ := stored(t, cfg, req, "one", t0, 7)
	_ = idx.Fill(f, t0)
	if err := idx.Invalidate(invalidationKeys(t, cfg, "/orders", "alice"), t0); err != nil {
		t.Fatal(err)
	}
	// It outlives the cluster DELETE: the callout timeout and a second.
	deadline := t0.Add(cfg.Timeout + time.Second)
	useLocal(t, idx, lookup(t, cfg, private, req), deadline.Add(-time.Millisecond), false, true)
	useLocal(t, idx, lookup(t, cfg, private, req), deadline, false, false)
	// A fill's new epoch replaces the path's own tombstone.
	f2, _ := stored(t, cfg, req, "two", t0, 9)
	_ = idx.Fill(f2, t0)
	l := lookup(t, cfg, private, req)
	useLocal(t, idx, l, t0, true, true)
	if l.EntryKey() != f2.EntryKey {
		t.Fatal("the new epoch's copy is not the one used")
	}
}

func TestLocalIndexSlotCollisions(t *testing.T) {
	cfg := tierConfig(1) // every path in one slot
	idx := cache.NewLocalIndex(sharedtest.New(), cfg)
	a, b := get("/a"), get("/b")
	fa, _ := stored(t, cfg, a, "a", t0, 1)
	fb, _ := stored(t, cfg, b, "b", t0, 2)
	_ = idx.Fill(fa, t0)
	// b finds a's copy in its slot: not its index, so unknown (never a's).
	useLocal(t, idx, lookup(t, cfg, private, b), t0, false, false)
	_ = idx.Fill(fb, t0)
	useLocal(t, idx, lookup(t, cfg, private, a), t0, false, false)
	useLocal(t, idx, lookup(t, cfg, private, b), t0, true, true)

	// a's tombstone is never overwritten by b's copy, nor lost to b's tombstone.
	if err := idx.Invalidate(invalidationKeys(t, cfg, "/a", "alice"), t0); err != nil {
		t.Fatal(err)
	}
	_ = idx.Fill(fb, t0)
	lb := lookup(t, cfg, private, b)
	useLocal(t, idx, lb, t0, false, false)
	lb.UseIndex(fb.Index, true)
	_ = idx.Remember(lb, t0)
	useLocal(t, idx, lookup(t, cfg, private, a), t0, false, true)
	_ = idx.Invalidate(invalidationKeys(t, cfg, "/b", "alice"), t0)
	useLocal(t, idx, lookup(t, cfg, private, a), t0, false, true)
	useLocal(t, idx, lookup(t, cfg, private, b), t0, false, true)
}

// A slot keeps 8 tombstones; a 9th drops the one closest to its deadline.
// (Shared entries: a POST by an anonymous caller invalidates one key.)
func TestLocalIndexTombstonesPerSlot(t *testing.T) {
	cfg := tierConfig(1)
	idx := cache.NewLocalIndex(sharedtest.New(), cfg)
	for i := range 9 {
		at := t0.Add(time.Duration(i) * time.Millisecond)
		if err := idx.Invalidate(invalidationKeys(t, cfg, "/p"+strconv.Itoa(i), ""), at); err != nil {
			t.Fatal(err)
		}
	}
	useLocal(t, idx, lookup(t, cfg, public, get("/p0")), t0.Add(10*time.Millisecond), false, false)
	for i := 1; i < 9; i++ {
		useLocal(t, idx, lookup(t, cfg, public, get("/p"+strconv.Itoa(i))), t0.Add(10*time.Millisecond), false, true)
	}
}

// flakyStore fails every Set with cas mismatch: another VM always wins.
type flakyStore struct{ *sharedtest.Store }

func (flakyStore) Set(string, []byte, uint32) error { return shared.ErrCasMismatch }

func TestLocalIndexContention(t *testing.T) {
	cfg := tierConfig(64)
	idx := cache.NewLocalIndex(flakyStore{sharedtest.New()}, cfg)
	err := idx.Invalidate(invalidationKeys(t, cfg, "/a", "alice"), t0)
	if !errors.Is(err, cache.ErrLocalContention) {
		t.Fatalf("Invalidate under endless contention: %v, want ErrLocalContention", err)
	}
	if err := idx.Invalidate([]string{"not-hex"}, t0); err == nil {
		t.Fatal("a malformed key was accepted")
	}
}

// hotLookup classifies req and reads its local index copy.
func hotLookup(t *testing.T, cfg *cache.Config, idx *cache.LocalIndex, req *cache.Request, now time.Time) *cache.Lookup {
	t.Helper()
	l := lookup(t, cfg, private, req)
	useLocal(t, idx, l, now, true, true)
	return l
}

func TestHotEntriesAnswerAndExpire(t *testing.T) {
	cfg := tierConfig(64)
	idx := cache.NewLocalIndex(sharedtest.New(), cfg)
	hot := cache.NewHotEntries(cfg)
	req := get("/orders")
	f, env := stored(t, cfg, req, "body", t0, 1)
	_ = idx.Fill(f, t0)
	l := hotLookup(t, cfg, idx, req, t0)
	if _, ok := l.AnswerHot(hot, t0); ok {
		t.Fatal("hit from an empty table")
	}
	hot.Keep(l, env)
	first, ok := hotLookup(t, cfg, idx, req, t0).AnswerHot(hot, t0.Add(2*time.Second))
	if !ok || string(first.Body) != "body" || first.Status != 200 {
		t.Fatalf("hot hit = %+v, %v", first, ok)
	}
	if got := headerOf(first.Headers, "age"); got != "2" {
		t.Errorf("age %q, want 2", got)
	}
	first.Headers = append(first.Headers, h("x-extra", "1"))
	second, _ := hotLookup(t, cfg, idx, req, t0).AnswerHot(hot, t0)
	if headerOf(second.Headers, "x-extra") != "" || headerOf(second.Headers, "x-cache") != "HIT" {
		t.Fatalf("a hit changed the entry: %v", second.Headers)
	}
	// A request max-age the entry is older than: not from here.
	if _, ok := hotLookup(t, cfg, idx, with(req, func(r *cache.Request) { r.Headers = [][2]string{h("cache-control", "max-age=1")} }), t0).AnswerHot(hot, t0.Add(5*time.Second)); ok {
		t.Fatal("answered a request whose max-age the entry exceeds")
	}
	if hot.Len() != 1 {
		t.Fatal("a too-old answer dropped an entry that is still fresh")
	}
	// Fresh until expires-at (max-age 60), then dropped.
	if _, ok := hotLookup(t, cfg, idx, req, t0).AnswerHot(hot, t0.Add(60*time.Second)); ok || hot.Len() != 0 || hot.Bytes() != 0 {
		t.Fatalf("expired entry: answered %v, table %d entries, %d bytes", ok, hot.Len(), hot.Bytes())
	}
}

func headerOf(headers [][2]string, name string) string {
	for _, kv := range headers {
		if kv[0] == name {
			return kv[1]
		}
	}
	return ""
}

func TestHotEntriesOtherScopesNeverHit(t *testing.T) {
	cfg := tierConfig(64)
	idx := cache.NewLocalIndex(sharedtest.New(), cfg)
	hot := cache.NewHotEntries(cfg)
	req := get("/orders")
	f, env := stored(t, cfg, req, "alice's", t0, 1)
	_ = idx.Fill(f, t0)
	hot.Keep(hotLookup(t, cfg, idx, req, t0), env)
	// bob's lookup has another K0: no copy, no entry key, no hit.
	bob := lookup(t, cfg, private, with(req, func(r *cache.Request) { r.Tenant = "bob" }))
	useLocal(t, idx, bob, t0, false, false)
	if _, ok := bob.AnswerHot(hot, t0); ok {
		t.Fatal("bob was answered from alice's entry")
	}
	// Keep refuses a value that is not the lookup's entry.
	other := get("/other")
	fo, _ := stored(t, cfg, other, "x", t0, 2)
	_ = idx.Fill(fo, t0)
	lo := hotLookup(t, cfg, idx, other, t0)
	hot.Keep(lo, env)
	if _, ok := lo.AnswerHot(hot, t0); ok || hot.Len() != 1 {
		t.Fatal("an entry was kept under another key")
	}
}

func TestHotEntriesBounds(t *testing.T) {
	cfg := tierConfig(64) // 2 entries, 4 KiB each, 64 KiB in all
	idx := cache.NewLocalIndex(sharedtest.New(), cfg)
	hot := cache.NewHotEntries(cfg)
	keep := func(path, body string) *cache.Request {
		req := get(path)
		f, env := stored(t, cfg, req, body, t0, 1)
		_ = idx.Fill(f, t0)
		hot.Keep(hotLookup(t, cfg, idx, req, t0), env)
		return req
	}
	hits := func(req *cache.Request) bool {
		_, ok := hotLookup(t, cfg, idx, req, t0).AnswerHot(hot, t0)
		return ok
	}
	a, b := keep("/a", "a"), keep("/b", "b")
	if !hits(a) { // a's reference bit is set, b's is not
		t.Fatal("a not kept")
	}
	c := keep("/c", "c")
	if hot.Len() != 2 || !hits(a) || hits(b) || !hits(c) {
		t.Fatalf("CLOCK: %d entries; a %v, b %v, c %v; want a and c", hot.Len(), hits(a), hits(b), hits(c))
	}
	// Over the entry size limit: not kept.
	big := keep("/big", string(make([]byte, 4<<10)))
	if hits(big) {
		t.Fatal("an entry over local_max_entry_bytes was kept")
	}
	// The byte budget holds whatever the count allows.
	cfg.LocalEntries, cfg.LocalBytes = 100, 3<<10
	hot = cache.NewHotEntries(cfg)
	for i := range 20 {
		keep("/n"+strconv.Itoa(i), string(make([]byte, 900)))
		if hot.Bytes() > cfg.LocalBytes {
			t.Fatalf("after %d entries: %d bytes held, budget %d", i+1, hot.Bytes(), cfg.LocalBytes)
		}
	}
	if hot.Len() < 1 || hot.Len() > 3 {
		t.Fatalf("%d entries of about 1 KiB in a 3 KiB budget", hot.Len())
	}
}

// TestHotEntriesStaleOnlyWithinStaleWhileRevalidate: a hot entry past
// max-age within its stale-while-revalidate window answers as a stale hit,
// served with X-Cache STALE; past the window it does not answer.
func TestHotEntriesStaleOnlyWithinStaleWhileRevalidate(t *testing.T) {
	cfg := tierConfig(64)
	idx := cache.NewLocalIndex(sharedtest.New(), cfg)
	hot := cache.NewHotEntries(cfg)
	req := get("/orders")
	l := lookup(t, cfg, private, req)
	l.UseIndex(nil, false)
	f, reason := l.Fill(&cache.Response{Status: 200, Headers: [][2]string{h("cache-control", "max-age=1, stale-while-revalidate=10")}}, t0, 1)
	if reason != "" {
		t.Fatalf("not stored: %s", reason)
	}
	f.Append([]byte("body"))
	_ = idx.Fill(f, t0)
	hot.Keep(hotLookup(t, cfg, idx, req, t0), f.Envelope())
	if hit, ok := hotLookup(t, cfg, idx, req, t0).AnswerHot(hot, t0); !ok || hit.Stale {
		t.Fatalf("fresh entry = %+v, %v; want a fresh hit", hit, ok)
	}
	hit, ok := hotLookup(t, cfg, idx, req, t0).AnswerHot(hot, t0.Add(3*time.Second))
	if !ok || !hit.Stale || string(hit.Body) != "body" || headerOf(hit.Headers, "x-cache") != "STALE" {
		t.Fatalf("within the window = %+v, %v; want a stale hit", hit, ok)
	}
	if _, ok := hotLookup(t, cfg, idx, req, t0).AnswerHot(hot, t0.Add(20*time.Second)); ok {
		t.Fatal("answered past stale-while-revalidate")
	}
}
