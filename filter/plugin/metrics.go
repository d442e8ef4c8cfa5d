package plugin

import (
	"github.com/portcullis/portcullis/filter/gateway"
	"github.com/portcullis/portcullis/filter/host"
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
	// rejected counts local replies, indexed by gateway.Reason.
	rejected []host.Counter
	// upstreamErrors counts Envoy-made upstream failures rewritten to JSON,
	// indexed by gateway.UpstreamFailure.
	upstreamErrors []host.Counter
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

func newMetrics() *metrics {
	m := &metrics{
		requests:           host.NewCounter(metricPrefix + "requests"),
		forwarded:          host.NewCounter(metricPrefix + "forwarded"),
		health:             host.NewCounter(metricPrefix + "health"),
		verified:           host.NewCounter(metricPrefix + "jwt.verified"),
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
	for _, r := range gateway.Reasons() {
		m.rejected = append(m.rejected, host.NewCounter(metricPrefix+"rejected."+r.Metric()))
	}
	m.upstreamErrors = make([]host.Counter, len(gateway.UpstreamFailures())+1)
	for _, f := range gateway.UpstreamFailures() {
		m.upstreamErrors[f] = host.NewCounter(metricPrefix + "upstream_error." + f.Metric())
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
	}
	d := &o.Decision
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

func (m *metrics) reject(reason gateway.Reason) { m.rejected[reason].Inc() }
