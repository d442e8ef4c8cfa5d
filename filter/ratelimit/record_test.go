package ratelimit_test

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/portcullis/portcullis/filter/ratelimit"
)

func TestRecordSize(t *testing.T) {
	for _, c := range []struct{ ways, width, want int }{{4, 2, 112}, {4, 1, 80}, {1, 1, 32}, {8, 8, 592}} {
		if got := ratelimit.RecordSize(c.ways, c.width); got != c.want {
			t.Errorf("RecordSize(%d, %d) = %d, want %d", c.ways, c.width, got, c.want)
		}
	}
}

// ownEntry returns the index of the only used entry of a stored bucket.
func ownEntry(t *testing.T, value []byte) int {
	t.Helper()
	found := -1
	for i, h := range entryHashes(value) {
		if h != 0 {
			if found >= 0 {
				t.Fatal("more than one used entry")
			}
			found = i
		}
	}
	if found < 0 {
		t.Fatal("no used entry")
	}
	return found
}

func tatOffset(value []byte, entry, j int) int {
	width := int(value[2])
	return 16 + entry*(8+8*width) + 8 + 8*j
}

func setTAT(value []byte, entry, j int, at time.Time) {
	binary.LittleEndian.PutUint64(value[tatOffset(value, entry, j):], uint64(at.UnixNano()))
}

func tat(value []byte, entry, j int) time.Time {
	return time.Unix(0, int64(binary.LittleEndian.Uint64(value[tatOffset(value, entry, j):])))
}

func TestCorruptRecordsAreTreatedAsEmpty(t *testing.T) {
	valid := record{ways: 4, width: 2, updated: epoch}.bytes()
	edit := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), valid...)) }
	cases := []struct {
		name  string
		value []byte
	}{
		{"empty", []byte{}},
		{"one byte", []byte{1}},
		{"truncated", valid[:len(valid)-1]},
		{"too long", append(append([]byte(nil), valid...), 0)},
		{"header only", valid[:16]},
		{"version 0", edit(func(b []byte) []byte { b[0] = 0; return b })},
		{"version 2", edit(func(b []byte) []byte { b[0] = 2; return b })},
		{"other ways", record{ways: 2, width: 2}.bytes()},
		{"other width, same length", edit(func(b []byte) []byte { b[2] = 1; return b })},
		{"reserved bits", edit(func(b []byte) []byte { b[6] = 0x80; return b })},
		{"shared mask past the ways", edit(func(b []byte) []byte { b[3] = 0x10; return b })},
		{"json", []byte(`{"tat":1,"count":5}`)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := newMemStore()
			store.put(bucket0, tc.value)
			l := newLimiter(t, store, oneBucket(4))
			p := policy(t, "p", per(3, time.Minute))
			d := l.Decide(p, "alice", 1, epoch)
			if !d.Allowed || d.Remaining != 2 || d.Faults != ratelimit.FaultCorrupt {
				t.Fatalf("got %+v, want admitted as a fresh key with FaultCorrupt", d)
			}
			if got := store.raw(bucket0); len(got) != len(valid) || got[0] != 1 {
				t.Fatalf("record not rewritten: %x", got)
			}
			if got := burst(l, p, "alice", 10, epoch); got != 2 {
				t.Fatalf("then admitted %d, want the 2 remaining", got)
			}
			if d := l.Decide(p, "alice", 1, epoch); d.Faults != 0 {
				t.Fatalf("faults after the repair: %b", d.Faults)
			}
		})
	}
}

func TestEmptyEntryWithDebtIsIgnored(t *testing.T) {
	store := newMemStore()
	// Entry 0 has no hash but claims debt: it is empty, and free for a key.
	store.put(bucket0, record{ways: 1, width: 2, updated: epoch, entries: []entry{{0, []time.Time{epoch.Add(time.Hour)}}}}.bytes())
	l := newLimiter(t, store, oneBucket(1))
	if d := l.Decide(policy(t, "p", per(2, time.Minute)), "alice", 1, epoch); !d.Allowed || d.Remaining != 1 || d.Faults != 0 {
		t.Fatalf("got %+v, want a fresh key", d)
	}
}

