package plugin

import (
	"strconv"
	"strings"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/portcullis/portcullis/filter/host"
	"github.com/portcullis/portcullis/filter/httperr"
)

const (
	upstreamUnreachable = "unreachable"
	upstreamTimeout     = "timeout"
)

// upstreamFailure classifies a response Envoy made itself because the
// upstream failed. Envoy's response code details say "via_upstream" for
// anything the upstream sent, which passes through untouched.
func upstreamFailure(status int, codeDetails string) (httperr.Kind, string, bool) {
	if status < 500 || codeDetails == "" || codeDetails == "via_upstream" {
		return httperr.Kind{}, "", false
	}
	if strings.Contains(codeDetails, "timeout") {
		return httperr.GatewayTimeout, upstreamTimeout, true
	}
	if strings.HasPrefix(codeDetails, "upstream_") || strings.Contains(codeDetails, "no_healthy_upstream") ||
		strings.Contains(codeDetails, "connection_failure") {
		return httperr.BadGateway, upstreamUnreachable, true
	}
	return httperr.Kind{}, "", false
}

// OnHttpResponseHeaders adds the rate-limit headers of a forwarded request
// and rewrites Envoy-made upstream failures into the JSON envelope; every
// other upstream response passes through otherwise unchanged.
func (h *httpContext) OnHttpResponseHeaders(_ int, endOfStream bool) (action types.Action) {
	defer h.recoverPanic(&action)
	if h.stage != stageForwarded {
		return types.ActionContinue
	}
	// The request was charged: its rate-limit state goes on whatever answer
	// it gets, replacing any the upstream sent.
	for _, hd := range h.rateHeaders {
		_ = proxywasm.ReplaceHttpResponseHeader(hd.Name, hd.Value)
	}
	status, _ := strconv.Atoi(responseHeader(":status"))
	h.cacheResponseHeaders(status, endOfStream)
	kind, reason, ok := upstreamFailure(status, host.Property("response", "code_details"))
	if !ok {
		return types.ActionContinue
	}
	h.stage = stageRewritingUpstream
	h.plugin.metrics.upstreamErrors[reason].Inc()
	h.logError(kind, "upstream_"+reason)
	_ = proxywasm.ReplaceHttpResponseHeader(":status", strconv.Itoa(kind.Status))
	_ = proxywasm.ReplaceHttpResponseHeader("content-type", httperr.ContentType)
	_ = proxywasm.RemoveHttpResponseHeader("content-length")
	h.upstreamKind = kind
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
	message := "upstream unreachable"
	if h.upstreamKind.Status == httperr.GatewayTimeout.Status {
		message = "upstream timed out"
	}
	if err := proxywasm.ReplaceHttpResponseBody(httperr.Body(h.upstreamKind, message, h.requestID)); err != nil {
		host.Log(host.Error, "portcullis: cannot rewrite upstream error body: "+err.Error())
	}
	return types.ActionContinue
}

func responseHeader(name string) string {
	v, err := proxywasm.GetHttpResponseHeader(name)
	if err != nil {
		return ""
	}
	return v
}
