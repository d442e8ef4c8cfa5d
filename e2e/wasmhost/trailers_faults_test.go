package wasmhost_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/e2e/wasmhost"
)

// TestTrailersBothWays sends request trailers through the plugin to the
// upstream and the upstream's (undeclared) response trailers through the
// plugin to the client. On /trailers the plugin buffers each body until the
// trailers, reads each trailer map whole and by key, replaces one trailer,
// removes one and adds two.
func TestTrailersBothWays(t *testing.T) {
	up := startEcho(t)
	_, base := start(t, "basic", wasmhost.Options{Upstream: up})

	req, err := http.NewRequest(http.MethodPost, base+"/trailers", strings.NewReader("trailer body"))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1 // chunked, so trailers can follow the body
	req.Trailer = http.Header{"X-Req-Trailer": {"client"}, "X-Drop-Trailer": {"drop"}}
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the body: %v", err)
	}
	r := result{resp.StatusCode, resp.Header, string(body)}
	e := decodeEcho(t, r)

	if e.Body != "trailer body" {
		t.Errorf("upstream body %q: the body the plugin buffered until the trailers was lost", e.Body)
	}
	wantReq := map[string]string{
		"x-req-trailer":       "replaced:client",
		"x-added-req-trailer": "basic",
		"x-seen-req-trailers": "2/2", // pairs read / the count proxy_on_request_trailers got
	}
	for k, want := range wantReq {
		if got := e.Trailers[k]; got != want {
			t.Errorf("upstream trailer %s = %q, want %q (all: %v)", k, got, want, e.Trailers)
		}
	}
	if _, ok := e.Trailers["x-drop-trailer"]; ok {
		t.Errorf("the request trailer the plugin removed reached the upstream: %v", e.Trailers)
	}
	if _, ok := e.Headers["x-req-trailer"]; ok {
		t.Errorf("a request trailer reached the upstream as a header: %v", e.Headers)
	}

	wantResp := map[string]string{
		"X-Up-Trailer":         "replaced:up",
		"X-Added-Resp-Trailer": "basic",
		"X-Seen-Resp-Trailers": "2/2",
	}
	for k, want := range wantResp {
		if got := resp.Trailer.Get(k); got != want {
			t.Errorf("client trailer %s = %q, want %q (all: %v)", k, got, want, resp.Trailer)
		}
	}
	if v := resp.Trailer.Get("X-Drop-Trailer"); v != "" {
		t.Errorf("the response trailer the plugin removed reached the client: %v", resp.Trailer)
	}
	if resp.Header.Get("X-Up-Trailer") != "" || resp.Header.Get("X-Resp") != "basic" {
		t.Errorf("response headers %v: want the plugin's x-resp and no trailer among them", resp.Header)
	}

	// Trailers after an empty body still reach the upstream.
	// (http.NewRequest would make an empty strings.Reader http.NoBody, which
	// Go's client sends without a body, hence without trailers.)
	req, _ = http.NewRequest(http.MethodPost, base+"/trailers", io.NopCloser(strings.NewReader("")))
	req.ContentLength = -1
	req.Trailer = http.Header{"X-Req-Trailer": {"empty"}}
	resp, err = testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if e := decodeEcho(t, readResult(t, resp)); e.Trailers["x-req-trailer"] != "replaced:empty" || e.Body != "" {
		t.Errorf("trailers after an empty body: upstream got body %q, trailers %v", e.Body, e.Trailers)
	}

	// Without request trailers the request trailer callback does not run,
	// and the response trailers still go through the plugin.
	req, _ = http.NewRequest(http.MethodGet, base+"/trailers", nil)
	resp, err = testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	e = decodeEcho(t, readResult(t, resp))
	if len(e.Trailers) != 0 {
		t.Errorf("a request without trailers reached the upstream with trailers %v", e.Trailers)
	}
	if got := resp.Trailer.Get("X-Up-Trailer"); got != "replaced:up" {
		t.Errorf("client trailer X-Up-Trailer = %q, want replaced:up", got)
	}
}

