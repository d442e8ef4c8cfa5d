package ratelimit_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/portcullis/portcullis/filter/ratelimit"
)

// The documented bound (doc.go): a half-open span of length d holds at most
// N + ⌈d/I⌉ − 1 admitted requests of one key, so at most N at one instant
// and at most 2N − 1 in any window T. These tests drive the limiter with
// adversarial schedules on a fake clock and check every span.

func interval(l ratelimit.Limit) int64 {
	return (int64(l.Window) + l.Requests - 1) / l.Requests
}

// spanBound is the documented maximum for a span of length d (d = 0: one instant).
func spanBound(l ratelimit.Limit, d int64) int {
	if d == 0 {
		return int(l.Requests)
	}
	i := interval(l)
	return int(l.Requests + (d+i-1)/i - 1)
}

// maxInSpan is the largest number of times (sorted) in any span [t, t+d),
// or at one instant when d is 0.
func maxInSpan(times []int64, d int64) int {
	best, lo := 0, 0
	for hi, t := range times {
		for d == 0 && times[lo] != t || d > 0 && times[lo] <= t-d {
			lo++
		}
		best = max(best, hi-lo+1)
	}
	return best
}

// checkSpans verifies the bound for several span lengths and returns the
// maximum found in a span of one window.
func checkSpans(t *testing.T, name string, times []int64, l ratelimit.Limit) int {
	t.Helper()
	i, w := interval(l), int64(l.Window)
	for _, d := range []int64{0, 1, i / 2, i, i + 1, w / 2, w - 1, w, w + 1, 3 * w} {
		if got, bound := maxInSpan(times, d), spanBound(l, d); got > bound {
			t.Errorf("%s: %d admitted in a span of %v, documented maximum %d", name, got, time.Duration(d), bound)
		}
	}
	return maxInSpan(times, w)
}

// schedule drives one key: each step may advance the clock and sends one
// request, seeing the previous decision (an adaptive adversary).
type schedule struct {
	name string
	next func(r *rand.Rand, last ratelimit.Decision, l ratelimit.Limit) time.Duration
}

var schedules = []schedule{
	// Greedy: retry exactly when the limiter says it would admit.
	{"greedy", func(_ *rand.Rand, last ratelimit.Decision, _ ratelimit.Limit) time.Duration {
		return last.RetryAfter
	}},
	// Window edges: hammer just before and at every multiple of T, as
	// against a fixed window.
	{"window-edges", func(r *rand.Rand, _ ratelimit.Decision, l ratelimit.Limit) time.Duration {
		if r.IntN(int(2*l.Requests+2)) == 0 {
			return l.Window - 1
		}
		if r.IntN(4) == 0 {
			return 1
		}
		return 0
	}},
	// Idle until the budget is full, then one instant, then one per interval.
	{"refill-then-burst", func(r *rand.Rand, last ratelimit.Decision, l ratelimit.Limit) time.Duration {
		switch {
		case last.Allowed:
			return 0
		case r.IntN(3) == 0:
			return last.Reset
		default:
			return time.Duration(interval(l))
		}
	}},
	// Random: gaps from 0 to two intervals, biased towards 0 and to just
	// before and after the interval.
	{"random", func(r *rand.Rand, _ ratelimit.Decision, l ratelimit.Limit) time.Duration {
		i := interval(l)
		switch r.IntN(5) {
		case 0:
			return 0
		case 1:
			return time.Duration(i - 1)
		case 2:
			return time.Duration(i + 1)
		default:
			return time.Duration(r.Int64N(2 * i))
		}
	}},
	// Tiny steps: 0 to 3 ns at a time, then jumps of a random fraction of T.
	{"tiny-steps", func(r *rand.Rand, _ ratelimit.Decision, l ratelimit.Limit) time.Duration {
		if r.IntN(50) == 0 {
			return time.Duration(r.Int64N(int64(l.Window)))
		}
		return time.Duration(r.IntN(4))
	}},
}

