package fleet_test

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/portcullis/portcullis/filter/fleet"
	"github.com/portcullis/portcullis/filter/shared"
	"github.com/portcullis/portcullis/filter/shared/sharedtest"
)

// rateService counts like envoyproxy/ratelimit: fixed windows aligned to the
// Unix epoch, hits_addend added whole (INCRBY) before comparing, the whole
// call refused when the count then exceeds the limit, and the reset
// reported in whole seconds from the second the call is served in.
type rateService struct {
	limit  int64
	window int64 // seconds
	counts map[int64]int64
}

func (s *rateService) serve(hits int64, at time.Time) fleet.Answer {
	sec := at.Unix()
	w := sec / s.window
	s.counts[w] += hits
	a := fleet.Answer{Limited: true, Limit: s.limit, Window: time.Duration(s.window) * time.Second,
		Reset: time.Duration(s.window-sec%s.window) * time.Second}
	if s.counts[w] > s.limit {
		a.Over = true
		return a
	}
	a.Remaining = s.limit - s.counts[w]
	return a
}

// pendingCall is a ShouldRateLimit call on its way.
type pendingCall struct {
	leases *fleet.Leases
	lease  bool // asked for a lease of hits
	hits   int64
	spent  int64 // 1 for a request waiting on the call, 0 for a renewal (already admitted)
	asked  time.Time
	due    time.Time // answered from then on
	lost   bool      // never answered: the worker's in-flight mark must expire
}

// decide is the gateway's flow for one request of cost 1 at a worker: spent
// from the lease (and then maybe a renewal call), else a call that may
// reserve a lease, else a plain call. It returns whether the request was
// admitted at once, and the call to make (nil for none).
func decide(l *fleet.Leases, maxBatch int64, now time.Time) (bool, *pendingCall) {
	const inFlight = 100 * time.Millisecond
	if spent, ok := l.Spend("k", "r", 1, now); ok {
		if !spent.Renew {
			return true, nil
		}
		if hits, ok := l.Reserve("k", "r", 0, maxBatch, inFlight, now); ok {
			return true, &pendingCall{leases: l, lease: true, hits: hits, asked: now}
		}
		return true, nil
	}
	hits, lease := l.Reserve("k", "r", 1, maxBatch, inFlight, now)
	if !lease {
		hits = 1
	}
	return false, &pendingCall{leases: l, lease: lease, hits: hits, spent: 1, asked: now}
}

// answer hands the service's answer a to c at now, and reports whether it
// admitted the request waiting on it.
func (c *pendingCall) answer(t *testing.T, a fleet.Answer, now time.Time) bool {
	switch {
	case c.lease && !a.Over:
		if err := c.leases.Grant("k", "r", c.hits, c.spent, c.asked, a, now); err != nil {
			t.Fatal(err)
		}
	case c.lease:
		c.leases.Release("k", "r")
	}
	return c.spent > 0 && !a.Over
}

// TestLeasesNeverAdmitMoreThanTheFleetLimit runs several Envoys of several
// workers each against one service, with calls answered late (up to the
// longest timeout), out of order or never, served anywhere between being asked and answered, and checks
// that no fixed window of the service ever sees more admissions than its
// limit — counting an admission in the window of the moment it was made.
func TestLeasesNeverAdmitMoreThanTheFleetLimit(t *testing.T) {
	for seed := range uint64(60) {
		rng := rand.New(rand.NewPCG(seed, 7))
		limit := int64(1 + rng.IntN(200))
		svc := &rateService{limit: limit, window: int64(1 + rng.IntN(5)), counts: map[int64]int64{}}
		envoys, workers := 1+rng.IntN(4), 1+rng.IntN(4)
		var all []*fleet.Leases
		for range envoys {
			store := sharedtest.New()
			for range workers {
				all = append(all, fleet.NewLeases(store, 1+rng.IntN(3)))
			}
		}
		maxBatch := int64(2 + rng.IntN(100))
		now := time.Unix(1_700_000_000, 0).Add(time.Duration(rng.IntN(1000)) * time.Millisecond)
		admitted := map[int64]int64{}
		var pending []pendingCall
		admit := func(at time.Time, cost int64) { admitted[at.Unix()/svc.window] += cost }
		for range 20000 {
			now = now.Add(time.Duration(rng.IntN(3)) * time.Millisecond)
			if i := rng.IntN(len(pending) + 1); i < len(pending) && !now.Before(pending[i].due) {
				c := pending[i]
				pending = append(pending[:i], pending[i+1:]...)
				if c.lost {
					continue
				}
				served := c.asked.Add(time.Duration(rng.Int64N(int64(now.Sub(c.asked)) + 1)))
				if c.answer(t, svc.serve(c.hits, served), now) {
					admit(served, 1) // the fleet admits when it counts, as for Envoy's own filter
				}
				continue
			}
			admitted, call := decide(all[rng.IntN(len(all))], maxBatch, now)
			if admitted {
				admit(now, 1)
			}
			if call == nil {
				continue
			}
			delay := time.Duration(rng.IntN(6)) * time.Millisecond
			if rng.IntN(20) == 0 { // slow answers, up to the longest timeout the config allows
				delay = time.Duration(rng.IntN(5000)) * time.Millisecond
			}
			call.due, call.lost = now.Add(delay), rng.IntN(50) == 0
			pending = append(pending, *call)
		}
		for w, n := range admitted {
			if n > limit {
				t.Fatalf("seed %d: window %d admitted %d > limit %d (window %d s, %d Envoys × %d workers, max batch %d)",
					seed, w, n, limit, svc.window, envoys, workers, maxBatch)
			}
		}
	}
}

