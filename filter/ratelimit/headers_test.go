package ratelimit_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/portcullis/portcullis/filter/ratelimit"
)

func TestHeaders(t *testing.T) {
	h := func(pairs ...string) [][2]string {
		var out [][2]string
		for i := 0; i < len(pairs); i += 2 {
			out = append(out, [2]string{pairs[i], pairs[i+1]})
		}
		return out
	}
	cases := []struct {
		name    string
		limits  []ratelimit.Limit
		before  int           // requests admitted first, at the epoch
		tick    bool          // advance 1 s after the 10th of them
		advance time.Duration // then
		format  ratelimit.ResetFormat
		want    [][2]string
	}{
		{
			name: "tutorial default", limits: []ratelimit.Limit{per(100, time.Minute)}, before: 57,
			want: h("x-ratelimit-limit", "100", "x-ratelimit-remaining", "42", "x-ratelimit-reset", "35",
				"ratelimit-policy", `"default";q=100;w=60`, "ratelimit", `"default";r=42;t=35`),
		},
		{
			name: "reset as the tutorial's timestamp", limits: []ratelimit.Limit{per(100, time.Minute)}, before: 57,
			format: ratelimit.ResetTimestamp,
			want: h("x-ratelimit-limit", "100", "x-ratelimit-remaining", "42", "x-ratelimit-reset", "2026-01-02T15:04:39.800Z",
				"ratelimit-policy", `"default";q=100;w=60`, "ratelimit", `"default";r=42;t=35`),
		},
		{
			name: "timestamp rounded up to the millisecond", limits: []ratelimit.Limit{per(3, time.Second)},
			format: ratelimit.ResetTimestamp,
			want: h("x-ratelimit-limit", "3", "x-ratelimit-remaining", "2", "x-ratelimit-reset", "2026-01-02T15:04:05.334Z",
				"ratelimit-policy", `"default";q=3;w=1`, "ratelimit", `"default";r=2;t=1`),
		},
		{
			name: "denied", limits: []ratelimit.Limit{per(100, time.Minute)}, before: 100, advance: 100 * time.Millisecond,
			want: h("x-ratelimit-limit", "100", "x-ratelimit-remaining", "0", "x-ratelimit-reset", "60",
				"ratelimit-policy", `"default";q=100;w=60`, "ratelimit", `"default";r=0;t=60`, "retry-after", "1"),
		},
		{
			name: "denied, long wait rounded up", limits: []ratelimit.Limit{per(2, time.Hour)}, before: 2, advance: 1500 * time.Millisecond,
			want: h("x-ratelimit-limit", "2", "x-ratelimit-remaining", "0", "x-ratelimit-reset", "3599",
				"ratelimit-policy", `"default";q=2;w=3600`, "ratelimit", `"default";r=0;t=3599`, "retry-after", "1799"),
		},
		{
			name: "two limits, derived names", limits: []ratelimit.Limit{per(10, time.Second), per(1000, time.Hour)}, before: 5,
			want: h("x-ratelimit-limit", "10", "x-ratelimit-remaining", "4", "x-ratelimit-reset", "1",
				"ratelimit-policy", `"default-1s";q=10;w=1, "default-3600s";q=1000;w=3600`, "ratelimit", `"default-1s";r=4;t=1`),
		},
		{
			name:   "given names",
			limits: []ratelimit.Limit{{Name: "burst", Requests: 10, Window: time.Second}, {Name: "daily", Requests: 20, Window: 24 * time.Hour}},
			before: 15, tick: true, advance: 2 * time.Second,
			want: h("x-ratelimit-limit", "20", "x-ratelimit-remaining", "4", "x-ratelimit-reset", "69117",
				"ratelimit-policy", `"burst";q=10;w=1, "daily";q=20;w=86400`, "ratelimit", `"daily";r=4;t=69117`),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := newClock()
			l := newLimiter(t, newMemStore())
			p := policy(t, "default", tc.limits...)
			for i := range tc.before {
				if d := l.Decide(p, "k", 1, clock.Now()); !d.Allowed {
					t.Fatalf("setup request %d denied", i)
				}
				if tc.tick && i == 9 {
					clock.Advance(time.Second) // past the per-second burst
				}
			}
			clock.Advance(tc.advance)
			d := l.Decide(p, "k", 1, clock.Now())
			if got := d.AppendHeaders(nil, ratelimit.HeaderOptions{Reset: tc.format}); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("headers:\n got %q\nwant %q\n(decision %+v)", got, tc.want, d)
			}
		})
	}
}

