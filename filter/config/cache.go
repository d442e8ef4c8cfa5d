package config

import (
	"bytes"
	"cmp"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis/portcullis/filter/cache"
	"github.com/portcullis/portcullis/filter/route"
)

// CacheFile configures response caching. With it, GET and HEAD responses of
// every route are cached unless the rule's cache block says enabled: false.
// Numbers are pointers so that an explicit 0 is refused, not taken for the
// default.
type CacheFile struct {
	Cluster           string
	Authority         string
	TimeoutMS         *int
	MaxBodyBytes      *int
	DefaultTTLSeconds *int
	Statuses          map[string]int
	FillWaitMS        *int
	FillLockSlots     *int
	// The in-proxy tier (README "Caching").
	LocalIndexTTLMS    *int
	LocalIndexSlots    *int
	LocalEntries       *int
	LocalMaxEntryBytes *int
	LocalBytes         *int
	// Purge turns on surrogate keys and the purge endpoint (README
	// "Caching", purge).
	Purge *PurgeFile
}

func (f *CacheFile) members() []member {
	return []member{
		{"cluster", str(&f.Cluster)},
		{"authority", str(&f.Authority)},
		{"timeout_ms", optional(&f.TimeoutMS, integer[int])},
		{"max_body_bytes", optional(&f.MaxBodyBytes, integer[int])},
		{"default_ttl_seconds", optional(&f.DefaultTTLSeconds, integer[int])},
		{"statuses", dict(&f.Statuses, integer[int])},
		{"fill_wait_ms", optional(&f.FillWaitMS, integer[int])},
		{"fill_lock_slots", optional(&f.FillLockSlots, integer[int])},
		{"local_index_ttl_ms", optional(&f.LocalIndexTTLMS, integer[int])},
		{"local_index_slots", optional(&f.LocalIndexSlots, integer[int])},
		{"local_entries", optional(&f.LocalEntries, integer[int])},
		{"local_max_entry_bytes", optional(&f.LocalMaxEntryBytes, integer[int])},
		{"local_bytes", optional(&f.LocalBytes, integer[int])},
		{"purge", optional(&f.Purge, nested[PurgeFile])},
	}
}

// PurgeFile is the cache.purge block.
type PurgeFile struct {
	Path      string
	Secret    *SecretFile
	TagHeader string
}

func (f *PurgeFile) members() []member {
	return []member{
		{"path", str(&f.Path)},
		{"secret", optional(&f.Secret, nested[SecretFile])},
		{"tag_header", str(&f.TagHeader)},
	}
}

// DefaultTagHeader is where surrogate keys are read from by default
// (Fastly's field; Cloudflare's is cache-tag).
const DefaultTagHeader = "surrogate-key"

// compilePurge compiles cache.purge. The admin secret must be none of the
// JWT secrets: a token signer must not be able to purge, nor a purge
// secret's holder sign tokens.
func compilePurge(f *PurgeFile, env Env, healthPath string, jwtSecrets [][]byte) (*cache.PurgeConfig, error) {
	if f == nil {
		return nil, nil
	}
	if f.Path == "" || f.Path[0] != '/' {
		return nil, fieldError("cache.purge.path", `required: a path starting with "/"`)
	}
	if _, ok := route.SplitPath(f.Path); !ok || strings.ContainsAny(f.Path, "?#") {
		return nil, fieldError("cache.purge.path", "must be a plain path without dot segments, query or escapes: "+strconv.Quote(f.Path))
	}
	if f.Path == healthPath {
		return nil, fieldError("cache.purge.path", "is the health path "+strconv.Quote(f.Path))
	}
	tagHeader := strings.ToLower(cmp.Or(f.TagHeader, DefaultTagHeader))
	if !isToken(tagHeader) || !validTagHeader(tagHeader) {
		return nil, fieldError("cache.purge.tag_header", "not a response field the gateway may consume: "+strconv.Quote(f.TagHeader))
	}
	if f.Secret == nil {
		return nil, fieldError("cache.purge.secret", `required: {"env": <variable holding the admin secret>}`)
	}
	if f.Secret.KID != "" {
		return nil, fieldError("cache.purge.secret.kid", "the admin secret has no key id")
	}
	key, err := loadSecret("cache.purge.secret", *f.Secret, env)
	if err != nil {
		return nil, err
	}
	for _, s := range jwtSecrets {
		if bytes.Equal(s, key.Secret) {
			return nil, fieldError("cache.purge.secret.env", "the admin secret must not be a JWT secret")
		}
	}
	return cache.NewPurgeConfig(f.Path, tagHeader, key.Secret), nil
}

