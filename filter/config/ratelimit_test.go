package config_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/filter/config"
	"github.com/portcullis/portcullis/filter/fleet"
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

// shadowDoc is a configuration with local rate limiting whose rate_limit
// members are extra and whose routes are routes.
func shadowDoc(extra, routes string) string {
	return `{"jwt": {"secrets": [{"env": "JWT_SECRET"}]},
	  "routes": [` + routes + `],
	  "rate_limit": {"default": [{"requests": 10, "window_seconds": 60}],
	    "plans": {"by_plan": {"small": [{"requests": 4, "window_seconds": 1}]}}` + extra + `}}`
}

func TestShadowAndCostCompile(t *testing.T) {
	type want struct {
		cost             int64
		shadowRate, shad bool
	}
	for _, tc := range []struct {
		name, extra, routes string
		want                map[string]want // path → the rule's compiled fields
		shadowHeaders       bool
	}{
		{"defaults: enforced, cost 1", ``, `{"prefix": "/a"}`, map[string]want{"/a": {cost: 1}}, false},
		{"global shadow", `, "enforce": false`, `{"prefix": "/a"}, {"prefix": "/b", "enforce": {"rate_limit": true}}`,
			map[string]want{"/a": {cost: 1, shadowRate: true}, "/b": {cost: 1}}, false},
		{"rule shadow, headers on", `, "shadow_headers": true`, `{"prefix": "/a", "enforce": {"rate_limit": false}}, {"prefix": "/b"}`,
			map[string]want{"/a": {cost: 1, shadowRate: true}, "/b": {cost: 1}}, true},
		{"explicit global enforce", `, "enforce": true`, `{"prefix": "/a"}`, map[string]want{"/a": {cost: 1}}, false},
		{"jwt shadow", ``, `{"prefix": "/a", "enforce": {"jwt": false}}, {"prefix": "/b", "enforce": {"jwt": true}}, {"prefix": "/c", "enforce": {}}`,
			map[string]want{"/a": {cost: 1, shad: true}, "/b": {cost: 1}, "/c": {cost: 1}}, false},
		{"cost within every plan", ``, `{"prefix": "/a", "cost": 4}`, map[string]want{"/a": {cost: 4}}, false},
		{"cost against the override only", ``, `{"prefix": "/a", "cost": 9, "rate_limit": [{"requests": 9, "window_seconds": 1}]}`,
			map[string]want{"/a": {cost: 9}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustParse(t, shadowDoc(tc.extra, tc.routes))
			if c.RateLimit.ShadowHeaders != tc.shadowHeaders {
				t.Errorf("ShadowHeaders = %v, want %v", c.RateLimit.ShadowHeaders, tc.shadowHeaders)
			}
			for path, w := range tc.want {
				r, ok := c.Routes.Match("GET", path)
				if !ok {
					t.Fatalf("no rule for %s", path)
				}
				if got := (want{r.Cost, r.ShadowRateLimit, r.ShadowJWT}); got != w {
					t.Errorf("%s: cost %d, shadow rate limit %v, shadow jwt %v; want %+v", path, got.cost, got.shadowRate, got.shad, w)
				}
			}
		})
	}
	// Fleet mode: the cost goes to the service, checked against nothing here.
	c := mustParse(t, `{"jwt": {"secrets": [{"env": "JWT_SECRET"}]}, "routes": [{"prefix": "/a", "cost": 500, "enforce": {"rate_limit": false}}],
	  "rate_limit": {"mode": "fleet", "fleet": {}}}`)
	if r, _ := c.Routes.Match("GET", "/a"); r.Cost != 500 || !r.ShadowRateLimit {
		t.Errorf("fleet rule: cost %d shadow %v, want 500 and shadow", r.Cost, r.ShadowRateLimit)
	}
}

