package plugin

import (
	"strconv"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/portcullis/portcullis/filter/cache"
	"github.com/portcullis/portcullis/filter/gateway"
	"github.com/portcullis/portcullis/filter/health"
	"github.com/portcullis/portcullis/filter/host"
	"github.com/portcullis/portcullis/filter/httperr"
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
	at        int64 // when the request headers arrived, Unix nanoseconds
	// request is the request as it was decided on: its headers (after the
	// identity edits, once they are made) are what the cache reads.
	request gateway.Request
	method  string
	path    string // without query, for logs
	rule    string
	// routeCounters are the matched rule's counters (nil: no rule matched).
	routeCounters *routeCounters
	// access is what the access log shows of the request (publishAccess).
	access gateway.Access
	// upstreamFailure is the Envoy-made upstream failure being rewritten.
	upstreamFailure gateway.UpstreamFailure
	// rateHeaders go on the response of a forwarded, rate-limited request.
	rateHeaders [][2]string
	// costReport charges what the response's cost header reports (rules
	// with a cost_header); nil otherwise.
	costReport *gateway.CostReport
	// edits are the identity header changes, made on the proxy's request
	// when it is forwarded: a request answered from the cache never pays
	// their host calls.
	edits gateway.Edits
	// tenant is the verified key ("" on public routes); cachePolicy the
	// matched rule's cache policy; cache the stream's cache work.
	tenant      string
	cachePolicy *cache.RoutePolicy
	cache       cacheState
}

// OnHttpRequestHeaders decides the request and carries the decision out.
func (h *httpContext) OnHttpRequestHeaders(_ int, endOfStream bool) (action types.Action) {
	defer h.recoverPanic(&action)
	p := h.plugin
	p.metrics.requests.Inc()
	headers, err := proxywasm.GetHttpRequestHeaders()
	if err != nil {
		return h.reply(gateway.InternalError("cannot read the request headers"))
	}
	h.request = gateway.NewRequest(headers, endOfStream)
	req := &h.request
	h.requestID, h.method, h.path = req.ID, req.Method, gateway.PathForLog(req.Path)
	now := clockNow()
	h.at = now.UnixNano()
	dec := p.gw.Decide(*req, now)
	if dec.Rule != nil {
		h.rule, h.cachePolicy = dec.Rule.Name, dec.Rule.Cache
		h.routeCounters = &p.metrics.routes[dec.Rule.Index]
		h.routeCounters.requests.Inc()
	}
	h.access = gateway.Access{Route: h.rule, Key: dec.Tenant, JWT: dec.JWTOutcome(), JWTShadow: dec.ShadowJWT != nil}
	if h.tenant = dec.Tenant; h.tenant != "" {
		p.metrics.verified.Inc()
	}
	switch dec.TokenCache {
	case gateway.TokenCacheHit:
		p.metrics.tokenCacheHit.Inc()
	case gateway.TokenCacheMiss:
		p.metrics.tokenCacheMiss.Inc()
	case gateway.TokenCacheRefused:
		p.metrics.tokenCacheRefused.Inc()
	}
	if rej := dec.ShadowJWT; rej != nil {
		p.metrics.jwtShadowRefused.Inc()
		h.logError(rej.Kind, rej.Reason.Metric(), true)
	}
	return h.apply(dec)
}

// apply carries out a decision: the first one, or the one on the ratelimit
// service's answer.
func (h *httpContext) apply(dec gateway.Decision) types.Action {
	if dec.Rate != nil {
		h.plugin.metrics.rateLimited(dec.Rate)
		h.access.Rate = dec.Rate
	}
	if dec.CostReport != nil {
		h.costReport = dec.CostReport
	}
	switch dec.Kind {
	case gateway.Reject:
		return h.reply(dec.Reject)
	case gateway.Health:
		return h.answerHealth()
	case gateway.Purge:
		return h.purge()
	}
	// A decision on a fleet answer has no edits: the first decision's stay.
	if len(dec.Edits.Remove)+len(dec.Edits.Set) > 0 {
		h.edits = dec.Edits
		if h.plugin.cfg.Cache != nil {
			// The cache keys and varies on the request as it goes upstream.
			h.request.Headers = dec.Edits.Apply(h.request.Headers)
		}
	}
	if dec.Kind == gateway.AskFleet {
		return h.callFleet(dec.Fleet)
	}
	if dec.Rate != nil {
		h.rateHeaders = dec.Rate.Headers
	}
	return h.proceed()
}

// proceed runs the stages after rate limiting: the cache, then forwarding.
func (h *httpContext) proceed() types.Action {
	if h.plugin.cfg.Cache == nil {
		return h.forward()
	}
	return h.cacheRequest()
}

