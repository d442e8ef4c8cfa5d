package gateway

import (
	"time"

	"github.com/portcullis/portcullis/filter/fleet"
	"github.com/portcullis/portcullis/filter/ratelimit"
)

// askFleet turns dec into the ratelimit service call for (entry: key) on
// the rule, unless the blocklist already knows the pair is over its limit:
// then the request is refused here, with no call.
func (g *Gateway) askFleet(dec *Decision, entry, key string, now time.Time) {
	routeName := dec.Rule.Name
	partition, shadow := localKey(entry, key), dec.Rule.ShadowRateLimit
	if blk, ok := g.blocklist.Blocked(key, routeName, now); ok {
		rd := ratelimit.Unreported(false, blk.Until.Sub(now), now)
		if p := g.reportedPolicy(reportedLimit{requests: blk.Limit, window: blk.Window}); p != nil {
			rd = p.Reported(false, 0, blk.Until.Sub(now), now)
		}
		g.charge(dec, rd, charged{partition: partition, shadow: shadow, source: RateBlocklist}, "rate limit exceeded", ReasonRateLimited)
		return
	}
	dec.Kind = AskFleet
	dec.Fleet = &FleetCall{
		Body:      fleet.RequestBody(nil, g.cfg.RateLimit.Fleet.Domain, entry, key, routeName, dec.Rule.Cost),
		Key:       key,
		Route:     routeName,
		partition: partition,
		shadow:    shadow,
	}
}

// FleetAnswer decides a request from the service's answer to call (status
// and body; status 0 when the call failed: no answer in time, reset,
// cluster missing). An answer that is not understood, like no answer, is
// the configured failure mode. The decision is Forward (with no header
// edits: they were made before the call) or Reject.
func (g *Gateway) FleetAnswer(call *FleetCall, status int, body []byte, now time.Time) Decision {
	dec := Decision{Kind: Forward}
	a, err := fleet.ParseAnswer(status, body)
	switch {
	case status == 0 || err != nil:
		rd := ratelimit.Unreported(g.cfg.RateLimit.Fleet.FailOpen, time.Second, now)
		g.charge(&dec, rd, call.charged(RateFleetUnavailable), "rate limit service unavailable", ReasonRateLimitUnavailable)
		return dec
	case !a.Limited:
		return dec // no limit applies to this descriptor: forward without headers
	}
	p := g.reportedPolicy(reportedLimit{requests: a.Limit, window: a.Window})
	if p == nil {
		g.charge(&dec, ratelimit.Unreported(!a.Over, a.Reset, now), call.charged(RateFleet), "rate limit exceeded", ReasonRateLimited)
		return dec
	}
	if a.Over {
		// Remember the refusal so that this Envoy's workers refuse the pair
		// without calling until the reset. A lost write costs one call.
		_ = g.blocklist.Add(call.Key, call.Route, fleet.Block{Until: now.Add(a.Reset), Limit: a.Limit, Window: a.Window})
	}
	g.charge(&dec, p.Reported(!a.Over, a.Remaining, a.Reset, now), call.charged(RateFleet), "rate limit exceeded", ReasonRateLimited)
	return dec
}

// charged is how the answer to c is charged, as decided by source.
func (c *FleetCall) charged(source RateSource) charged {
	return charged{partition: c.partition, shadow: c.shadow, source: source}
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
func (g *Gateway) reportedPolicy(l reportedLimit) *ratelimit.Policy {
	if p, ok := g.reported[l]; ok {
		return p
	}
	p, err := ratelimit.ReportedPolicy("fleet", l.requests, l.window)
	if err != nil {
		return nil
	}
	if g.reported == nil {
		g.reported = map[reportedLimit]*ratelimit.Policy{}
	}
	if len(g.reported) < maxReportedPolicies {
		g.reported[l] = p
	}
	return p
}
