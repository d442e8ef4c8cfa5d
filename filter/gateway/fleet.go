package gateway

import (
	"time"

	"github.com/portcullis/portcullis/filter/fleet"
	"github.com/portcullis/portcullis/filter/ratelimit"
)

// askFleet turns dec into the ratelimit service call for (entry: key) on
// the rule, unless the request can be decided here with no call: admitted
// from this Envoy's lease of the pair's budget (a rule with fleet_lease), or
// refused because the blocklist knows the pair is over its limit. A leasing
// rule's call may reserve a batch (FleetCall.Lease).
//
// In hybrid mode dec already holds the local limits' admission: it is kept
// aside (in the call) and merged with the fleet's decision, which alone is
// then in dec (see withLocal), so each request counts one outcome.
func (g *Gateway) askFleet(dec *Decision, entry, key string, now time.Time) {
	routeName, cost, maxBatch := dec.Rule.Name, max(dec.Rule.Cost, 1), dec.Rule.FleetLease
	here := charged{partition: localKey(entry, key), shadow: dec.Rule.ShadowRateLimit}
	local := dec.Rate
	dec.Rate = nil
	// The lease first: its hits were counted by the service, so spending
	// them is right even for a pair another worker has blocklisted since.
	if spent, ok := g.spendLease(maxBatch, key, routeName, cost, now); ok {
		here.source = RateLease
		g.charge(dec, g.reportedDecision(true, reportedLimit{requests: spent.Limit, window: spent.Window}, spent.Remaining, spent.Reset, now),
			here, "rate limit exceeded", ReasonRateLimited)
		withLocal(dec, local)
		if spent.Renew {
			g.renewLease(dec, entry, key, maxBatch, now)
		}
		return
	}
	if blk, ok := g.blocklist.Blocked(key, routeName, now); ok {
		here.source = RateBlocklist
		g.charge(dec, g.reportedDecision(false, reportedLimit{requests: blk.Limit, window: blk.Window}, 0, blk.Until.Sub(now), now),
			here, "rate limit exceeded", ReasonRateLimited)
		withLocal(dec, local)
		return
	}
	var lease int64
	if maxBatch > 0 {
		lease, _ = g.leases.Reserve(key, routeName, cost, maxBatch, g.leaseInFlight(), now)
	}
	dec.Kind = AskFleet
	dec.Fleet = g.fleetCall(entry, key, routeName, max(lease, cost), now)
	dec.Fleet.Lease, dec.Fleet.cost = lease, cost
	dec.Fleet.partition, dec.Fleet.shadow, dec.Fleet.local = here.partition, here.shadow, local
}

// renewLease makes dec, a request admitted from its pair's lease, also ask
// for the pair's next batch, unless the pair is blocked: its call carries
// the admission, which the answer does not change (FleetAnswer only stores
// the batch).
func (g *Gateway) renewLease(dec *Decision, entry, key string, maxBatch int64, now time.Time) {
	if _, blocked := g.blocklist.Blocked(key, dec.Rule.Name, now); blocked {
		return // the service would refuse the batch
	}
	lease, ok := g.leases.Reserve(key, dec.Rule.Name, 0, maxBatch, g.leaseInFlight(), now)
	if !ok {
		return
	}
	dec.Kind = AskFleet
	dec.Fleet = g.fleetCall(entry, key, dec.Rule.Name, lease, now)
	dec.Fleet.Lease, dec.Fleet.admitted = lease, dec.Rate
	dec.Rate = nil
}

// leaseInFlight is how long a lease call marks its pair in flight: longer
// than the call's timeout, so one worker at a time asks for a pair's lease.
func (g *Gateway) leaseInFlight() time.Duration {
	return g.cfg.RateLimit.Fleet.Timeout + fleet.LeaseMargin
}

// fleetCall is the call charging (entry: key) on routeName hits.
func (g *Gateway) fleetCall(entry, key, routeName string, hits int64, now time.Time) *FleetCall {
	fl := g.cfg.RateLimit.Fleet
	return &FleetCall{Body: fl.Protocol.RequestBody(nil, fl.Domain, entry, key, routeName, hits), Key: key, Route: routeName, asked: now}
}

// spendLease takes cost from the pair's lease, for a rule that leases
// (maxBatch > 0).
func (g *Gateway) spendLease(maxBatch int64, key, routeName string, cost int64, now time.Time) (fleet.Spent, bool) {
	if maxBatch == 0 {
		return fleet.Spent{}, false
	}
	return g.leases.Spend(key, routeName, cost, now)
}

