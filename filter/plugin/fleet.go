package plugin

import (
	"time"

	"github.com/portcullis/portcullis/filter/fleet"
	"github.com/portcullis/portcullis/filter/ratelimit"
)

// askFleet prepares the ratelimit service call for (entry: key) on the
// rule, unless the blocklist already knows the pair is over its limit: then
// the request is refused here, with no call.
func (d *decider) askFleet(dec *Decision, entry, key string, now time.Time) {
	rl := d.cfg.RateLimit
	routeName := dec.Rule.Name
	if blk, ok := d.blocklist.Blocked(key, routeName, now); ok {
		p := d.reportedPolicy(reportedLimit{requests: blk.Limit, window: blk.Window})
		rd := ratelimit.Unreported(false, blk.Until.Sub(now), now)
		if p != nil {
			rd = p.Reported(false, 0, blk.Until.Sub(now), now)
		}
		d.applyRateDecision(dec, rd, "rate limit exceeded", "rate_limited")
		return
	}
	dec.Fleet = &FleetCall{
		Body:  fleet.RequestBody(nil, rl.Fleet.Domain, entry, key, routeName),
		Key:   key,
		Route: routeName,
		Entry: entry,
	}
}

// fleetAnswer decides a request from the service's answer (status and body;
// status 0 when the call failed: no answer in time, reset, cluster
// missing). An answer that is not understood, like no answer, is the
// configured failure mode. It reports whether the service answered.
func (d *decider) fleetAnswer(dec *Decision, call *FleetCall, status int, body []byte, now time.Time) bool {
	fl := d.cfg.RateLimit.Fleet
	a, err := fleet.ParseAnswer(status, body)
	if status == 0 || err != nil {
		rd := ratelimit.Unreported(fl.FailOpen, time.Second, now)
		d.applyRateDecision(dec, rd, "rate limit service unavailable", "ratelimit_unavailable")
		return false
	}
	if !a.Limited {
		return true // no limit applies to this descriptor: forward without headers
	}
	p := d.reportedPolicy(reportedLimit{requests: a.Limit, window: a.Window})
	if p == nil {
		rd := ratelimit.Unreported(!a.Over, a.Reset, now)
		d.applyRateDecision(dec, rd, "rate limit exceeded", "rate_limited")
		return true
	}
	if a.Over {
		// Remember the refusal so that this Envoy's workers refuse the pair
		// without calling until the reset. A lost write costs one call.
		_ = d.blocklist.Add(call.Key, call.Route, fleet.Block{Until: now.Add(a.Reset), Limit: a.Limit, Window: a.Window})
	}
	d.applyRateDecision(dec, p.Reported(!a.Over, a.Remaining, a.Reset, now), "rate limit exceeded", "rate_limited")
	return true
}

// reportedLimit identifies a limit the service reported. The descriptor
// config's own limit names are not used: a refusal from the blocklist must
// describe the limit exactly as the service's refusal did.
type reportedLimit struct {
	requests int64
	window   time.Duration
}

// maxReportedPolicies bounds the cache: a descriptor config has few limits,
// and a misbehaving service must not grow the VM's memory.
const maxReportedPolicies = 64

// reportedPolicy returns the policy describing l for the response headers,
// or nil when l cannot be described (then only Retry-After is sent).
func (d *decider) reportedPolicy(l reportedLimit) *ratelimit.Policy {
	if p, ok := d.reported[l]; ok {
		return p
	}
	p, err := ratelimit.ReportedPolicy("fleet", l.requests, l.window)
	if err != nil {
		return nil
	}
	if d.reported == nil {
		d.reported = map[reportedLimit]*ratelimit.Policy{}
	}
	if len(d.reported) < maxReportedPolicies {
		d.reported[l] = p
	}
	return p
}
