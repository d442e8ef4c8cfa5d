package ratelimit_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/portcullis/portcullis/filter/ratelimit"
)

func TestColdBurstAdmitsExactlyN(t *testing.T) {
	cases := []struct {
		limit    ratelimit.Limit
		interval time.Duration // ⌈T/N⌉
	}{
		{per(1, time.Second), time.Second},
		{per(2, time.Second), 500 * time.Millisecond},
		{per(3, time.Second), 333333334},
		{per(10, time.Minute), 6 * time.Second},
		{per(100, time.Minute), 600 * time.Millisecond},
		{per(1000, time.Hour), 3600 * time.Millisecond},
		{per(7, 24*time.Hour), 12342857142858},
		{per(5000, time.Second), 200 * time.Microsecond},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%d per %s", tc.limit.Requests, tc.limit.Window), func(t *testing.T) {
			clock := newClock()
			l := newLimiter(t, newMemStore())
			p := policy(t, "default", tc.limit)
			n := tc.limit.Requests
			for i := range n {
				d := l.Decide(p, "alice", 1, clock.Now())
				if !d.Allowed || d.Remaining != n-1-i || d.Faults != 0 {
					t.Fatalf("request %d: %+v, want admitted with Remaining %d", i+1, d, n-1-i)
				}
				if want := time.Duration(i+1) * tc.interval; d.Reset != want {
					t.Fatalf("request %d: Reset = %v, want %v", i+1, d.Reset, want)
				}
			}
			for range 5 {
				d := l.Decide(p, "alice", 1, clock.Now())
				if d.Allowed || d.Remaining != 0 || d.RetryAfter != tc.interval {
					t.Fatalf("past the burst: %+v, want denied, Remaining 0, RetryAfter %v", d, tc.interval)
				}
			}
		})
	}
}

func TestRefill(t *testing.T) {
	clock := newClock()
	l := newLimiter(t, newMemStore())
	p := policy(t, "default", per(100, time.Minute)) // I = 600 ms
	if got := burst(l, p, "alice", 150, clock.Now()); got != 100 {
		t.Fatalf("cold burst admitted %d, want 100", got)
	}
	steps := []struct {
		advance    time.Duration
		allowed    bool
		remaining  int64
		reset      time.Duration
		retryAfter time.Duration
	}{
		{0, false, 0, time.Minute, 600 * time.Millisecond},
		{599 * time.Millisecond, false, 0, time.Minute - 599*time.Millisecond, time.Millisecond},
		{time.Millisecond, true, 0, time.Minute, 0}, // one interval later: exactly one more
		{0, false, 0, time.Minute, 600 * time.Millisecond},
		{6 * time.Second, true, 9, 54*time.Second + 600*time.Millisecond, 0}, // ten intervals: ten requests
		{time.Minute, true, 99, 600 * time.Millisecond, 0},                   // a full window: budget full again
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		d := l.Decide(p, "alice", 1, clock.Now())
		if d.Allowed != s.allowed || d.Remaining != s.remaining || d.Reset != s.reset || d.RetryAfter != s.retryAfter {
			t.Fatalf("step %d (+%v): got allowed=%v remaining=%d reset=%v retryAfter=%v, want %v %d %v %v",
				i, clock.Since(), d.Allowed, d.Remaining, d.Reset, d.RetryAfter, s.allowed, s.remaining, s.reset, s.retryAfter)
		}
	}
}

func TestSteadyRateIsOnePerInterval(t *testing.T) {
	clock := newClock()
	l := newLimiter(t, newMemStore())
	p := policy(t, "default", per(3, time.Second)) // I = 333333334 ns
	burst(l, p, "k", 3, clock.Now())
	for i := range 30 {
		clock.Advance(333333333)
		if d := l.Decide(p, "k", 1, clock.Now()); d.Allowed {
			t.Fatalf("round %d: admitted 1 ns before the interval", i)
		}
		clock.Advance(1)
		if d := l.Decide(p, "k", 1, clock.Now()); !d.Allowed || d.Remaining != 0 {
			t.Fatalf("round %d: %+v, want exactly one admitted per interval", i, d)
		}
	}
}

