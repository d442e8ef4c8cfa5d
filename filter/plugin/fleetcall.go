package plugin

import (
	"strconv"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/portcullis/portcullis/filter/config"
	"github.com/portcullis/portcullis/filter/host"
	"github.com/portcullis/portcullis/filter/route"
)

// calloutStatus is the :status of the callout answer being handled, 0 when
// it has none.
func calloutStatus() int {
	headers, err := proxywasm.GetHttpCallResponseHeaders()
	if err != nil {
		return 0
	}
	for _, kv := range headers {
		if kv[0] == ":status" {
			n, _ := strconv.Atoi(kv[1])
			return n
		}
	}
	return 0
}

// maxFleetAnswerBytes bounds what is read of the service's answer (one
// descriptor's answer is about 200 bytes).
const maxFleetAnswerBytes = 16 << 10

// callFleet asks the ratelimit service about the request and pauses it until
// the answer (or the timeout) arrives. A call that cannot even be made (the
// cluster is unknown to Envoy) is decided by the failure mode at once.
func (h *httpContext) callFleet(call *FleetCall) types.Action {
	p := h.plugin
	fl := p.cfg.RateLimit.Fleet
	headers := [][2]string{
		{":method", "POST"}, {":path", "/json"}, {":authority", fl.Authority},
		{"content-type", "application/json"}, {"x-request-id", h.requestID},
	}
	h.fleetCall = call
	h.stage = stageAwaitingFleet
	p.metrics.fleetCalls.Inc()
	if _, err := proxywasm.DispatchHttpCall(fl.Cluster, headers, call.Body, nil, uint32(fl.Timeout/time.Millisecond), h.onFleetAnswer); err != nil {
		host.Log(host.Warn, "portcullis: cannot call the ratelimit service (cluster "+fl.Cluster+"): "+err.Error())
		return h.decideFleet(0, nil)
	}
	return types.ActionPause
}

// onFleetAnswer is the callout's callback: numHeaders is 0 when the call
// failed (timeout, reset, no healthy host).
func (h *httpContext) onFleetAnswer(numHeaders, bodySize, _ int) {
	var action types.Action
	defer h.recoverPanic(&action)
	if h.stage != stageAwaitingFleet {
		return
	}
	status := 0
	var body []byte
	if numHeaders > 0 {
		status = calloutStatus()
		if bodySize > 0 {
			body, _ = proxywasm.GetHttpCallResponseBody(0, min(bodySize, maxFleetAnswerBytes))
		}
	}
	if h.decideFleet(status, body) == types.ActionContinue {
		if err := proxywasm.ResumeHttpRequest(); err != nil {
			host.Log(host.Warn, "portcullis: cannot resume the request after the ratelimit answer: "+err.Error())
		}
	}
}

// decideFleet forwards or refuses the paused request by the service's answer.
func (h *httpContext) decideFleet(status int, body []byte) types.Action {
	p := h.plugin
	dec := Decision{}
	if !p.fleetAnswer(&dec, h.fleetCall, status, body, p.now()) {
		p.metrics.fleetUnavailable.Inc()
	}
	if dec.RateLimit != nil {
		p.metrics.rateLimited(dec.RateLimit)
	}
	if dec.Reject != nil {
		return h.reply(dec.Reject)
	}
	return h.forward(dec.RateHeaders)
}

// publicKey reads what public routes are counted by, when the config says
// they are: the client address without its port, or a header.
func (p *Plugin) publicKey() string {
	rl := p.cfg.RateLimit
	if rl == nil {
		return ""
	}
	switch rl.PublicKey.Kind {
	case config.KeyClientAddress:
		if ip, err := route.ClientIP(host.Property("source", "address")); err == nil {
			return ip.String()
		}
	case config.KeyHeader:
		return header(rl.PublicKey.Header)
	}
	return ""
}
