package config

import (
	"cmp"
	"slices"
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
	Cluster           string         `json:"cluster"`
	Authority         string         `json:"authority"`
	TimeoutMS         *int           `json:"timeout_ms"`
	MaxBodyBytes      *int           `json:"max_body_bytes"`
	DefaultTTLSeconds *int           `json:"default_ttl_seconds"`
	Statuses          map[string]int `json:"statuses"`
	FillWaitMS        *int           `json:"fill_wait_ms"`
	FillLockSlots     *int           `json:"fill_lock_slots"`
	// The in-proxy tier (README "Caching").
	LocalIndexTTLMS    *int `json:"local_index_ttl_ms"`
	LocalIndexSlots    *int `json:"local_index_slots"`
	LocalEntries       *int `json:"local_entries"`
	LocalMaxEntryBytes *int `json:"local_max_entry_bytes"`
	LocalBytes         *int `json:"local_bytes"`
}

// RouteCacheFile is a route rule's cache policy.
type RouteCacheFile struct {
	Enabled    *bool `json:"enabled"`
	TTLSeconds *int  `json:"ttl_seconds"`
	Public     bool  `json:"public"`
	// RFC 5861 defaults for responses that do not set their own.
	StaleWhileRevalidateSeconds *int `json:"stale_while_revalidate_seconds"`
	StaleIfErrorSeconds         *int `json:"stale_if_error_seconds"`
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
				return nil, nil, fieldErrorf(indexed("routes", i)+".cache", "requires the top-level cache block")
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
		return nil, nil, fieldErrorf("cache.cluster", "not an Envoy cluster name: %q", c.Cluster)
	}
	if !route.SafeHeaderValue(c.Authority) || strings.ContainsAny(c.Authority, " \t/") {
		return nil, nil, fieldErrorf("cache.authority", "not a host[:port]: %q", c.Authority)
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
			return nil, nil, fieldErrorf(n.field, "must be between %d and %d, got %d", n.min, n.max, v)
		}
		n.set(*n.value)
	}
	if c.LocalMaxEntryBytes > c.LocalBytes {
		return nil, nil, fieldErrorf("cache.local_max_entry_bytes", "%d is more than cache.local_bytes (%d): no entry could be kept", c.LocalMaxEntryBytes, c.LocalBytes)
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
		return nil, fieldErrorf("cache.statuses", "must list at least one status (omit it for the default, 200)")
	}
	if f.DefaultTTLSeconds != nil {
		if _, has200 := f.Statuses["200"]; has200 {
			return nil, fieldErrorf("cache.default_ttl_seconds", "the TTL of status 200 is also set by cache.statuses; set it in one place")
		}
		return nil, fieldErrorf("cache.default_ttl_seconds", "is the TTL of status 200, which cache.statuses does not list")
	}
	keys := make([]string, 0, len(f.Statuses))
	for k := range f.Statuses {
		keys = append(keys, k)
	}
	slices.Sort(keys) // the first error is the same on every run
	out := make(map[int]time.Duration, len(keys))
	for _, k := range keys {
		field := "cache.statuses." + k
		status, err := strconv.Atoi(k)
		switch {
		case err != nil || len(k) != 3 || status < 200 || status > 599:
			return nil, fieldErrorf(field, "not a status code from 200 to 599")
		case status == 206 || status == 304:
			// A partial or not-modified response is not the resource: replayed
			// to another request it would be wrong (RFC 9111 §3.3, §4.3.4).
			return nil, fieldErrorf(field, "%d responses cannot be replayed from the cache", status)
		}
		ttl := f.Statuses[k]
		if ttl < 0 || ttl > MaxTTLSeconds { // 0: stored only with freshness of its own or a validator
			return nil, fieldErrorf(field, "must be between 0 and %d seconds, got %d", MaxTTLSeconds, ttl)
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
			return nil, fieldErrorf(field+".ttl_seconds", "has no effect with enabled false")
		case f.Public:
			return nil, fieldErrorf(field+".public", "has no effect with enabled false")
		case f.StaleWhileRevalidateSeconds != nil:
			return nil, fieldErrorf(field+".stale_while_revalidate_seconds", "has no effect with enabled false")
		case f.StaleIfErrorSeconds != nil:
			return nil, fieldErrorf(field+".stale_if_error_seconds", "has no effect with enabled false")
		}
		return nil, nil
	}
	p := &cache.RoutePolicy{Public: f.Public}
	if f.TTLSeconds != nil {
		if v := *f.TTLSeconds; v < 1 || v > MaxTTLSeconds {
			return nil, fieldErrorf(field+".ttl_seconds", "must be between 1 and %d, got %d", MaxTTLSeconds, v)
		}
		if _, ok := c.Statuses[200]; !ok {
			return nil, fieldErrorf(field+".ttl_seconds", "is the TTL of status 200, which cache.statuses does not list")
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
			return nil, fieldErrorf(field+w.name, "must be between 0 and %d, got %d", MaxStaleSeconds, v)
		}
		*w.set = time.Duration(*w.value) * time.Second
	}
	return p, nil
}