// TestTrailersAddedAtTheEnd: a stream without trailers has no trailer map
// until the body callback that ends it, which may add trailers (Envoy's
// addDecodedTrailers / addEncodedTrailers); they reach the upstream and the
// client.
func TestTrailersAddedAtTheEnd(t *testing.T) {
	up := startEcho(t)
	_, base := start(t, "basic", wasmhost.Options{Upstream: up})
	resp, err := testClient.Post(base+"/add-trailers", "text/plain", strings.NewReader("body"))
	if err != nil {
		t.Fatal(err)
	}
	e := decodeEcho(t, readResult(t, resp))
	if e.Body != "body" || e.Trailers["x-body-added-req"] != "basic" {
		t.Errorf("upstream got body %q, trailers %v: want the trailer the plugin added at the end of the body", e.Body, e.Trailers)
	}
	if _, ok := e.Trailers["x-early"]; ok || !strings.HasSuffix(e.Headers["x-early-trailer-add"], "bad argument") {
		t.Errorf("adding a request trailer in proxy_on_request_headers: %q, trailers %v; want BadArgument, as Envoy",
			e.Headers["x-early-trailer-add"], e.Trailers)
	}
	if got := resp.Trailer.Get("X-Body-Added-Resp"); got != "basic" {
		t.Errorf("client trailers %v: want the X-Body-Added-Resp the plugin added at the end of the body", resp.Trailer)
	}
}

// readResult reads and closes resp.
func readResult(t testing.TB, resp *http.Response) result {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the body: %v", err)
	}
	return result{resp.StatusCode, resp.Header, string(b)}
}

// TestCalloutLatencyFault delays the callouts to a cluster: a delay shorter
// than the plugin's callout timeout only slows the answer; a longer one ends
// in the timeout path, which the plugin sees (no headers) and answers,
// without waiting for the delay.
func TestCalloutLatencyFault(t *testing.T) {
	svc := startEcho(t)
	h, base := start(t, "basic", wasmhost.Options{Clusters: map[string]string{"svc": svc}})

	const delay = 150 * time.Millisecond
	h.SetFault("svc", wasmhost.Fault{Delay: delay})
	began := time.Now()
	r := get(t, base+"/callout-local", "X-Callout-Timeout", "5000")
	if took := time.Since(began); took < delay {
		t.Errorf("a callout delayed %s answered in %s", delay, took)
	}
	if r.status != http.StatusOK || !strings.HasPrefix(r.body, "callout 200: ") {
		t.Errorf("a delay shorter than the timeout: %d %q, want the callout's answer", r.status, r.body)
	}

	h.SetFault("svc", wasmhost.Fault{Delay: 10 * time.Second})
	began = time.Now()
	r = get(t, base+"/callout-local", "X-Callout-Timeout", "100")
	took := time.Since(began)
	if r.status != http.StatusBadGateway || r.body != "callout failed" {
		t.Errorf("a delay longer than the timeout: %d %q, want the plugin's 502 \"callout failed\"", r.status, r.body)
	}
	if took < 100*time.Millisecond || took > 3*time.Second {
		t.Errorf("the 100ms callout timeout under a 10s delay answered after %s", took)
	}
	if !strings.Contains(h.HostLogs(), "timed out after 100ms") {
		t.Errorf("host logs do not report the timeout:\n%s", h.HostLogs())
	}
	// The stream ended (proxy_on_log ran) for both requests: none is left hanging.
	eventually(t, "both streams to end", func() bool { n, _ := h.Metric("basic.done"); return n == 2 })
}

// TestInvalidActionFailsTheRequestOnly: a callback returning a value that is
// no action of its kind fails that request with FailStatus and is recorded,
// naming the callback and the value; the VM is not replaced and serves on,
// even under FailClosed.
func TestInvalidActionFailsTheRequestOnly(t *testing.T) {
	h, base := start(t, "basic", wasmhost.Options{Workers: 1})
	cases := []struct {
		method, path, body, callback string
		action                       uint64
	}{
		{http.MethodGet, "/bad-action", "", "proxy_on_request_headers", 7},
		{http.MethodPost, "/bad-action-body", "x", "proxy_on_request_body", 4}, // a headers action, no body action
		{http.MethodGet, "/bad-action-response", "", "proxy_on_response_headers", 9},
	}
	for i, c := range cases {
		r := do(t, c.method, base+c.path, c.body)
		if r.status != http.StatusInternalServerError {
			t.Errorf("%s: %d %q, want 500", c.path, r.status, r.body)
		}
		f := h.Failures()
		if len(f) != i+1 {
			t.Fatalf("%s: %d failures recorded, want %d: %v", c.path, len(f), i+1, f)
		}
		var bad *wasmhost.InvalidActionError
		if f[i].Callback != c.callback || !errors.As(f[i].Err, &bad) || bad.Action != c.action {
			t.Errorf("%s: recorded %v, want %s returning %d", c.path, f[i], c.callback, c.action)
		}
		if msg := f[i].Error(); !strings.Contains(msg, c.callback) || !strings.Contains(msg, "returned "+strconv.FormatUint(c.action, 10)) {
			t.Errorf("%s: the error %q does not name the callback and the value", c.path, msg)
		}
		if !strings.Contains(h.HostLogs(), c.callback+" returned "+strconv.FormatUint(c.action, 10)) {
			t.Errorf("%s: host logs lack the failure:\n%s", c.path, h.HostLogs())
		}
	}
	if r := get(t, base+"/local"); r.status != http.StatusTeapot {
		t.Errorf("after invalid actions: %d %q, want the plugin's 418", r.status, r.body)
	}
	if n, _ := h.Metric("basic.gauge"); n != 3 {
		t.Errorf("basic.gauge = %d, want 3: the VM was restarted (its plugin start ran again)", n)
	}
	eventually(t, "proxy_on_log for every request", func() bool { n, _ := h.Metric("basic.done"); return n == 4 })

	h, base = start(t, "basic", wasmhost.Options{FailurePolicy: wasmhost.FailClosed, FailStatus: 503})
	if r := get(t, base+"/bad-action"); r.status != http.StatusServiceUnavailable {
		t.Errorf("FailStatus 503: /bad-action answered %d", r.status)
	}
	if r := get(t, base+"/local"); r.status != http.StatusTeapot {
		t.Errorf("fail closed after an invalid action: %d, want 418 (the VM did not fail)", r.status)
	}
}