func TestShadowAndCostRefused(t *testing.T) {
	noLimits := `{"jwt": {"secrets": [{"env": "JWT_SECRET"}]}, "routes": [%s]}`
	checkRefusals(t, []refusal{
		{"enforce not a boolean", shadowDoc(`, "enforce": "no"`, `{"prefix": "/a"}`), "rate_limit.enforce", "must be a boolean"},
		{"shadow_headers not a boolean", shadowDoc(`, "shadow_headers": 1`, `{"prefix": "/a"}`), "rate_limit.shadow_headers", "must be a boolean"},
		{"rule enforce unknown member", shadowDoc(``, `{"prefix": "/a", "enforce": {"cache": false}}`), "routes[0].enforce.cache", "unknown field"},
		{"rule enforce.rate_limit not a boolean", shadowDoc(``, `{"prefix": "/a", "enforce": {"rate_limit": 0}}`), "routes[0].enforce.rate_limit", "must be a boolean"},
		{"enforce.rate_limit without rate_limit", strings.Replace(noLimits, "%s", `{"prefix": "/a", "enforce": {"rate_limit": false}}`, 1), "routes[0].enforce.rate_limit", "requires the top-level rate_limit block"},
		{"enforce.rate_limit on an uncounted public rule", shadowDoc(``, `{"prefix": "/a", "public": true, "enforce": {"rate_limit": false}}`), "routes[0].enforce.rate_limit", "public_key"},
		{"enforce.jwt on a public rule", shadowDoc(``, `{"prefix": "/p", "public": true, "enforce": {"jwt": false}}`), "routes[0].enforce.jwt", "verifies no token"},
		{"cost without rate_limit", strings.Replace(noLimits, "%s", `{"prefix": "/a", "cost": 2}`, 1), "routes[0].cost", "requires the top-level rate_limit block"},
		{"cost on an uncounted public rule", shadowDoc(``, `{"prefix": "/a", "public": true, "cost": 2}`), "routes[0].cost", "public_key"},
		{"cost zero", shadowDoc(``, `{"prefix": "/a", "cost": 0}`), "routes[0].cost", "must be between 1 and 1000000000, got 0"},
		{"cost negative", shadowDoc(``, `{"prefix": "/b"}, {"prefix": "/a", "cost": -3}`), "routes[1].cost", "got -3"},
		{"cost too large", shadowDoc(``, `{"prefix": "/a", "cost": 1000000001}`), "routes[0].cost", "must be between 1"},
		{"cost not an integer", shadowDoc(``, `{"prefix": "/a", "cost": 1.5}`), "routes[0].cost", "must be an integer"},
		{"cost above the default", shadowDoc(``, `{"prefix": "/a", "cost": 11}`), "routes[0].cost", `11 is more than the 10 requests of limit "default"`},
		{"cost above a plan", shadowDoc(``, `{"prefix": "/a", "cost": 5}`), "routes[0].cost", `5 is more than the 4 requests of limit "plan-small"`},
		{"cost above the override", shadowDoc(``, `{"prefix": "/a", "cost": 3, "rate_limit": [{"requests": 2, "window_seconds": 1}]}`), "routes[0].cost", `3 is more than the 2 requests of limit "route-/a"`},
	})
}

// quotaDoc is a configuration with local rate limiting whose rate_limit
// members are block and whose routes are routes.
func quotaDoc(block, routes string) string {
	return `{"jwt": {"secrets": [{"env": "JWT_SECRET"}]}, "routes": [` + routes + `], "rate_limit": {` + block + `}}`
}