func TestMultipleLimits(t *testing.T) {
	clock := newClock()
	store := newMemStore()
	l := newLimiter(t, store)
	p := policy(t, "api", per(2, time.Second), per(5, 10*time.Second)) // I = 500 ms and 2 s
	type want struct {
		allowed    bool
		limit      string
		remaining  int64
		reset      time.Duration
		retryAfter time.Duration
	}
	check := func(step string, w want) {
		t.Helper()
		d := l.Decide(p, "alice", 1, clock.Now())
		if d.Allowed != w.allowed || d.Limit.Name != w.limit || d.Remaining != w.remaining || d.Reset != w.reset || d.RetryAfter != w.retryAfter {
			t.Fatalf("%s: got %v %s r=%d reset=%v retry=%v, want %+v", step, d.Allowed, d.Limit.Name, d.Remaining, d.Reset, d.RetryAfter, w)
		}
	}
	check("1st", want{true, "api-1s", 1, 500 * time.Millisecond, 0})
	check("2nd", want{true, "api-1s", 0, time.Second, 0})
	check("3rd", want{false, "api-1s", 0, time.Second, 500 * time.Millisecond})

	// Denials by the per-second limit charge neither limit.
	before, sets := store.raw(bucketOf(t, store)), store.sets
	for range 100 {
		l.Decide(p, "alice", 1, clock.Now())
	}
	if !bytes.Equal(store.raw(bucketOf(t, store)), before) || store.sets != sets {
		t.Fatal("denied requests changed the record")
	}

	clock.Advance(time.Second) // per-second budget full; 10 s limit owes 3 s (remaining 3)
	check("t=1s #1", want{true, "api-1s", 1, 500 * time.Millisecond, 0})
	check("t=1s #2", want{true, "api-1s", 0, time.Second, 0})
	check("t=1s #3", want{false, "api-1s", 0, time.Second, 500 * time.Millisecond})
	clock.Advance(500 * time.Millisecond)
	// Both limits at 0 remaining: the tie goes to the longer reset.
	check("t=1.5s #1", want{true, "api-10s", 0, 8500 * time.Millisecond, 0})
	// Both deny with the same wait: the earlier limit is reported.
	check("t=1.5s #2", want{false, "api-1s", 0, time.Second, 500 * time.Millisecond})
	clock.Advance(500 * time.Millisecond)
	check("t=2s #1", want{true, "api-10s", 0, 10 * time.Second, 0})
	// The per-second limit waits 0.5 s, the 10 s one 2 s: it decides.
	check("t=2s #2", want{false, "api-10s", 0, 10 * time.Second, 2 * time.Second})
}

// bucketOf returns the only shared-data key in store.
func bucketOf(t *testing.T, store *memStore) string {
	t.Helper()
	store.mu.Lock()
	defer store.mu.Unlock()
	if len(store.m) != 1 {
		t.Fatalf("store holds %d keys, want 1", len(store.m))
	}
	for k := range store.m {
		return k
	}
	return ""
}

func TestMultipleLimitsDeniedRetryIsTheLongestWait(t *testing.T) {
	clock := newClock()
	l := newLimiter(t, newMemStore())
	p := policy(t, "api", per(10, time.Second), per(12, time.Hour)) // I = 100 ms and 300 s
	if got := burst(l, p, "k", 10, clock.Now()); got != 10 {
		t.Fatalf("admitted %d, want 10", got)
	}
	clock.Advance(time.Second)
	if got := burst(l, p, "k", 10, clock.Now()); got != 2 {
		t.Fatalf("second second admitted %d, want the hour's last 2", got)
	}
	d := l.Decide(p, "k", 1, clock.Now())
	// Hour limit owes 12·300 s − 1 s; it admits again when the debt is 11·300 s.
	if d.Allowed || d.Limit.Window != time.Hour || d.RetryAfter != 299*time.Second {
		t.Fatalf("got %+v, want denied by the hour limit, RetryAfter 299s", d)
	}
	clock.Advance(d.RetryAfter)
	if d := l.Decide(p, "k", 1, clock.Now()); !d.Allowed {
		t.Fatalf("after RetryAfter: %+v, want admitted", d)
	}
}

func TestKeysAndPoliciesAreIndependent(t *testing.T) {
	clock := newClock()
	l := newLimiter(t, newMemStore())
	free := policy(t, "free", per(3, time.Minute))
	pro := policy(t, "pro", per(5, time.Minute))
	for _, key := range []string{"alice", "bob", "carol", ""} {
		if got := burst(l, free, key, 10, clock.Now()); got != 3 {
			t.Errorf("free %q admitted %d, want 3", key, got)
		}
		if got := burst(l, pro, key, 10, clock.Now()); got != 5 {
			t.Errorf("pro %q admitted %d, want 5", key, got)
		}
	}
}

func TestPolicyWiderThanTableFailsMode(t *testing.T) {
	for _, mode := range []ratelimit.FailMode{ratelimit.FailOpen, ratelimit.FailClosed} {
		store := newMemStore()
		l := newLimiter(t, store, func(o *ratelimit.Options) { o.Width, o.FailMode = 1, mode })
		p := policy(t, "api", per(1, time.Second), per(10, time.Minute))
		d := l.Decide(p, "k", 1, epoch)
		if d.Allowed != (mode == ratelimit.FailOpen) || !d.Faults.Has(ratelimit.FaultPolicy) || !d.Degraded() || store.keys() != 0 {
			t.Errorf("mode %d: %+v, want the fail mode with FaultPolicy and no write", mode, d)
		}
	}
	if w := ratelimit.WidthFor(policy(t, "a", per(1, time.Second)), policy(t, "b", per(1, time.Second), per(2, time.Minute))); w != 2 {
		t.Errorf("WidthFor = %d, want 2", w)
	}
}
