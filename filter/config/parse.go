package config

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/json"
	"io"
	"slices"
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
		return nil, fieldErrorf("", "the configuration is empty; it must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, decodeError(data, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fieldErrorf("", "unexpected data after the configuration object")
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
			return nil, fieldErrorf("log.errors_per_second", "must be between 0 and %d, got %d", MaxErrorLines, *n)
		}
		c.ErrorLinesPerSecond = *n
	}
	needsJWT := slices.ContainsFunc(f.Routes, func(r RouteFile) bool { return !r.Public })
	switch {
	case f.JWT == nil && needsJWT:
		return nil, fieldErrorf("jwt", "required: a route is not public")
	case f.JWT != nil:
		if c.JWT, err = compileJWT(f.JWT, env); err != nil {
			return nil, err
		}
		c.JWT.KeyClaim = cmp.Or(f.Identity.KeyClaim, "sub")
		c.TokenCacheSize = DefaultTokenCache
		if n := f.JWT.CacheSize; n != nil {
			if *n < 0 || *n > MaxTokenCache {
				return nil, fieldErrorf("jwt.cache_size", "must be between 0 and %d, got %d", MaxTokenCache, *n)
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
		return route.Table{}, fieldErrorf("routes", "required: at least one route rule")
	}
	out := make([]route.Rule, 0, len(rules))
	for i, r := range rules {
		field := indexed("routes", i)
		if r.Prefix == "" || r.Prefix[0] != '/' {
			return route.Table{}, fieldErrorf(field+".prefix", "required: a path prefix starting with \"/\"")
		}
		if _, ok := route.SplitPath(r.Prefix); !ok || strings.ContainsAny(r.Prefix, "?#") {
			return route.Table{}, fieldErrorf(field+".prefix", "must be a plain path without dot segments, query or escapes: %q", r.Prefix)
		}
		methods := make([]string, 0, len(r.Methods))
		for j, m := range r.Methods {
			upper := strings.ToUpper(m)
			if !isToken(upper) {
				return route.Table{}, fieldErrorf(indexed(field+".methods", j), "not an HTTP method: %q", m)
			}
			methods = append(methods, upper)
		}
		shadowJWT, err := compileJWTEnforce(field, r)
		if err != nil {
			return route.Table{}, err
		}
		lim := limits[i]
		out = append(out, route.Rule{Name: ruleName(r), Prefix: r.Prefix, Methods: methods, Public: r.Public, Cache: caching[i],
			RateLimit: lim.policy, Cost: lim.cost, CostHeader: lim.costHeader, ShadowRateLimit: lim.shadow, ShadowJWT: shadowJWT})
	}
	return route.NewTable(out), nil
}

// ruleName is a rule's name in logs and policy names: its own, else its prefix.
func ruleName(r RouteFile) string { return cmp.Or(r.Name, r.Prefix) }

func compileIdentity(f IdentityFile) (route.Identity, error) {
	id := route.Identity{KeyHeader: "x-api-key", KeepAuthorization: f.KeepAuthorization}
	if f.KeyClaim != "" && strings.TrimSpace(f.KeyClaim) != f.KeyClaim {
		return id, fieldErrorf("identity.key_claim", "must not have surrounding spaces")
	}
	if f.KeyHeader != "" {
		if !isToken(f.KeyHeader) {
			return id, fieldErrorf("identity.key_header", "not a valid header name: %q", f.KeyHeader)
		}
		id.KeyHeader = strings.ToLower(f.KeyHeader)
	}
	if reserved(id.KeyHeader) {
		return id, fieldErrorf("identity.key_header", "%q is reserved", id.KeyHeader)
	}
	seen := map[string]bool{id.KeyHeader: true}
	claims := make([]string, 0, len(f.ClaimHeaders))
	for claim := range f.ClaimHeaders {
		claims = append(claims, claim)
	}
	slices.Sort(claims) // deterministic order of forwarded headers
	for _, claim := range claims {
		field := "identity.claim_headers." + claim
		header := strings.ToLower(f.ClaimHeaders[claim])
		if claim == "" {
			return id, fieldErrorf("identity.claim_headers", "claim names must not be empty")
		}
		if !isToken(header) || reserved(header) {
			return id, fieldErrorf(field, "not a usable header name: %q", f.ClaimHeaders[claim])
		}
		if seen[header] {
			return id, fieldErrorf(field, "header %q is set twice", header)
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
		return "", fieldErrorf("health.path", "must be a plain absolute path: %q", p)
	}
	return p, nil
}

func compileContentTypes(types []string) ([]string, error) {
	if types == nil {
		return defaultContentTypes, nil
	}
	if len(types) == 0 {
		return nil, fieldErrorf("content_types", "must list at least one media type (omit it for the default)")
	}
	out := make([]string, 0, len(types))
	for i, t := range types {
		typ, sub, ok := strings.Cut(strings.ToLower(t), "/")
		if !ok || !isToken(typ) || !isToken(sub) {
			return nil, fieldErrorf(indexed("content_types", i), "not a media type: %q", t)
		}
		out = append(out, typ+"/"+sub)
	}
	return out, nil
}

func compileJWT(f *JWTFile, env Env) (*jwt.Options, error) {
	o := &jwt.Options{Issuer: f.Issuer, Audiences: f.Audiences, Leeway: DefaultLeeway, RequireExp: true, MaxTokenBytes: DefaultMaxTokenBytes}
	if len(f.Secrets) == 0 {
		return nil, fieldErrorf("jwt.secrets", "required: at least one secret")
	}
	kids := map[string]bool{}
	for i, s := range f.Secrets {
		key, err := loadSecret(indexed("jwt.secrets", i), s, env)
		if err != nil {
			return nil, err
		}
		if key.ID != "" && kids[key.ID] {
			return nil, fieldErrorf(indexed("jwt.secrets", i)+".kid", "duplicate key id %q", key.ID)
		}
		kids[key.ID] = true
		o.Keys = append(o.Keys, key)
	}
	for i, a := range f.Audiences {
		if a == "" {
			return nil, fieldErrorf(indexed("jwt.audiences", i), "must not be empty")
		}
	}
	if f.LeewaySeconds != nil {
		if s := *f.LeewaySeconds; s < 0 || s > MaxLeewaySeconds {
			return nil, fieldErrorf("jwt.leeway_seconds", "must be between 0 and %d, got %d", MaxLeewaySeconds, s)
		}
		o.Leeway = time.Duration(*f.LeewaySeconds) * time.Second
	}
	if f.RequireExp != nil {
		o.RequireExp = *f.RequireExp
	}
	if f.MaxTokenBytes != nil {
		if n := *f.MaxTokenBytes; n < 64 || n > MaxTokenBytesCeiling {
			return nil, fieldErrorf("jwt.max_token_bytes", "must be between 64 and %d, got %d", MaxTokenBytesCeiling, n)
		}
		o.MaxTokenBytes = *f.MaxTokenBytes
	}
	return o, nil
}

func loadSecret(field string, s SecretFile, env Env) (jwt.Key, error) {
	if s.Env == "" {
		return jwt.Key{}, fieldErrorf(field+".env", "required: the environment variable holding the secret")
	}
	value, ok := env(s.Env)
	if !ok || value == "" {
		return jwt.Key{}, fieldErrorf(field+".env", "environment variable %q is not set in the VM (Envoy vm_config.environment_variables, Istio vmConfig.env)", s.Env)
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
		return jwt.Key{}, fieldErrorf(field+".encoding", "must be raw, base64 or base64url, got %q", s.Encoding)
	}
	if err != nil {
		return jwt.Key{}, fieldErrorf(field+".env", "environment variable %q is not valid %s", s.Env, s.Encoding)
	}
	if len(secret) < MinSecretBytes {
		return jwt.Key{}, fieldErrorf(field+".env", "secret in %q is %d bytes; HS256 needs at least %d (RFC 7518 §3.2)", s.Env, len(secret), MinSecretBytes)
	}
	return jwt.Key{ID: s.KID, Secret: secret}, nil
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