func TestCalendarQuotasCompile(t *testing.T) {
	c := mustParse(t, quotaDoc(`"default": [{"requests": 10, "window_seconds": 1}, {"requests": 5000, "calendar": "month"}],
	  "plans": {"by_plan": {"pro": [{"requests": 900, "calendar": "day"}, {"requests": 4000, "calendar": "week"}]}},
	  "utc_offset_minutes": -300`,
		`{"prefix": "/a"}, {"prefix": "/b", "rate_limit": [{"requests": 7, "calendar": "month"}]}`))
	rl := c.RateLimit
	want := []ratelimit.Limit{
		{Name: "default-1s", Requests: 10, Window: time.Second},
		{Name: "default-month", Requests: 5000, Window: 30 * 24 * time.Hour, Calendar: ratelimit.CalendarMonth, UTCOffset: -5 * time.Hour},
	}
	if got := rl.Default.Limits(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("default = %+v, want %+v", got, want)
	}
	if got := rl.Plans["pro"].Limits(); got[0].Calendar != ratelimit.CalendarDay || got[1].Calendar != ratelimit.CalendarWeek || got[1].UTCOffset != -5*time.Hour {
		t.Errorf("plan pro = %+v", got)
	}
	if r, _ := c.Routes.Match("GET", "/b"); r.RateLimit == nil || r.RateLimit.Limits()[0].Calendar != ratelimit.CalendarMonth {
		t.Errorf("/b override = %+v", r.RateLimit)
	}
	// Without utc_offset_minutes the windows are UTC's.
	c = mustParse(t, quotaDoc(`"default": [{"requests": 3, "calendar": "day"}]`, `{"prefix": "/a"}`))
	if l := c.RateLimit.Default.Limits()[0]; l.Calendar != ratelimit.CalendarDay || l.UTCOffset != 0 {
		t.Errorf("default = %+v, want a UTC day", l)
	}
	// The offset may be set for quotas on route overrides only.
	mustParse(t, quotaDoc(`"utc_offset_minutes": 60`, `{"prefix": "/b", "rate_limit": [{"requests": 7, "calendar": "week"}]}`))
}

func TestCalendarQuotasRefused(t *testing.T) {
	checkRefusals(t, []refusal{
		{"unknown calendar", quotaDoc(`"default": [{"requests": 3, "calendar": "year"}]`, `{"prefix": "/a"}`), "rate_limit.default[0].calendar", `must be day, week or month, got "year"`},
		{"calendar not a string", quotaDoc(`"default": [{"requests": 3, "calendar": 30}]`, `{"prefix": "/a"}`), "rate_limit.default[0].calendar", "must be a string"},
		{"calendar and window", quotaDoc(`"default": [{"requests": 3, "calendar": "day", "window_seconds": 86400}]`, `{"prefix": "/a"}`), "rate_limit.default[0].window_seconds", "not with calendar"},
		{"two monthly quotas", quotaDoc(`"plans": {"by_plan": {"x": [{"requests": 3, "calendar": "month"}, {"requests": 4, "calendar": "month"}]}}`, `{"prefix": "/a"}`), "rate_limit.plans.by_plan.x[1].calendar", "duplicate window month"},
		{"quota of zero", quotaDoc(`"default": [{"requests": 0, "calendar": "week"}]`, `{"prefix": "/a"}`), "rate_limit.default[0].requests", "must be between 1"},
		{"override quota bad", quotaDoc(``, `{"prefix": "/a", "rate_limit": [{"requests": 1, "calendar": "fortnight"}]}`), "routes[0].rate_limit[0].calendar", "must be day, week or month"},
		{"offset too far east", quotaDoc(`"default": [{"requests": 3, "calendar": "day"}], "utc_offset_minutes": 841`, `{"prefix": "/a"}`), "rate_limit.utc_offset_minutes", "must be between -720 and 840, got 841"},
		{"offset too far west", quotaDoc(`"default": [{"requests": 3, "calendar": "day"}], "utc_offset_minutes": -721`, `{"prefix": "/a"}`), "rate_limit.utc_offset_minutes", "got -721"},
		{"offset not an integer", quotaDoc(`"default": [{"requests": 3, "calendar": "day"}], "utc_offset_minutes": 1.5`, `{"prefix": "/a"}`), "rate_limit.utc_offset_minutes", "must be an integer"},
		{"offset without a quota", quotaDoc(`"utc_offset_minutes": 60`, `{"prefix": "/a"}`), "rate_limit.utc_offset_minutes", "only for limits with a calendar window"},
		{"offset in fleet mode", quotaDoc(`"mode": "fleet", "fleet": {}, "utc_offset_minutes": 60`, `{"prefix": "/a"}`), "rate_limit.utc_offset_minutes", "only in local or hybrid mode"},
		{"cost above a quota", quotaDoc(`"default": [{"requests": 3, "calendar": "month"}]`, `{"prefix": "/a", "cost": 4}`), "routes[0].cost", `4 is more than the 3 requests of limit "default"`},
	})
}

