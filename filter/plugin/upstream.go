package plugin

import (
	"strconv"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/portcullis/portcullis/filter/gateway"
	"github.com/portcullis/portcullis/filter/host"
	"github.com/portcullis/portcullis/filter/httperr"
)

// OnHttpResponseHeaders adds the rate-limit headers of a forwarded request
// and rewrites Envoy-made upstream failures into the JSON envelope; every
// other upstream response passes through otherwise unchanged.
func (h *httpContext) OnHttpResponseHeaders(_ int, endOfStream bool) (action types.Action) {
	defer h.recoverPanic(&action)
	if h.stage != stageForwarded {
		return types.ActionContinue
	}
	if h.costReport != nil {
		h.chargeCost() // before the rate-limit headers replace the upstream's
	}
	// The request was charged: its rate-limit state goes on whatever answer
	// it gets, replacing any the upstream sent.
	for _, kv := range h.rateHeaders {
		_ = proxywasm.ReplaceHttpResponseHeader(kv[0], kv[1])
	}
	status, _ := strconv.Atoi(responseHeader(":status"))
	if h.cacheResponseHeaders(status, endOfStream) {
		return types.ActionPause // answered from the cache: the 304 never goes on
	}
	h.access.Cache, h.access.CacheFill = h.cache.xcache, h.cache.fill != nil
	failure := gateway.NotUpstreamFailure
	if status >= 500 { // only a 5xx can be Envoy's own: no need for its details otherwise
		failure = gateway.ClassifyUpstream(status, host.Property("response", "code_details"))
	}
	if failure == gateway.NotUpstreamFailure {
		h.publishAccess()
		return types.ActionContinue
	}
	h.access.Reply = "upstream_" + failure.Metric()
	h.publishAccess()
	kind := failure.Kind()
	h.stage = stageRewritingUpstream
	h.upstreamFailure = failure
	h.plugin.metrics.upstreamErrors[failure].Inc()
	h.logError(kind, "upstream_"+failure.Metric(), false)
	_ = proxywasm.ReplaceHttpResponseHeader(":status", strconv.Itoa(kind.Status))
	_ = proxywasm.ReplaceHttpResponseHeader("content-type", httperr.ContentType)
	_ = proxywasm.RemoveHttpResponseHeader("content-length")
	// When endOfStream is set Envoy sent no body; status and type still say what happened.
	return types.ActionContinue
}

// OnHttpResponseBody copies a forwarded response's body into its cache
// fill as it streams, and replaces the body of a rewritten upstream failure
// once Envoy's text body is complete.
func (h *httpContext) OnHttpResponseBody(bodySize int, endOfStream bool) (action types.Action) {
	defer h.recoverPanic(&action)
	if h.stage == stageForwarded {
		h.cacheResponseBody(bodySize, endOfStream)
		return types.ActionContinue
	}
	if h.stage != stageRewritingUpstream {
		return types.ActionContinue
	}
	if !endOfStream {
		return types.ActionPause
	}
	f := h.upstreamFailure
	if err := proxywasm.ReplaceHttpResponseBody(httperr.Body(f.Kind(), f.Message(), h.requestID)); err != nil {
		host.Log(host.Error, "portcullis: cannot rewrite upstream error body: "+err.Error())
	}
	return types.ActionContinue
}

// chargeCost charges what the response's cost header reports beyond the
// request's cost, without delaying the response: locally at once, and to the
// fleet by a call the tick makes (its answer is not waited for: the next
// request's call sees the service's counter).
func (h *httpContext) chargeCost() {
	p := h.plugin
	rc := p.gw.ChargeResponse(h.costReport, responseHeader(h.costReport.Header), clockNow())
	switch {
	case rc.Invalid:
		p.metrics.costInvalid.Inc()
	case rc.Units > 0:
		p.metrics.costCharged.Inc()
	}
	if rc.Local != nil {
		p.metrics.faults(rc.Local.Faults)
	}
	if rc.FleetBody == nil {
		return
	}
	fl := p.cfg.RateLimit.Fleet
	call := backgroundCall{what: "ratelimit service", cluster: fl.Cluster, headers: fleetCallHeaders(fl, h.requestID), body: rc.FleetBody, timeout: fl.Timeout}
	if p.enqueue(call) {
		p.metrics.fleetCalls.Inc()
	}
}

func responseHeader(name string) string {
	v, err := proxywasm.GetHttpResponseHeader(name)
	if err != nil {
		return ""
	}
	return v
}
