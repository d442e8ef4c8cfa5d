package config_test

import (
	"testing"
	"time"

	"github.com/portcullis/portcullis/filter/config"
	"github.com/portcullis/portcullis/filter/ratelimit"
)

func TestRateLimitOffByDefault(t *testing.T) {
	c, err := config.Parse([]byte(minimal), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.RateLimit != nil {
		t.Errorf("rate limiting is on without a rate_limit block")
	}
}

func TestRateLimitCompiles(t *testing.T) {
	c, err := config.Parse([]byte(`{
	  "jwt": {"secrets": [{"env": "JWT_SECRET"}]},
	  "routes": [{"name": "tight", "prefix": "/t", "rate_limit": [{"requests": 1, "window_seconds": 1}]},
	             {"name": "dup", "prefix": "/d1", "rate_limit": [{"requests": 2, "window_seconds": 1}]},
	             {"name": "dup", "prefix": "/d2", "rate_limit": [{"requests": 3, "window_seconds": 1}]},
	             {"prefix": "/api"}],
	  "rate_limit": {
	    "plans": {"claim": "tier", "by_plan": {"pro": [{"requests": 10, "window_seconds": 1}, {"requests": 500, "window_seconds": 3600}, {"requests": 9000, "window_seconds": 86400}]}},
	    "slots": 1024, "cas_retries": 3, "on_contention": "deny", "reset_format": "timestamp"
	  }
	}`), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	rl := c.RateLimit
	if rl == nil {
		t.Fatal("no rate limit compiled")
	}
	if got := rl.Default.Limits(); len(got) != 1 || got[0].Requests != 100 || got[0].Window != time.Minute || rl.Default.Name() != "default" {
		t.Errorf("default = %s %+v, want 100 per 60 s", rl.Default.Name(), got)
	}
	if rl.PlanClaim != "tier" || rl.Plans["pro"] == nil || rl.Plans["pro"].Name() != "plan-pro" {
		t.Errorf("plans = %q %v", rl.PlanClaim, rl.Plans)
	}
	o := rl.Options
	if o.Slots != 1024 || o.CASRetries != 3 || o.FailMode != ratelimit.FailClosed || o.Width != 3 || rl.ResetFormat != ratelimit.ResetTimestamp {
		t.Errorf("options = %+v reset %v", o, rl.ResetFormat)
	}
	names := map[string]string{"/t": "route-tight", "/d1": "route-dup", "/d2": "route-2"}
	for path, name := range names {
		r, ok := c.Routes.Match("GET", path)
		if !ok || r.RateLimit == nil || r.RateLimit.Name() != name {
			t.Errorf("%s: rule %+v, want policy %q", path, r, name)
		}
	}
	if r, _ := c.Routes.Match("GET", "/api"); r.RateLimit != nil {
		t.Errorf("/api has an override %s", r.RateLimit.Name())
	}
}
