package ratelimit_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/filter/ratelimit"
)

// admittedAt sends requests of cost at the instant at until one is denied
// (at most max) and returns how many were admitted and the denial.
func admittedAt(l *ratelimit.Limiter, p *ratelimit.Policy, key string, cost int64, at time.Time, max int) (int, ratelimit.Decision) {
	for n := range max {
		if d := l.Decide(p, key, cost, at); !d.Allowed {
			return n, d
		}
	}
	return max, ratelimit.Decision{}
}

// A cold key admits ⌊N/c⌋ requests of cost c at one instant (doc.go), and
// the denial's RetryAfter is exact: at RetryAfter the request is admitted, a
// nanosecond earlier it is not.
func TestCostColdBurstAndExactRetry(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limits []ratelimit.Limit
		cost   int64
		want   int
	}{
		{"cost 1 is the plain burst", []ratelimit.Limit{per(10, time.Minute)}, 1, 10},
		{"cost 0 counts as 1", []ratelimit.Limit{per(10, time.Minute)}, 0, 10},
		{"cost divides N", []ratelimit.Limit{per(10, time.Minute)}, 5, 2},
		{"cost does not divide N", []ratelimit.Limit{per(10, time.Minute)}, 3, 3},
		{"cost equals N", []ratelimit.Limit{per(7, time.Hour)}, 7, 1},
		{"I rounded up", []ratelimit.Limit{per(3, time.Second)}, 2, 1},
		{"two limits, the smaller N decides", []ratelimit.Limit{per(4, time.Second), per(100, time.Hour)}, 3, 1},
		{"two limits, the larger window decides", []ratelimit.Limit{per(100, time.Second), per(12, time.Hour)}, 5, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLimiter(t, newMemStore())
			p := policy(t, "p", tc.limits...)
			n, d := admittedAt(l, p, "k", tc.cost, epoch, 1000)
			if n != tc.want {
				t.Fatalf("admitted %d at once, want ⌊N/c⌋ = %d", n, tc.want)
			}
			if d.RetryAfter <= 0 || d.Degraded() {
				t.Fatalf("denial %+v, want a computed RetryAfter", d)
			}
			if again := l.Decide(p, "k", tc.cost, epoch.Add(d.RetryAfter-1)); again.Allowed {
				t.Fatalf("admitted 1 ns before RetryAfter %v", d.RetryAfter)
			}
			if again := l.Decide(p, "k", tc.cost, epoch.Add(d.RetryAfter)); !again.Allowed {
				t.Fatalf("denied after waiting exactly RetryAfter %v: %+v", d.RetryAfter, again)
			}
			// Retry-After is RetryAfter rounded up, so waiting it is enough too.
			if d.RetryAfterSeconds()*int64(time.Second) < int64(d.RetryAfter) {
				t.Fatalf("Retry-After %d s is shorter than the wait %v", d.RetryAfterSeconds(), d.RetryAfter)
			}
		})
	}
}

// Remaining and RateLimit's r are in requests of cost 1 (the quota units of
// q): a request of cost c spends c of them.
func TestCostSpendsRemainingUnits(t *testing.T) {
	l := newLimiter(t, newMemStore())
	p := policy(t, "p", per(10, time.Minute))
	if d := l.Decide(p, "k", 4, epoch); !d.Allowed || d.Remaining != 6 {
		t.Fatalf("first request of cost 4: %+v, want admitted with 6 remaining", d)
	}
	if d := l.Decide(p, "k", 1, epoch); !d.Allowed || d.Remaining != 5 {
		t.Fatalf("then one of cost 1: %+v, want 5 remaining", d)
	}
	// 5 remain: a request of cost 6 is refused, and charges nothing.
	d := l.Decide(p, "k", 6, epoch)
	if d.Allowed || d.Remaining != 5 || d.RetryAfter != 6*time.Second {
		t.Fatalf("cost 6 with 5 remaining: %+v, want denied, 5 remaining, RetryAfter 6 s (one interval)", d)
	}
	if d := l.Decide(p, "k", 5, epoch); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("cost 5 with 5 remaining: %+v, want admitted, 0 remaining", d)
	}
}

// A cost above a limit's N could never be admitted: the fail mode decides,
// as for any other configuration bug, and nothing is written.
func TestCostAboveLimitIsPolicyFault(t *testing.T) {
	for _, mode := range []ratelimit.FailMode{ratelimit.FailOpen, ratelimit.FailClosed} {
		store := newMemStore()
		l := newLimiter(t, store, func(o *ratelimit.Options) { o.FailMode = mode })
		p := policy(t, "p", per(100, time.Hour), per(5, time.Second))
		d := l.Decide(p, "k", 6, epoch)
		if d.Allowed != (mode == ratelimit.FailOpen) || !d.Faults.Has(ratelimit.FaultPolicy) || store.keys() != 0 {
			t.Errorf("mode %d: %+v, want the fail mode with FaultPolicy and no write", mode, d)
		}
	}
}