// One Envoy's key at a high and a modest rate over two workers, each call
// answered 3 ms later (meanwhile the requests go on): once the batch has
// grown, a call is made for at most one request in 20 — a lease is renewed
// while half of it is left, so the requests during a call are admitted from
// the rest rather than each making a plain call, and the next batch is sized
// on what was spent since the last grant — and the budget reserved is
// spent, not lost.
func TestLeaseBatchGrowsWithTheRate(t *testing.T) {
	const maxBatch, latency = 50, 3 * time.Millisecond
	for _, tc := range []struct {
		name     string
		interval time.Duration
		requests int
	}{
		{"4000/s", 250 * time.Microsecond, 40000},
		{"20/s", 50 * time.Millisecond, 4000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := &rateService{limit: 1_000_000_000, window: 3600, counts: map[int64]int64{}}
			store := sharedtest.New()
			workers := []*fleet.Leases{fleet.NewLeases(store, 0), fleet.NewLeases(store, 0)}
			now := time.Unix(1_700_000_000, 0)
			var pending []pendingCall
			calls, admitted := 0, 0
			for i := range tc.requests {
				now = now.Add(tc.interval)
				for len(pending) > 0 && !now.Before(pending[0].due) {
					c := pending[0]
					pending = pending[1:]
					if c.answer(t, svc.serve(c.hits, c.asked), now) {
						admitted++
					}
				}
				ok, call := decide(workers[i%2], maxBatch, now)
				if ok {
					admitted++
				}
				if call != nil {
					calls++
					call.due = now.Add(latency)
					pending = append(pending, *call)
				}
			}
			share := float64(calls) / float64(tc.requests)
			t.Logf("%d calls for %d requests: %.4f per request", calls, tc.requests, share)
			if share > 0.05 {
				t.Fatalf("%d calls for %d requests (%.3f per request), want ≤ 0.05", calls, tc.requests, share)
			}
			var counted int64
			for _, n := range svc.counts {
				counted += n
			}
			if lost := counted - int64(admitted); lost > 2*maxBatch {
				t.Fatalf("the service counted %d hits for %d admitted: %d reserved and not spent, want at most the batch in hand and the one asked for (%d)",
					counted, admitted, lost, 2*maxBatch)
			}
		})
	}
}

// A pair near its limit: each batch is at most half of what the service had
// left, so one Envoy alone admits the whole limit — never a batch refused
// whole while hits were left.
func TestLeaseAloneAdmitsTheWholeLimit(t *testing.T) {
	svc := &rateService{limit: 500, window: 3600, counts: map[int64]int64{}}
	l := fleet.NewLeases(sharedtest.New(), 0)
	now := time.Unix(1_700_000_000, 0)
	admitted := 0
	for range 2000 {
		now = now.Add(time.Millisecond)
		ok, call := decide(l, 100, now)
		if ok {
			admitted++
		}
		if call != nil && call.answer(t, svc.serve(call.hits, now), now) {
			admitted++
		}
	}
	if admitted != 500 {
		t.Fatalf("admitted %d of a 500 limit", admitted)
	}
}

func TestLeaseSpendRules(t *testing.T) {
	store := sharedtest.New()
	l := fleet.NewLeases(store, 1) // one slot: every pair collides
	now := time.Unix(1_700_000_000, 0)
	if _, ok := l.Spend("k", "r", 1, now); ok {
		t.Fatal("spent a lease never granted")
	}
	hits, ok := l.Reserve("k", "r", 3, 50, time.Second, now)
	if !ok || hits != 3 {
		t.Fatalf("first reserve: %d, %v; want the cost (3), to learn the limit", hits, ok)
	}
	if _, ok := fleet.NewLeases(store, 1).Reserve("k", "r", 1, 50, time.Second, now); ok {
		t.Fatal("a second worker reserved while the first call was in flight")
	}
	if _, ok := fleet.NewLeases(store, 1).Reserve("k", "r", 1, 50, time.Second, now.Add(time.Second)); !ok {
		t.Fatal("an in-flight mark outlived its deadline")
	}
	a := fleet.Answer{Limited: true, Limit: 100, Window: time.Minute, Remaining: 90, Reset: 10 * time.Second}
	if err := l.Grant("k", "r", 10, 3, now, a, now); err != nil {
		t.Fatal(err)
	}
	s, ok := l.Spend("k", "r", 7, now)
	if !ok || s.Remaining != 90 || s.Limit != 100 || s.Window != time.Minute || s.Reset != 10*time.Second {
		t.Fatalf("spend 7 of 7: %+v, %v", s, ok)
	}
	if _, ok := l.Spend("k", "r", 1, now); ok {
		t.Fatal("spent more than was granted")
	}
	if err := l.Grant("k", "r", 5, 1, now, a, now); err != nil {
		t.Fatal(err)
	}
	if _, ok := l.Spend("other", "r", 1, now); ok {
		t.Fatal("another pair spent the lease in its slot")
	}
	if _, ok := l.Reserve("other", "r", 1, 50, time.Second, now); ok {
		t.Fatal("another pair displaced a live lease")
	}
	if _, ok := l.Spend("k", "r", 1, now.Add(9*time.Second)); ok {
		t.Fatal("spent a lease within LeaseMargin of the window's end")
	}
	if _, ok := l.Reserve("other", "r", 1, 50, time.Second, now.Add(9*time.Second)); !ok {
		t.Fatal("an expired lease kept its slot")
	}
}

