package config

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis/portcullis/filter/cache"
	"github.com/portcullis/portcullis/filter/jwt"
	"github.com/portcullis/portcullis/filter/route"
)

// Parse decodes data strictly, applies defaults, validates every field and
// compiles the result. env resolves the secrets' environment variables.
func Parse(data []byte, env Env) (*Config, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fieldError("", "the configuration is empty; it must be a JSON object")
	}
	var f File
	if err := parseDocument(data, &f); err != nil {
		return nil, err
	}
	return compile(&f, env)
}

func compile(f *File, env Env) (*Config, error) {
	c := &Config{}
	var err error
	var caching []*cache.RoutePolicy
	var limits []ruleLimit
	if c.Cache, caching, err = compileCache(f.Cache, f.Routes); err != nil {
		return nil, err
	}
	if c.RateLimit, limits, err = compileRateLimit(f.RateLimit, f.Routes); err != nil {
		return nil, err
	}
	if c.Routes, err = compileRoutes(f.Routes, caching, limits); err != nil {
		return nil, err
	}
	if c.Identity, err = compileIdentity(f.Identity); err != nil {
		return nil, err
	}
	c.StripHeaders = c.Identity.Managed()
	if !c.Identity.KeepAuthorization {
		c.StripHeaders = append(c.StripHeaders, "authorization")
	}
	if c.HealthPath, err = compileHealthPath(f.Health.Path); err != nil {
		return nil, err
	}
	if c.HealthAllow, err = parsePrefixes("health.allow_cidrs", f.Health.AllowCIDRs); err != nil {
		return nil, err
	}
	if c.ContentTypes, err = compileContentTypes(f.ContentTypes); err != nil {
		return nil, err
	}
	c.ErrorLinesPerSecond = DefaultErrorLines
	if n := f.Log.ErrorsPerSecond; n != nil {
		if *n < 0 || *n > MaxErrorLines {
			return nil, fieldError("log.errors_per_second", "must be between 0 and "+strconv.Itoa(MaxErrorLines)+", got "+strconv.Itoa(*n))
		}
		c.ErrorLinesPerSecond = *n
	}
	needsJWT := slices.ContainsFunc(f.Routes, func(r RouteFile) bool { return !r.Public })
	switch {
	case f.JWT == nil && needsJWT:
		return nil, fieldError("jwt", "required: a route is not public")
	case f.JWT != nil:
		if c.JWT, err = compileJWT(f.JWT, env); err != nil {
			return nil, err
		}
		c.JWT.KeyClaim = cmp.Or(f.Identity.KeyClaim, "sub")
		c.TokenCacheSize = DefaultTokenCache
		if n := f.JWT.CacheSize; n != nil {
			if *n < 0 || *n > MaxTokenCache {
				return nil, fieldError("jwt.cache_size", "must be between 0 and "+strconv.Itoa(MaxTokenCache)+", got "+strconv.Itoa(*n))
			}
			c.TokenCacheSize = *n
		}
	}
	if c.Cache != nil {
		var jwtSecrets [][]byte
		if c.JWT != nil {
			for _, k := range c.JWT.Keys {
				jwtSecrets = append(jwtSecrets, k.Secret)
			}
		}
		if c.Cache.Purge, err = compilePurge(f.Cache.Purge, env, c.HealthPath, jwtSecrets); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// compileRoutes compiles the route table; caching and limits hold each
// rule's cache policy (compileCache) and rate limiting (compileRateLimit).
func compileRoutes(rules []RouteFile, caching []*cache.RoutePolicy, limits []ruleLimit) (route.Table, error) {
	if len(rules) == 0 {
		return route.Table{}, fieldError("routes", "required: at least one route rule")
	}
	out := make([]route.Rule, 0, len(rules))
	for i, r := range rules {
		field := indexed("routes", i)
		if r.Prefix == "" || r.Prefix[0] != '/' {
			return route.Table{}, fieldError(field+".prefix", "required: a path prefix starting with \"/\"")
		}
		if _, ok := route.SplitPath(r.Prefix); !ok || strings.ContainsAny(r.Prefix, "?#") {
			return route.Table{}, fieldError(field+".prefix", "must be a plain path without dot segments, query or escapes: "+strconv.Quote(r.Prefix))
		}
		methods := make([]string, 0, len(r.Methods))
		for j, m := range r.Methods {
			upper := strings.ToUpper(m)
			if !isToken(upper) {
				return route.Table{}, fieldError(indexed(field+".methods", j), "not an HTTP method: "+strconv.Quote(m))
			}
			methods = append(methods, upper)
		}
		shadowJWT, err := compileJWTEnforce(field, r)
		if err != nil {
			return route.Table{}, err
		}
		lim := limits[i]
		out = append(out, route.Rule{Name: ruleName(r), Prefix: r.Prefix, Methods: methods, Public: r.Public, Cache: caching[i],
			RateLimit: lim.policy, Cost: lim.cost, CostHeader: lim.costHeader, FleetLease: lim.leaseBatch, ShadowRateLimit: lim.shadow, ShadowJWT: shadowJWT})
	}
	return route.NewTable(out), nil
}

// ruleName is a rule's name in logs and policy names: its own, else its prefix.
func ruleName(r RouteFile) string { return cmp.Or(r.Name, r.Prefix) }

func compileIdentity(f IdentityFile) (route.Identity, error) {
	id := route.Identity{KeyHeader: "x-api-key", KeepAuthorization: f.KeepAuthorization}
	if f.KeyClaim != "" && strings.TrimSpace(f.KeyClaim) != f.KeyClaim {
		return id, fieldError("identity.key_claim", "must not have surrounding spaces")
	}
	if f.KeyHeader != "" {
		if !isToken(f.KeyHeader) {
			return id, fieldError("identity.key_header", "not a valid header name: "+strconv.Quote(f.KeyHeader))
		}
		id.KeyHeader = strings.ToLower(f.KeyHeader)
	}
	if reserved(id.KeyHeader) {
		return id, fieldError("identity.key_header", strconv.Quote(id.KeyHeader)+" is reserved")
	}
	seen := map[string]bool{id.KeyHeader: true}
	for _, claim := range sortedKeys(f.ClaimHeaders) { // deterministic order of forwarded headers
		field := "identity.claim_headers." + claim
		header := strings.ToLower(f.ClaimHeaders[claim])
		if claim == "" {
			return id, fieldError("identity.claim_headers", "claim names must not be empty")
		}
		if !isToken(header) || reserved(header) {
			return id, fieldError(field, "not a usable header name: "+strconv.Quote(f.ClaimHeaders[claim]))
		}
		if seen[header] {
			return id, fieldError(field, "header "+strconv.Quote(header)+" is set twice")
		}
		seen[header] = true
		id.ClaimHeaders = append(id.ClaimHeaders, route.ClaimHeader{Claim: claim, Header: header})
	}
	return id, nil
}

// reserved headers must never be overwritten with caller identity.
func reserved(header string) bool {
	switch header {
	case "authorization", "host", "content-type", "content-length", "cookie", "x-request-id",
		"x-forwarded-for", "x-forwarded-proto", "transfer-encoding", "connection":
		return true
	}
	return strings.HasPrefix(header, ":")
}

func compileHealthPath(p string) (string, error) {
	if p == "" {
		return DefaultHealthPath, nil
	}
	if _, ok := route.SplitPath(p); !ok || strings.ContainsAny(p, "?#") {
		return "", fieldError("health.path", "must be a plain absolute path: "+strconv.Quote(p))
	}
	return p, nil
}

func compileContentTypes(types []string) ([]string, error) {
	if types == nil {
		return defaultContentTypes, nil
	}
	if len(types) == 0 {
		return nil, fieldError("content_types", "must list at least one media type (omit it for the default)")
	}
	out := make([]string, 0, len(types))
	for i, t := range types {
		typ, sub, ok := strings.Cut(strings.ToLower(t), "/")
		if !ok || !isToken(typ) || !isToken(sub) {
			return nil, fieldError(indexed("content_types", i), "not a media type: "+strconv.Quote(t))
		}
		out = append(out, typ+"/"+sub)
	}
	return out, nil
}

func compileJWT(f *JWTFile, env Env) (*jwt.Options, error) {
	o := &jwt.Options{Issuer: f.Issuer, Audiences: f.Audiences, Leeway: DefaultLeeway, RequireExp: true, MaxTokenBytes: DefaultMaxTokenBytes}
	if len(f.Secrets) == 0 {
		return nil, fieldError("jwt.secrets", "required: at least one secret")
	}
	kids := map[string]bool{}
	for i, s := range f.Secrets {
		key, err := loadSecret(indexed("jwt.secrets", i), s, env)
		if err != nil {
			return nil, err
		}
		if key.ID != "" && kids[key.ID] {
			return nil, fieldError(indexed("jwt.secrets", i)+".kid", "duplicate key id "+strconv.Quote(key.ID))
		}
		kids[key.ID] = true
		o.Keys = append(o.Keys, key)
	}
	for i, a := range f.Audiences {
		if a == "" {
			return nil, fieldError(indexed("jwt.audiences", i), "must not be empty")
		}
	}
	if f.LeewaySeconds != nil {
		if s := *f.LeewaySeconds; s < 0 || s > MaxLeewaySeconds {
			return nil, fieldError("jwt.leeway_seconds", "must be between 0 and "+strconv.Itoa(MaxLeewaySeconds)+", got "+strconv.Itoa(s))
		}
		o.Leeway = time.Duration(*f.LeewaySeconds) * time.Second
	}
	if f.RequireExp != nil {
		o.RequireExp = *f.RequireExp
	}
	if f.MaxTokenBytes != nil {
		if n := *f.MaxTokenBytes; n < 64 || n > MaxTokenBytesCeiling {
			return nil, fieldError("jwt.max_token_bytes", "must be between 64 and "+strconv.Itoa(MaxTokenBytesCeiling)+", got "+strconv.Itoa(n))
		}
		o.MaxTokenBytes = *f.MaxTokenBytes
	}
	return o, nil
}

func loadSecret(field string, s SecretFile, env Env) (jwt.Key, error) {
	if s.Env == "" {
		return jwt.Key{}, fieldError(field+".env", "required: the environment variable holding the secret")
	}
	value, ok := env(s.Env)
	if !ok || value == "" {
		return jwt.Key{}, fieldError(field+".env", "environment variable "+strconv.Quote(s.Env)+" is not set in the VM (Envoy vm_config.environment_variables, Istio vmConfig.env)")
	}
	var secret []byte
	var err error
	switch s.Encoding {
	case "", "raw":
		secret = []byte(value)
	case "base64":
		secret, err = base64.StdEncoding.DecodeString(value)
	case "base64url":
		secret, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(value, "="))
	default:
		return jwt.Key{}, fieldError(field+".encoding", "must be raw, base64 or base64url, got "+strconv.Quote(s.Encoding))
	}
	if err != nil {
		return jwt.Key{}, fieldError(field+".env", "environment variable "+strconv.Quote(s.Env)+" is not valid "+s.Encoding)
	}
	if len(secret) < MinSecretBytes {
		return jwt.Key{}, fieldError(field+".env", "secret in "+strconv.Quote(s.Env)+" is "+strconv.Itoa(len(secret))+" bytes; HS256 needs at least "+strconv.Itoa(MinSecretBytes)+" (RFC 7518 §3.2)")
	}
	return jwt.Key{ID: s.KID, Secret: secret}, nil
}

// sortedKeys returns m's keys in order, so that compiling a map gives the
// same result and the same first error on every run. It sorts with
// slices.SortStableFunc, which the cache's query sorting links anyway:
// slices.Sort would link a second sort for strings (about 20 KB).
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortStableFunc(keys, strings.Compare)
	return keys
}

// isToken reports whether s is a non-empty RFC 9110 token (header names, methods, media type parts).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}