func TestFarFutureTATIsClamped(t *testing.T) {
	clock := newClock()
	store := newMemStore()
	l := newLimiter(t, store, oneBucket(4))
	p := policy(t, "p", per(10, time.Minute)) // I = 6 s
	l.Decide(p, "alice", 1, clock.Now())
	v := store.raw(bucket0)
	setTAT(v, ownEntry(t, v), 0, epoch.Add(10*24*time.Hour))
	store.put(bucket0, v)

	d := l.Decide(p, "alice", 1, clock.Now())
	if d.Allowed || d.Faults != ratelimit.FaultClamped || d.Reset != time.Minute || d.RetryAfter != 6*time.Second {
		t.Fatalf("got %+v, want denied as an exhausted budget (Reset 1m, RetryAfter 6s) with FaultClamped", d)
	}
	if d := l.Decide(p, "alice", 1, clock.Now()); d.Faults != 0 || d.RetryAfter != 6*time.Second {
		t.Fatalf("the clamp was not persisted: %+v", d)
	}
	clock.Advance(6 * time.Second)
	if d := l.Decide(p, "alice", 1, clock.Now()); !d.Allowed || d.Faults != 0 {
		t.Fatalf("after one interval: %+v, want admitted", d)
	}
}

func TestForeignFarFutureEntryExpiresWithinAMonth(t *testing.T) {
	clock := newClock()
	store := newMemStore()
	// One way, held by a stranger whose TAT is a year away.
	store.put(bucket0, record{ways: 1, width: 1, updated: epoch, entries: []entry{{12345, []time.Time{epoch.AddDate(1, 0, 0)}}}}.bytes())
	l := newLimiter(t, store, oneBucket(1), func(o *ratelimit.Options) { o.Width = 1 })
	p := policy(t, "p", per(10, time.Minute))
	d := l.Decide(p, "alice", 1, clock.Now())
	if d.Allowed || !d.Faults.Has(ratelimit.FaultClamped|ratelimit.FaultShared) {
		t.Fatalf("got %+v, want denied (sharing a huge debt) with FaultClamped|FaultShared", d)
	}
	// The longest stored state is a calendar month's quota: nothing lies
	// further ahead than that.
	clock.Advance(ratelimit.MaxCalendarWindow + ratelimit.MaxRequests + 1)
	if d := l.Decide(p, "alice", 1, clock.Now()); !d.Allowed || d.Faults != 0 || d.Remaining != 9 {
		t.Fatalf("a month later: %+v, want the slot reused by a fresh key", d)
	}
	if h := entryHashes(store.raw(bucket0))[0]; h == 12345 {
		t.Fatal("the stranger still holds the slot")
	}
}