func TestStrictAlgorithmCompiles(t *testing.T) {
	c := mustParse(t, quotaDoc(`"default": [{"requests": 10, "window_seconds": 60, "algorithm": "strict"}, {"requests": 100, "window_seconds": 3600, "algorithm": "gcra"}]`,
		`{"prefix": "/a"}, {"prefix": "/b", "rate_limit": [{"requests": 5, "window_seconds": 1, "algorithm": "strict"}, {"requests": 50, "window_seconds": 60, "algorithm": "strict"}]}`))
	if got := c.RateLimit.Default.Limits(); got[0].Algorithm != ratelimit.AlgorithmStrict || got[1].Algorithm != ratelimit.AlgorithmGCRA {
		t.Errorf("default = %+v", got)
	}
	// Two strict limits need 8 values per key: the table's width follows.
	if w := c.RateLimit.Options.Width; w != 8 {
		t.Errorf("width %d, want 8 (two strict limits of 4 values)", w)
	}
}

func TestStrictAlgorithmRefused(t *testing.T) {
	checkRefusals(t, []refusal{
		{"unknown algorithm", quotaDoc(`"default": [{"requests": 3, "window_seconds": 1, "algorithm": "sliding"}]`, `{"prefix": "/a"}`), "rate_limit.default[0].algorithm", `must be gcra or strict, got "sliding"`},
		{"algorithm not a string", quotaDoc(`"default": [{"requests": 3, "window_seconds": 1, "algorithm": true}]`, `{"prefix": "/a"}`), "rate_limit.default[0].algorithm", "must be a string"},
		{"strict quota", quotaDoc(`"default": [{"requests": 3, "calendar": "day", "algorithm": "strict"}]`, `{"prefix": "/a"}`), "rate_limit.default[0].algorithm", "not with calendar"},
		{"too many strict limits", quotaDoc(`"plans": {"by_plan": {"x": [{"requests": 3, "window_seconds": 1, "algorithm": "strict"}, {"requests": 30, "window_seconds": 60, "algorithm": "strict"}, {"requests": 300, "window_seconds": 3600}]}}`, `{"prefix": "/a"}`), "rate_limit.plans.by_plan.x", "the limits need 9 values per key, at most 8"},
		{"strict window too long", quotaDoc(``, `{"prefix": "/a", "rate_limit": [{"requests": 3, "window_seconds": 86401, "algorithm": "strict"}]}`), "routes[0].rate_limit[0].window_seconds", "must be between 1 and 86400"},
	})
}

func TestHybridCompiles(t *testing.T) {
	c := mustParse(t, quotaDoc(`"mode": "hybrid", "default": [{"requests": 20, "window_seconds": 1}], "fleet": {"cluster": "rl", "on_failure": "deny"}, "on_contention": "deny"`,
		`{"prefix": "/a", "cost": 5, "rate_limit": [{"requests": 5, "window_seconds": 1, "algorithm": "strict"}]}, {"prefix": "/b"}`))
	rl := c.RateLimit
	if !rl.Local() || rl.Fleet == nil || rl.Fleet.Cluster != "rl" || rl.Fleet.FailOpen || rl.Options.FailMode != ratelimit.FailClosed {
		t.Fatalf("hybrid: local %v fleet %+v options %+v", rl.Local(), rl.Fleet, rl.Options)
	}
	if r, _ := c.Routes.Match("GET", "/a"); r.RateLimit == nil || r.Cost != 5 {
		t.Errorf("/a: %+v, want the local override and cost 5", r)
	}
	// Without default, the tutorial's 100 per minute is the local limit.
	c = mustParse(t, quotaDoc(`"mode": "hybrid", "fleet": {}`, `{"prefix": "/a"}`))
	if got := c.RateLimit.Default.Limits(); got[0].Requests != 100 {
		t.Errorf("default %+v", got)
	}
	if c := mustParse(t, quotaDoc(`"mode": "fleet", "fleet": {}`, `{"prefix": "/a"}`)); c.RateLimit.Local() || c.RateLimit.Fleet.Protocol != fleet.GRPC {
		t.Errorf("fleet mode: local limits %v, protocol %v (want none, gRPC by default)", c.RateLimit.Local(), c.RateLimit.Fleet.Protocol)
	}
	for text, want := range map[string]fleet.Protocol{"grpc": fleet.GRPC, "json": fleet.JSON} {
		if c := mustParse(t, quotaDoc(`"mode": "fleet", "fleet": {"protocol": "`+text+`"}`, `{"prefix": "/a"}`)); c.RateLimit.Fleet.Protocol != want {
			t.Errorf("protocol %q compiled to %v", text, c.RateLimit.Fleet.Protocol)
		}
	}
}

