package config

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis/portcullis/filter/ratelimit"
)

// RateLimitFile configures local (one Envoy, every worker) rate limiting of
// protected routes, keyed by the verified key claim.
type RateLimitFile struct {
	Default      []LimitFile `json:"default"`
	Plans        *PlansFile  `json:"plans"`
	Slots        int         `json:"slots"`
	CASRetries   int         `json:"cas_retries"`
	OnContention string      `json:"on_contention"`
	ResetFormat  string      `json:"reset_format"`
}

// LimitFile is one limit: Requests per WindowSeconds.
type LimitFile struct {
	Requests      int64 `json:"requests"`
	WindowSeconds int64 `json:"window_seconds"`
}

// PlansFile chooses the limits by a claim of the verified token.
type PlansFile struct {
	Claim  string                 `json:"claim"`
	ByPlan map[string][]LimitFile `json:"by_plan"`
}

// RateLimit is the compiled rate-limit configuration.
type RateLimit struct {
	// Default applies to protected routes without an override whose caller's
	// plan claim names no configured plan.
	Default *ratelimit.Policy
	// PlanClaim is the claim naming the caller's plan; Plans maps its values.
	PlanClaim string
	Plans     map[string]*ratelimit.Policy
	// Options for ratelimit.New, without Store and Now.
	Options     ratelimit.Options
	ResetFormat ratelimit.ResetFormat
}

// DefaultRateLimit is the limit used when rate_limit.default is omitted: the
// tutorial's 100 requests per 60 s.
var DefaultRateLimit = []LimitFile{{Requests: 100, WindowSeconds: 60}}

// DefaultPlanClaim is the claim naming the caller's plan.
const DefaultPlanClaim = "plan"

// compileRateLimit compiles the top-level block and the routes' overrides,
// which it stores in routes (one policy per route that has one).
func compileRateLimit(f *RateLimitFile, routes []RouteFile, rules []routePolicy) (*RateLimit, error) {
	for i, r := range routes {
		if r.RateLimit == nil {
			continue
		}
		field := indexed("routes", i) + ".rate_limit"
		if f == nil {
			return nil, fieldErrorf(field, "requires the top-level rate_limit block")
		}
		if r.Public {
			return nil, fieldErrorf(field, "public routes are not rate-limited (there is no verified key to count against)")
		}
	}
	if f == nil {
		return nil, nil
	}
	rl := &RateLimit{PlanClaim: DefaultPlanClaim, Plans: map[string]*ratelimit.Policy{}}
	defaults := f.Default
	if defaults == nil {
		defaults = DefaultRateLimit
	}
	var err error
	if rl.Default, err = compilePolicy("rate_limit.default", "default", defaults); err != nil {
		return nil, err
	}
	policies := []*ratelimit.Policy{rl.Default}
	if f.Plans != nil {
		if f.Plans.Claim != "" {
			if strings.TrimSpace(f.Plans.Claim) != f.Plans.Claim {
				return nil, fieldErrorf("rate_limit.plans.claim", "must not have surrounding spaces")
			}
			rl.PlanClaim = f.Plans.Claim
		}
		if len(f.Plans.ByPlan) == 0 {
			return nil, fieldErrorf("rate_limit.plans.by_plan", "required: at least one plan")
		}
		plans := make([]string, 0, len(f.Plans.ByPlan))
		for plan := range f.Plans.ByPlan {
			plans = append(plans, plan)
		}
		slices.Sort(plans)
		for _, plan := range plans {
			field := "rate_limit.plans.by_plan." + plan
			if plan == "" {
				return nil, fieldErrorf("rate_limit.plans.by_plan", "plan names must not be empty")
			}
			p, err := compilePolicy(field, "plan-"+plan, f.Plans.ByPlan[plan])
			if err != nil {
				return nil, err
			}
			rl.Plans[plan] = p
			policies = append(policies, p)
		}
	}
	names := map[string]bool{}
	for _, rp := range rules {
		name := "route-" + rp.name
		if names[name] || rp.name == "" || !validPolicyName(name) {
			name = "route-" + strconv.Itoa(rp.index)
		}
		names[name] = true
		p, err := compilePolicy(indexed("routes", rp.index)+".rate_limit", name, routes[rp.index].RateLimit)
		if err != nil {
			return nil, err
		}
		*rp.policy = p
		policies = append(policies, p)
	}
	switch f.OnContention {
	case "", "allow":
		rl.Options.FailMode = ratelimit.FailOpen
	case "deny":
		rl.Options.FailMode = ratelimit.FailClosed
	default:
		return nil, fieldErrorf("rate_limit.on_contention", "must be allow or deny, got %q", f.OnContention)
	}
	switch f.ResetFormat {
	case "", "seconds":
		rl.ResetFormat = ratelimit.ResetSeconds
	case "timestamp":
		rl.ResetFormat = ratelimit.ResetTimestamp
	default:
		return nil, fieldErrorf("rate_limit.reset_format", "must be seconds or timestamp, got %q", f.ResetFormat)
	}
	if s := f.Slots; s != 0 && (s < ratelimit.DefaultWays || s > ratelimit.MaxSlots || s%ratelimit.DefaultWays != 0) {
		return nil, fieldErrorf("rate_limit.slots", "must be a multiple of %d between %d and %d, got %d",
			ratelimit.DefaultWays, ratelimit.DefaultWays, ratelimit.MaxSlots, s)
	}
	if n := f.CASRetries; n != 0 && (n < 1 || n > ratelimit.MaxCASRetries) {
		return nil, fieldErrorf("rate_limit.cas_retries", "must be between 1 and %d, got %d", ratelimit.MaxCASRetries, n)
	}
	rl.Options.Slots = f.Slots
	rl.Options.CASRetries = f.CASRetries
	rl.Options.Width = ratelimit.WidthFor(policies...)
	return rl, nil
}

// routePolicy is a route rule with a rate_limit override, and where its
// compiled policy goes.
type routePolicy struct {
	index  int
	name   string
	policy **ratelimit.Policy
}

func validPolicyName(name string) bool {
	_, err := ratelimit.NewPolicy(name, []ratelimit.Limit{{Requests: 1, Window: time.Second}})
	return err == nil
}

// compilePolicy validates limits (at field) and compiles them into a policy.
func compilePolicy(field, name string, limits []LimitFile) (*ratelimit.Policy, error) {
	out := make([]ratelimit.Limit, len(limits))
	maxSeconds := int64(ratelimit.MaxWindow / time.Second)
	for i, l := range limits {
		if l.WindowSeconds < 1 || l.WindowSeconds > maxSeconds {
			return nil, fieldErrorf(indexed(field, i)+".window_seconds", "must be between 1 and %d, got %d", maxSeconds, l.WindowSeconds)
		}
		out[i] = ratelimit.Limit{Requests: l.Requests, Window: time.Duration(l.WindowSeconds) * time.Second}
	}
	p, err := ratelimit.NewPolicy(name, out)
	var le *ratelimit.LimitError
	switch {
	case err == nil:
		return p, nil
	case errors.As(err, &le) && le.Index < 0:
		return nil, fieldErrorf(field, "%s", le.Problem)
	case errors.As(err, &le):
		sub := le.Field
		if sub == "window" {
			sub = "window_seconds"
		}
		return nil, fieldErrorf(indexed(field, le.Index)+"."+sub, "%s", le.Problem)
	case strings.HasPrefix(err.Error(), "policy name: "):
		return nil, fieldErrorf(field, "name %q %s", strings.TrimPrefix(name, "plan-"), strings.TrimPrefix(err.Error(), "policy name: "))
	}
	return nil, fieldErrorf(field, "%v", err)
}
