package ratelimit_test

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/filter/ratelimit"
)

func TestExpiredSlotIsReused(t *testing.T) {
	clock := newClock()
	store := newMemStore()
	l := newLimiter(t, store, oneBucket(1))
	p := policy(t, "p", per(3, time.Minute))
	if got := burst(l, p, "alice", 5, clock.Now()); got != 3 {
		t.Fatalf("alice admitted %d, want 3", got)
	}
	before := entryHashes(store.raw(bucket0))[0]
	clock.Advance(time.Minute) // alice's budget is full again: her entry has expired
	d := l.Decide(p, "bob", 1, clock.Now())
	if !d.Allowed || d.Faults != 0 || d.Remaining != 2 {
		t.Fatalf("bob: %+v, want a fresh entry without sharing", d)
	}
	if after := entryHashes(store.raw(bucket0))[0]; after == before || after == 0 {
		t.Fatal("bob did not take alice's expired entry")
	}
	// Alice comes back while bob is active: she shares bob's budget.
	if d := l.Decide(p, "alice", 1, clock.Now()); !d.Allowed || d.Faults != ratelimit.FaultShared || d.Remaining != 1 {
		t.Fatalf("alice: %+v, want admitted from bob's budget with FaultShared", d)
	}
	if got := burst(l, p, "bob", 5, clock.Now()); got != 1 {
		t.Fatalf("bob then admitted %d, want the 1 left in the shared budget", got)
	}
}

func TestSharingIsStricterNotLooser(t *testing.T) {
	clock := newClock()
	l := newLimiter(t, newMemStore(), oneBucket(1))
	p := policy(t, "p", per(10, time.Minute))
	total := 0
	for i := range 50 {
		if d := l.Decide(p, "key"+strconv.Itoa(i%5), 1, clock.Now()); d.Allowed {
			total++
		}
	}
	if total != 10 {
		t.Fatalf("five keys in one slot admitted %d together, want the one budget of 10", total)
	}
}

// A key that shared a neighbour's entry and later gets its own must not
// start from a fresh budget.
func TestMovingOutOfASharedEntryKeepsTheDebt(t *testing.T) {
	clock := newClock()
	store := newMemStore()
	l := newLimiter(t, store, oneBucket(2))
	p := policy(t, "p", per(5, 10*time.Second)) // I = 2 s, τ = 8 s
	l.Decide(p, "x", 1, clock.Now())
	l.Decide(p, "y", 1, clock.Now()) // both entries active, debt 2 s each
	if got := burst(l, p, "h", 10, clock.Now()); got != 4 {
		t.Fatalf("h admitted %d while sharing, want 4 (the neighbour's debt 2 s up to τ)", got)
	}
	v := store.raw(bucket0)
	if v[3] == 0 {
		t.Fatal("the shared entry is not marked")
	}
	clock.Advance(2 * time.Second) // the other entry expires; the shared one owes 8 s
	d := l.Decide(p, "h", 1, clock.Now())
	if !d.Allowed || d.Faults != 0 || d.Remaining != 0 {
		t.Fatalf("h in its own entry: %+v, want admitted once from the carried debt (Remaining 0)", d)
	}
	if d := l.Decide(p, "h", 1, clock.Now()); d.Allowed {
		t.Fatalf("h got a fresh budget after moving: %+v", d)
	}
}

// Many keys forced into a tiny table, each on its own adversarial schedule:
// no key ever gets more than the documented maximum, whatever it shares.
func TestCollisionsNeverAdmitMoreThanTheLimit(t *testing.T) {
	tables := []struct{ slots, ways int }{{1, 1}, {2, 2}, {4, 4}, {8, 2}}
	lim := per(5, 10*time.Second)
	for _, tb := range tables {
		t.Run(fmt.Sprintf("%d slots, %d ways", tb.slots, tb.ways), func(t *testing.T) {
			clock := newClock()
			l := newLimiter(t, newMemStore(), func(o *ratelimit.Options) { o.Slots, o.Ways = tb.slots, tb.ways })
			policies := []*ratelimit.Policy{policy(t, "p", lim), policy(t, "q", per(2, time.Second))}
			r := rand.New(rand.NewPCG(uint64(tb.slots), uint64(tb.ways)))
			const keys = 12
			times := make([][]int64, keys)
			shared := 0
			for range 20000 {
				if r.IntN(4) == 0 {
					clock.Advance(time.Duration(r.Int64N(int64(2 * time.Second))))
				}
				k := r.IntN(keys)
				p := policies[0]
				if k >= keys-2 { // two keys on another policy share slots too
					p = policies[1]
				}
				d := l.Decide(p, "key"+strconv.Itoa(k), 1, clock.Now())
				if d.Faults.Has(ratelimit.FaultShared) {
					shared++
				}
				if d.Faults&^ratelimit.FaultShared != 0 {
					t.Fatalf("unexpected faults %b", d.Faults)
				}
				if d.Allowed {
					times[k] = append(times[k], d.At().UnixNano())
				}
			}
			if tb.slots < keys && shared == 0 {
				t.Fatal("no request shared a slot; the test forces collisions")
			}
			for k := range keys - 2 {
				checkSpans(t, "key"+strconv.Itoa(k), times[k], lim)
			}
			for k := keys - 2; k < keys; k++ {
				checkSpans(t, "key"+strconv.Itoa(k), times[k], per(2, time.Second))
			}
		})
	}
}

func TestMemoryIsBoundedByTheTable(t *testing.T) {
	clock := newClock()
	store := newMemStore()
	l := newLimiter(t, store, func(o *ratelimit.Options) { o.Slots, o.Ways, o.Prefix = 256, 4, "t:" })
	p := policy(t, "p", per(10, time.Second))
	for i := range 100_000 {
		clock.Advance(time.Millisecond)
		l.Decide(p, "key-"+strconv.Itoa(i), 1, clock.Now())
	}
	if n := store.keys(); n != 64 {
		t.Fatalf("100000 distinct keys made %d shared-data keys, want all 64 buckets and no more", n)
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	for k, e := range store.m {
		idx, ok := strings.CutPrefix(k, "t:")
		if n, err := strconv.Atoi(idx); !ok || err != nil || n < 0 || n >= 64 || strconv.Itoa(n) != idx {
			t.Errorf("unexpected shared-data key %q", k)
		}
		if len(e.value) != ratelimit.RecordSize(4, ratelimit.DefaultWidth) {
			t.Errorf("%s: %d bytes", k, len(e.value))
		}
	}
}

func TestBucketCreationIsNotABlindWrite(t *testing.T) {
	// Another VM creates the bucket between our Get and our Set: our create
	// must fail and retry, not overwrite its admission.
	clock := newClock()
	mem := newMemStore()
	other := newLimiter(t, mem, oneBucket(1))
	p := policy(t, "p", per(1, time.Minute))
	racing := &hookStore{Store: mem, beforeSet: func(key string, cas uint32) {
		if cas == 0 {
			t.Errorf("bucket written with cas 0")
		}
	}}
	racing.afterGet = func(found bool) {
		if !found {
			if d := other.Decide(p, "alice", 1, clock.Now()); !d.Allowed {
				t.Fatal("the other VM was denied")
			}
		}
	}
	l := newLimiter(t, racing, oneBucket(1))
	d := l.Decide(p, "alice", 1, clock.Now())
	if d.Allowed || d.Retries != 1 {
		t.Fatalf("got %+v, want denied after one retry: the other VM took the only request", d)
	}
}