// TestAdmin reads /ready and /stats as from Envoy's admin listener.
func TestAdmin(t *testing.T) {
	var admin wasmhost.Admin
	srv := httptest.NewServer(&admin)
	t.Cleanup(srv.Close)
	if r := get(t, srv.URL+"/ready"); r.status != http.StatusServiceUnavailable || r.body != "PRE_INITIALIZING\n" {
		t.Errorf("/ready before the VMs are up: %d %q, want 503 PRE_INITIALIZING", r.status, r.body)
	}

	h, base := start(t, "basic", wasmhost.Options{Workers: 2})
	admin.SetHost(h)
	if r := get(t, srv.URL+"/ready"); r.status != http.StatusOK || r.body != "LIVE\n" {
		t.Errorf("/ready: %d %q, want 200 LIVE", r.status, r.body)
	}
	for range 3 {
		get(t, base+"/local")
	}
	get(t, base+"/props")
	eventually(t, "proxy_on_log for every request", func() bool { n, _ := h.Metric("basic.done"); return n == 4 })

	r := get(t, srv.URL+"/stats")
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("/stats: %d %v", r.status, r.header)
	}
	lines := strings.Split(strings.TrimSuffix(r.body, "\n"), "\n")
	// Envoy's order: counters and gauges by name, then histograms by name.
	if n := len(lines); n == 0 || !strings.HasPrefix(lines[n-1], "wasmcustom.basic.path_len: ") || !slices.IsSorted(lines[:n-1]) {
		t.Errorf("/stats is not in Envoy's order (counters and gauges sorted, then the histogram):\n%s", r.body)
	}
	got := map[string]string{}
	for _, l := range lines {
		name, value, ok := strings.Cut(l, ": ")
		if !ok || !strings.HasPrefix(name, "wasmcustom.") {
			t.Errorf("/stats line %q: want wasmcustom.<metric>: <value>", l)
		}
		got[name] = value
	}
	want := map[string]string{
		"wasmcustom.basic.requests":    "4",
		"wasmcustom.basic.done":        "4",
		"wasmcustom.basic.gauge":       "6", // +3 per VM
		"wasmcustom.basic.cas_retries": "0",
		"wasmcustom.basic.ticks":       "0",
		"wasmcustom.basic.path_len": "P0(nan,6) P25(nan,6) P50(nan,6) P75(nan,6) P90(nan,6) P95(nan,6) " +
			"P99(nan,6) P99.5(nan,6) P99.9(nan,6) P100(nan,6)",
	}
	if len(got) != len(want) {
		t.Errorf("/stats has %d metrics, want %d:\n%s", len(got), len(want), r.body)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("/stats %s = %q, want %q", k, got[k], v)
		}
	}

	// The filter Envoy's users (and the e2e harness) read one stat with.
	if r := get(t, srv.URL+`/stats?filter=^wasmcustom\.basic\.requests$`); r.body != "wasmcustom.basic.requests: 4\n" {
		t.Errorf("/stats?filter: %q", r.body)
	}
	if r := get(t, srv.URL+"/stats?filter=("); r.status != http.StatusBadRequest {
		t.Errorf("/stats with an invalid regex: %d, want 400", r.status)
	}
	if r := get(t, srv.URL+"/nope"); r.status != http.StatusNotFound {
		t.Errorf("/nope: %d, want 404", r.status)
	}
	h.Close()
	if r := get(t, srv.URL+"/ready"); r.status != http.StatusServiceUnavailable || r.body != "DRAINING\n" {
		t.Errorf("/ready after Close: %d %q, want 503 DRAINING", r.status, r.body)
	}
}
