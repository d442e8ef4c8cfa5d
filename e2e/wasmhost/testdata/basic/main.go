// Command basic is a test plugin for e2e/wasmhost: each path exercises one
// part of the host (see wasmhost_test.go). Built by the tests with
// GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared.
package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() { proxywasm.SetVMContext(&vm{}) }

type vm struct{ types.DefaultVMContext }

func (*vm) NewPluginContext(uint32) types.PluginContext { return &plugin{} }

type plugin struct {
	types.DefaultPluginContext
	requests, retries, ticks, done proxywasm.MetricCounter
	gauge                          proxywasm.MetricGauge
	pathLen                        proxywasm.MetricHistogram
}

const counterKey = "basic.counter"

func (p *plugin) OnPluginStart(int) types.OnPluginStartStatus {
	raw, err := proxywasm.GetPluginConfiguration()
	if err != nil && !errors.Is(err, types.ErrorStatusNotFound) {
		proxywasm.LogCriticalf("basic: cannot read configuration: %v", err)
		return types.OnPluginStartStatusFailed
	}
	cfg := string(raw)
	if strings.Contains(cfg, "refuse") {
		proxywasm.LogCritical("basic: invalid plugin configuration: refuse: asked to refuse")
		return types.OnPluginStartStatusFailed
	}
	p.requests = proxywasm.DefineCounterMetric("basic.requests")
	p.retries = proxywasm.DefineCounterMetric("basic.cas_retries")
	p.ticks = proxywasm.DefineCounterMetric("basic.ticks")
	p.done = proxywasm.DefineCounterMetric("basic.done")
	p.gauge = proxywasm.DefineGaugeMetric("basic.gauge")
	p.pathLen = proxywasm.DefineHistogramMetric("basic.path_len")
	p.gauge.Add(5)
	p.gauge.Add(-2)
	if _, _, err := proxywasm.GetSharedData(counterKey); errors.Is(err, types.ErrorStatusNotFound) {
		_ = proxywasm.SetSharedData(counterKey, []byte("0"), 0)
	}
	if strings.Contains(cfg, "tick") {
		_ = proxywasm.SetTickPeriodMilliSeconds(10)
	}
	proxywasm.LogInfof("basic: started with %q", cfg)
	return types.OnPluginStartStatusOK
}

func (p *plugin) OnTick() { p.ticks.Increment(1) }

func (p *plugin) NewHttpContext(id uint32) types.HttpContext { return &httpContext{plugin: p, id: id} }

type httpContext struct {
	types.DefaultHttpContext
	plugin *plugin
	id     uint32
	path   string
}

func local(status uint32, body string, hdr ...[2]string) types.Action {
	if err := proxywasm.SendHttpResponse(status, hdr, []byte(body), -1); err != nil {
		proxywasm.LogErrorf("basic: local reply: %v", err)
	}
	return types.ActionPause
}

func prop(path ...string) string {
	v, err := proxywasm.GetProperty(path)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(v)
}

func header(name string) string {
	v, _ := proxywasm.GetHttpRequestHeader(name)
	return v
}