// forward makes the identity edits on the proxy's request and lets it go on
// to the upstream. Envoy keeps a paused request's headers writable, so this
// works from a callout's answer and from the tick as well.
func (h *httpContext) forward() types.Action {
	edits := h.edits
	h.edits = gateway.Edits{}
	for _, name := range edits.Remove {
		_ = proxywasm.RemoveHttpRequestHeader(name)
	}
	for _, kv := range edits.Set {
		if err := proxywasm.ReplaceHttpRequestHeader(kv[0], kv[1]); err != nil {
			return h.reply(gateway.InternalError("cannot set identity header"))
		}
	}
	h.plugin.metrics.forwarded.Inc()
	h.stage = stageForwarded
	return types.ActionContinue
}

// OnHttpStreamDone marks the stream gone, so that a callout answering
// after the client left does nothing, and drops an unfinished cache fill,
// or the fill lock of one whose response never came.
func (h *httpContext) OnHttpStreamDone() {
	h.stage = stageDone
	if h.cache.fill != nil {
		h.abandonFill()
	}
	h.releaseFillLock()
}

func (h *httpContext) answerHealth() types.Action {
	p := h.plugin
	if !p.cfg.HealthAllow.Allows(host.Property("source", "address")) {
		return h.reply(&gateway.Rejection{Kind: httperr.Forbidden, Message: "health endpoint not allowed from this address", Reason: gateway.ReasonHealthForbidden})
	}
	p.metrics.health.Inc()
	h.access.Reply = "health"
	h.publishAccess()
	report := health.NewReport(host.Property("xds", "node", "id"), host.Property("xds", "node", "locality", "region"), Version, time.Unix(0, h.at))
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
func (h *httpContext) reply(rej *gateway.Rejection) types.Action {
	h.stage = stageReplied
	h.plugin.metrics.reject(rej.Reason)
	if rej.Reason == gateway.ReasonRateLimited && h.routeCounters != nil {
		h.routeCounters.rateLimited.Inc()
	}
	h.access.Reply = rej.Reason.Metric()
	h.publishAccess()
	headers := append(jsonReplyHeaders[:len(jsonReplyHeaders):len(jsonReplyHeaders)], rej.Headers...)
	body := httperr.Body(rej.Kind, rej.Message, h.requestID)
	if rej.Kind == httperr.TooManyRequests {
		body = httperr.BodyRetryAfter(rej.Kind, rej.Message, int(rej.RetryAfter), rej.Policy, h.requestID)
	}
	if err := proxywasm.SendHttpResponse(uint32(rej.Kind.Status), headers, body, -1); err != nil {
		host.Log(host.Error, "portcullis: cannot send local reply: "+err.Error())
	}
	h.logError(rej.Kind, rej.Reason.Metric(), false)
	return types.ActionPause
}

// accessPath is the property the access record is published as.
var accessPath = []string{gateway.AccessProperty}

// publishAccess hands the request's decisions to Envoy's access log (filter
// state wasm.portcullis). It is called once, when the answer is known and
// before the stream ends: Envoy writes its access log before it calls the
// plugin's own end-of-stream callback.
func (h *httpContext) publishAccess() {
	p := h.plugin
	p.accessBuf = h.access.AppendJSON(p.accessBuf)
	if err := proxywasm.SetProperty(accessPath, p.accessBuf); err != nil {
		host.Log(host.Debug, "portcullis: cannot publish the access record: "+err.Error())
	}
}

// logError writes the error's log line, unless its reason has had its
// lines for this second (then it is counted and reported later). shadow
// marks a refusal that was not enforced (the request went on).
func (h *httpContext) logError(kind httperr.Kind, reason string, shadow bool) {
	ok, suppressed := h.plugin.logs.Admit(reason, time.Unix(0, h.at))
	if suppressed > 0 {
		host.Log(host.Info, gateway.SuppressedLine(reason, suppressed))
	}
	if !ok {
		return
	}
	level := host.Info
	if kind.Status >= 500 {
		level = host.Warn
	}
	host.Log(level, gateway.ErrorLog{
		Status: kind.Status, Error: kind.Code, Reason: reason,
		RequestID: h.requestID, Method: h.method, Path: h.path, Route: h.rule, Shadow: shadow,
	}.Line())
}

// panicText is a recovered value as text; Go's own panics are runtime.Error
// values, the plugin's are strings or errors.
func panicText(rec any) string {
	switch v := rec.(type) {
	case string:
		return v
	case error:
		return v.Error()
	}
	return "a panic value that is neither a string nor an error"
}

// recoverPanic turns a panic in a callback into a 500 (when the request can
// still be answered) instead of letting it kill the VM.
func (h *httpContext) recoverPanic(action *types.Action) {
	rec := recover()
	if rec == nil {
		return
	}
	host.Log(host.Error, "portcullis: recovered from panic (request_id "+strconv.Quote(h.requestID)+"): "+panicText(rec))
	if h.stage == stageReceived || h.stage == stageAwaiting {
		*action = h.reply(gateway.InternalError("internal error"))
		return
	}
	*action = types.ActionContinue
}
