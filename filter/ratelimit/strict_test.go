package ratelimit_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/filter/ratelimit"
)

func strict(n int64, window time.Duration) ratelimit.Limit {
	return ratelimit.Limit{Requests: n, Window: window, Algorithm: ratelimit.AlgorithmStrict}
}

// unitsInSpan is the largest number of units admitted in any half-open
// span [t, t+d) of the sorted admissions times (each of cost costs[i]).
func unitsInSpan(times, costs []int64, d int64) int64 {
	var best, sum int64
	lo := 0
	for hi, t := range times {
		sum += costs[hi]
		for times[lo] <= t-d {
			sum -= costs[lo]
			lo++
		}
		best = max(best, sum)
	}
	return best
}

// The strict bound: the same adversarial schedules the GCRA proof runs
// (window_test.go), and costs, never put more than N units in any window
// of length T — where GCRA reaches 2N − 1. The greedy schedule shows the
// price of counting in slices: a steady client gets N per 6/5·T.
func TestStrictNoWindowEverHoldsMoreThanN(t *testing.T) {
	limits := []ratelimit.Limit{
		strict(1, time.Second), strict(3, time.Second), strict(10, time.Second),
		strict(7, 10*time.Second), strict(100, time.Minute), strict(5, 7*time.Second),
	}
	for _, lim := range limits {
		for _, sched := range schedules {
			for _, maxCost := range []int64{1, 3} {
				if maxCost > lim.Requests {
					continue // costs above N are refused by the configuration
				}
				name := fmt.Sprintf("%d per %s/%s/cost≤%d", lim.Requests, lim.Window, sched.name, maxCost)
				t.Run(name, func(t *testing.T) {
					clock := newClock()
					l := newLimiter(t, newMemStore(), func(o *ratelimit.Options) { o.Width = 4 })
					p := policy(t, "p", lim)
					r := rand.New(rand.NewPCG(uint64(lim.Requests), uint64(maxCost)))
					gcraTwin := per(lim.Requests, lim.Window) // the schedules read GCRA's interval
					var times, costs []int64
					var last ratelimit.Decision
					for range 20*int(lim.Requests) + 3000 {
						clock.Advance(sched.next(r, last, gcraTwin))
						cost := 1 + r.Int64N(maxCost)
						last = l.Decide(p, "k", cost, clock.Now())
						if last.Faults != 0 {
							t.Fatalf("unexpected faults %b", last.Faults)
						}
						if last.Allowed {
							times, costs = append(times, last.At().UnixNano()), append(costs, cost)
						}
					}
					w := int64(lim.Window)
					for _, d := range []int64{0, 1, w / 2, w - 1, w} {
						if got := unitsInSpan(times, costs, max(d, 1)); got > lim.Requests {
							t.Fatalf("%d units admitted in a span of %v, strict maximum %d", got, time.Duration(d), lim.Requests)
						}
					}
					if sched.name == "greedy" && maxCost == 1 {
						// Waiting exactly RetryAfter is always admitted, and a
						// whole window of a steady client is as full as allowed.
						got := unitsInSpan(times, costs, w)
						if got != lim.Requests {
							t.Errorf("greedy: at most %d in a window, want N = %d reached", got, lim.Requests)
						}
						span := time.Duration(times[len(times)-1] - times[0])
						rate := float64(len(times)) / span.Seconds()
						if want := float64(lim.Requests) / lim.Window.Seconds() * 5 / 6; rate < want*0.98 {
							t.Errorf("greedy long-run rate %.3f/s, want about 5/6 of N/T = %.3f/s", rate, want)
						}
					}
				})
			}
		}
	}
}

// The documented numbers: a cold key gets N at once; a refusal's
// RetryAfter is exact (admitted at that instant, refused 1 ns before);
// Remaining counts units; Reset is when the budget is full again.
func TestStrictDecisions(t *testing.T) {
	clock := newClock() // 15:04:05: slices of 2 s start at even seconds
	l := newLimiter(t, newMemStore(), func(o *ratelimit.Options) { o.Width = 4 })
	p := policy(t, "p", strict(4, 10*time.Second)) // L = 2 s
	first := l.Decide(p, "k", 3, clock.Now())
	// The slice holding 15:04:05 is [15:04:04, 15:04:06): its units leave
	// every window at 15:04:16, 11 s later.
	if !first.Allowed || first.Remaining != 1 || first.Reset != 11*time.Second {
		t.Fatalf("cost 3 on a cold key: %+v, want admitted, 1 left, full again in 11s", first)
	}
	clock.Advance(4 * time.Second)
	if d := l.Decide(p, "k", 1, clock.Now()); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("4th unit: %+v, want admitted with none left", d)
	}
	d := l.Decide(p, "k", 2, clock.Now())
	if d.Allowed || d.RetryAfter != 7*time.Second || d.Reset != 11*time.Second {
		t.Fatalf("cost 2 over the limit: %+v, want refused until the first 3 units leave (7s), full in 11s", d)
	}
	clock.Advance(d.RetryAfter - time.Nanosecond)
	if d := l.Decide(p, "k", 2, clock.Now()); d.Allowed {
		t.Fatalf("admitted 1 ns before RetryAfter: %+v", d)
	}
	clock.Advance(time.Nanosecond)
	if d := l.Decide(p, "k", 2, clock.Now()); !d.Allowed || d.Remaining != 1 {
		t.Fatalf("at RetryAfter: %+v, want admitted with 1 left", d)
	}
}