func TestHybridRefused(t *testing.T) {
	checkRefusals(t, []refusal{
		{"no fleet block", quotaDoc(`"mode": "hybrid"`, `{"prefix": "/a"}`), "rate_limit.fleet", "required in fleet and hybrid mode"},
		{"bad fleet field", quotaDoc(`"mode": "hybrid", "fleet": {"timeout_ms": 0.5}`, `{"prefix": "/a"}`), "rate_limit.fleet.timeout_ms", "must be an integer"},
		{"bad local field", quotaDoc(`"mode": "hybrid", "fleet": {}, "slots": 3`, `{"prefix": "/a"}`), "rate_limit.slots", "must be a multiple of 4"},
		{"cost above the local limit", quotaDoc(`"mode": "hybrid", "fleet": {}, "default": [{"requests": 2, "window_seconds": 1}]`, `{"prefix": "/a", "cost": 3}`), "routes[0].cost", "3 is more than the 2 requests"},
		{"unknown mode", quotaDoc(`"mode": "both"`, `{"prefix": "/a"}`), "rate_limit.mode", `must be local, fleet or hybrid, got "both"`},
		{"fleet block in local mode", quotaDoc(`"fleet": {}`, `{"prefix": "/a"}`), "rate_limit.fleet", "only in fleet or hybrid mode"},
		{"unknown protocol", quotaDoc(`"mode": "fleet", "fleet": {"protocol": "http"}`, `{"prefix": "/a"}`), "rate_limit.fleet.protocol", `must be grpc or json, got "http"`},
		{"protocol in upper case", quotaDoc(`"mode": "hybrid", "fleet": {"protocol": "GRPC"}`, `{"prefix": "/a"}`), "rate_limit.fleet.protocol", `must be grpc or json, got "GRPC"`},
		{"protocol not a string", quotaDoc(`"mode": "fleet", "fleet": {"protocol": 2}`, `{"prefix": "/a"}`), "rate_limit.fleet.protocol", "must be a string"},
	})
}

func TestCostHeader(t *testing.T) {
	c := mustParse(t, shadowDoc(``, `{"prefix": "/a", "cost_header": "X-Tokens-Used", "cost": 2}, {"prefix": "/b"}`))
	if r, _ := c.Routes.Match("GET", "/a"); r.CostHeader != "x-tokens-used" || r.Cost != 2 {
		t.Errorf("/a: cost header %q cost %d, want x-tokens-used and 2", r.CostHeader, r.Cost)
	}
	if r, _ := c.Routes.Match("GET", "/b"); r.CostHeader != "" {
		t.Errorf("/b has a cost header %q", r.CostHeader)
	}
	mustParse(t, `{"jwt": {"secrets": [{"env": "JWT_SECRET"}]}, "routes": [{"prefix": "/a", "cost_header": "x-rows"}], "rate_limit": {"mode": "fleet", "fleet": {}}}`)
	noLimits := `{"jwt": {"secrets": [{"env": "JWT_SECRET"}]}, "routes": [{"prefix": "/a", "cost_header": "x-tokens"}]}`
	checkRefusals(t, []refusal{
		{"without rate_limit", noLimits, "routes[0].cost_header", "requires the top-level rate_limit block"},
		{"on an uncounted public rule", shadowDoc(``, `{"prefix": "/a", "public": true, "cost_header": "x-tokens"}`), "routes[0].cost_header", "public_key"},
		{"not a header name", shadowDoc(``, `{"prefix": "/a", "cost_header": "x tokens"}`), "routes[0].cost_header", `not a response header the upstream can set: "x tokens"`},
		{"a header the gateway sets", shadowDoc(``, `{"prefix": "/a", "cost_header": "X-RateLimit-Remaining"}`), "routes[0].cost_header", "not a response header the upstream can set"},
		{"Retry-After", shadowDoc(``, `{"prefix": "/a", "cost_header": "retry-after"}`), "routes[0].cost_header", "not a response header the upstream can set"},
		{"not a string", shadowDoc(``, `{"prefix": "/a", "cost_header": 5}`), "routes[0].cost_header", "must be a string"},
	})
}

