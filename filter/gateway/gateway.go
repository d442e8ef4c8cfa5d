// Package gateway is the gateway's decision: given a request's headers and
// the time, which rule applies, whether the token verifies, what the caller
// is charged, and so whether the request is answered here or forwarded, with
// which header changes. It is pure apart from the shared-data tables it is
// given (through filter/shared) and the public-key reader, and never imports
// the proxy-wasm SDK: filter/plugin reads the request, calls Decide, and
// carries the Decision out.
package gateway

import (
	"slices"
	"strings"
	"time"

	"github.com/portcullis/portcullis/filter/config"
	"github.com/portcullis/portcullis/filter/fleet"
	"github.com/portcullis/portcullis/filter/httperr"
	"github.com/portcullis/portcullis/filter/jsonread"
	"github.com/portcullis/portcullis/filter/jwt"
	"github.com/portcullis/portcullis/filter/ratelimit"
	"github.com/portcullis/portcullis/filter/route"
)

// Gateway decides requests over one compiled configuration. It keeps
// scratch buffers (the verifier's, the limiter's) and is not safe for
// concurrent use: each VM owns one.
type Gateway struct {
	cfg       *config.Config
	verifier  *jwt.Verifier           // nil when every route is public
	tokens    *tokenCache[verdict]    // verified tokens; nil when the token cache is off
	refused   *tokenCache[jwt.Reason] // tokens refused for good; nil when the token cache is off
	limiter   *ratelimit.Limiter      // nil unless rate limiting is local or hybrid
	blocklist *fleet.Blocklist        // nil unless rate limiting is fleet or hybrid
	leases    *fleet.Leases           // nil unless a rule leases its fleet budget
	// clientAddress reads the client's address; nil unless public routes
	// are counted by it.
	clientAddress func() string
	// reported caches the policies of the limits the service reports, so
	// their RateLimit-Policy field is built once per limit.
	reported map[reportedLimit]*ratelimit.Policy
	// partitions computes the rate-limit headers' pk; nil leaves it out.
	partitions *ratelimit.Partitioner
}

// Tables are the shared-data state a Gateway decides with.
type Tables struct {
	// Limiter is required when rate limiting is local or hybrid.
	Limiter *ratelimit.Limiter
	// Blocklist is required in fleet and hybrid mode.
	Blocklist *fleet.Blocklist
	// Leases is required when a rule leases its fleet budget
	// (config.Fleet.Leasing).
	Leases *fleet.Leases
	// ClientAddress reads the client's IP address ("" when unknown), for
	// rate_limit.public_key "client_address". It is only called for public
	// routes (and shadow-refused tokens), so verified callers never pay for it.
	ClientAddress func() string
	// Partitions computes the partition key (pk) of the rate-limit headers,
	// keyed by the table seed; nil leaves pk out.
	Partitions *ratelimit.Partitioner
}

// New returns a Gateway for cfg.
func New(cfg *config.Config, t Tables) *Gateway {
	g := &Gateway{cfg: cfg, limiter: t.Limiter, blocklist: t.Blocklist, leases: t.Leases, clientAddress: t.ClientAddress, partitions: t.Partitions}
	if cfg.JWT != nil {
		g.verifier = jwt.NewVerifier(*cfg.JWT)
		g.tokens = newTokenCache[verdict](cfg.TokenCacheSize)
		g.refused = newTokenCache[jwt.Reason](cfg.TokenCacheSize)
	}
	return g
}

