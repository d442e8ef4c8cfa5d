package ratelimit

import (
	"fmt"
	"time"
)

// ReportedPolicy describes one limit that is enforced elsewhere (fleet mode:
// envoyproxy/ratelimit), so that its decisions get the same response headers
// as local ones. Its window may exceed MaxWindow (the service knows weeks,
// months and years). A Limiter refuses to decide on it (FaultPolicy).
func ReportedPolicy(name string, requests int64, window time.Duration) (*Policy, error) {
	if problem := checkName(name); problem != "" {
		return nil, &NameError{Name: name, Problem: problem}
	}
	if requests < 0 || window < time.Second {
		return nil, fmt.Errorf("reported limit %d per %v: want requests ≥ 0 and a window of at least 1s", requests, window)
	}
	l := Limit{Name: name, Requests: requests, Window: window}
	return &Policy{name: name, rules: []rule{{Limit: l}}, width: 1, field: policyItem(l), reported: true}, nil
}

// Reported is the decision another limiter made under p: whether it allowed
// the request, what remains of the limit and when it is full again. A
// denial's RetryAfter is the reset (the only wait the service reports).
func (p *Policy) Reported(allowed bool, remaining int64, reset time.Duration, at time.Time) Decision {
	d := Decision{Allowed: allowed, Limit: p.rules[0].Limit, Remaining: max(remaining, 0), Reset: max(reset, 0), at: at.UnixNano(), policy: p}
	if !allowed {
		d.RetryAfter = d.Reset
	}
	return d
}

// Unreported is a decision about which nothing but the outcome is known (the
// limiter could not be asked and the fail mode decided). Its headers carry
// only Retry-After, and only when it denies.
func Unreported(allowed bool, retryAfter time.Duration, at time.Time) Decision {
	d := Decision{Allowed: allowed, at: at.UnixNano()}
	if !allowed {
		d.RetryAfter = retryAfter
	}
	return d
}