// validTagHeader refuses fields the cache or the proxy read for themselves.
func validTagHeader(name string) bool {
	switch name {
	case "cache-control", "vary", "expires", "date", "age", "content-length", "content-type", "set-cookie", "connection", "x-cache":
		return false
	}
	return !strings.HasPrefix(name, ":")
}

// RouteCacheFile is a route rule's cache policy.
type RouteCacheFile struct {
	Enabled    *bool
	TTLSeconds *int
	Public     bool
	// RFC 5861 defaults for responses that do not set their own.
	StaleWhileRevalidateSeconds *int
	StaleIfErrorSeconds         *int
}

func (f *RouteCacheFile) members() []member {
	return []member{
		{"enabled", optional(&f.Enabled, flag)},
		{"ttl_seconds", optional(&f.TTLSeconds, integer[int])},
		{"public", flag(&f.Public)},
		{"stale_while_revalidate_seconds", optional(&f.StaleWhileRevalidateSeconds, integer[int])},
		{"stale_if_error_seconds", optional(&f.StaleIfErrorSeconds, integer[int])},
	}
}

// Cache defaults and bounds.
const (
	DefaultCacheCluster   = "cache"
	DefaultCacheAuthority = "portcullis-cache"
	DefaultCacheTimeout   = 50 * time.Millisecond
	MaxCacheTimeoutMS     = 5000
	DefaultMaxBodyBytes   = 1 << 20
	MaxBodyBytesCeiling   = 16 << 20 // a fill holds the whole body in the VM
	DefaultCacheTTL       = 60 * time.Second
	MaxTTLSeconds         = 365 * 24 * 3600
	// MaxStaleSeconds bounds the stale windows: an entry is kept in the
	// store at most cache.MaxStoreTTL.
	MaxStaleSeconds      = 86400
	DefaultFillWait      = 2 * time.Second // why: filter/cache package documentation
	MaxFillWaitMS        = 10_000          // well inside Envoy's 15 s route timeout
	DefaultFillLockSlots = 4096
	// The in-proxy tier; why these: filter/cache package documentation.
	DefaultLocalIndexTTL      = time.Second
	MaxLocalIndexTTLMS        = 60_000
	DefaultLocalIndexSlots    = 4096
	DefaultLocalEntries       = 256
	MaxLocalEntries           = 65_536
	DefaultLocalMaxEntryBytes = 64 << 10
	DefaultLocalBytes         = 4 << 20
	MaxLocalBytes             = 256 << 20 // per VM, and Envoy runs one VM per worker
)

