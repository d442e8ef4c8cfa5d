package plugin

import (
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/portcullis/portcullis/filter/config"
	"github.com/portcullis/portcullis/filter/fleet"
	"github.com/portcullis/portcullis/filter/httperr"
	"github.com/portcullis/portcullis/filter/jwt"
	"github.com/portcullis/portcullis/filter/ratelimit"
	"github.com/portcullis/portcullis/filter/route"
)

// Request is what the gateway decides on: the request's headers as plain values.
type Request struct {
	Method        string
	Path          string // :path, query included
	Authorization string
	ContentType   string
	HasBody       bool // the request headers did not end the stream
}

// Rejection is a local reply the gateway makes instead of forwarding.
type Rejection struct {
	Kind    httperr.Kind
	Message string
	Reason  string // metric / log reason, snake_case
	Headers [][2]string
	// RetryAfter is the body's retry_after (seconds) for TooManyRequests.
	RetryAfter int64
}

// Decision is what to do with a request. Exactly one of Reject, Health or
// Forward is meaningful.
type Decision struct {
	Reject  *Rejection
	Health  bool
	Rule    *route.Rule
	Forward Forward
	// RateLimit is the rate-limit decision when the request was limited
	// (denied: Reject is the 429), nil when no limit applies.
	RateLimit *ratelimit.Decision
	// RateHeaders are the rate-limit response headers of a forwarded request.
	RateHeaders []ratelimit.Header
	// Fleet, when set, is the ratelimit service call that decides whether
	// the request is forwarded (fleet mode; see fleetAnswer).
	Fleet *FleetCall
	// Tenant is the verified key of a protected route's caller, "" on a
	// public route: whose cache entries the request may use.
	Tenant string
}

// FleetCall is one ShouldRateLimit call to make before forwarding.
type FleetCall struct {
	Body        []byte
	Key, Route  string // the blocklist's pair
	Entry       string // the descriptor entry the key is under
	blocklisted bool
}

// Forward lists the header changes for a request that goes upstream.
type Forward struct {
	Remove []string    // applied first; shared with the config, read only
	Set    [][2]string // then these
}

// decider runs the request stages over a compiled config. It is pure apart
// from the verifier's scratch buffers, so it tests natively.
type decider struct {
	cfg       *config.Config
	verifier  *jwt.Verifier      // nil when every route is public
	limiter   *ratelimit.Limiter // nil unless rate limiting is local
	blocklist *fleet.Blocklist   // nil unless rate limiting is fleet
	// publicKey reads what a public route is rate-limited by (the client
	// address or a header, as rate_limit.public_key says; "" when the
	// request has none). nil when public routes are not limited. It is only
	// called for public routes, so protected ones never pay for it.
	publicKey func() string
	// reported caches the policies of the limits the service reports, so
	// their RateLimit-Policy field is built once per limit.
	reported map[reportedLimit]*ratelimit.Policy
}

func (d *decider) decide(req Request, now time.Time) Decision {
	path, ok := route.SplitPath(req.Path)
	if !ok {
		return reject(httperr.BadRequest, "request path is ambiguous", "bad_path")
	}
	if path == d.cfg.HealthPath && (req.Method == "GET" || req.Method == "HEAD") {
		return Decision{Health: true}
	}
	rule, ok := d.cfg.Routes.Match(req.Method, path)
	if !ok {
		return reject(httperr.NotFound, "Route "+req.Method+" "+path+" not found", "route_not_found")
	}
	fwd := Forward{Remove: d.cfg.StripHeaders}
	var caller *jwt.Verified
	if !rule.Public {
		v, set, rej := d.authenticate(req.Authorization, now)
		if rej != nil {
			return Decision{Reject: rej, Rule: rule}
		}
		fwd.Set = set
		caller = &v
	}
	if req.HasBody && route.HasBody(req.Method) && !route.MediaTypeAllowed(req.ContentType, d.cfg.ContentTypes) {
		dec := reject(httperr.UnsupportedMediaType, "Content-Type must be one of: "+strings.Join(d.cfg.ContentTypes, ", "), "unsupported_media_type")
		dec.Rule = rule
		return dec
	}
	dec := Decision{Rule: rule, Forward: fwd}
	if caller != nil {
		dec.Tenant = caller.Subject
	}
	// Only requests that would go upstream are charged.
	if entry, key, ok := d.rateKey(caller); ok {
		if d.blocklist != nil {
			d.askFleet(&dec, entry, key, now)
		} else {
			d.rateLimit(&dec, rule, caller, entry, key)
		}
	}
	return dec
}

