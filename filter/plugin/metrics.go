package plugin

import (
	"github.com/portcullis/portcullis/filter/host"
	"github.com/portcullis/portcullis/filter/jwt"
	"github.com/portcullis/portcullis/filter/ratelimit"
)

// metricPrefix namespaces every counter; Envoy adds "wasmcustom." in /stats.
const metricPrefix = "portcullis."

// metrics is the fixed set of counters the plugin keeps (listed in the README).
type metrics struct {
	requests  host.Counter
	forwarded host.Counter
	health    host.Counter
	verified  host.Counter
	// rejected counts local replies by reason ("route_not_found", "jwt_expired", ...).
	rejected map[string]host.Counter
	// upstreamErrors counts Envoy-made upstream failures rewritten to JSON.
	upstreamErrors map[string]host.Counter
	// rateAllowed and rateDenied count rate-limit decisions; rateFaults
	// counts each ratelimit.Fault (by bit index).
	rateAllowed, rateDenied host.Counter
	rateFaults              []host.Counter
	// Fleet mode: calls made to the ratelimit service, calls that failed
	// (the failure mode decided), refusals answered from the blocklist.
	fleetCalls, fleetUnavailable, fleetBlocklisted host.Counter
	// Caching: answers by X-Cache, store failures (lookups and writes that
	// got no usable answer), fills stored, responses not storable, writes
	// dropped because the queue was full, requests that waited for another's
	// fill, and successful unsafe requests that deleted index records.
	cacheHit, cacheMiss, cacheBypass, cacheUnavailable, cacheStored, cacheNotStored, cacheDropped, cacheWaits, cacheInvalidations host.Counter
}

// rejectionReasons lists every Rejection.Reason the plugin can produce.
func rejectionReasons() []string {
	reasons := []string{"bad_path", "route_not_found", "unsupported_media_type", "health_forbidden", "internal_error", "rate_limited", "ratelimit_unavailable"}
	for _, r := range jwt.Reasons() {
		reasons = append(reasons, "jwt_"+r.Metric())
	}
	return reasons
}

func newMetrics() *metrics {
	m := &metrics{
		requests:           host.NewCounter(metricPrefix + "requests"),
		forwarded:          host.NewCounter(metricPrefix + "forwarded"),
		health:             host.NewCounter(metricPrefix + "health"),
		verified:           host.NewCounter(metricPrefix + "jwt.verified"),
		rejected:           map[string]host.Counter{},
		upstreamErrors:     map[string]host.Counter{},
		rateAllowed:        host.NewCounter(metricPrefix + "ratelimit.allowed"),
		rateDenied:         host.NewCounter(metricPrefix + "ratelimit.denied"),
		fleetCalls:         host.NewCounter(metricPrefix + "ratelimit.fleet.calls"),
		fleetUnavailable:   host.NewCounter(metricPrefix + "ratelimit.fleet.unavailable"),
		fleetBlocklisted:   host.NewCounter(metricPrefix + "ratelimit.fleet.blocklisted"),
		cacheHit:           host.NewCounter(metricPrefix + "cache.hit"),
		cacheMiss:          host.NewCounter(metricPrefix + "cache.miss"),
		cacheBypass:        host.NewCounter(metricPrefix + "cache.bypass"),
		cacheUnavailable:   host.NewCounter(metricPrefix + "cache.unavailable"),
		cacheStored:        host.NewCounter(metricPrefix + "cache.stored"),
		cacheNotStored:     host.NewCounter(metricPrefix + "cache.not_stored"),
		cacheDropped:       host.NewCounter(metricPrefix + "cache.write_dropped"),
		cacheWaits:         host.NewCounter(metricPrefix + "cache.fill_waits"),
		cacheInvalidations: host.NewCounter(metricPrefix + "cache.invalidations"),
	}
	for _, f := range ratelimit.Faults() {
		m.rateFaults = append(m.rateFaults, host.NewCounter(metricPrefix+"ratelimit.fault."+f.Metric()))
	}
	for _, r := range rejectionReasons() {
		m.rejected[r] = host.NewCounter(metricPrefix + "rejected." + r)
	}
	for _, r := range []string{upstreamUnreachable, upstreamTimeout} {
		m.upstreamErrors[r] = host.NewCounter(metricPrefix + "upstream_error." + r)
	}
	return m
}

// rateLimited counts one rate-limit decision and each of its faults.
func (m *metrics) rateLimited(d *ratelimit.Decision) {
	if d.Allowed {
		m.rateAllowed.Inc()
	} else {
		m.rateDenied.Inc()
	}
	if d.Faults == 0 {
		return
	}
	for i, f := range ratelimit.Faults() {
		if d.Faults.Has(f) {
			m.rateFaults[i].Inc()
		}
	}
}

func (m *metrics) reject(reason string) {
	if c, ok := m.rejected[reason]; ok {
		c.Inc()
	}
}
