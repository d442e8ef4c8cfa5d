package ratelimit_test

import (
	"errors"
	"testing"
	"time"

	"github.com/portcullis/portcullis/filter/ratelimit"
)

func quota(n int64, c ratelimit.Calendar, offset time.Duration) ratelimit.Limit {
	return ratelimit.Limit{Requests: n, Calendar: c, UTCOffset: offset}
}

// at is a fake clock set to t.
func at(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.ns.Store(t.UnixNano())
	return c
}

// spendAll admits requests of key at now until one is refused, and returns
// how many were admitted and the refusal.
func spendAll(l *ratelimit.Limiter, p *ratelimit.Policy, key string, now time.Time) (int, ratelimit.Decision) {
	for n := 0; ; n++ {
		if d := l.Decide(p, key, 1, now); !d.Allowed {
			return n, d
		}
	}
}

// Each calendar window ends where the calendar says, in its zone: the
// refusal of an exhausted quota waits exactly until then, whatever the
// length of the month, and a request at that instant is admitted.
func TestCalendarWindowsEnd(t *testing.T) {
	plus0530 := 5*time.Hour + 30*time.Minute
	cases := []struct {
		name   string
		window ratelimit.Calendar
		offset time.Duration
		now    time.Time
		end    time.Time
	}{
		{"day", ratelimit.CalendarDay, 0, time.Date(2026, 3, 4, 13, 0, 0, 0, time.UTC), time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC)},
		{"day at its first instant", ratelimit.CalendarDay, 0, time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC)},
		{"day in UTC+05:30", ratelimit.CalendarDay, plus0530, time.Date(2026, 3, 4, 20, 0, 0, 0, time.UTC), time.Date(2026, 3, 5, 18, 30, 0, 0, time.UTC)},
		{"day in UTC−08:00", ratelimit.CalendarDay, -8 * time.Hour, time.Date(2026, 3, 4, 7, 0, 0, 0, time.UTC), time.Date(2026, 3, 4, 8, 0, 0, 0, time.UTC)},
		{"week from Wednesday", ratelimit.CalendarWeek, 0, time.Date(2026, 12, 2, 0, 5, 0, 0, time.UTC), time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)},
		{"week on Sunday night", ratelimit.CalendarWeek, 0, time.Date(2026, 12, 6, 23, 59, 59, 0, time.UTC), time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)},
		{"week across a year", ratelimit.CalendarWeek, 0, time.Date(2026, 12, 31, 12, 0, 0, 0, time.UTC), time.Date(2027, 1, 4, 0, 0, 0, 0, time.UTC)},
		{"week in UTC+14:00", ratelimit.CalendarWeek, 14 * time.Hour, time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC), time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC).Add(7 * 24 * time.Hour)},
		{"31-day month", ratelimit.CalendarMonth, 0, time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC), time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)},
		{"February of a leap year", ratelimit.CalendarMonth, 0, time.Date(2028, 2, 29, 23, 0, 0, 0, time.UTC), time.Date(2028, 3, 1, 0, 0, 0, 0, time.UTC)},
		{"December", ratelimit.CalendarMonth, 0, time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"month in UTC+05:30, already March there", ratelimit.CalendarMonth, plus0530, time.Date(2026, 2, 28, 20, 0, 0, 0, time.UTC), time.Date(2026, 3, 31, 18, 30, 0, 0, time.UTC)},
		{"month in UTC−08:00, still February there", ratelimit.CalendarMonth, -8 * time.Hour, time.Date(2026, 3, 1, 7, 0, 0, 0, time.UTC), time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := newLimiter(t, newMemStore())
			p := policy(t, "q", quota(3, tc.window, tc.offset))
			n, d := spendAll(l, p, "k", tc.now)
			want := tc.end.Sub(tc.now)
			if n != 3 || d.RetryAfter != want || d.Reset != want || d.Remaining != 0 {
				t.Fatalf("admitted %d, refusal %+v; want 3, then RetryAfter = Reset = %v", n, d, want)
			}
			if d := l.Decide(p, "k", 1, tc.end.Add(-time.Nanosecond)); d.Allowed {
				t.Fatalf("admitted 1 ns before the window's end")
			}
			if n, _ := spendAll(l, p, "k", tc.end); n != 3 {
				t.Fatalf("the next window admitted %d, want a fresh 3", n)
			}
		})
	}
}