// Many keys, many workers (each its own Limiter, as Envoy's workers), one
// store with CAS races, a shared clock each worker moves on by up to 40 ms
// a request: no key ever has more than N admissions in any window.
func TestHammerStrictManyKeys(t *testing.T) {
	const workers, requests, n, keys = 16, 400, 5, 6
	p := policy(t, "default", strict(n, time.Second))
	store := yieldingStore{newMemStore()}
	clock := newClock()
	type admission struct {
		key string
		at  int64
	}
	var mu sync.Mutex
	var admitted []admission
	var wg sync.WaitGroup
	for w := range workers {
		l := newLimiter(t, store, func(o *ratelimit.Options) {
			o.Width, o.FailMode, o.CASRetries = 4, ratelimit.FailClosed, ratelimit.MaxCASRetries
		})
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 3))
			for i := range requests {
				key := "key" + strconv.Itoa((w+i)%keys)
				if d := l.Decide(p, key, 1, clock.Now()); d.Allowed && !d.Degraded() {
					mu.Lock()
					admitted = append(admitted, admission{key, d.At().UnixNano()})
					mu.Unlock()
				}
				clock.Advance(time.Duration(r.Int64N(int64(40 * time.Millisecond / workers))))
			}
		})
	}
	wg.Wait()
	byKey := map[string][]int64{}
	for _, a := range admitted {
		byKey[a.key] = append(byKey[a.key], a.at)
	}
	for k, times := range byKey {
		slices.Sort(times)
		ones := make([]int64, len(times))
		for i := range ones {
			ones[i] = 1
		}
		if got := unitsInSpan(times, ones, int64(time.Second)); got > n {
			t.Errorf("%s: %d admitted in one window, strict maximum %d", k, got, n)
		}
	}
	if len(admitted) < keys*n*2 {
		t.Errorf("only %d admitted over %v: the test did not span several windows", len(admitted), clock.Since())
	}
}

// A strict limit next to a GCRA limit and a quota in one entry: every one
// of them must admit, each keeps its own values.
func TestStrictWithOtherLimits(t *testing.T) {
	clock := at(time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC))
	l := newLimiter(t, newMemStore(), func(o *ratelimit.Options) { o.Width = 6 })
	p := policy(t, "api", strict(3, time.Second), per(20, time.Minute), quota(7, ratelimit.CalendarDay, 0))
	if p.Width() != 6 {
		t.Fatalf("width %d, want 4 + 1 + 1", p.Width())
	}
	n, d := spendAll(l, p, "k", clock.Now())
	if n != 3 || d.Limit.Name != "api-1s" {
		t.Fatalf("%d admitted, refused by %s; want 3, by the strict limit", n, d.Limit.Name)
	}
	clock.Advance(d.RetryAfter)
	n, _ = spendAll(l, p, "k", clock.Now())
	clock.Advance(2 * time.Second)
	m, d := spendAll(l, p, "k", clock.Now())
	if n != 3 || m != 1 || d.Limit.Name != "api-day" {
		t.Fatalf("then %d and %d, refused by %+v; want 3 and 1, then the day quota", n, m, d)
	}
}

// A shared entry holding other limits' state never gives a strict key more;
// on the key's own entry, counts beyond N are cut to N.
func TestStrictForeignState(t *testing.T) {
	clock := newClock()
	store := newMemStore()
	l := newLimiter(t, store, oneBucket(1), func(o *ratelimit.Options) { o.Width = 4 })
	gcra := policy(t, "g", per(10, time.Minute), per(100, time.Hour), per(1000, 24*time.Hour), per(5, time.Second))
	if d := l.Decide(gcra, "alice", 1, clock.Now()); !d.Allowed {
		t.Fatal("alice refused")
	}
	p := policy(t, "s", strict(10, time.Minute))
	if d := l.Decide(p, "bob", 1, clock.Now()); d.Allowed || d.Faults != ratelimit.FaultShared {
		t.Fatalf("bob on alice's TATs: %+v, want refused (another key's state, FaultShared)", d)
	}
	// Alice's limits share the entry with a strict key's counts now read as
	// an exhausted budget too.
	clock.Advance(25 * time.Hour)
	for range 10 {
		l.Decide(p, "bob", 1, clock.Now())
	}
	if d := l.Decide(gcra, "alice", 1, clock.Now()); d.Allowed || d.Faults != ratelimit.FaultShared {
		t.Fatalf("alice on bob's counts: %+v, want refused (FaultShared)", d)
	}
}