// Decide runs the request stages: path checks, health, purge, route rule, token,
// media type, rate limit.
func (g *Gateway) Decide(req Request, now time.Time) Decision {
	path, ok := route.SplitPath(req.Path)
	if !ok {
		return reject(nil, httperr.BadRequest, "request path is ambiguous", ReasonBadPath)
	}
	if path == g.cfg.HealthPath && (req.Method == "GET" || req.Method == "HEAD") {
		return Decision{Kind: Health}
	}
	if c := g.cfg.Cache; c != nil && c.Purge != nil && path == c.Purge.Path {
		return Decision{Kind: Purge}
	}
	rule, ok := g.cfg.Routes.Match(req.Method, path)
	if !ok {
		return reject(nil, httperr.NotFound, "Route "+req.Method+" "+path+" not found", ReasonRouteNotFound)
	}
	dec := Decision{Kind: Forward, Rule: rule}
	var caller *jwt.Verified
	if !rule.Public {
		v, set, use, rej := g.authenticate(req.Authorization, now)
		dec.TokenCache = use
		switch {
		case rej == nil:
			dec.Edits.Set, dec.Tenant, caller = set, v.Subject, &v
		case !rule.ShadowJWT:
			return Decision{Kind: Reject, Rule: rule, Reject: rej, TokenCache: use}
		default:
			// Shadow mode: the request goes on as an anonymous one (identity
			// headers stripped, none set), counted and logged as refused.
			dec.ShadowJWT = rej
		}
	}
	if req.HasBody && route.HasBody(req.Method) && !route.MediaTypeAllowed(req.ContentType, g.cfg.ContentTypes) {
		dec.Kind, dec.Edits.Set = Reject, nil
		dec.Reject = &Rejection{Kind: httperr.UnsupportedMediaType, Message: "Content-Type must be one of: " + strings.Join(g.cfg.ContentTypes, ", "), Reason: ReasonUnsupportedMediaType}
		return dec
	}
	// Found only now: a refused request never needs them.
	dec.Edits.Remove = present(req.Headers, g.cfg.StripHeaders)
	// Only requests that would go upstream are charged.
	if entry, key, ok := g.rateKey(&req, caller); ok {
		var policy *ratelimit.Policy
		if g.limiter != nil {
			policy = g.rateLimit(&dec, caller, entry, key, now)
		}
		// In hybrid mode only what the local limits admit goes on to the
		// fleet: a local refusal, enforced or in shadow mode, makes no call.
		if g.blocklist != nil && (dec.Rate == nil || dec.Rate.Decision.Allowed) {
			g.askFleet(&dec, entry, key, now)
		}
		if dec.Kind != Reject && dec.Rule.CostHeader != "" {
			dec.CostReport = &CostReport{Header: dec.Rule.CostHeader, paid: max(dec.Rule.Cost, 1), policy: policy,
				partition: localKey(entry, key), entry: entry, key: key, route: dec.Rule.Name}
		}
	}
	return dec
}

// authenticate verifies the bearer token, or finds its verdict in the token
// caches, and returns the caller and the identity headers to set.
func (g *Gateway) authenticate(authorization string, now time.Time) (jwt.Verified, [][2]string, TokenCacheUse, *Rejection) {
	token, ok := jwt.BearerToken(authorization)
	if !ok || token == "" {
		return jwt.Verified{}, nil, TokenCacheUnused, unauthorized(jwt.ReasonMissing)
	}
	use := TokenCacheUnused
	if g.tokens != nil {
		if v := g.tokens.get(token); v != nil {
			if r := v.caller.ValidAt(now); r != jwt.ReasonNone {
				g.tokens.drop(token)
				return jwt.Verified{}, nil, TokenCacheHit, unauthorized(r)
			}
			return v.caller, v.set, TokenCacheHit, nil
		}
		if r := g.refused.get(token); r != nil {
			return jwt.Verified{}, nil, TokenCacheRefused, unauthorized(*r)
		}
		use = TokenCacheMiss
	}
	v, set, reason := g.verify(token, now)
	if reason != jwt.ReasonNone {
		if g.refused != nil && refusedForGood(reason) {
			g.refused.put(strings.Clone(token), reason) // a copy: token is a slice of the request's header block
		}
		return jwt.Verified{}, nil, use, unauthorized(reason)
	}
	if g.tokens != nil {
		g.tokens.put(strings.Clone(token), verdict{caller: v, set: set})
	}
	return v, set, use, nil
}

// verify checks token and builds the identity headers of its caller; the
// reason is ReasonNone when the token is accepted.
func (g *Gateway) verify(token string, now time.Time) (jwt.Verified, [][2]string, jwt.Reason) {
	v, err := g.verifier.Verify(token, now)
	if err != nil {
		reason := jwt.ReasonMalformed
		if e, ok := err.(*jwt.Error); ok {
			reason = e.Reason
		}
		return jwt.Verified{}, nil, reason
	}
	if !route.SafeHeaderValue(v.Subject) {
		return jwt.Verified{}, nil, jwt.ReasonMissingKeyClaim
	}
	id := g.cfg.Identity
	set := make([][2]string, 0, 1+len(id.ClaimHeaders))
	set = append(set, [2]string{id.KeyHeader, v.Subject})
	for _, ch := range id.ClaimHeaders {
		if value, ok := route.ClaimHeaderValue(v.Claims.Get(ch.Claim)); ok {
			set = append(set, [2]string{ch.Header, value})
		}
	}
	return v, set, jwt.ReasonNone
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
		Reason:  JWTReason(reason),
		Headers: [][2]string{{"www-authenticate", challenge}},
	}
}

