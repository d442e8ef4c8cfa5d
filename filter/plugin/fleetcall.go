package plugin

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// maxFleetAnswerBytes bounds what is read of the service's answer (one
// descriptor's answer is about 200 bytes).
const maxFleetAnswerBytes = 16 << 10

// callFleet asks the ratelimit service about the request and pauses it until
// the answer (or the timeout) arrives.
func (h *httpContext) callFleet(call *FleetCall) types.Action {
	p := h.plugin
	fl := p.cfg.RateLimit.Fleet
	headers := [][2]string{
		{":method", "POST"}, {":path", "/json"}, {":authority", fl.Authority},
		{"content-type", "application/json"}, {"x-request-id", h.requestID},
	}
	p.metrics.fleetCalls.Inc()
	return h.call("ratelimit service", fl.Cluster, headers, call.Body, fl.Timeout, maxFleetAnswerBytes, func(a answer) types.Action {
		return h.decideFleet(call, a.status, a.body)
	})
}

// decideFleet forwards or refuses the paused request by the service's answer.
func (h *httpContext) decideFleet(call *FleetCall, status int, body []byte) types.Action {
	p := h.plugin
	dec := Decision{}
	if !p.fleetAnswer(&dec, call, status, body, p.now()) {
		p.metrics.fleetUnavailable.Inc()
	}
	if dec.RateLimit != nil {
		p.metrics.rateLimited(dec.RateLimit)
	}
	if dec.Reject != nil {
		return h.reply(dec.Reject)
	}
	return h.proceed(dec.RateHeaders)
}
