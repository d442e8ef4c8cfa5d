// Package config decodes, validates and compiles the plugin configuration.
//
// Parse is pure: the environment is injected, nothing global is touched, and
// every problem is reported as one error naming the offending field, e.g.
// "jwt.leeway_seconds: must be between 0 and 300, got 900".
package config

import (
	"net/netip"
	"time"

	"github.com/portcullis/portcullis/filter/cache"
	"github.com/portcullis/portcullis/filter/health"
	"github.com/portcullis/portcullis/filter/jwt"
	"github.com/portcullis/portcullis/filter/route"
)

// File is the JSON document, as Envoy's `configuration` or Istio's `pluginConfig`.
type File struct {
	JWT          *JWTFile       `json:"jwt"`
	Identity     IdentityFile   `json:"identity"`
	Routes       []RouteFile    `json:"routes"`
	Health       HealthFile     `json:"health"`
	ContentTypes []string       `json:"content_types"`
	RateLimit    *RateLimitFile `json:"rate_limit"`
	Cache        *CacheFile     `json:"cache"`
	Log          LogFile        `json:"log"`
}

// LogFile configures the plugin's own log lines.
type LogFile struct {
	// ErrorsPerSecond bounds the error lines per reason per second in each
	// VM (0: no bound).
	ErrorsPerSecond *int `json:"errors_per_second"`
}

// JWTFile configures token verification.
type JWTFile struct {
	Secrets       []SecretFile `json:"secrets"`
	Issuer        string       `json:"issuer"`
	Audiences     []string     `json:"audiences"`
	LeewaySeconds *int         `json:"leeway_seconds"`
	RequireExp    *bool        `json:"require_exp"`
	MaxTokenBytes *int         `json:"max_token_bytes"`
	CacheSize     *int         `json:"cache_size"`
}

// SecretFile names where one HS256 secret comes from. The secret itself is
// never written in the configuration.
type SecretFile struct {
	// KID, when set, restricts the secret to tokens naming it or naming no
	// kid; without it the secret verifies a token whatever its kid (filter/jwt
	// selects keys as google/jwt_verify_lib does).
	KID      string `json:"kid"`
	Env      string `json:"env"`
	Encoding string `json:"encoding"`
}

// IdentityFile configures what is forwarded about a verified caller.
type IdentityFile struct {
	KeyClaim          string            `json:"key_claim"`
	KeyHeader         string            `json:"key_header"`
	ClaimHeaders      map[string]string `json:"claim_headers"`
	KeepAuthorization bool              `json:"keep_authorization"`
}

// RouteFile is one rule of the ordered route table.
type RouteFile struct {
	Name    string   `json:"name"`
	Prefix  string   `json:"prefix"`
	Methods []string `json:"methods"`
	Public  bool     `json:"public"`
	// RateLimit replaces the rate_limit policy for this rule (protected rules only).
	RateLimit []LimitFile `json:"rate_limit"`
	// Cost is how many requests each request of this rule is charged as
	// (default 1; needs the top-level rate_limit block).
	Cost *int64 `json:"cost"`
	// CostHeader names a response header whose value (a whole number) is
	// what the request really cost: the part beyond Cost is charged after
	// the response, so it weighs on the next requests.
	CostHeader string `json:"cost_header"`
	// Enforce says what the rule enforces; a check that is not enforced is
	// decided, counted and logged, and the request goes on (shadow mode).
	Enforce *EnforceFile `json:"enforce"`
	// Cache is the rule's cache policy (needs the top-level cache block).
	Cache *RouteCacheFile `json:"cache"`
}

// EnforceFile is a rule's enforcement: true (the default) refuses what the
// check refuses; false forwards it (shadow mode).
type EnforceFile struct {
	// JWT: a missing or invalid token on a protected rule.
	JWT *bool `json:"jwt"`
	// RateLimit: a request over its limit; unset, the rule follows
	// rate_limit.enforce.
	RateLimit *bool `json:"rate_limit"`
}

// HealthFile configures the health endpoint.
type HealthFile struct {
	Path       string   `json:"path"`
	AllowCIDRs []string `json:"allow_cidrs"`
}

// Config is the compiled, validated configuration the plugin runs on.
type Config struct {
	JWT *jwt.Options // nil when every route is public
	// TokenCacheSize is the number of verified tokens each VM remembers
	// (jwt.cache_size); 0 turns the cache off.
	TokenCacheSize int
	Identity       route.Identity
	// StripHeaders are removed from every forwarded request: the identity
	// headers the gateway sets, and authorization unless it is kept.
	StripHeaders []string
	Routes       route.Table
	HealthPath   string
	HealthAllow  health.Allowlist
	ContentTypes []string // lower case
	// RateLimit is nil when rate limiting is off. Route overrides are in
	// route.Rule.RateLimit.
	RateLimit *RateLimit
	// Cache is nil when caching is off. Rule policies are in route.Rule.Cache.
	Cache *cache.Config
	// ErrorLinesPerSecond bounds the error log lines per reason per second
	// in each VM; 0 means no bound.
	ErrorLinesPerSecond int
}

// Defaults and bounds.
const (
	DefaultLeeway        = 30 * time.Second
	MaxLeewaySeconds     = 300
	DefaultMaxTokenBytes = 8192
	DefaultTokenCache    = 1024
	MaxTokenCache        = 65536
	DefaultErrorLines    = 20
	MaxErrorLines        = 100_000
	MaxTokenBytesCeiling = 64 * 1024
	MinSecretBytes       = 32 // RFC 7518 §3.2: a key of the same size as the hash output
	DefaultHealthPath    = "/health"
)

var defaultContentTypes = []string{"application/json"}

// Env looks up an environment variable of the VM.
type Env func(name string) (string, bool)

func parsePrefixes(field string, cidrs []string) (health.Allowlist, error) {
	var out health.Allowlist
	for i, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fieldErrorf(indexed(field, i), "not a CIDR prefix: %q", c)
		}
		// Client addresses are compared unmapped, so ::ffff:a.b.c.d/n means a.b.c.d/(n-96).
		if p.Addr().Is4In6() {
			if p.Bits() < 96 {
				return nil, fieldErrorf(indexed(field, i), "IPv4-mapped prefix shorter than /96: %q", c)
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