// rateKey is what the request is counted by, and under which descriptor
// entry: the verified key on protected routes, the configured public key on
// public ones. ok is false when the request is not rate-limited.
func (d *decider) rateKey(caller *jwt.Verified) (entry, key string, ok bool) {
	switch {
	case d.cfg.RateLimit == nil:
		return "", "", false
	case caller != nil:
		return fleet.KeyEntry, caller.Subject, true
	case d.publicKey == nil:
		return "", "", false
	}
	// A public route whose key is missing is not counted: refusing it would
	// lock out every client without the header, counting it under "" would
	// make them all share one budget.
	switch key = d.publicKey(); {
	case key == "":
		return "", "", false
	case d.cfg.RateLimit.PublicKey.Kind == config.KeyClientAddress:
		return fleet.ClientAddressEntry, key, true
	case route.SafeHeaderValue(key):
		return fleet.HeaderEntry, key, true
	}
	return "", "", false
}

// localKey is the shared-data key of a counted key: verified keys as they
// are, the others in their own namespace (a NUL never occurs in a verified
// key), so a client address can never spend an API key's budget.
func localKey(entry, key string) string {
	if entry == fleet.KeyEntry {
		return key
	}
	return "\x00" + entry + "\x00" + key
}

// rateLimit charges the key under the policy that applies: the rule's
// override, else the plan's (by the plan claim of a verified caller), else
// the default.
func (d *decider) rateLimit(dec *Decision, rule *route.Rule, caller *jwt.Verified, entry, key string) {
	rl := d.cfg.RateLimit
	policy := rule.RateLimit
	if policy == nil {
		policy = rl.Default
		if caller != nil {
			if plan := caller.Claims.Get(rl.PlanClaim); plan.Type == gjson.String {
				if p, ok := rl.Plans[plan.Str]; ok {
					policy = p
				}
			}
		}
	}
	rd := d.limiter.Decide(policy, localKey(entry, key))
	d.applyRateDecision(dec, rd, "rate limit exceeded", "rate_limited")
}

// applyRateDecision records rd in dec: the headers of a forwarded request,
// or the 429 that refuses it.
func (d *decider) applyRateDecision(dec *Decision, rd ratelimit.Decision, message, reason string) {
	dec.RateLimit = &rd
	headers := rd.AppendHeaders(make([]ratelimit.Header, 0, 6), d.cfg.RateLimit.ResetFormat)
	if rd.Allowed {
		dec.RateHeaders = headers
		return
	}
	rej := &Rejection{
		Kind:       httperr.TooManyRequests,
		Message:    message,
		Reason:     reason,
		Headers:    make([][2]string, 0, len(headers)),
		RetryAfter: rd.RetryAfterSeconds(),
	}
	for _, h := range headers {
		rej.Headers = append(rej.Headers, [2]string{h.Name, h.Value})
	}
	dec.Reject = rej
}

// authenticate verifies the bearer token and returns the caller and the
// identity headers to set.
func (d *decider) authenticate(authorization string, now time.Time) (jwt.Verified, [][2]string, *Rejection) {
	token, ok := jwt.BearerToken(authorization)
	if !ok || token == "" {
		return jwt.Verified{}, nil, unauthorized(jwt.ReasonMissing)
	}
	v, err := d.verifier.Verify(token, now)
	if err != nil {
		reason := jwt.ReasonMalformed
		if e, ok := err.(*jwt.Error); ok {
			reason = e.Reason
		}
		return jwt.Verified{}, nil, unauthorized(reason)
	}
	if !route.SafeHeaderValue(v.Subject) {
		return jwt.Verified{}, nil, unauthorized(jwt.ReasonMissingKeyClaim)
	}
	id := d.cfg.Identity
	set := make([][2]string, 0, 1+len(id.ClaimHeaders))
	set = append(set, [2]string{id.KeyHeader, v.Subject})
	for _, ch := range id.ClaimHeaders {
		if value, ok := route.ClaimHeaderValue(v.Claims.Get(ch.Claim)); ok {
			set = append(set, [2]string{ch.Header, value})
		}
	}
	return v, set, nil
}

const realm = `Bearer realm="portcullis"`

// unauthorized builds the RFC 6750 §3 answer: no error code when the request
// carried no token, invalid_token with a description otherwise.
func unauthorized(reason jwt.Reason) *Rejection {
	challenge := realm
	if reason != jwt.ReasonMissing {
		challenge += `, error="invalid_token", error_description="` + reason.Message() + `"`
	}
	return &Rejection{
		Kind:    httperr.Unauthorized,
		Message: reason.Message(),
		Reason:  "jwt_" + reason.Metric(),
		Headers: [][2]string{{"www-authenticate", challenge}},
	}
}

func reject(kind httperr.Kind, message, reason string) Decision {
	return Decision{Reject: &Rejection{Kind: kind, Message: message, Reason: reason}}
}
