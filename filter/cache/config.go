package cache

import "time"

// Config is the compiled top-level cache block (filter/config builds it,
// with every default filled in and every bound checked).
type Config struct {
	// Cluster is the Envoy cluster of the cache service, Authority the
	// :authority of the callouts to it, Timeout the limit of each callout.
	Cluster, Authority string
	Timeout            time.Duration
	// MaxBodyBytes is the largest response body stored; a longer one is not.
	MaxBodyBytes int
	// Statuses maps each cacheable status to the bound of its heuristic
	// freshness (RFC 9111 §4.2.2, freshness.go): the lifetime of a response
	// with that status that carries no freshness of its own (no s-maxage,
	// max-age or Expires). 0 turns heuristics off: such a response is stored
	// only when it has a validator, to be revalidated before each reuse. A
	// status not listed is never stored.
	Statuses map[int]time.Duration
	// FillWait is the fill lock's lifetime: how long concurrent misses of one
	// key wait for the first one's fill before going upstream themselves.
	FillWait time.Duration
	// FillLockSlots is the size of the fill-lock table in shared data.
	FillLockSlots int
	// The in-proxy tier (doc.go): LocalIndexSlots slots of index copies in
	// shared data, each used for LocalIndexTTL after it was read or written
	// (how long another Envoy's invalidation can go unseen here); per VM, at
	// most LocalEntries hot entries of at most LocalMaxEntryBytes each,
	// LocalBytes in all (HotEntries).
	LocalIndexTTL      time.Duration
	LocalIndexSlots    int
	LocalEntries       int
	LocalMaxEntryBytes int
	LocalBytes         int
	// Purge is the purge endpoint and surrogate keys (nil: off); with it
	// every fill files its index key under the path's and its surrogate
	// keys' tag sets in the store.
	Purge *PurgeConfig
}

// RoutePolicy is the cache policy of one route rule. A rule without one
// (nil) is never answered from the cache nor stored.
type RoutePolicy struct {
	// TTL replaces Config.Statuses[200] on this rule: how long its 200
	// responses without freshness of their own stay fresh. Zero keeps the
	// configured one.
	TTL time.Duration
	// Public shares the rule's entries across tenants (one entry for every
	// caller); otherwise each tenant (API key) has its own.
	Public bool
	// StaleWhileRevalidate and StaleIfError are the RFC 5861 windows of
	// the rule's responses that do not set their own (0: none).
	StaleWhileRevalidate, StaleIfError time.Duration
}

// heuristicTTL is the heuristic bound of a response with status on a rule of
// policy p (0: no heuristic freshness); ok is false when the status is not
// cacheable.
func (c *Config) heuristicTTL(status int, p *RoutePolicy) (ttl time.Duration, ok bool) {
	ttl, ok = c.Statuses[status]
	if ok && status == 200 && p.TTL > 0 {
		return p.TTL, true
	}
	return ttl, ok
}