// rateKey is what the request is counted by, and under which descriptor
// entry: the verified key on protected routes, the configured public key on
// public ones. ok is false when the request is not rate-limited.
func (g *Gateway) rateKey(req *Request, caller *jwt.Verified) (entry, key string, ok bool) {
	if g.cfg.RateLimit == nil {
		return "", "", false
	}
	if caller != nil {
		return fleet.KeyEntry, caller.Subject, true
	}
	// A public route (or a token refused in shadow mode) whose key is
	// missing is not counted: refusing it would lock out every client
	// without the header, counting it under "" would make them all share
	// one budget.
	switch source := g.cfg.RateLimit.PublicKey; source.Kind {
	case config.KeyClientAddress:
		if key = g.clientAddress(); key != "" {
			return fleet.ClientAddressEntry, key, true
		}
	case config.KeyHeader:
		if key = header(req.Headers, source.Header); key != "" && route.SafeHeaderValue(key) {
			return fleet.HeaderEntry, key, true
		}
	}
	return "", "", false
}

// header returns the value of the header name (lower case) in headers, ""
// when absent.
func header(headers [][2]string, name string) string {
	for _, kv := range headers {
		if kv[0] == name {
			return kv[1]
		}
	}
	return ""
}

// present returns the names of want that occur in headers, in want's order;
// nil when none does (the usual case: clients rarely send the headers the
// gateway manages).
func present(headers [][2]string, want []string) []string {
	var out []string
	for _, name := range want {
		if slices.ContainsFunc(headers, func(kv [2]string) bool { return kv[0] == name }) {
			out = append(out, name)
		}
	}
	return out
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

// rateLimit charges the key under the policy that applies, and returns it:
// the rule's override, else the plan's (by the plan claim of a verified
// caller), else the default.
func (g *Gateway) rateLimit(dec *Decision, caller *jwt.Verified, entry, key string, now time.Time) *ratelimit.Policy {
	rl := g.cfg.RateLimit
	policy := dec.Rule.RateLimit
	if policy == nil {
		policy = rl.Default
		if caller != nil {
			if plan := caller.Claims.Get(rl.PlanClaim); plan.Kind() == jsonread.String {
				if p, ok := rl.Plans[plan.Str()]; ok {
					policy = p
				}
			}
		}
	}
	partition := localKey(entry, key)
	rd := g.limiter.Decide(policy, partition, dec.Rule.Cost, now)
	g.charge(dec, rd, charged{partition: partition, shadow: dec.Rule.ShadowRateLimit, source: RateLocal}, "rate limit exceeded", ReasonRateLimited)
	return policy
}

// charged is how a rate-limit decision was reached: for which partition
// (localKey), whether the rule enforces it, and who decided.
type charged struct {
	partition string
	shadow    bool
	source    RateSource
}

// charge records a rate-limit decision in dec: its headers, and for an
// enforced denial the 429 that refuses the request. In shadow mode a denial
// is only recorded (Decision.Rate) and the request goes on; its headers are
// sent only with rate_limit.shadow_headers. Nothing here calls the host, so
// a shadow denial costs no more than an admission.
func (g *Gateway) charge(dec *Decision, rd ratelimit.Decision, c charged, message string, reason Reason) {
	rl := g.cfg.RateLimit
	out := &RateOutcome{Decision: rd, Source: c.source, Shadow: c.shadow}
	if !c.shadow || rl.ShadowHeaders {
		opts := ratelimit.HeaderOptions{Reset: rl.ResetFormat, Shadow: c.shadow}
		if g.partitions != nil && !rd.Degraded() {
			opts.PartitionKey = g.partitions.Key(c.partition)
		}
		out.Headers = rd.AppendHeaders(out.headers[:0], opts)
	}
	dec.Rate = out
	if rd.Allowed || c.shadow {
		return
	}
	dec.Kind = Reject
	dec.Reject = &Rejection{
		Kind:       httperr.TooManyRequests,
		Message:    message,
		Reason:     reason,
		Headers:    out.Headers,
		RetryAfter: rd.RetryAfterSeconds(),
		Policy:     rd.PolicyName(),
	}
}

func reject(rule *route.Rule, kind httperr.Kind, message string, reason Reason) Decision {
	return Decision{Kind: Reject, Rule: rule, Reject: &Rejection{Kind: kind, Message: message, Reason: reason}}
}

// InternalError is the 500 for a bug found while handling a request (a
// recovered panic, a header the proxy refused to set).
func InternalError(message string) *Rejection {
	return &Rejection{Kind: httperr.Internal, Message: message, Reason: ReasonInternalError}
}