func TestClockBackwards(t *testing.T) {
	p100 := func(t *testing.T) *ratelimit.Policy { return policy(t, "p", per(100, time.Minute)) } // I = 600 ms

	t.Run("small step: time stands still", func(t *testing.T) {
		clock := newClock()
		l := newLimiter(t, newMemStore())
		p := p100(t)
		burst(l, p, "k", 50, clock.Now())
		clock.Advance(-500 * time.Millisecond)
		d := l.Decide(p, "k", 1, clock.Now())
		if !d.Allowed || d.Faults != 0 || d.Remaining != 49 || d.Reset != 30600*time.Millisecond {
			t.Fatalf("got %+v, want admitted as at the last write (Remaining 49, Reset 30.6s), no fault", d)
		}
		if !d.At().Equal(epoch) {
			t.Fatalf("decided at %v, want the record's time %v", d.At(), epoch)
		}
	})

	t.Run("large step: debts re-based", func(t *testing.T) {
		clock := newClock()
		store := newMemStore()
		l := newLimiter(t, store)
		p := p100(t)
		burst(l, p, "k", 50, clock.Now())
		clock.Advance(-time.Hour)
		d := l.Decide(p, "k", 1, clock.Now())
		if !d.Allowed || d.Faults != ratelimit.FaultClockBackwards || d.Remaining != 49 || d.Reset != 30600*time.Millisecond {
			t.Fatalf("got %+v, want admitted with the debt kept (Remaining 49, Reset 30.6s) and FaultClockBackwards", d)
		}
		if got := burst(l, p, "k", 100, clock.Now()); got != 49 {
			t.Fatalf("then admitted %d, want 49", got)
		}
		if d := l.Decide(p, "k", 1, clock.Now()); d.Faults != 0 || d.RetryAfter != 600*time.Millisecond {
			t.Fatalf("after the re-base: %+v, want no fault and RetryAfter 600ms", d)
		}
	})

	t.Run("large step on an exhausted key", func(t *testing.T) {
		clock := newClock()
		l := newLimiter(t, newMemStore())
		p := p100(t)
		burst(l, p, "k", 100, clock.Now())
		clock.Advance(-24 * time.Hour)
		d := l.Decide(p, "k", 1, clock.Now())
		if d.Allowed || d.Faults != ratelimit.FaultClockBackwards || d.RetryAfter != 600*time.Millisecond {
			t.Fatalf("got %+v, want denied with RetryAfter 600ms (neither a day's wait nor a fresh burst)", d)
		}
		if d := l.Decide(p, "k", 1, clock.Now()); d.Faults != 0 {
			t.Fatalf("the re-base was not persisted: %+v", d)
		}
		clock.Advance(600 * time.Millisecond)
		if d := l.Decide(p, "k", 1, clock.Now()); !d.Allowed {
			t.Fatalf("one interval later: %+v, want admitted", d)
		}
	})

	t.Run("record written in the far future", func(t *testing.T) {
		clock := newClock()
		store := newMemStore()
		future := epoch.AddDate(200, 0, 0)
		store.put(bucket0, record{ways: 2, width: 1, updated: future, entries: []entry{
			{99, []time.Time{future.Add(5 * time.Second)}},
			{98, []time.Time{future.Add(-time.Second)}},
		}}.bytes())
		l := newLimiter(t, store, oneBucket(2), func(o *ratelimit.Options) { o.Width = 1 })
		d := l.Decide(policy(t, "p", per(1, time.Second)), "alice", 1, clock.Now())
		if !d.Allowed || d.Faults != ratelimit.FaultClockBackwards {
			t.Fatalf("got %+v, want admitted into the expired entry with FaultClockBackwards", d)
		}
		v := store.raw(bucket0)
		if e := entryHashes(v); e[0] != 99 || !tat(v, 0, 0).Equal(epoch.Add(5*time.Second)) {
			t.Fatalf("entry 0 = %d until %v, want 99 re-based to now+5s", e[0], tat(v, 0, 0))
		}
	})
}

func TestPolicyChangeKeepsDebt(t *testing.T) {
	clock := newClock()
	l := newLimiter(t, newMemStore())
	burst(l, policy(t, "p", per(100, time.Minute)), "k", 100, clock.Now()) // debt 60 s
	// A reload tightens the same policy to 10 per minute (capacity 60 s): the
	// key is exhausted under the new limit, not handed a fresh burst.
	tight := policy(t, "p", per(10, time.Minute))
	if d := l.Decide(tight, "k", 1, clock.Now()); d.Allowed || d.RetryAfter != 6*time.Second {
		t.Fatalf("got %+v, want denied with RetryAfter 6s", d)
	}
	// Tightening further to 5 per minute clamps the debt once.
	if d := l.Decide(policy(t, "p", per(5, 30*time.Second)), "k", 1, clock.Now()); d.Allowed || d.Faults != ratelimit.FaultClamped {
		t.Fatalf("got %+v, want denied with FaultClamped", d)
	}
}