// withLocal merges the local limits' admission (hybrid mode; nil in fleet
// mode) into dec, which holds the fleet side's outcome: the response
// reports the tighter of the two (the fleet's refusal; else the one with
// fewer requests left, or the only one that knows its budget), and the
// local side's faults are counted either way.
func withLocal(dec *Decision, local *RateOutcome) {
	switch fleetSide := dec.Rate; {
	case local == nil:
	case fleetSide == nil: // the service has no limit for the descriptor
		dec.Rate = local
	case fleetSide.Decision.Allowed && tighter(&local.Decision, &fleetSide.Decision):
		out := *local
		out.Source = fleetSide.Source // what the fleet side did, for its metrics and the access log
		dec.Rate = &out
	default:
		fleetSide.LocalFaults = local.Decision.Faults
	}
}

// tighter reports whether the admission a reports less budget than b.
func tighter(a, b *ratelimit.Decision) bool {
	if b.PolicyName() == "" { // b knows no budget (a failure mode decided)
		return a.PolicyName() != ""
	}
	return a.PolicyName() != "" && a.Remaining < b.Remaining
}

// FleetAnswer decides a request from the service's reply to call (its
// Status is 0 when the call failed: no answer in time, reset, cluster
// missing). An answer that is not understood, like no answer, is
// the configured failure mode. The decision is Forward (with no header
// edits: they were made before the call) or Reject.
func (g *Gateway) FleetAnswer(call *FleetCall, reply fleet.Reply, now time.Time) Decision {
	dec := g.fleetAnswer(call, reply, now)
	withLocal(&dec, call.local)
	return dec
}

// fleetAnswer is FleetAnswer's decision on the fleet side alone. A call
// that reserved a lease stores what the service granted, or releases the
// pair's in-flight mark when it granted nothing.
func (g *Gateway) fleetAnswer(call *FleetCall, reply fleet.Reply, now time.Time) Decision {
	dec := Decision{Kind: Forward}
	// No answer at all (Status 0) is an error of the protocol's reader too.
	a, err := g.cfg.RateLimit.Fleet.Protocol.ParseAnswer(reply)
	switch {
	case call.Lease > 0 && err == nil && a.Limited && !a.Over:
		// A lost grant only loses the batch: the service counted it, so the
		// fleet admits less, never more.
		_ = g.leases.Grant(call.Key, call.Route, call.Lease, call.cost, call.asked, a, now)
		a.Remaining += call.Lease - call.cost
	case call.Lease > 0:
		g.leases.Release(call.Key, call.Route)
	}
	if call.admitted != nil { // a renewal: the request was admitted from the lease
		if err == nil && a.Over {
			g.blockPair(call, a, now)
		}
		return Decision{Kind: Forward, Rate: call.admitted}
	}
	switch {
	case err != nil:
		rd := ratelimit.Unreported(g.cfg.RateLimit.Fleet.FailOpen, time.Second, now)
		g.charge(&dec, rd, call.charged(RateFleetUnavailable), "rate limit service unavailable", ReasonRateLimitUnavailable)
		return dec
	case !a.Limited:
		return dec // no limit applies to this descriptor: forward without headers
	}
	if a.Over {
		g.blockPair(call, a, now)
	}
	rd := g.reportedDecision(!a.Over, reportedLimit{requests: a.Limit, window: a.Window}, a.Remaining, a.Reset, now)
	g.charge(&dec, rd, call.charged(RateFleet), "rate limit exceeded", ReasonRateLimited)
	return dec
}

// blockPair remembers the service's refusal of call's pair, so that this
// Envoy's workers refuse the pair without calling until the reset (a
// refused batch too: the service counted it, so the pair is over its
// limit). A lost write costs one call.
func (g *Gateway) blockPair(call *FleetCall, a fleet.Answer, now time.Time) {
	_ = g.blocklist.Add(call.Key, call.Route, fleet.Block{Until: now.Add(a.Reset), Limit: a.Limit, Window: a.Window})
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

// reportedDecision is the decision of a limit l the service reported, with
// the headers of its policy, or only Retry-After when l cannot be described.
func (g *Gateway) reportedDecision(allowed bool, l reportedLimit, remaining int64, reset time.Duration, now time.Time) ratelimit.Decision {
	if p := g.reportedPolicy(l); p != nil {
		return p.Reported(allowed, remaining, reset, now)
	}
	return ratelimit.Unreported(allowed, reset, now)
}

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
