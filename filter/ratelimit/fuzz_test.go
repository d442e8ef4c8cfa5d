package ratelimit_test

import (
	"testing"
	"time"

	"github.com/portcullis/portcullis/filter/ratelimit"
)

// FuzzRecord feeds arbitrary bytes as the stored bucket (4 ways, width 2,
// as testdata/fuzz/FuzzRecord holds), an arbitrary key and an arbitrary
// clock offset from the epoch, and checks that deciding never panics, that
// every answer is sane, and that any repair is persisted.
func FuzzRecord(f *testing.F) {
	f.Add(record{ways: 4, width: 2, updated: epoch}.bytes(), "alice", int64(0))
	f.Add([]byte{}, "", int64(-1))
	f.Fuzz(func(t *testing.T, value []byte, key string, offset int64) {
		offset %= int64(400 * 24 * time.Hour) // the clock stays within about a year of the epoch
		clock := newClock()
		clock.Advance(time.Duration(offset))
		store := newMemStore()
		store.put(bucket0, value)
		l := newLimiter(t, store, oneBucket(4))
		policies := []*ratelimit.Policy{
			policy(t, "p", per(3, time.Second)),
			policy(t, "q", per(10, time.Second), per(100, 24*time.Hour)),
		}
		for round := range 2 {
			for _, p := range policies {
				d := l.Decide(p, key, 1, clock.Now())
				check(t, p, d)
				if round == 1 && d.Faults&(ratelimit.FaultCorrupt|ratelimit.FaultClockBackwards) != 0 {
					t.Fatalf("repair not persisted: faults %b", d.Faults)
				}
			}
		}
		// Either rewritten, or left as it was because it was readable.
		if v := store.raw(bucket0); len(v) != ratelimit.RecordSize(4, 2) || v[0] != 1 {
			t.Fatalf("stored record is malformed: %x", v)
		}
	})
}

func check(t *testing.T, p *ratelimit.Policy, d ratelimit.Decision) {
	t.Helper()
	if d.Degraded() {
		t.Fatalf("degraded decision on a working store: %b", d.Faults)
	}
	var limit *ratelimit.Limit
	for _, l := range p.Limits() {
		if l == d.Limit {
			limit = &l
		}
	}
	switch {
	case limit == nil:
		t.Fatalf("reported limit %+v is not in the policy", d.Limit)
	case d.Remaining < 0 || d.Remaining > limit.Requests || d.Allowed && d.Remaining == limit.Requests:
		t.Fatalf("Remaining %d of %d", d.Remaining, limit.Requests)
	case d.Reset < 0 || d.RetryAfter < 0:
		t.Fatalf("negative Reset %v or RetryAfter %v", d.Reset, d.RetryAfter)
	case d.Allowed && d.RetryAfter != 0, !d.Allowed && d.RetryAfter == 0:
		t.Fatalf("allowed=%v with RetryAfter %v", d.Allowed, d.RetryAfter)
	case d.Reset > ratelimit.MaxCalendarWindow+2*time.Second:
		t.Fatalf("Reset %v beyond any debt", d.Reset)
	}
}