func TestLeaseRecordOfAnotherVersionIsIgnored(t *testing.T) {
	store := sharedtest.New()
	l := fleet.NewLeases(store, 1)
	if err := store.Set("pc:rll:0", []byte("not a lease record"), shared.CreateCAS); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	if _, ok := l.Spend("k", "r", 1, now); ok {
		t.Fatal("spent from a record that is not a lease")
	}
	if _, ok := l.Reserve("k", "r", 1, 50, time.Second, now); !ok {
		t.Fatal("an unreadable record blocked the slot")
	}
}

// A slow answer: the service counted the batch when it was asked, and its
// window ends then plus the reset it reported, however late the answer
// arrives.
func TestLeaseOfASlowAnswerEndsWithTheServiceWindow(t *testing.T) {
	l := fleet.NewLeases(sharedtest.New(), 0)
	asked := time.Unix(1_700_000_000, 0)
	if _, ok := l.Reserve("k", "r", 1, 50, 5*time.Second, asked); !ok {
		t.Fatal("no lease asked for")
	}
	a := fleet.Answer{Limited: true, Limit: 100, Window: 5 * time.Second, Remaining: 90, Reset: 5 * time.Second}
	if err := l.Grant("k", "r", 10, 1, asked, a, asked.Add(3*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, ok := l.Spend("k", "r", 1, asked.Add(3900*time.Millisecond)); !ok {
		t.Fatal("the lease is not spendable inside its window")
	}
	if _, ok := l.Spend("k", "r", 1, asked.Add(4*time.Second)); ok {
		t.Fatal("spent a lease past the service's window (asked + reset − LeaseMargin)")
	}
}

// In a new window the service's count is not known: a batch is at most half
// the limit, however large the last one was, so it cannot be refused whole
// by a fresh window.
func TestLeaseInANewWindowAsksAtMostHalfTheLimit(t *testing.T) {
	l := fleet.NewLeases(sharedtest.New(), 0)
	asked := time.Unix(1_700_000_000, 0)
	if _, ok := l.Reserve("k", "r", 1, 10000, time.Second, asked); !ok {
		t.Fatal("no lease asked for")
	}
	a := fleet.Answer{Limited: true, Limit: 100, Window: 10 * time.Second, Remaining: 54, Reset: 1500 * time.Millisecond}
	if err := l.Grant("k", "r", 45, 1, asked, a, asked); err != nil {
		t.Fatal(err)
	}
	// The window ended 0.1 s ago; a batch of 45 lasting 1.6 s sizes the
	// next at 56 for the 2 s target.
	next := asked.Add(1600 * time.Millisecond)
	hits, ok := l.Reserve("k", "r", 1, 10000, time.Second, next)
	if !ok || hits > 50 {
		t.Fatalf("first batch of a new window: %d (%v), want at most half the limit of 100", hits, ok)
	}
}

// 256 keys, each holding a live lease, in the default table: two choices
// per key leave (almost) none crowded out into plain calls, where one slot
// per key would crowd out about 8 by the birthday bound.
func TestLeaseKeysAreRarelyCrowdedOut(t *testing.T) {
	l := fleet.NewLeases(sharedtest.New(), 0)
	now := time.Unix(1_700_000_000, 0)
	a := fleet.Answer{Limited: true, Limit: 1000, Window: time.Hour, Remaining: 900, Reset: time.Hour}
	crowded := 0
	for i := range 256 {
		key := "key-" + strconv.Itoa(i)
		hits, ok := l.Reserve(key, "r", 1, 50, time.Second, now)
		if !ok {
			crowded++
			continue
		}
		if err := l.Grant(key, "r", hits+10, 1, now, a, now); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 256 {
		if _, ok := l.Spend("key-"+strconv.Itoa(i), "r", 1, now); !ok {
			crowded++
		}
	}
	t.Logf("%d of 256 keys without a lease", crowded/2)
	if crowded > 2 {
		t.Fatalf("%d of 256 keys' requests found no lease of theirs, want at most 1 key", crowded)
	}
}