// simulate runs sched for steps requests and returns the admission times.
func simulate(t *testing.T, l *ratelimit.Limiter, clock *fakeClock, p *ratelimit.Policy, key string, sched schedule, steps int, seed uint64) []int64 {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	lim := p.Limits()[0]
	var times []int64
	var last ratelimit.Decision
	for range steps {
		clock.Advance(sched.next(r, last, lim))
		last = l.Decide(p, key, 1, clock.Now())
		if last.Faults != 0 {
			t.Fatalf("unexpected faults %b", last.Faults)
		}
		if last.Allowed {
			times = append(times, last.At().UnixNano())
		}
	}
	return times
}

func TestAnySpanNeverExceedsTheDocumentedMaximum(t *testing.T) {
	limits := []ratelimit.Limit{
		per(1, time.Second), per(2, time.Second), per(3, time.Second), per(10, time.Second),
		per(7, 10*time.Second), per(100, time.Minute),
	}
	for _, lim := range limits {
		for _, sched := range schedules {
			t.Run(fmt.Sprintf("%d per %s/%s", lim.Requests, lim.Window, sched.name), func(t *testing.T) {
				clock := newClock()
				l := newLimiter(t, newMemStore())
				p := policy(t, "p", lim)
				times := simulate(t, l, clock, p, "k", sched, 20*int(lim.Requests)+2000, uint64(lim.Requests))
				got := checkSpans(t, sched.name, times, lim)
				if sched.name == "greedy" {
					// The bound is reached: a cold burst, then one per interval.
					want := 2*int(lim.Requests) - 1
					if int64(lim.Window)%lim.Requests != 0 {
						want = spanBound(lim, int64(lim.Window)) // ⌈T/I⌉ < N when I is rounded up
					}
					if got != want {
						t.Errorf("greedy schedule: max %d in one window, want the bound %d to be reached", got, want)
					}
				}
			})
		}
	}
}

func TestAnySpanWithSeveralLimits(t *testing.T) {
	lims := []ratelimit.Limit{per(5, time.Second), per(20, 10*time.Second), per(50, time.Minute)}
	for _, sched := range schedules {
		t.Run(sched.name, func(t *testing.T) {
			clock := newClock()
			l := newLimiter(t, newMemStore(), func(o *ratelimit.Options) { o.Width = 3 })
			p := policy(t, "p", lims...)
			times := simulate(t, l, clock, p, "k", sched, 5000, 7)
			if len(times) == 0 {
				t.Fatal("nothing admitted")
			}
			for _, lim := range lims {
				checkSpans(t, fmt.Sprintf("%s, %d per %s", sched.name, lim.Requests, lim.Window), times, lim)
			}
		})
	}
}

// A fixed window would admit 2N within two nanoseconds around its edge;
// GCRA admits N, then one per interval.
func TestNoDoubleBurstAtAWindowEdge(t *testing.T) {
	clock := newClock()
	l := newLimiter(t, newMemStore())
	p := policy(t, "p", per(100, time.Minute))
	clock.Advance(time.Minute - time.Nanosecond)
	first := burst(l, p, "k", 1000, clock.Now())
	clock.Advance(time.Nanosecond)
	second := burst(l, p, "k", 1000, clock.Now())
	if first != 100 || second != 0 {
		t.Fatalf("admitted %d then %d across the edge, want 100 then 0", first, second)
	}
}

// The checker itself: spans are half-open, and it catches the fixed
// window's double burst.
func TestMaxInSpan(t *testing.T) {
	times := []int64{0, 0, 0, 5, 10, 10, 19, 20}
	for _, c := range []struct {
		d    int64
		want int
	}{{0, 3}, {1, 3}, {10, 4}, {11, 6}, {21, 8}} {
		if got := maxInSpan(times, c.d); got != c.want {
			t.Errorf("maxInSpan(d=%d) = %d, want %d", c.d, got, c.want)
		}
	}
	fixedWindow := []int64{9, 9, 9, 9, 9, 10, 10, 10, 10, 10} // 5 per 10 ns, both sides of an edge
	if got, bound := maxInSpan(fixedWindow, 10), spanBound(per(5, 10), 10); got <= bound {
		t.Errorf("a fixed window's %d in one window passes the bound %d", got, bound)
	}
}