// A monthly quota crossing a month boundary on an injected clock: the
// spend of January holds until its last nanosecond, February starts empty,
// and requests of different costs share the quota.
func TestMonthlyQuotaAcrossAMonthBoundary(t *testing.T) {
	clock := at(time.Date(2026, 1, 31, 23, 59, 0, 0, time.UTC))
	l := newLimiter(t, newMemStore())
	p := policy(t, "plan-free", quota(10, ratelimit.CalendarMonth, 0))
	if d := l.Decide(p, "alice", 4, clock.Now()); !d.Allowed || d.Remaining != 6 || d.Reset != time.Minute {
		t.Fatalf("cost 4: %+v, want admitted with 6 left, full again in 1m", d)
	}
	if n, d := spendAll(l, p, "alice", clock.Now()); n != 6 || d.RetryAfter != time.Minute {
		t.Fatalf("admitted %d more, then %+v; want 6, then a wait of 1m", n, d)
	}
	clock.Advance(time.Minute - time.Nanosecond)
	if d := l.Decide(p, "alice", 1, clock.Now()); d.Allowed || d.RetryAfter != time.Nanosecond {
		t.Fatalf("last nanosecond of January: %+v, want refused for 1ns more", d)
	}
	clock.Advance(time.Nanosecond)
	d := l.Decide(p, "alice", 1, clock.Now())
	if !d.Allowed || d.Remaining != 9 || d.Reset != 28*24*time.Hour {
		t.Fatalf("1 February: %+v, want admitted with 9 left until 1 March", d)
	}
	if n, _ := spendAll(l, p, "alice", clock.Now()); n != 9 {
		t.Fatalf("February admitted %d more, want 9", n)
	}
}

// Raising a quota by configuration keeps the spend: the stored value is a
// count, so the caller gets the difference, not a fresh quota. Lowering it
// below the spend refuses until the window ends.
func TestQuotaChangeKeepsTheSpend(t *testing.T) {
	clock := at(time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC))
	l := newLimiter(t, newMemStore())
	if n, _ := spendAll(l, policy(t, "plan-pro", quota(100, ratelimit.CalendarMonth, 0)), "alice", clock.Now()); n != 100 {
		t.Fatalf("admitted %d, want 100", n)
	}
	clock.Advance(time.Hour)
	if n, _ := spendAll(l, policy(t, "plan-pro", quota(150, ratelimit.CalendarMonth, 0)), "alice", clock.Now()); n != 50 {
		t.Fatalf("after the raise to 150: admitted %d more, want 50", n)
	}
	d := l.Decide(policy(t, "plan-pro", quota(40, ratelimit.CalendarMonth, 0)), "alice", 1, clock.Now())
	if d.Allowed || d.Remaining != 0 || d.RetryAfter != time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC).Sub(clock.Now()) {
		t.Fatalf("after lowering to 40: %+v, want refused until January", d)
	}
}

// A quota next to short GCRA limits, in one entry and one CAS: every limit
// must admit, and the quota is what refuses once spent.
func TestQuotaWithShortLimits(t *testing.T) {
	clock := at(time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC))
	l := newLimiter(t, newMemStore(), func(o *ratelimit.Options) { o.Width = 2 })
	p := policy(t, "api", per(5, time.Second), quota(12, ratelimit.CalendarDay, 0))
	if got := p.Limits(); got[1].Name != "api-day" || got[1].Window != 24*time.Hour {
		t.Fatalf("limits %+v, want the quota named api-day with its day as window", got)
	}
	if f := p.PolicyField(); f != `"api-1s";q=5;w=1, "api-day";q=12;w=86400` {
		t.Fatalf("RateLimit-Policy %s", f)
	}
	n, d := spendAll(l, p, "k", clock.Now())
	if n != 5 || d.Limit.Name != "api-1s" {
		t.Fatalf("burst: %d admitted, refused by %s; want 5 by the 1 s limit", n, d.Limit.Name)
	}
	clock.Advance(time.Second)
	n, _ = spendAll(l, p, "k", clock.Now())
	clock.Advance(time.Second)
	m, d := spendAll(l, p, "k", clock.Now())
	if n != 5 || m != 2 || d.Limit.Name != "api-day" || d.RetryAfter != 12*time.Hour-2*time.Second {
		t.Fatalf("then %d and %d, refused by %+v; want 5 and 2, then the day quota until midnight", n, m, d)
	}
}