func TestValidateStrictLimits(t *testing.T) {
	cases := []struct {
		name   string
		limits []ratelimit.Limit
		index  int
		field  string
		want   string
	}{
		{"strict quota", []ratelimit.Limit{{Requests: 1, Calendar: ratelimit.CalendarDay, Algorithm: ratelimit.AlgorithmStrict}}, 0, "algorithm", "limits[0].algorithm: a calendar quota counts its whole window; strict is for limits over a window"},
		{"unknown algorithm", []ratelimit.Limit{{Requests: 1, Window: time.Second, Algorithm: 7}}, 0, "algorithm", "limits[0].algorithm: unknown algorithm 7"},
		{"three strict limits", []ratelimit.Limit{strict(1, time.Second), strict(2, time.Minute), strict(3, time.Hour)}, -1, "", "limits: the limits need 12 values per key, at most 8 (a strict limit takes 4)"},
		{"two strict limits of one window", []ratelimit.Limit{strict(1, time.Second), strict(2, time.Second)}, 1, "window", "limits[1].window: duplicate window 1s (also limits[0]); keep the stricter one"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var le *ratelimit.LimitError
			if err := ratelimit.ValidateLimits(tc.limits); !errors.As(err, &le) || le.Index != tc.index || le.Field != tc.field || err.Error() != tc.want {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	// A strict and a GCRA limit of one window are different limits; two
	// strict limits fit, with 0 to 0 GCRA limits more.
	if err := ratelimit.ValidateLimits([]ratelimit.Limit{strict(10, time.Minute), per(10, time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := ratelimit.ValidateLimits([]ratelimit.Limit{strict(10, time.Minute), strict(100, time.Hour)}); err != nil {
		t.Fatal(err)
	}
}

// A calendar quota sharing an entry whose value is a strict key's counts
// refuses, with figures that stay within its window.
func TestQuotaOnStrictCounts(t *testing.T) {
	clock := newClock()
	store := newMemStore()
	l := newLimiter(t, store, oneBucket(1), func(o *ratelimit.Options) { o.Width = 4 })
	// The strict key's first value is a time; its counts start at the
	// second: a quota whose value is the second sees them.
	s := policy(t, "s", strict(10, time.Minute))
	if d := l.Decide(s, "alice", 1, clock.Now()); !d.Allowed {
		t.Fatal("alice refused")
	}
	q := policy(t, "q", per(100, time.Hour), quota(5, ratelimit.CalendarMonth, 0))
	d := l.Decide(q, "bob", 1, clock.Now())
	month := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC).Sub(clock.Now())
	if d.Allowed || d.Faults != ratelimit.FaultShared || d.RetryAfter <= 0 || d.RetryAfter > month || d.Reset < 0 || d.Reset > month {
		t.Fatalf("bob's quota on alice's counts: %+v, want refused (FaultShared), waits within the month", d)
	}
}

// The clock steps back (or a worker's read is seconds stale): a strict key
// that spent its N is refused until the clock is back in its newest slice
// — re-basing its window end off the slice grid used to misplace its counts
// and admit up to N more (TestHammerStrictManyKeys caught it) — and after a
// step back of more than maxStrictLag its window starts again.
func TestStrictClockStepsBack(t *testing.T) {
	const n = 3
	p := policy(t, "api", strict(n, time.Second))
	for _, tc := range []struct {
		name     string
		back     time.Duration
		admitted bool
	}{
		{"3 s back: refused", 3 * time.Second, false},
		{"2 h back: the window starts again", 2 * time.Hour, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := at(time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC))
			l := newLimiter(t, newMemStore(), func(o *ratelimit.Options) { o.Width = 4 })
			for i := range n {
				if d := l.Decide(p, "k", 1, clock.Now()); !d.Allowed {
					t.Fatalf("request %d refused: %+v", i, d)
				}
			}
			clock.Advance(-tc.back)
			d := l.Decide(p, "k", 1, clock.Now())
			if d.Allowed != tc.admitted || d.Faults&ratelimit.FaultClockBackwards == 0 {
				t.Fatalf("after the step: allowed %v, faults %v; want allowed %v and the step reported", d.Allowed, d.Faults, tc.admitted)
			}
			if tc.admitted {
				return
			}
			clock.Advance(tc.back + 1200*time.Millisecond) // past the window of the 3 admissions' slice
			if d := l.Decide(p, "k", 1, clock.Now()); !d.Allowed {
				t.Fatalf("a window after the step: %+v, want admitted", d)
			}
		})
	}
}
