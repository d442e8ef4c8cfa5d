package gateway

import (
	"slices"
	"time"

	"github.com/portcullis/portcullis/filter/httperr"
	"github.com/portcullis/portcullis/filter/ratelimit"
	"github.com/portcullis/portcullis/filter/route"
)

// Request is what the gateway decides on: the request's headers, read from
// the proxy in one call, and the fields the stages use.
type Request struct {
	// Headers are every request header as the proxy has them (lower-case
	// names); the public-key header and the cache read them too.
	Headers       [][2]string
	ID            string // x-request-id
	Method        string
	Scheme        string // :scheme
	Authority     string // :authority
	Path          string // :path, query included
	Authorization string
	ContentType   string
	HasBody       bool // the request headers did not end the stream
}

// NewRequest picks the fields the stages read out of headers; endOfStream
// is whether the headers ended the request (no body follows).
func NewRequest(headers [][2]string, endOfStream bool) Request {
	req := Request{Headers: headers, HasBody: !endOfStream}
	for _, kv := range headers {
		switch kv[0] {
		case ":method":
			req.Method = kv[1]
		case ":scheme":
			req.Scheme = kv[1]
		case ":authority":
			req.Authority = kv[1]
		case ":path":
			req.Path = kv[1]
		case "authorization":
			req.Authorization = kv[1]
		case "content-type":
			req.ContentType = kv[1]
		case "x-request-id":
			req.ID = kv[1]
		}
	}
	return req
}

// Kind is what a Decision tells the plugin to do.
type Kind uint8

const (
	// Forward: edit the request headers (Decision.Edits), then go on to
	// the cache and the upstream with Decision.Rate's response headers.
	Forward Kind = iota
	// Reject: answer with Decision.Reject, the JSON error envelope.
	Reject
	// Health: answer the health endpoint.
	Health
	// AskFleet: edit the request headers, then make Decision.Fleet's call to
	// the ratelimit service; Gateway.FleetAnswer decides on its answer.
	AskFleet
	// Purge: the cache's purge endpoint (cache.purge.path), whatever the
	// method; its admin secret, not a JWT, authorizes it.
	Purge
)

// Decision is what to do with a request; Kind says which fields mean
// something.
type Decision struct {
	Kind Kind
	// Rule is the matched route rule; nil when none was reached (bad path,
	// no rule, health) and in decisions on a fleet answer.
	Rule *route.Rule
	// Reject is the local reply, for Kind Reject.
	Reject *Rejection
	// Edits are the request header changes, for Forward and AskFleet.
	Edits Edits
	// Fleet is the call to make, for AskFleet.
	Fleet *FleetCall
	// Rate is the rate-limit outcome when the request was charged (whether
	// it is forwarded or refused); nil when no limit applies or the fleet
	// is still to be asked.
	Rate *RateOutcome
	// Tenant is the verified key of a protected route's caller, "" on a
	// public route: whose cache entries the request may use. It is set
	// exactly when a token was verified.
	Tenant string
	// TokenCache says whether the token was found in the token cache.
	TokenCache TokenCacheUse
	// ShadowJWT is the 401 a rule in JWT shadow mode (routes[].enforce.jwt
	// false) did not send: the request is forwarded without identity, and
	// the plugin counts and logs it as this refusal.
	ShadowJWT *Rejection
	// CostReport is set for a charged request of a rule with a cost_header
	// that was not refused: the plugin hands the response's header to
	// Gateway.ChargeResponse.
	CostReport *CostReport
}

// TokenCacheUse is what the token cache did for a request.
type TokenCacheUse uint8

const (
	// TokenCacheUnused: no token was looked up (public route, no token, or
	// the cache is off).
	TokenCacheUnused TokenCacheUse = iota
	// TokenCacheHit: the token's verdict came from the cache (and was
	// checked against the clock again).
	TokenCacheHit
	// TokenCacheMiss: the token was verified (and, if it verified and is
	// not too large, cached; if it was refused for good, kept as refused).
	TokenCacheMiss
	// TokenCacheRefused: the token was refused from the refused-token
	// cache, without a signature check.
	TokenCacheRefused
)

// Rejection is a local reply the gateway makes instead of forwarding.
type Rejection struct {
	Kind    httperr.Kind
	Message string
	Reason  Reason
	Headers [][2]string
	// RetryAfter is the body's retry_after (seconds) for TooManyRequests.
	RetryAfter int64
	// Policy names the limit that refused a TooManyRequests ("" when no
	// limit is known: the fail mode decided), the body's policy field.
	Policy string
}

// Edits are the header changes for a request that goes upstream: only
// headers the request has are removed, so a request without spoofed
// identity headers costs no removal.
type Edits struct {
	Remove []string    // applied first
	Set    [][2]string // then these, replacing any value
}

// Apply returns headers as they are after the edits (a new slice; headers
// is not changed), which is what the upstream and the cache see.
func (e Edits) Apply(headers [][2]string) [][2]string {
	out := make([][2]string, 0, len(headers)+len(e.Set))
	for _, kv := range headers {
		if !slices.Contains(e.Remove, kv[0]) && !setsName(e.Set, kv[0]) {
			out = append(out, kv)
		}
	}
	return append(out, e.Set...)
}

func setsName(set [][2]string, name string) bool {
	for _, kv := range set {
		if kv[0] == name {
			return true
		}
	}
	return false
}

// FleetCall is one ShouldRateLimit call to make before forwarding.
type FleetCall struct {
	Body       []byte
	Key, Route string // the blocklist's pair
	// partition and shadow are how the answer is charged (see charged).
	partition string
	shadow    bool
	// local is the local limits' admission in hybrid mode, nil in fleet
	// mode: merged with the answer (withLocal).
	local *RateOutcome
	// Lease is the batch of hits the call reserves for this Envoy (its
	// hits_addend; the request spends its cost of them); 0 for a plain call.
	Lease int64
	// asked is when the call was decided: a lease's window is measured
	// from then.
	asked time.Time
	cost  int64
	// admitted is set for a lease renewal: the request was admitted from
	// the lease, and the call only asks for the pair's next batch.
	admitted *RateOutcome
}

// RateSource is who decided a rate-limit outcome.
type RateSource uint8

const (
	// RateLocal: this Envoy's shared-data limiter.
	RateLocal RateSource = iota
	// RateFleet: the ratelimit service's answer.
	RateFleet
	// RateBlocklist: a refusal remembered from an earlier fleet answer,
	// made without a call.
	RateBlocklist
	// RateFleetUnavailable: the service did not answer usefully, and the
	// configured failure mode decided.
	RateFleetUnavailable
	// RateLease: admitted from this Envoy's lease of the fleet budget,
	// made without a call.
	RateLease
)

// RateOutcome is one rate-limit decision and the response headers it gives.
type RateOutcome struct {
	Decision ratelimit.Decision
	Source   RateSource
	// Shadow: the rule does not enforce its limit, so a denial was counted
	// (ShadowDenied) and the request forwarded.
	Shadow bool
	// Headers go on the response, forwarded or refused (a refusal's are
	// also in its Rejection); none in shadow mode unless
	// rate_limit.shadow_headers.
	Headers [][2]string
	// headers is where Headers are kept: the outcome is allocated anyway,
	// and the pairs then cost no allocation of their own.
	headers [6][2]string
	// LocalFaults are the local limits' faults in hybrid mode when
	// Decision is the fleet side's, so that they are counted too.
	LocalFaults ratelimit.Fault
}

// ShadowDenied reports whether the request would have been refused had the
// limit been enforced.
func (o *RateOutcome) ShadowDenied() bool { return o.Shadow && !o.Decision.Allowed }
