// Package config decodes, validates and compiles the plugin configuration.
//
// Parse is pure: the environment is injected, nothing global is touched, and
// every problem is reported as one error naming the offending field, e.g.
// "jwt.leeway_seconds: must be between 0 and 300, got 900".
package config

import (
	"strconv"
	"time"

	"github.com/portcullis/portcullis/filter/cache"
	"github.com/portcullis/portcullis/filter/health"
	"github.com/portcullis/portcullis/filter/jwt"
	"github.com/portcullis/portcullis/filter/netaddr"
	"github.com/portcullis/portcullis/filter/route"
)

// File is the JSON document, as Envoy's `configuration` or Istio's `pluginConfig`.
type File struct {
	JWT          *JWTFile
	Identity     IdentityFile
	Routes       []RouteFile
	Health       HealthFile
	ContentTypes []string
	RateLimit    *RateLimitFile
	Cache        *CacheFile
	Log          LogFile
}

func (f *File) members() []member {
	return []member{
		{"jwt", optional(&f.JWT, nested[JWTFile])},
		{"identity", nested(&f.Identity)},
		{"routes", list(&f.Routes, nested[RouteFile])},
		{"health", nested(&f.Health)},
		{"content_types", list(&f.ContentTypes, str)},
		{"rate_limit", optional(&f.RateLimit, nested[RateLimitFile])},
		{"cache", optional(&f.Cache, nested[CacheFile])},
		{"log", nested(&f.Log)},
	}
}

// LogFile configures the plugin's own log lines.
type LogFile struct {
	// ErrorsPerSecond bounds the error lines per reason per second in each
	// VM (0: no bound).
	ErrorsPerSecond *int
}

func (f *LogFile) members() []member {
	return []member{{"errors_per_second", optional(&f.ErrorsPerSecond, integer[int])}}
}

// JWTFile configures token verification.
type JWTFile struct {
	Secrets       []SecretFile
	Issuer        string
	Audiences     []string
	LeewaySeconds *int
	RequireExp    *bool
	MaxTokenBytes *int
	CacheSize     *int
}

func (f *JWTFile) members() []member {
	return []member{
		{"secrets", list(&f.Secrets, nested[SecretFile])},
		{"issuer", str(&f.Issuer)},
		{"audiences", list(&f.Audiences, str)},
		{"leeway_seconds", optional(&f.LeewaySeconds, integer[int])},
		{"require_exp", optional(&f.RequireExp, flag)},
		{"max_token_bytes", optional(&f.MaxTokenBytes, integer[int])},
		{"cache_size", optional(&f.CacheSize, integer[int])},
	}
}

// SecretFile names where one HS256 secret comes from. The secret itself is
// never written in the configuration.
type SecretFile struct {
	// KID, when set, restricts the secret to tokens naming it or naming no
	// kid; without it the secret verifies a token whatever its kid (filter/jwt
	// selects keys as google/jwt_verify_lib does).
	KID      string
	Env      string
	Encoding string
}

func (f *SecretFile) members() []member {
	return []member{{"kid", str(&f.KID)}, {"env", str(&f.Env)}, {"encoding", str(&f.Encoding)}}
}

// IdentityFile configures what is forwarded about a verified caller.
type IdentityFile struct {
	KeyClaim          string
	KeyHeader         string
	ClaimHeaders      map[string]string
	KeepAuthorization bool
}

func (f *IdentityFile) members() []member {
	return []member{
		{"key_claim", str(&f.KeyClaim)},
		{"key_header", str(&f.KeyHeader)},
		{"claim_headers", dict(&f.ClaimHeaders, str)},
		{"keep_authorization", flag(&f.KeepAuthorization)},
	}
}

// RouteFile is one rule of the ordered route table.
type RouteFile struct {
	Name    string
	Prefix  string
	Methods []string
	Public  bool
	// RateLimit replaces the rate_limit policy for this rule (protected rules only).
	RateLimit []LimitFile
	// Cost is how many requests each request of this rule is charged as
	// (default 1; needs the top-level rate_limit block).
	Cost *int64
	// CostHeader names a response header whose value (a whole number) is
	// what the request really cost: the part beyond Cost is charged after
	// the response, so it weighs on the next requests.
	CostHeader string
	// FleetLease lets this Envoy reserve batches of the rule's fleet budget
	// and spend them with no call (fleet and hybrid mode).
	FleetLease *FleetLeaseFile
	// Enforce says what the rule enforces; a check that is not enforced is
	// decided, counted and logged, and the request goes on (shadow mode).
	Enforce *EnforceFile
	// Cache is the rule's cache policy (needs the top-level cache block).
	Cache *RouteCacheFile
}

func (f *RouteFile) members() []member {
	return []member{
		{"name", str(&f.Name)},
		{"prefix", str(&f.Prefix)},
		{"methods", list(&f.Methods, str)},
		{"public", flag(&f.Public)},
		{"rate_limit", list(&f.RateLimit, nested[LimitFile])},
		{"cost", optional(&f.Cost, integer[int64])},
		{"cost_header", str(&f.CostHeader)},
		{"fleet_lease", optional(&f.FleetLease, nested[FleetLeaseFile])},
		{"enforce", optional(&f.Enforce, nested[EnforceFile])},
		{"cache", optional(&f.Cache, nested[RouteCacheFile])},
	}
}

// FleetLeaseFile is a rule's quota leasing: MaxBatch bounds the hits one
// call reserves (default DefaultLeaseMaxBatch), and so what a lease can
// leave unspent at a window's end.
type FleetLeaseFile struct {
	MaxBatch int64
}

func (f *FleetLeaseFile) members() []member {
	return []member{{"max_batch", integer(&f.MaxBatch)}}
}

// EnforceFile is a rule's enforcement: true (the default) refuses what the
// check refuses; false forwards it (shadow mode).
type EnforceFile struct {
	// JWT: a missing or invalid token on a protected rule.
	JWT *bool
	// RateLimit: a request over its limit; unset, the rule follows
	// rate_limit.enforce.
	RateLimit *bool
}

func (f *EnforceFile) members() []member {
	return []member{{"jwt", optional(&f.JWT, flag)}, {"rate_limit", optional(&f.RateLimit, flag)}}
}

// HealthFile configures the health endpoint.
type HealthFile struct {
	Path       string
	AllowCIDRs []string
}

func (f *HealthFile) members() []member {
	return []member{{"path", str(&f.Path)}, {"allow_cidrs", list(&f.AllowCIDRs, str)}}
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
		p, ok := netaddr.ParsePrefix(c)
		if !ok {
			return nil, fieldError(indexed(field, i), "not a CIDR prefix: "+strconv.Quote(c))
		}
		// Client addresses are compared unmapped, so ::ffff:a.b.c.d/n means a.b.c.d/(n-96).
		if p.Addr().Is4In6() {
			if p.Bits() < 96 {
				return nil, fieldError(indexed(field, i), "IPv4-mapped prefix shorter than /96: "+strconv.Quote(c))
			}
			p = netaddr.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
