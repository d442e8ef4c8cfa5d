package plugin

import (
	"strings"
	"time"

	"github.com/portcullis/portcullis/filter/gateway"
	"github.com/portcullis/portcullis/filter/host"
	"github.com/portcullis/portcullis/filter/ratelimit"
	"github.com/portcullis/portcullis/filter/route"
)

// metricPrefix namespaces every counter; Envoy adds "wasmcustom." in /stats.
const metricPrefix = "portcullis."

// counter is counted inside the VM and added to the proxy's counter when
// the metrics are flushed: a proxy_increment_metric per counter per request
// would be a host call each (README "Performance").
type counter struct {
	proxy   host.Counter
	pending uint64
}

// Inc adds one, to be flushed.
func (c *counter) Inc() { c.pending++ }

// Add adds n (≥ 0), to be flushed.
func (c *counter) Add(n int64) { c.pending += uint64(n) }

// flushPeriod is how often counts reach the proxy: on every tick, which
// runs at least this often (background.go).
const flushPeriod = 100 * time.Millisecond

// metrics is the fixed set of counters the plugin keeps (listed in the README).
type metrics struct {
	all []*counter // every counter, for flush

	requests  *counter
	forwarded *counter
	health    *counter
	verified  *counter
	// tokenCacheHit, tokenCacheMiss and tokenCacheRefused count token
	// lookups in the token caches (gateway.TokenCacheUse).
	tokenCacheHit, tokenCacheMiss, tokenCacheRefused *counter
	// jwtShadowRefused counts tokens refused on rules in JWT shadow mode
	// (the requests were forwarded without identity).
	jwtShadowRefused *counter
	// rejected counts local replies, indexed by gateway.Reason.
	rejected []*counter
	// upstreamErrors counts Envoy-made upstream failures rewritten to JSON,
	// indexed by gateway.UpstreamFailure.
	upstreamErrors []*counter
	// rateAllowed, rateDenied and rateShadowDenied count rate-limit
	// decisions (shadow: denials that were not enforced); rateFaults counts
	// each ratelimit.Fault (by bit index).
	rateAllowed, rateDenied, rateShadowDenied *counter
	rateFaults                                []*counter
	// costCharged counts responses whose cost header's debt was charged;
	// costInvalid those whose cost header was unreadable (ignored).
	costCharged, costInvalid *counter
	// Fleet mode: calls made to the ratelimit service, calls that failed
	// (the failure mode decided), refusals answered from the blocklist.
	fleetCalls, fleetUnavailable, fleetBlocklisted *counter
	// fleetNoAnswer counts the calls among fleetUnavailable that got no
	// answer at all (no answer within timeout_ms, reset, no cluster).
	fleetNoAnswer *counter
	// Quota leasing: requests admitted from a lease (no call), calls that
	// reserved a batch, and the hits they reserved (reserved − spent is what
	// the leases left unspent, the fleet's under-admission).
	fleetLeaseSpent, fleetLeaseCalls, fleetLeaseHits *counter
	// Caching: answers by X-Cache, store failures (lookups and writes that
	// got no usable answer), fills stored, responses not storable, writes
	// dropped because the queue was full, requests that waited for another's
	// fill, and successful unsafe requests that deleted index records.
	// cacheLocalHit counts the hits (in cacheHit too) answered from this
	// VM's hot entries, with no callout.
	cacheLocalHit                                                                                                                              *counter
	cacheHit, cacheMiss, cacheBypass, cacheUnavailable, cacheStored, cacheNotStored, cacheDropped, cacheWaits, cacheInvalidations, cachePurges *counter
	// cacheRevalidated counts stale entries the upstream confirmed with a
	// 304, answered from the store (RFC 9111 §4.3.4).
	cacheRevalidated *counter
	// cacheStale counts stale entries served (RFC 5861: within
	// stale-while-revalidate, or instead of an upstream error).
	cacheStale *counter
	// gcOnTick and gcInRequest count the VM's garbage collections made on
	// the tick and those the Go runtime started by itself, inside a
	// request's callback (gc.go).
	gcOnTick, gcInRequest *counter
	// routes are the per-route counters, indexed by route.Rule.Index.
	routes []routeCounters
}

// routeCounters count one route rule's requests and its 429s for a rate
// limit (ReasonRateLimited): the plugin's 429 is a local reply made before
// Envoy's router, so Envoy's own per-route stats never see it.
type routeCounters struct {
	requests, rateLimited *counter
}