func TestFleetLease(t *testing.T) {
	c := mustParse(t, quotaDoc(`"mode": "fleet", "fleet": {"lease_slots": 128}`,
		`{"prefix": "/a", "fleet_lease": {}}, {"prefix": "/b", "fleet_lease": {"max_batch": 500}}, {"prefix": "/c"}`))
	if !c.RateLimit.Fleet.Leasing || c.RateLimit.Fleet.LeaseSlots != 128 {
		t.Errorf("fleet %+v, want leasing on with 128 slots", c.RateLimit.Fleet)
	}
	for path, want := range map[string]int64{"/a": config.DefaultLeaseMaxBatch, "/b": 500, "/c": 0} {
		if r, _ := c.Routes.Match("GET", path); r.FleetLease != want {
			t.Errorf("%s: lease batch %d, want %d", path, r.FleetLease, want)
		}
	}
	if c := mustParse(t, quotaDoc(`"mode": "hybrid", "fleet": {}`, `{"prefix": "/a", "fleet_lease": {"max_batch": 2}}`)); !c.RateLimit.Fleet.Leasing {
		t.Error("hybrid mode: leasing off")
	}
	if c := mustParse(t, quotaDoc(`"mode": "fleet", "fleet": {}`, `{"prefix": "/a"}`)); c.RateLimit.Fleet.Leasing {
		t.Error("leasing on without a leasing rule")
	}
	checkRefusals(t, []refusal{
		{"local mode", quotaDoc(``, `{"prefix": "/a", "fleet_lease": {}}`), "routes[0].fleet_lease", "only in fleet or hybrid mode"},
		{"without rate_limit", `{"jwt": {"secrets": [{"env": "JWT_SECRET"}]}, "routes": [{"prefix": "/a", "fleet_lease": {}}]}`, "routes[0].fleet_lease", "requires the top-level rate_limit block"},
		{"batch of 1", quotaDoc(`"mode": "fleet", "fleet": {}`, `{"prefix": "/a", "fleet_lease": {"max_batch": 1}}`), "routes[0].fleet_lease.max_batch", "must be between 2 and 10000, got 1"},
		{"batch too large", quotaDoc(`"mode": "fleet", "fleet": {}`, `{"prefix": "/a", "fleet_lease": {"max_batch": 10001}}`), "routes[0].fleet_lease.max_batch", "must be between 2 and 10000"},
		{"not an object", quotaDoc(`"mode": "fleet", "fleet": {}`, `{"prefix": "/a", "fleet_lease": true}`), "routes[0].fleet_lease", "must be an object"},
		{"unknown field", quotaDoc(`"mode": "fleet", "fleet": {}`, `{"prefix": "/a", "fleet_lease": {"batch": 5}}`), "routes[0].fleet_lease.batch", "unknown field"},
		{"lease slots", quotaDoc(`"mode": "fleet", "fleet": {"lease_slots": -1}`, `{"prefix": "/a"}`), "rate_limit.fleet.lease_slots", "must be between 1 and"},
	})
}

// refusal is a document config.Parse must refuse, naming field.
type refusal struct{ name, doc, field, problem string }

func checkRefusals(t *testing.T, cases []refusal) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tc.doc), testEnv)
			var fe *config.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(fe.Problem, tc.problem) {
				t.Fatalf("error %v, want field %s saying %q", err, tc.field, tc.problem)
			}
		})
	}
}