func TestSeconds(t *testing.T) {
	for _, c := range []struct {
		reset, retry time.Duration
		allowed      bool
		wantReset    int64
		wantRetry    int64
	}{
		{0, 0, true, 0, 0},
		{1, 0, true, 1, 0},
		{time.Second, 0, true, 1, 0},
		{time.Second + 1, 0, true, 2, 0},
		{time.Minute, time.Nanosecond, false, 60, 1},
		{time.Minute, 0, false, 60, 1}, // a denial always says to wait
		{time.Minute, 2*time.Second + 1, false, 60, 3},
	} {
		d := ratelimit.Decision{Allowed: c.allowed, Reset: c.reset, RetryAfter: c.retry}
		if h := d.AppendHeaders(nil, ratelimit.HeaderOptions{}); len(h) != map[bool]int{true: 0, false: 1}[c.allowed] {
			t.Errorf("headers of a decision not made by Decide: %v", h)
		}
		if got := d.ResetSeconds(); got != c.wantReset {
			t.Errorf("ResetSeconds(%v) = %d, want %d", c.reset, got, c.wantReset)
		}
		if got := d.RetryAfterSeconds(); got != c.wantRetry {
			t.Errorf("RetryAfterSeconds(%v, allowed=%v) = %d, want %d", c.retry, c.allowed, got, c.wantRetry)
		}
	}
}

func TestFormatTimestamp(t *testing.T) {
	in := time.Date(2026, 3, 4, 5, 6, 7, 891_999_999, time.FixedZone("CET", 3600))
	if got, want := ratelimit.FormatTimestamp(in), "2026-03-04T04:06:07.891Z"; got != want {
		t.Fatalf("FormatTimestamp = %q, want %q", got, want)
	}
}

func TestFaultMetrics(t *testing.T) {
	want := []string{"corrupt_record", "clamped", "clock_backwards", "shared_slot", "contention", "store_error", "policy_too_wide"}
	var got []string
	for _, f := range ratelimit.Faults() {
		got = append(got, f.Metric())
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("metrics %q, want %q", got, want)
	}
	if m := (ratelimit.FaultCorrupt | ratelimit.FaultShared).Metric(); m != "unknown" {
		t.Fatalf("a set of faults has metric %q", m)
	}
}

// TestHeadersWithPartitionKeyInOneAllocation: with a partition key on a
// two-limit policy the values are exact, and all of them together take one
// allocation (into a dst with room for the pairs).
func TestHeadersWithPartitionKeyInOneAllocation(t *testing.T) {
	clock := newClock()
	l := newLimiter(t, newMemStore())
	p := policy(t, "api", per(10, time.Second), per(1000, time.Hour))
	d := l.Decide(p, "alice", 1, clock.Now())
	const pk = ":AAECAwQFBgcICQoL:"
	opts := ratelimit.HeaderOptions{PartitionKey: pk}
	want := [][2]string{
		{"x-ratelimit-limit", "10"}, {"x-ratelimit-remaining", "9"}, {"x-ratelimit-reset", "1"},
		{"ratelimit-policy", `"api-1s";q=10;w=1;pk=` + pk + `, "api-3600s";q=1000;w=3600;pk=` + pk},
		{"ratelimit", `"api-1s";r=9;t=1;pk=` + pk},
	}
	if got := d.AppendHeaders(nil, opts); !reflect.DeepEqual(got, want) {
		t.Fatalf("headers:\n got %q\nwant %q", got, want)
	}
	dst := make([][2]string, 0, 6)
	if n := testing.AllocsPerRun(100, func() { dst = d.AppendHeaders(dst[:0], opts) }); n != 1 {
		t.Errorf("AppendHeaders: %v allocations, want 1", n)
	}
}
