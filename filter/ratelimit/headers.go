package ratelimit

import (
	"strconv"
	"time"
)

// Response header names, lower case as the plugin sets them.
const (
	HeaderLimit      = "x-ratelimit-limit"
	HeaderRemaining  = "x-ratelimit-remaining"
	HeaderReset      = "x-ratelimit-reset"
	HeaderPolicy     = "ratelimit-policy" // draft-ietf-httpapi-ratelimit-headers
	HeaderRateLimit  = "ratelimit"        // draft-ietf-httpapi-ratelimit-headers
	HeaderRetryAfter = "retry-after"      // RFC 9110 §10.2.3
)

// ResetFormat chooses how X-RateLimit-Reset is written.
type ResetFormat uint8

const (
	// ResetSeconds: whole seconds until the budget is full again, rounded up.
	ResetSeconds ResetFormat = iota
	// ResetTimestamp: the instant it is full again, as the tutorial sent it
	// (JavaScript's Date.toISOString: UTC, milliseconds, e.g.
	// "2026-01-02T15:04:05.000Z").
	ResetTimestamp
)

// ceilSeconds rounds d up to whole seconds: a client that waits that long
// finds the promised state.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// ResetSeconds is Reset in whole seconds, rounded up.
func (d *Decision) ResetSeconds() int64 { return ceilSeconds(d.Reset) }

// RetryAfterSeconds is the Retry-After value of a denial: RetryAfter in
// whole seconds, rounded up, at least 1. It is 0 for an admitted request.
func (d *Decision) RetryAfterSeconds() int64 {
	if d.Allowed {
		return 0
	}
	return max(ceilSeconds(d.RetryAfter), 1)
}

// FormatTimestamp writes t the way JavaScript's Date.toISOString does.
func FormatTimestamp(t time.Time) string {
	return t.UTC().Truncate(time.Millisecond).Format("2006-01-02T15:04:05.000Z")
}

// policyItem is one item of RateLimit-Policy: `"name";q=100;w=60`.
func policyItem(l Limit) string {
	return `"` + l.Name + `";q=` + strconv.FormatInt(l.Requests, 10) + ";w=" + strconv.FormatInt(int64(l.Window/time.Second), 10)
}

// PolicyField is the RateLimit-Policy value listing every limit of p, e.g.
// `"default";q=100;w=60` or `"api-1s";q=10;w=1, "api-3600s";q=1000;w=3600`.
// It is computed once by NewPolicy.
func (p *Policy) PolicyField() string { return p.field }

// RateLimitField is the RateLimit value for the tightest limit, e.g.
// `"default";r=42;t=17`: r is Remaining, t is ResetSeconds.
func (d *Decision) RateLimitField() string {
	return `"` + d.Limit.Name + `";r=` + strconv.FormatInt(d.Remaining, 10) + ";t=" + strconv.FormatInt(d.ResetSeconds(), 10)
}

// AppendHeaders appends the response headers for d to dst (name, value;
// the proxy-wasm header pair): X-RateLimit-Limit,
// -Remaining and -Reset (in format f), RateLimit-Policy and RateLimit, and
// Retry-After on a denial. A degraded decision (fail mode), or one not made
// by Decide, knows no budget and gets only Retry-After when it denies.
func (d *Decision) AppendHeaders(dst [][2]string, f ResetFormat) [][2]string {
	if !d.Degraded() && d.policy != nil {
		reset := strconv.FormatInt(d.ResetSeconds(), 10)
		if f == ResetTimestamp {
			reset = FormatTimestamp(d.ResetAt().Add(time.Millisecond - 1)) // rounded up to the millisecond
		}
		dst = append(dst,
			[2]string{HeaderLimit, strconv.FormatInt(d.Limit.Requests, 10)},
			[2]string{HeaderRemaining, strconv.FormatInt(d.Remaining, 10)},
			[2]string{HeaderReset, reset},
			[2]string{HeaderPolicy, d.policy.PolicyField()},
			[2]string{HeaderRateLimit, d.RateLimitField()},
		)
	}
	if !d.Allowed {
		dst = append(dst, [2]string{HeaderRetryAfter, strconv.FormatInt(d.RetryAfterSeconds(), 10)})
	}
	return dst
}