func newMetrics(rules []route.Rule) *metrics {
	m := &metrics{}
	m.routes = make([]routeCounters, len(rules))
	for i, r := range rules {
		segment := routeSegment(r.Name)
		m.routes[i] = routeCounters{requests: m.define("route." + segment + ".requests"), rateLimited: m.define("route." + segment + ".rate_limited")}
	}
	m.requests = m.define("requests")
	m.gcOnTick = m.define("vm.gc_on_tick")
	m.gcInRequest = m.define("vm.gc_in_request")
	m.forwarded = m.define("forwarded")
	m.health = m.define("health")
	m.verified = m.define("jwt.verified")
	m.tokenCacheHit = m.define("jwt.cache_hit")
	m.tokenCacheMiss = m.define("jwt.cache_miss")
	m.tokenCacheRefused = m.define("jwt.cache_refused")
	m.jwtShadowRefused = m.define("jwt.shadow_refused")
	m.rateAllowed = m.define("ratelimit.allowed")
	m.rateDenied = m.define("ratelimit.denied")
	m.rateShadowDenied = m.define("ratelimit.shadow_denied")
	m.costCharged = m.define("ratelimit.charged")
	m.costInvalid = m.define("ratelimit.fault.cost_header_invalid")
	m.fleetCalls = m.define("ratelimit.fleet.calls")
	m.fleetUnavailable = m.define("ratelimit.fleet.unavailable")
	m.fleetNoAnswer = m.define("ratelimit.fleet.no_answer")
	m.fleetBlocklisted = m.define("ratelimit.fleet.blocklisted")
	m.fleetLeaseSpent = m.define("ratelimit.fleet.lease_spent")
	m.fleetLeaseCalls = m.define("ratelimit.fleet.lease_calls")
	m.fleetLeaseHits = m.define("ratelimit.fleet.lease_hits")
	m.cacheHit = m.define("cache.hit")
	m.cacheLocalHit = m.define("cache.local_hit")
	m.cacheMiss = m.define("cache.miss")
	m.cacheBypass = m.define("cache.bypass")
	m.cacheUnavailable = m.define("cache.unavailable")
	m.cacheStored = m.define("cache.stored")
	m.cacheNotStored = m.define("cache.not_stored")
	m.cacheDropped = m.define("cache.write_dropped")
	m.cacheWaits = m.define("cache.fill_waits")
	m.cacheInvalidations = m.define("cache.invalidations")
	m.cachePurges = m.define("cache.purges")
	m.cacheRevalidated = m.define("cache.revalidated")
	m.cacheStale = m.define("cache.stale")
	for _, f := range ratelimit.Faults() {
		m.rateFaults = append(m.rateFaults, m.define("ratelimit.fault."+f.Metric()))
	}
	for _, r := range gateway.Reasons() {
		m.rejected = append(m.rejected, m.define("rejected."+r.Metric()))
	}
	m.upstreamErrors = make([]*counter, len(gateway.UpstreamFailures())+1)
	for _, f := range gateway.UpstreamFailures() {
		m.upstreamErrors[f] = m.define("upstream_error." + f.Metric())
	}
	return m
}

// rateLimited counts one rate-limit outcome, where it came from, and each
// of its faults.
func (m *metrics) rateLimited(o *gateway.RateOutcome) {
	switch o.Source {
	case gateway.RateBlocklist:
		m.fleetBlocklisted.Inc()
	case gateway.RateFleetUnavailable:
		m.fleetUnavailable.Inc()
	case gateway.RateLease:
		m.fleetLeaseSpent.Inc()
	}
	d := &o.Decision
	switch {
	case d.Allowed:
		m.rateAllowed.Inc()
	case o.Shadow:
		m.rateShadowDenied.Inc()
	default:
		m.rateDenied.Inc()
	}
	m.faults(d.Faults | o.LocalFaults)
}

// faults counts each of the limiter's faults in f.
func (m *metrics) faults(f ratelimit.Fault) {
	if f == 0 {
		return
	}
	for i, one := range ratelimit.Faults() {
		if f.Has(one) {
			m.rateFaults[i].Inc()
		}
	}
}

func (m *metrics) reject(reason gateway.Reason) { m.rejected[reason].Inc() }

// routeSegment is a rule's name as one segment of a counter name: Envoy's
// tag extraction (envoy.yaml stats_tags) splits names on dots, so a dot
// becomes "_", as does anything outside letters, digits, "_", "-" and "/"
// (a prefix used as the name keeps its slashes). Two rules whose names map
// to the same segment share their counters.
func routeSegment(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-', r == '/':
			return r
		}
		return '_'
	}, name)
}

// define defines the proxy counter portcullis.<name> and returns its
// VM-side counter.
//
// It is not inlined: inlined, with host.NewCounter in it, each of the
// thirty-odd calls in newMetrics was a copy (26 KB of the module).
//
//go:noinline
func (m *metrics) define(name string) *counter {
	c := &counter{proxy: host.NewCounter(metricPrefix + name)}
	m.all = append(m.all, c)
	return c
}

// flush adds every pending count to the proxy's counters.
func (m *metrics) flush() {
	for _, c := range m.all {
		if c.pending > 0 {
			c.proxy.Add(c.pending)
			c.pending = 0
		}
	}
}
