package ratelimit_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/filter/ratelimit"
)

func TestValidateLimits(t *testing.T) {
	eight := make([]ratelimit.Limit, 8)
	for i := range eight {
		eight[i] = per(int64(i+1), time.Duration(i+1)*time.Second)
	}
	cases := []struct {
		name   string
		limits []ratelimit.Limit
		index  int
		field  string
		want   string // the whole message
	}{
		{"ok one", []ratelimit.Limit{per(100, time.Minute)}, 0, "", ""},
		{"ok bounds", []ratelimit.Limit{per(1, time.Second), per(ratelimit.MaxRequests, 24*time.Hour)}, 0, "", ""},
		{"ok eight", eight, 0, "", ""},
		{"none", nil, -1, "", "limits: required: at least one limit"},
		{"nine", append(eight[:8:8], per(9, 9*time.Second)), -1, "", "limits: at most 8 limits per policy, got 9"},
		{"zero requests", []ratelimit.Limit{per(0, time.Minute)}, 0, "requests", "limits[0].requests: must be between 1 and 1000000000, got 0"},
		{"negative requests", []ratelimit.Limit{per(10, time.Second), per(-5, time.Minute)}, 1, "requests", "limits[1].requests: must be between 1 and 1000000000, got -5"},
		{"absurd requests", []ratelimit.Limit{per(1_000_000_001, time.Hour)}, 0, "requests", "limits[0].requests: must be between 1 and 1000000000, got 1000000001"},
		{"zero window", []ratelimit.Limit{per(10, 0)}, 0, "window", "limits[0].window: must be between 1s and 24h0m0s, got 0s"},
		{"negative window", []ratelimit.Limit{per(10, -time.Minute)}, 0, "window", "limits[0].window: must be between 1s and 24h0m0s, got -1m0s"},
		{"sub-second window", []ratelimit.Limit{per(10, 500*time.Millisecond)}, 0, "window", "limits[0].window: must be between 1s and 24h0m0s, got 500ms"},
		{"window over a day", []ratelimit.Limit{per(10, 25*time.Hour)}, 0, "window", "limits[0].window: must be between 1s and 24h0m0s, got 25h0m0s"},
		{"fractional window", []ratelimit.Limit{per(10, 1500*time.Millisecond)}, 0, "window", "limits[0].window: must be a whole number of seconds, got 1.5s"},
		{"duplicate window", []ratelimit.Limit{per(10, time.Minute), per(20, time.Minute)}, 1, "window", "limits[1].window: duplicate window 1m0s (also limits[0]); keep the stricter one"},
		{"bad name", []ratelimit.Limit{{Name: `a"b`, Requests: 1, Window: time.Second}}, 0, "name", `limits[0].name: must be visible ASCII without quotes or backslashes: "a\"b"`},
		{"name with space", []ratelimit.Limit{{Name: "a b", Requests: 1, Window: time.Second}}, 0, "name", `limits[0].name: must be visible ASCII without quotes or backslashes: "a b"`},
		{"long name", []ratelimit.Limit{{Name: strings.Repeat("n", 65), Requests: 1, Window: time.Second}}, 0, "name", "limits[0].name: must be 1 to 64 characters, got 65"},
		{"duplicate name", []ratelimit.Limit{{Name: "x", Requests: 1, Window: time.Second}, {Name: "x", Requests: 2, Window: time.Minute}}, 1, "name", `limits[1].name: duplicate name "x" (also limits[0])`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := ratelimit.ValidateLimits(tc.limits)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if _, err := ratelimit.NewPolicy("p", tc.limits); err != nil {
					t.Fatalf("NewPolicy: %v", err)
				}
				return
			}
			var le *ratelimit.LimitError
			if !errors.As(err, &le) || le.Index != tc.index || le.Field != tc.field || err.Error() != tc.want {
				t.Fatalf("got %v (%+v), want %q at index %d field %q", err, le, tc.want, tc.index, tc.field)
			}
			if _, perr := ratelimit.NewPolicy("p", tc.limits); perr == nil || perr.Error() != tc.want {
				t.Fatalf("NewPolicy error %v, want the same", perr)
			}
		})
	}
}

func TestNewPolicy(t *testing.T) {
	for _, name := range []string{"", "a b", `q"`, strings.Repeat("x", 65), "tab\t"} {
		var ne *ratelimit.NameError
		if _, err := ratelimit.NewPolicy(name, []ratelimit.Limit{per(1, time.Second)}); !errors.As(err, &ne) || ne.Name != name {
			t.Errorf("NewPolicy(%q) = %v, want a policy name error", name, err)
		}
	}
	// A given name that equals a derived one is refused.
	_, err := ratelimit.NewPolicy("api", []ratelimit.Limit{per(1, time.Second), {Name: "api-1s", Requests: 5, Window: time.Minute}})
	if err == nil || err.Error() != `limits[1].name: name "api-1s" is also the derived or given name of limits[0]` {
		t.Fatalf("got %v", err)
	}
	p := policy(t, "api", per(10, time.Second), ratelimit.Limit{Name: "hourly", Requests: 1000, Window: time.Hour})
	got := p.Limits()
	if p.Name() != "api" || p.Width() != 2 || got[0].Name != "api-1s" || got[1].Name != "hourly" {
		t.Fatalf("policy %s width %d limits %+v", p.Name(), p.Width(), got)
	}
	if f := p.PolicyField(); f != `"api-1s";q=10;w=1, "hourly";q=1000;w=3600` {
		t.Fatalf("PolicyField = %s", f)
	}
}

func TestNewOptions(t *testing.T) {
	store := newMemStore()
	cases := []struct {
		name string
		edit func(o *ratelimit.Options)
		want string
	}{
		{"defaults", func(*ratelimit.Options) {}, ""},
		{"no store", func(o *ratelimit.Options) { o.Store = nil }, "ratelimit: Store is required"},
		{"ways 9", func(o *ratelimit.Options) { o.Ways = 9 }, "ways: must be between 1 and 8, got 9"},
		{"ways negative", func(o *ratelimit.Options) { o.Ways = -1 }, "ways: must be between 1 and 8, got -1"},
		{"slots not a multiple", func(o *ratelimit.Options) { o.Slots = 10 }, "slots: must be a multiple of ways (4) between 4 and 16777216, got 10"},
		{"slots too many", func(o *ratelimit.Options) { o.Slots = 1 << 25 }, "slots: must be a multiple of ways (4) between 4 and 16777216, got 33554432"},
		{"slots fewer than ways", func(o *ratelimit.Options) { o.Slots, o.Ways = 2, 4 }, "slots: must be a multiple of ways (4) between 4 and 16777216, got 2"},
		{"width 9", func(o *ratelimit.Options) { o.Width = 9 }, "width: must be between 1 and 8, got 9"},
		{"retries 65", func(o *ratelimit.Options) { o.CASRetries = 65 }, "cas_retries: must be between 1 and 64, got 65"},
		{"retries negative", func(o *ratelimit.Options) { o.CASRetries = -1 }, "cas_retries: must be between 1 and 64, got -1"},
		{"fail mode", func(o *ratelimit.Options) { o.FailMode = 7 }, "fail_mode: unknown value 7"},
	}
	for _, tc := range cases {
		o := ratelimit.Options{Store: store}
		tc.edit(&o)
		_, err := ratelimit.New(o)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || err.Error() != tc.want) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
}