// The table stays bounded: a quota's entry is active until its window ends,
// so another key in a full bucket shares it (stricter, counted), and takes
// the entry over once the month is past.
func TestQuotaEntryIsActiveUntilTheWindowEnds(t *testing.T) {
	clock := at(time.Date(2026, 1, 31, 12, 0, 0, 0, time.UTC))
	store := newMemStore()
	l := newLimiter(t, store, oneBucket(1), func(o *ratelimit.Options) { o.Width = 1 })
	p := policy(t, "q", quota(5, ratelimit.CalendarMonth, 0))
	if n, _ := spendAll(l, p, "alice", clock.Now()); n != 5 {
		t.Fatalf("alice got %d, want 5", n)
	}
	clock.Advance(11 * time.Hour)
	if d := l.Decide(p, "bob", 1, clock.Now()); d.Allowed || d.Faults != ratelimit.FaultShared {
		t.Fatalf("bob in alice's month: %+v, want refused on alice's spent quota (FaultShared)", d)
	}
	// The stored value is the window's end plus the spend in nanoseconds:
	// the entry is free at most a second after the window ends.
	clock.Advance(time.Hour + time.Second)
	if d := l.Decide(p, "bob", 1, clock.Now()); !d.Allowed || d.Faults != 0 || d.Remaining != 4 {
		t.Fatalf("bob in February: %+v, want the entry for himself", d)
	}
	if d := l.Decide(p, "alice", 1, clock.Now()); !d.Allowed || d.Faults != ratelimit.FaultShared || d.Remaining != 3 {
		t.Fatalf("alice in February: %+v, want admitted on bob's entry (FaultShared), 3 left of it", d)
	}
}

// A stored value that cannot be the quota's (another key's state in a
// shared entry, a far-future value in the key's own) never gives more.
func TestQuotaForeignValues(t *testing.T) {
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	clock := at(now)
	store := newMemStore()
	l := newLimiter(t, store, oneBucket(4))
	p := policy(t, "q", quota(5, ratelimit.CalendarMonth, 0))
	l.Decide(p, "alice", 1, clock.Now())
	v := store.raw(bucket0)
	setTAT(v, ownEntry(t, v), 0, now.AddDate(1, 0, 0))
	store.put(bucket0, v)
	if d := l.Decide(p, "alice", 1, clock.Now()); d.Allowed || d.Faults != ratelimit.FaultClamped {
		t.Fatalf("own value a year ahead: %+v, want an exhausted quota, clamped", d)
	}
	if d := l.Decide(p, "alice", 1, clock.Now()); d.Allowed || d.Faults != 0 {
		t.Fatalf("the clamp was not persisted: %+v", d)
	}
}

func TestValidateCalendarLimits(t *testing.T) {
	cases := []struct {
		name   string
		limits []ratelimit.Limit
		field  string
		want   string
	}{
		{"calendar with a window", []ratelimit.Limit{{Requests: 1, Calendar: ratelimit.CalendarDay, Window: time.Hour}}, "window", "limits[0].window: a calendar day has no window of its own, got 1h0m0s"},
		{"unknown calendar", []ratelimit.Limit{{Requests: 1, Calendar: 9}}, "calendar", "limits[0].calendar: unknown calendar window 9"},
		{"offset too far", []ratelimit.Limit{quota(1, ratelimit.CalendarMonth, 15*time.Hour)}, "utc_offset", "limits[0].utc_offset: must be whole minutes between -14h0m0s and 14h0m0s, got 15h0m0s"},
		{"offset of seconds", []ratelimit.Limit{quota(1, ratelimit.CalendarWeek, 90*time.Second)}, "utc_offset", "limits[0].utc_offset: must be whole minutes between -14h0m0s and 14h0m0s, got 1m30s"},
		{"offset without a calendar", []ratelimit.Limit{{Requests: 1, Window: time.Second, UTCOffset: time.Hour}}, "utc_offset", "limits[0].utc_offset: only for calendar windows"},
		{"two monthly quotas", []ratelimit.Limit{quota(1, ratelimit.CalendarMonth, 0), quota(2, ratelimit.CalendarMonth, 0)}, "window", "limits[1].window: duplicate window month (also limits[0]); keep the stricter one"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var le *ratelimit.LimitError
			if err := ratelimit.ValidateLimits(tc.limits); !errors.As(err, &le) || le.Field != tc.field || err.Error() != tc.want {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	// A day quota and a GCRA limit of a day are different limits.
	if err := ratelimit.ValidateLimits([]ratelimit.Limit{per(100, 24*time.Hour), quota(100, ratelimit.CalendarDay, 0)}); err != nil {
		t.Fatalf("a day quota next to a 24 h limit: %v", err)
	}
	for _, s := range []string{"day", "week", "month"} {
		if c, ok := ratelimit.ParseCalendar(s); !ok || c.String() != s {
			t.Errorf("ParseCalendar(%q) = %v, %v", s, c, ok)
		}
	}
	if _, ok := ratelimit.ParseCalendar("year"); ok {
		t.Error("ParseCalendar accepted year")
	}
}
