package plugin

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/portcullis/portcullis/filter/config"
	"github.com/portcullis/portcullis/filter/gateway"
)

// maxFleetAnswerBytes bounds what is read of the service's answer (one
// descriptor's answer is about 200 bytes).
const maxFleetAnswerBytes = 16 << 10

// fleetCallHeaders are the headers of a call to the ratelimit service's
// /json endpoint for the request requestID.
func fleetCallHeaders(fl *config.Fleet, requestID string) [][2]string {
	return [][2]string{
		{":method", "POST"}, {":path", "/json"}, {":authority", fl.Authority},
		{"content-type", "application/json"}, {"x-request-id", requestID},
	}
}

// callFleet asks the ratelimit service about the request and pauses it until
// the answer (or the timeout) arrives.
func (h *httpContext) callFleet(call *gateway.FleetCall) types.Action {
	p := h.plugin
	fl := p.cfg.RateLimit.Fleet
	p.metrics.fleetCalls.Inc()
	if call.Lease > 0 {
		p.metrics.fleetLeaseCalls.Inc()
		p.metrics.fleetLeaseHits.Add(call.Lease)
	}
	h.access.FleetCall = true
	return h.call("ratelimit service", fl.Cluster, fleetCallHeaders(fl, h.requestID), call.Body, fl.Timeout, maxFleetAnswerBytes, func(a answer) types.Action {
		if a.status == 0 {
			p.metrics.fleetNoAnswer.Inc() // a timeout, a reset or a missing cluster: the host does not say which
		}
		return h.apply(p.gw.FleetAnswer(call, a.status, a.body, clockNow()))
	})
}