// compileCache compiles the top-level cache block and returns it with one
// policy per route rule (nil: the rule does not cache; all nil without the
// block).
func compileCache(f *CacheFile, routes []RouteFile) (*cache.Config, []*cache.RoutePolicy, error) {
	policies := make([]*cache.RoutePolicy, len(routes))
	if f == nil {
		for i, r := range routes {
			if r.Cache != nil {
				return nil, nil, fieldError(indexed("routes", i)+".cache", "requires the top-level cache block")
			}
		}
		return nil, policies, nil
	}
	c := &cache.Config{
		Cluster:       cmp.Or(f.Cluster, DefaultCacheCluster),
		Authority:     cmp.Or(f.Authority, DefaultCacheAuthority),
		Timeout:       DefaultCacheTimeout,
		MaxBodyBytes:  DefaultMaxBodyBytes,
		FillWait:      DefaultFillWait,
		FillLockSlots: DefaultFillLockSlots,

		LocalIndexTTL:      DefaultLocalIndexTTL,
		LocalIndexSlots:    DefaultLocalIndexSlots,
		LocalEntries:       DefaultLocalEntries,
		LocalMaxEntryBytes: DefaultLocalMaxEntryBytes,
		LocalBytes:         DefaultLocalBytes,
	}
	if !isToken(c.Cluster) {
		return nil, nil, fieldError("cache.cluster", "not an Envoy cluster name: "+strconv.Quote(c.Cluster))
	}
	if !route.SafeHeaderValue(c.Authority) || strings.ContainsAny(c.Authority, " \t/") {
		return nil, nil, fieldError("cache.authority", "not a host[:port]: "+strconv.Quote(c.Authority))
	}
	for _, n := range []struct {
		field    string
		value    *int
		min, max int
		set      func(int)
	}{
		{"cache.timeout_ms", f.TimeoutMS, 1, MaxCacheTimeoutMS, func(v int) { c.Timeout = time.Duration(v) * time.Millisecond }},
		{"cache.max_body_bytes", f.MaxBodyBytes, 1, MaxBodyBytesCeiling, func(v int) { c.MaxBodyBytes = v }},
		{"cache.fill_wait_ms", f.FillWaitMS, 1, MaxFillWaitMS, func(v int) { c.FillWait = time.Duration(v) * time.Millisecond }},
		{"cache.fill_lock_slots", f.FillLockSlots, 1, cache.MaxFillLockSlots, func(v int) { c.FillLockSlots = v }},
		{"cache.default_ttl_seconds", f.DefaultTTLSeconds, 0, MaxTTLSeconds, func(int) {}}, // used by compileStatuses; 0: no heuristic freshness
		{"cache.local_index_ttl_ms", f.LocalIndexTTLMS, 1, MaxLocalIndexTTLMS, func(v int) { c.LocalIndexTTL = time.Duration(v) * time.Millisecond }},
		{"cache.local_index_slots", f.LocalIndexSlots, 1, cache.MaxLocalIndexSlots, func(v int) { c.LocalIndexSlots = v }},
		{"cache.local_entries", f.LocalEntries, 1, MaxLocalEntries, func(v int) { c.LocalEntries = v }},
		{"cache.local_max_entry_bytes", f.LocalMaxEntryBytes, 1, MaxBodyBytesCeiling + cache.MaxHeadBytes, func(v int) { c.LocalMaxEntryBytes = v }},
		{"cache.local_bytes", f.LocalBytes, 1, MaxLocalBytes, func(v int) { c.LocalBytes = v }},
	} {
		if n.value == nil {
			continue
		}
		if v := *n.value; v < n.min || v > n.max {
			return nil, nil, fieldError(n.field, "must be between "+strconv.Itoa(n.min)+" and "+strconv.Itoa(n.max)+", got "+strconv.Itoa(v))
		}
		n.set(*n.value)
	}
	if c.LocalMaxEntryBytes > c.LocalBytes {
		return nil, nil, fieldError("cache.local_max_entry_bytes", strconv.Itoa(c.LocalMaxEntryBytes)+" is more than cache.local_bytes ("+strconv.Itoa(c.LocalBytes)+"): no entry could be kept")
	}
	var err error
	if c.Statuses, err = compileStatuses(f); err != nil {
		return nil, nil, err
	}
	for i, r := range routes {
		if policies[i], err = compileRouteCache(indexed("routes", i)+".cache", r.Cache, c); err != nil {
			return nil, nil, err
		}
	}
	return c, policies, nil
}

