package gateway

import (
	"time"

	"github.com/portcullis/portcullis/filter/ratelimit"
)

// CostReport is how a request of a rule with a cost_header was charged, so
// that what its response reports can be charged after it.
type CostReport struct {
	// Header is the response header (lower case) carrying the real cost.
	Header string
	paid   int64             // the cost charged when it was admitted
	policy *ratelimit.Policy // the local limits' policy; nil in fleet mode
	// partition is the local table's key (localKey); entry, key and route
	// the fleet descriptor's.
	partition, entry, key, route string
}

// ResponseCost is what the response's cost header made of a request's
// charge.
type ResponseCost struct {
	// Invalid: the header was there but not a whole number of 0 to
	// ratelimit.MaxRequests; it was ignored.
	Invalid bool
	// Units is the reported cost beyond what the request paid, charged now
	// (0: nothing owed).
	Units int64
	// Local is the local limits' state after the charge; its Faults say
	// whether the charge was lost (nil when nothing was charged locally).
	Local *ratelimit.Decision
	// FleetBody is the ShouldRateLimit call charging Units as hits_addend,
	// to send without waiting for its answer (nil when there is no fleet
	// side or nothing is owed).
	FleetBody []byte
}

// ChargeResponse charges the cost a response reported (its cost header's
// value, "" when absent) beyond what the request already paid: to the
// local limits at once, and to the fleet through the returned call. The
// debt can refuse nothing now, the response is on its way; it applies to
// the key's next requests. A value that is not a whole number is ignored.
func (g *Gateway) ChargeResponse(r *CostReport, value string, now time.Time) ResponseCost {
	var out ResponseCost
	if value == "" {
		return out
	}
	reported, ok := parseCost(value)
	if !ok {
		out.Invalid = true
		return out
	}
	if out.Units = reported - r.paid; out.Units <= 0 {
		out.Units = 0
		return out
	}
	if r.policy != nil {
		d := g.limiter.Charge(r.policy, r.partition, out.Units, now)
		out.Local = &d
	}
	if g.blocklist != nil {
		fl := g.cfg.RateLimit.Fleet
		out.FleetBody = fl.Protocol.RequestBody(nil, fl.Domain, r.entry, r.key, r.route, out.Units)
	}
	return out
}

// parseCost reads a cost header's value: decimal digits only, at most
// ratelimit.MaxRequests.
func parseCost(s string) (int64, bool) {
	if len(s) == 0 || len(s) > 10 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, n <= ratelimit.MaxRequests
}
