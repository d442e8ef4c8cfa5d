package plugin

import (
	"fmt"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/portcullis/portcullis/filter/cache"
	"github.com/portcullis/portcullis/filter/health"
	"github.com/portcullis/portcullis/filter/host"
	"github.com/portcullis/portcullis/filter/httperr"
	"github.com/portcullis/portcullis/filter/ratelimit"
)

// stage is where one HTTP stream is in its life.
type stage int

const (
	stageReceived          stage = iota // request headers not yet handled
	stageForwarded                      // sent on to the upstream
	stageReplied                        // answered locally by the plugin
	stageRewritingUpstream              // an Envoy-made upstream failure is being turned into JSON
	stageAwaiting                       // paused until a callout answers
	stageDone                           // the stream is gone; late callbacks do nothing
)

// httpContext handles one HTTP stream.
type httpContext struct {
	types.DefaultHttpContext
	id        uint32 // the stream's context id
	plugin    *Plugin
	stage     stage
	requestID string
	method    string
	path      string // without query, for logs
	rule      string
	// upstreamKind is the error being written in place of an Envoy-made upstream failure.
	upstreamKind httperr.Kind
	// rateHeaders go on the response of a forwarded, rate-limited request.
	rateHeaders []ratelimit.Header
	// tenant is the verified key ("" on public routes); cachePolicy the
	// matched rule's cache policy; cache the stream's cache work.
	tenant      string
	cachePolicy *cache.RoutePolicy
	cache       cacheState
}

// OnHttpRequestHeaders runs the request stages and either forwards or replies.
func (h *httpContext) OnHttpRequestHeaders(_ int, endOfStream bool) (action types.Action) {
	defer h.recoverPanic(&action)
	p := h.plugin
	p.metrics.requests.Inc()
	h.requestID = header("x-request-id")
	req := Request{
		Method:        header(":method"),
		Path:          header(":path"),
		Authorization: header("authorization"),
		ContentType:   header("content-type"),
		HasBody:       !endOfStream,
	}
	h.method, h.path = req.Method, pathForLog(req.Path)
	dec := p.decide(req, p.now())
	if dec.Rule != nil {
		h.rule, h.cachePolicy = dec.Rule.Name, dec.Rule.Cache
	}
	h.tenant = dec.Tenant
	if dec.RateLimit != nil {
		p.metrics.rateLimited(dec.RateLimit)
		if p.blocklist != nil {
			p.metrics.fleetBlocklisted.Inc() // fleet mode decides locally only from the blocklist
		}
	}
	switch {
	case dec.Reject != nil:
		return h.reply(dec.Reject)
	case dec.Health:
		return h.answerHealth()
	}
	for _, name := range dec.Forward.Remove {
		_ = proxywasm.RemoveHttpRequestHeader(name)
	}
	for _, kv := range dec.Forward.Set {
		if err := proxywasm.ReplaceHttpRequestHeader(kv[0], kv[1]); err != nil {
			return h.reply(internalError("cannot set identity header"))
		}
	}
	if len(dec.Forward.Set) > 0 {
		p.metrics.verified.Inc()
	}
	if dec.Fleet != nil {
		return h.callFleet(dec.Fleet)
	}
	return h.proceed(dec.RateHeaders)
}

// forward lets the request go on to the upstream.
func (h *httpContext) forward() types.Action {
	h.plugin.metrics.forwarded.Inc()
	h.stage = stageForwarded
	return types.ActionContinue
}

// OnHttpStreamDone marks the stream gone, so that a callout answering
// after the client left does nothing, and drops an unfinished cache fill.
func (h *httpContext) OnHttpStreamDone() {
	h.stage = stageDone
	if h.cache.fill != nil {
		h.abandonFill()
	}
}

func (h *httpContext) answerHealth() types.Action {
	p := h.plugin
	if !p.cfg.HealthAllow.Allows(host.Property("source", "address")) {
		return h.reply(&Rejection{Kind: httperr.Forbidden, Message: "health endpoint not allowed from this address", Reason: "health_forbidden"})
	}
	p.metrics.health.Inc()
	report := health.NewReport(host.Property("xds", "node", "id"), host.Property("xds", "node", "locality", "region"), Version, p.now())
	h.stage = stageReplied
	if err := proxywasm.SendHttpResponse(200, jsonReplyHeaders, report.JSON(), -1); err != nil {
		host.Log(host.Error, "portcullis: cannot send health response: "+err.Error())
	}
	return types.ActionPause
}

// jsonReplyHeaders go on every answer the plugin makes itself; never append
// to it in place.
var jsonReplyHeaders = [][2]string{{"content-type", httperr.ContentType}, {"cache-control", "no-store"}}

// reply answers the request locally with the JSON error envelope and logs one
// structured line. It returns Pause: after a local reply the stream must not continue.
func (h *httpContext) reply(rej *Rejection) types.Action {
	h.stage = stageReplied
	h.plugin.metrics.reject(rej.Reason)
	headers := append(jsonReplyHeaders[:len(jsonReplyHeaders):len(jsonReplyHeaders)], rej.Headers...)
	body := httperr.Body(rej.Kind, rej.Message, h.requestID)
	if rej.Kind == httperr.TooManyRequests {
		body = httperr.BodyRetryAfter(rej.Kind, rej.Message, int(rej.RetryAfter), h.requestID)
	}
	if err := proxywasm.SendHttpResponse(uint32(rej.Kind.Status), headers, body, -1); err != nil {
		host.Log(host.Error, "portcullis: cannot send local reply: "+err.Error())
	}
	h.logError(rej.Kind, rej.Reason)
	return types.ActionPause
}

func (h *httpContext) logError(kind httperr.Kind, reason string) {
	level := host.Info
	if kind.Status >= 500 {
		level = host.Warn
	}
	host.Log(level, errorLogLine(errorLog{
		Status: kind.Status, Error: kind.Code, Reason: reason,
		RequestID: h.requestID, Method: h.method, Path: h.path, Route: h.rule,
	}))
}

// recoverPanic turns a panic in a callback into a 500 (when the request can
// still be answered) instead of letting it kill the VM.
func (h *httpContext) recoverPanic(action *types.Action) {
	rec := recover()
	if rec == nil {
		return
	}
	host.Log(host.Error, fmt.Sprintf("portcullis: recovered from panic (request_id %q): %v", h.requestID, rec))
	if h.stage == stageReceived || h.stage == stageAwaiting {
		*action = h.reply(internalError("internal error"))
		return
	}
	*action = types.ActionContinue
}

func internalError(message string) *Rejection {
	return &Rejection{Kind: httperr.Internal, Message: message, Reason: "internal_error"}
}

// header returns a request header, or "" when absent.
func header(name string) string {
	v, err := proxywasm.GetHttpRequestHeader(name)
	if err != nil {
		return ""
	}
	return v
}