func TestPartitionKey(t *testing.T) {
	a, b := ratelimit.NewPartitioner(1), ratelimit.NewPartitioner(2)
	alice := a.Key("alice")
	if len(alice) != 18 || alice[0] != ':' || alice[17] != ':' || strings.ContainsAny(alice[1:17], ":=-_") {
		t.Fatalf("pk %q, want an sf-binary of 12 bytes (16 base64 characters between colons)", alice)
	}
	switch {
	case a.Key("alice") != alice:
		t.Errorf("pk of alice changed between calls")
	case a.Key("bob") == alice:
		t.Errorf("alice and bob share pk %q", alice)
	case b.Key("alice") == alice:
		t.Errorf("another seed gives alice the same pk %q", alice)
	case strings.Contains(strings.ToLower(alice), "alice"):
		t.Errorf("pk %q reveals the key", alice)
	}
}

func TestHeadersPartitionKeyAndShadow(t *testing.T) {
	l := newLimiter(t, newMemStore())
	p := policy(t, "default", per(1, time.Minute), per(10, time.Hour))
	l.Decide(p, "k", 1, epoch)
	d := l.Decide(p, "k", 1, epoch)
	const pk = ":AAECAwQFBgcICQoL:"
	got := d.AppendHeaders(nil, ratelimit.HeaderOptions{PartitionKey: pk})
	want := [][2]string{
		{"x-ratelimit-limit", "1"}, {"x-ratelimit-remaining", "0"}, {"x-ratelimit-reset", "60"},
		{"ratelimit-policy", `"default-60s";q=1;w=60;pk=` + pk + `, "default-3600s";q=10;w=3600;pk=` + pk},
		{"ratelimit", `"default-60s";r=0;t=60;pk=` + pk}, {"retry-after", "60"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("headers:\n got %q\nwant %q", got, want)
	}
	if d.PolicyName() != "default-60s" {
		t.Errorf("PolicyName = %q, want the refusing limit default-60s", d.PolicyName())
	}
	// Shadow: the same fields, but no Retry-After (the request goes on).
	if shadow := d.AppendHeaders(nil, ratelimit.HeaderOptions{PartitionKey: pk, Shadow: true}); !slices.Equal(shadow, want[:5]) {
		t.Fatalf("shadow headers:\n got %q\nwant %q", shadow, want[:5])
	}
	if u := ratelimit.Unreported(false, time.Second, epoch); u.PolicyName() != "" {
		t.Errorf("a decision without a limit names policy %q", u.PolicyName())
	}
}

// The remembered values are the computed ones, whatever the order of keys
// (including keys that share a cache entry, and keys too long to keep).
func TestPartitionKeyCache(t *testing.T) {
	cached, fresh := ratelimit.NewPartitioner(7), func(key string) string { return ratelimit.NewPartitioner(7).Key(key) }
	long := strings.Repeat("k", 300)
	keys := []string{"alice", long, "bob"}
	for i := range 600 {
		keys = append(keys, "key-"+strconv.Itoa(i%300))
	}
	for round := range 2 {
		for _, k := range keys {
			if got, want := cached.Key(k), fresh(k); got != want {
				t.Fatalf("round %d: pk of %.20q = %q, want %q", round, k, got, want)
			}
		}
	}
}

// Charge adds a debt the next requests pay for, never refuses, and caps
// each limit's debt at an exhausted budget.
func TestChargeAddsADebt(t *testing.T) {
	clock := newClock()
	l := newLimiter(t, newMemStore(), func(o *ratelimit.Options) { o.Width = 6 })
	p := policy(t, "p", per(10, time.Minute))
	if d := l.Decide(p, "k", 1, clock.Now()); !d.Allowed || d.Remaining != 9 {
		t.Fatalf("first: %+v", d)
	}
	if d := l.Charge(p, "k", 5, clock.Now()); !d.Allowed || d.Remaining != 4 {
		t.Fatalf("charge 5: %+v, want 4 left", d)
	}
	if n, _ := spendAll(l, p, "k", clock.Now()); n != 4 {
		t.Fatalf("admitted %d after the debt, want 4", n)
	}
	// An absurd report costs one exhausted budget, not more.
	d := l.Charge(p, "k", ratelimit.MaxRequests, clock.Now())
	if !d.Allowed || d.Remaining != 0 || d.Reset != time.Minute {
		t.Fatalf("charge 10⁹: %+v, want an exhausted budget (full again in 1m)", d)
	}
	clock.Advance(6 * time.Second)
	if d := l.Decide(p, "k", 1, clock.Now()); !d.Allowed || d.Faults != 0 {
		t.Fatalf("one interval later: %+v, want admitted without a repair", d)
	}

	// A quota and a strict limit are capped at N too.
	q := policy(t, "q", quota(10, ratelimit.CalendarMonth, 0), strict(3, time.Second))
	if d := l.Charge(q, "k", 25, clock.Now()); !d.Allowed || d.Remaining != 0 || d.Faults != 0 {
		t.Fatalf("charge 25 on a quota of 10 and a strict 3/s: %+v", d)
	}
	if d := l.Decide(q, "k", 1, clock.Now()); d.Allowed || d.Limit.Name != "q-month" {
		t.Fatalf("after: %+v, want refused by the spent quota", d)
	}
}