func (h *httpContext) OnHttpRequestHeaders(_ int, _ bool) types.Action {
	h.plugin.requests.Increment(1)
	h.path = header(":path")
	h.plugin.pathLen.Record(uint64(len(h.path)))
	proxywasm.LogInfof("basic: request %s", h.path)
	switch h.path {
	case "/local":
		return local(418, "local reply", [2]string{"x-local", "yes"})
	case "/env":
		return local(200, os.Getenv("TEST_ENV"))
	case "/props":
		var b strings.Builder
		for _, p := range [][]string{
			{"xds", "node", "id"}, {"xds", "node", "locality", "region"}, {"source", "address"},
			{"request", "id"}, {"route_name"}, {"plugin_name"},
		} {
			b.WriteString(strings.Join(p, ".") + "=" + prop(p...) + "\n")
		}
		b.WriteString("x-request-id=" + header("x-request-id") + "\n")
		return local(200, b.String())
	case "/incr":
		return h.increment()
	case "/panic":
		var crash []int
		crash[len(crash)+1]++ // an unrecovered Go panic: the VM exits
	case "/callout", "/callout-local":
		return h.callout()
	case "/bad-action":
		return types.Action(7) // no proxy-wasm action: the host must fail this request only
	case "/trailers":
		return types.ActionContinue // leave the headers alone: only trailers are mutated
	case "/add-trailers":
		// Too early: as in Envoy, a request has no trailer map before its
		// trailers or the end of its body.
		err := proxywasm.AddHttpRequestTrailer("x-early", "1")
		_ = proxywasm.AddHttpRequestHeader("x-early-trailer-add", fmt.Sprint(err))
		return types.ActionContinue
	case "/badcluster":
		_, err := proxywasm.DispatchHttpCall("nope", [][2]string{{":method", "GET"}, {":path", "/"}, {":authority", "x"}}, nil, nil, 1000,
			func(int, int, int) {})
		return local(500, "dispatch: "+err.Error())
	}
	_ = proxywasm.AddHttpRequestHeader("x-added", "1")
	_ = proxywasm.RemoveHttpRequestHeader("x-remove")
	_ = proxywasm.ReplaceHttpRequestHeader("x-replace", "new")
	if h.path == "/rewrite" {
		_ = proxywasm.ReplaceHttpRequestHeader(":path", "/rewritten")
	}
	return types.ActionContinue
}

// increment adds one to the shared counter with a bounded CAS loop.
func (h *httpContext) increment() types.Action {
	for range 10000 {
		v, cas, err := proxywasm.GetSharedData(counterKey)
		if err != nil {
			return local(500, "get: "+err.Error())
		}
		n, _ := strconv.Atoi(string(v))
		err = proxywasm.SetSharedData(counterKey, []byte(strconv.Itoa(n+1)), cas)
		if err == nil {
			return local(200, strconv.Itoa(n+1))
		}
		if !errors.Is(err, types.ErrorStatusCasMismatch) {
			return local(500, "set: "+err.Error())
		}
		h.plugin.retries.Increment(1)
	}
	return local(503, "cas: gave up")
}

func (h *httpContext) callout() types.Action {
	path := header("x-callout-path")
	if path == "" {
		path = "/callout-target"
	}
	timeout := uint64(5000)
	if t := header("x-callout-timeout"); t != "" {
		timeout, _ = strconv.ParseUint(t, 10, 32)
	}
	asLocal := h.path == "/callout-local"
	_, err := proxywasm.DispatchHttpCall("svc",
		[][2]string{{":method", "GET"}, {":path", path}, {":authority", "svc.local"}, {"x-from", "basic"}},
		nil, nil, uint32(timeout), func(numHeaders, bodySize, _ int) {
			if numHeaders == 0 {
				local(502, "callout failed")
				return
			}
			var status string
			hdr, _ := proxywasm.GetHttpCallResponseHeaders()
			for _, kv := range hdr {
				if kv[0] == ":status" {
					status = kv[1]
				}
			}
			body, _ := proxywasm.GetHttpCallResponseBody(0, bodySize)
			if asLocal {
				local(200, "callout "+status+": "+string(body))
				return
			}
			_ = proxywasm.AddHttpRequestHeader("x-callout-status", status)
			_ = proxywasm.AddHttpRequestHeader("x-callout-body", strings.TrimSpace(string(body)))
			_ = proxywasm.ResumeHttpRequest()
		})
	if err != nil {
		return local(500, "dispatch: "+err.Error())
	}
	return types.ActionPause
}

