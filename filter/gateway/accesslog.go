package gateway

import (
	"github.com/portcullis/portcullis/filter/jsonobj"
)

// AccessProperty is the filter-state property the plugin publishes each
// request's decisions in, for Envoy's access log: Envoy stores it as
// "wasm.portcullis", printed by %FILTER_STATE(wasm.portcullis:PLAIN)%.
const AccessProperty = "portcullis"

// Access is what the gateway decided for one request, as the access log
// shows it. It never holds a token, a secret, a header value other than the
// verified key, or a query string.
type Access struct {
	Route string // the rule's name; "" when none matched
	Key   string // the verified key claim (the tenant); "" on public routes
	// JWT is "verified", "cached" (the token cache's verdict), the refusal
	// reason ("jwt_expired", ...) or "" when no token was looked at.
	JWT string
	// JWTShadow: the token was refused on a rule in JWT shadow mode, and the
	// request forwarded without identity.
	JWTShadow bool
	Rate      *RateOutcome // nil when the request was not charged
	// FleetCall is set when the ratelimit service was asked.
	FleetCall bool
	// Cache is the X-Cache value ("HIT", "MISS", "BYPASS"; "" when the cache
	// had no say); CacheFill is set when the response is being stored.
	Cache     string
	CacheFill bool
	// Reply is the reason of a reply the gateway made itself ("" when the
	// upstream answered); upstream failures are "upstream_<kind>".
	Reply string
}

var rateSources = [...]string{RateLocal: "local", RateFleet: "fleet", RateBlocklist: "blocklist", RateFleetUnavailable: "fleet_unavailable", RateLease: "lease"}

// AppendJSON builds the published value in buf's memory (see
// jsonobj.Reuse) and returns it: one flat JSON object, fields omitted when
// empty.
func (a *Access) AppendJSON(buf []byte) []byte {
	o := jsonobj.Reuse(buf)
	str := func(k, v string) {
		if v != "" {
			o.String(k, v)
		}
	}
	str("route", a.Route)
	str("key", a.Key)
	str("jwt", a.JWT)
	if a.JWTShadow {
		o.Bool("jwt_shadow", true)
	}
	if r := a.Rate; r != nil {
		decision := "allowed"
		switch {
		case r.ShadowDenied():
			decision = "shadow_denied"
		case !r.Decision.Allowed:
			decision = "denied"
		}
		o.String("ratelimit", decision).String("ratelimit_source", rateSources[r.Source])
		if name := r.Decision.PolicyName(); name != "" {
			o.String("ratelimit_policy", name).Int("ratelimit_remaining", int(r.Decision.Remaining))
		}
	}
	if a.FleetCall {
		o.String("fleet_call", "made")
	}
	str("cache", a.Cache)
	if a.CacheFill {
		o.String("cache_fill", "stored")
	}
	str("reply", a.Reply)
	return o.Bytes()
}

// JWTOutcome is the Access.JWT of a decision.
func (d *Decision) JWTOutcome() string {
	switch {
	case d.Tenant != "" && d.TokenCache == TokenCacheHit:
		return "cached"
	case d.Tenant != "":
		return "verified"
	case d.ShadowJWT != nil:
		return d.ShadowJWT.Reason.Metric()
	case d.Reject != nil && d.Reject.Reason >= reasonJWT:
		return d.Reject.Reason.Metric()
	}
	return ""
}