// compileStatuses reads cache.statuses (status → TTL seconds), which
// replaces the default {"200": default_ttl_seconds}. The TTL of 200 is set
// in one place only.
func compileStatuses(f *CacheFile) (map[int]time.Duration, error) {
	defaultTTL := DefaultCacheTTL
	if f.DefaultTTLSeconds != nil {
		defaultTTL = time.Duration(*f.DefaultTTLSeconds) * time.Second
	}
	if f.Statuses == nil {
		return map[int]time.Duration{200: defaultTTL}, nil
	}
	if len(f.Statuses) == 0 {
		return nil, fieldError("cache.statuses", "must list at least one status (omit it for the default, 200)")
	}
	if f.DefaultTTLSeconds != nil {
		if _, has200 := f.Statuses["200"]; has200 {
			return nil, fieldError("cache.default_ttl_seconds", "the TTL of status 200 is also set by cache.statuses; set it in one place")
		}
		return nil, fieldError("cache.default_ttl_seconds", "is the TTL of status 200, which cache.statuses does not list")
	}
	keys := sortedKeys(f.Statuses)
	out := make(map[int]time.Duration, len(keys))
	for _, k := range keys {
		field := "cache.statuses." + k
		status, err := strconv.Atoi(k)
		switch {
		case err != nil || len(k) != 3 || status < 200 || status > 599:
			return nil, fieldError(field, "not a status code from 200 to 599")
		case status == 206 || status == 304:
			// A partial or not-modified response is not the resource: replayed
			// to another request it would be wrong (RFC 9111 §3.3, §4.3.4).
			return nil, fieldError(field, strconv.Itoa(status)+" responses cannot be replayed from the cache")
		}
		ttl := f.Statuses[k]
		if ttl < 0 || ttl > MaxTTLSeconds { // 0: stored only with freshness of its own or a validator
			return nil, fieldError(field, "must be between 0 and "+strconv.Itoa(MaxTTLSeconds)+" seconds, got "+strconv.Itoa(ttl))
		}
		out[status] = time.Duration(ttl) * time.Second
	}
	return out, nil
}

// compileRouteCache compiles one rule's cache block (nil: the defaults).
func compileRouteCache(field string, f *RouteCacheFile, c *cache.Config) (*cache.RoutePolicy, error) {
	if f == nil {
		return &cache.RoutePolicy{}, nil
	}
	if f.Enabled != nil && !*f.Enabled {
		switch {
		case f.TTLSeconds != nil:
			return nil, fieldError(field+".ttl_seconds", "has no effect with enabled false")
		case f.Public:
			return nil, fieldError(field+".public", "has no effect with enabled false")
		case f.StaleWhileRevalidateSeconds != nil:
			return nil, fieldError(field+".stale_while_revalidate_seconds", "has no effect with enabled false")
		case f.StaleIfErrorSeconds != nil:
			return nil, fieldError(field+".stale_if_error_seconds", "has no effect with enabled false")
		}
		return nil, nil
	}
	p := &cache.RoutePolicy{Public: f.Public}
	if f.TTLSeconds != nil {
		if v := *f.TTLSeconds; v < 1 || v > MaxTTLSeconds {
			return nil, fieldError(field+".ttl_seconds", "must be between 1 and "+strconv.Itoa(MaxTTLSeconds)+", got "+strconv.Itoa(v))
		}
		if _, ok := c.Statuses[200]; !ok {
			return nil, fieldError(field+".ttl_seconds", "is the TTL of status 200, which cache.statuses does not list")
		}
		p.TTL = time.Duration(*f.TTLSeconds) * time.Second
	}
	for _, w := range [...]struct {
		name  string
		value *int
		set   *time.Duration
	}{
		{".stale_while_revalidate_seconds", f.StaleWhileRevalidateSeconds, &p.StaleWhileRevalidate},
		{".stale_if_error_seconds", f.StaleIfErrorSeconds, &p.StaleIfError},
	} {
		if w.value == nil {
			continue
		}
		if v := *w.value; v < 0 || v > MaxStaleSeconds {
			return nil, fieldError(field+w.name, "must be between 0 and "+strconv.Itoa(MaxStaleSeconds)+", got "+strconv.Itoa(v))
		}
		*w.set = time.Duration(*w.value) * time.Second
	}
	return p, nil
}