func (h *httpContext) OnHttpRequestBody(size int, eos bool) types.Action {
	switch h.path {
	case "/trailers":
		if !eos {
			return types.ActionPause // buffer the body until the trailers
		}
		return types.ActionContinue
	case "/bad-action-body":
		return types.Action(4) // a headers action, but no body action
	case "/add-trailers":
		if eos { // the end of a request without trailers: the plugin may add some
			_ = proxywasm.AddHttpRequestTrailer("x-body-added-req", "basic")
		}
		return types.ActionContinue
	case "/upper":
	default:
		return types.ActionContinue
	}
	if !eos {
		return types.ActionPause
	}
	b, err := proxywasm.GetHttpRequestBody(0, size)
	if err != nil {
		return local(500, "body: "+err.Error())
	}
	_ = proxywasm.ReplaceHttpRequestBody([]byte(strings.ToUpper(string(b))))
	return types.ActionContinue
}

// OnHttpRequestTrailers, on /trailers, reads the trailer map whole and by
// key and changes it: x-req-trailer replaced, x-drop-trailer removed,
// x-added-req-trailer added, x-seen-req-trailers the count it saw.
func (h *httpContext) OnHttpRequestTrailers(n int) types.Action {
	if h.path != "/trailers" {
		return types.ActionContinue
	}
	pairs, err := proxywasm.GetHttpRequestTrailers()
	if err != nil {
		proxywasm.LogErrorf("basic: request trailers: %v", err)
	}
	old, _ := proxywasm.GetHttpRequestTrailer("x-req-trailer")
	_ = proxywasm.ReplaceHttpRequestTrailer("x-req-trailer", "replaced:"+old)
	_ = proxywasm.RemoveHttpRequestTrailer("x-drop-trailer")
	_ = proxywasm.AddHttpRequestTrailer("x-added-req-trailer", "basic")
	_ = proxywasm.AddHttpRequestTrailer("x-seen-req-trailers", strconv.Itoa(len(pairs))+"/"+strconv.Itoa(n))
	return types.ActionContinue
}

// OnHttpResponseTrailers does the same to the response trailers on /trailers.
func (h *httpContext) OnHttpResponseTrailers(n int) types.Action {
	if h.path != "/trailers" {
		return types.ActionContinue
	}
	pairs, err := proxywasm.GetHttpResponseTrailers()
	if err != nil {
		proxywasm.LogErrorf("basic: response trailers: %v", err)
	}
	old, _ := proxywasm.GetHttpResponseTrailer("x-up-trailer")
	_ = proxywasm.ReplaceHttpResponseTrailer("x-up-trailer", "replaced:"+old)
	_ = proxywasm.RemoveHttpResponseTrailer("x-drop-trailer")
	_ = proxywasm.AddHttpResponseTrailer("x-added-resp-trailer", "basic")
	_ = proxywasm.AddHttpResponseTrailer("x-seen-resp-trailers", strconv.Itoa(len(pairs))+"/"+strconv.Itoa(n))
	return types.ActionContinue
}

func (h *httpContext) OnHttpResponseHeaders(int, bool) types.Action {
	if h.path == "/bad-action-response" {
		return types.Action(9)
	}
	_ = proxywasm.AddHttpResponseHeader("x-resp", "basic")
	_ = proxywasm.AddHttpResponseHeader("x-code-details", prop("response", "code_details"))
	if h.path == "/replace-body" {
		_ = proxywasm.RemoveHttpResponseHeader("content-length")
	}
	return types.ActionContinue
}

func (h *httpContext) OnHttpResponseBody(_ int, eos bool) types.Action {
	if h.path == "/trailers" && !eos {
		return types.ActionPause // buffer the body until the trailers
	}
	if h.path == "/add-trailers" && eos {
		_ = proxywasm.AddHttpResponseTrailer("x-body-added-resp", "basic")
	}
	if h.path != "/replace-body" {
		return types.ActionContinue
	}
	if !eos {
		return types.ActionPause
	}
	_ = proxywasm.ReplaceHttpResponseBody([]byte("replaced"))
	return types.ActionContinue
}

func (h *httpContext) OnHttpStreamDone() { h.plugin.done.Increment(1) }
