package plugin

import (
	"strconv"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/portcullis/portcullis/filter/host"
)

// answer is what a callout brought back. status is 0 when nothing arrived:
// timeout, reset, no healthy host, or a cluster Envoy does not know.
type answer struct {
	status  int
	headers [][2]string
	body    []byte
	// trailers is how many trailers came with it; they are read only when
	// asked (grpcStatus), which costs a host call.
	trailers int
}

// header returns the answer's header name (lower case), or "".
func (a answer) header(name string) string {
	for _, kv := range a.headers {
		if kv[0] == name {
			return kv[1]
		}
	}
	return ""
}

// grpcStatus returns the answer's grpc-status: in the headers of a
// trailers-only answer, else in the trailers. It reads the trailers, so it
// may only be called while the answer is handled (in call's then).
func (a answer) grpcStatus() string {
	if s := a.header("grpc-status"); s != "" || a.trailers == 0 {
		return s
	}
	trailers, err := proxywasm.GetHttpCallResponseTrailers()
	if err != nil {
		return ""
	}
	return answer{headers: trailers}.header("grpc-status")
}

// call makes a callout for the paused request and hands the answer to then,
// whose action decides the request: Continue resumes it, Pause leaves it
// paused (then made another call, or replied). A call that cannot be made
// is answered at once with status 0. At most maxBody bytes of the answer's
// body are read.
func (h *httpContext) call(what, cluster string, headers [][2]string, body []byte, timeout time.Duration, maxBody int, then func(answer) types.Action) types.Action {
	h.stage = stageAwaiting
	_, err := proxywasm.DispatchHttpCall(cluster, headers, body, nil, uint32(timeout/time.Millisecond), func(numHeaders, bodySize, numTrailers int) {
		var action types.Action
		defer h.recoverPanic(&action)
		// A call made from the tick (a request that waited for a cache fill)
		// belongs to the root context, so its answer arrives there: make the
		// stream effective again. It fails when the stream is gone.
		if h.stage != stageAwaiting || proxywasm.SetEffectiveContext(h.id) != nil {
			return // the client left, or the stream was answered meanwhile
		}
		a := readAnswer(numHeaders, bodySize, maxBody)
		a.trailers = numTrailers
		if then(a) != types.ActionContinue {
			return
		}
		if err := proxywasm.ResumeHttpRequest(); err != nil {
			host.Log(host.Warn, "portcullis: cannot resume the request after the "+what+" answered: "+err.Error())
		}
	})
	if err != nil {
		host.Log(host.Warn, "portcullis: cannot call the "+what+" (cluster "+cluster+"): "+err.Error())
		return then(answer{})
	}
	return types.ActionPause
}

// readAnswer reads the callout answer being handled.
func readAnswer(numHeaders, bodySize, maxBody int) answer {
	var a answer
	if numHeaders == 0 {
		return a
	}
	headers, err := proxywasm.GetHttpCallResponseHeaders()
	if err != nil {
		return a
	}
	a.headers = headers
	if n, err := strconv.Atoi(a.header(":status")); err == nil {
		a.status = n
	}
	if bodySize > 0 {
		a.body, _ = proxywasm.GetHttpCallResponseBody(0, min(bodySize, maxBody))
	}
	return a
}
