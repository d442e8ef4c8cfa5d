package wasmhost_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/e2e/wasmhost"
)

func TestHeaderMutationAndForwarding(t *testing.T) {
	up := startEcho(t)
	_, base := start(t, "basic", wasmhost.Options{Workers: 2, Upstream: up})

	r := get(t, base+"/hello?q=1", "X-Remove", "gone", "X-Replace", "old", "X-Request-Id", "client-chosen")
	if r.status != http.StatusOK {
		t.Fatalf("status %d, body %q", r.status, r.body)
	}
	e := decodeEcho(t, r)
	if e.Path != "/hello?q=1" {
		t.Errorf("upstream path %q, want /hello?q=1", e.Path)
	}
	for name, want := range map[string]string{"x-added": "1", "x-remove": "", "x-replace": "new", "x-forwarded-proto": "http"} {
		if got := e.Headers[name]; got != want {
			t.Errorf("upstream header %s = %q, want %q", name, got, want)
		}
	}
	id := e.Headers["x-request-id"]
	if id == "" || id == "client-chosen" {
		t.Errorf("upstream x-request-id %q: want a generated id replacing the client's", id)
	}
	if got := r.header.Get("X-Request-Id"); got != id {
		t.Errorf("response x-request-id %q, want the upstream's %q", got, id)
	}
	if r.header.Get("X-Resp") != "basic" || r.header.Get("X-Upstream") != "echo" {
		t.Errorf("response headers %v: want x-resp from the plugin and x-upstream from the upstream", r.header)
	}
	if got := r.header.Get("X-Code-Details"); got != "via_upstream" {
		t.Errorf("response.code_details %q, want via_upstream", got)
	}

	if e := decodeEcho(t, get(t, base+"/rewrite")); e.Path != "/rewritten" {
		t.Errorf("a :path the plugin rewrote reached the upstream as %q", e.Path)
	}
}

func TestStripPrefix(t *testing.T) {
	up := startEcho(t)
	_, base := start(t, "basic", wasmhost.Options{Upstream: up, StripPrefix: "/api"})
	for path, want := range map[string]string{"/api/x/y?z=1": "/x/y?z=1", "/api": "/", "/api?a=b": "/?a=b"} {
		if e := decodeEcho(t, get(t, base+path)); e.Path != want {
			t.Errorf("%s reached the upstream as %q, want %q", path, e.Path, want)
		}
	}
	r := get(t, base+"/apix")
	if r.status != http.StatusNotFound || r.header.Get("X-Code-Details") != "route_not_found" {
		t.Errorf("/apix: %d %v, want 404 route_not_found through the response callbacks", r.status, r.header)
	}
}

func TestRequestAndResponseBody(t *testing.T) {
	up := startEcho(t)
	_, base := start(t, "basic", wasmhost.Options{Upstream: up})
	r := do(t, http.MethodPost, base+"/upper", "hello body", "Content-Type", "text/plain")
	if e := decodeEcho(t, r); e.Body != "HELLO BODY" || e.Method != http.MethodPost {
		t.Errorf("upstream got %s %q, want POST \"HELLO BODY\"", e.Method, e.Body)
	}
	if r := get(t, base+"/replace-body"); r.status != http.StatusOK || r.body != "replaced" {
		t.Errorf("/replace-body: %d %q, want 200 \"replaced\"", r.status, r.body)
	}
}

func TestLocalReply(t *testing.T) {
	h, base := start(t, "basic", wasmhost.Options{}) // no upstream: nothing may be forwarded
	r := get(t, base+"/local")
	if r.status != http.StatusTeapot || r.body != "local reply" {
		t.Fatalf("/local: %d %q, want 418 \"local reply\"", r.status, r.body)
	}
	if r.header.Get("X-Local") != "yes" || r.header.Get("Content-Type") != "text/plain" {
		t.Errorf("local reply headers %v", r.header)
	}
	if r.header.Get("X-Resp") != "basic" {
		t.Errorf("a local reply must pass through the plugin's response callbacks (as in Envoy): headers %v", r.header)
	}
	if r.header.Get("X-Request-Id") == "" {
		t.Errorf("local reply without x-request-id")
	}
	if !strings.Contains(h.PluginLogs(), "info: basic: request /local") {
		t.Errorf("plugin logs lack the request line:\n%s", h.PluginLogs())
	}
}

func TestPropertiesAndEnv(t *testing.T) {
	_, base := start(t, "basic", wasmhost.Options{
		NodeID: "node-7", Region: "eu-west-1", RouteName: "api", PluginName: "basic",
		Env: map[string]string{"TEST_ENV": "from the host"},
	})
	r := get(t, base+"/props")
	lines := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(r.body), "\n") {
		k, v, _ := strings.Cut(l, "=")
		lines[k] = v
	}
	for k, want := range map[string]string{
		"xds.node.id": "node-7", "xds.node.locality.region": "eu-west-1", "route_name": "api", "plugin_name": "basic",
	} {
		if lines[k] != want {
			t.Errorf("property %s = %q, want %q", k, lines[k], want)
		}
	}
	if !strings.HasPrefix(lines["source.address"], "127.0.0.1:") {
		t.Errorf("source.address = %q", lines["source.address"])
	}
	if lines["request.id"] == "" || lines["request.id"] != lines["x-request-id"] {
		t.Errorf("request.id %q must be the x-request-id %q", lines["request.id"], lines["x-request-id"])
	}
	if r := get(t, base+"/env"); r.body != "from the host" {
		t.Errorf("/env: %q, want the VM environment's TEST_ENV", r.body)
	}
}

func TestPluginRefusesConfiguration(t *testing.T) {
	_, err := wasmhost.New(context.Background(), plugins["basic"], wasmhost.Options{PluginConfig: "refuse", Workers: 2})
	var se *wasmhost.StartError
	if !errors.As(err, &se) {
		t.Fatalf("New: %v, want a *StartError", err)
	}
	if !strings.Contains(err.Error(), "proxy_on_configure returned false") ||
		!strings.Contains(err.Error(), "invalid plugin configuration: refuse") {
		t.Errorf("error lacks the refusal and the plugin's reason:\n%v", err)
	}
}

func TestMissingImportFailsAtLoad(t *testing.T) {
	_, err := wasmhost.New(context.Background(), plugins["missing"], wasmhost.Options{})
	if err == nil || !strings.Contains(err.Error(), "env.proxy_no_such_function") {
		t.Fatalf("New: %v, want an error naming env.proxy_no_such_function", err)
	}
	if _, err := wasmhost.New(context.Background(), []byte("\x00asm\x01\x00\x00\x00"), wasmhost.Options{}); err == nil ||
		!strings.Contains(err.Error(), "proxy_abi_version") {
		t.Errorf("an empty module: %v, want an error about the missing ABI version", err)
	}
}

// TestSharedDataCASAcrossVMs drives several VMs concurrently through a CAS
// loop: no increment may be lost.
func TestSharedDataCASAcrossVMs(t *testing.T) {
	const workers, clients, each = 4, 8, 40
	h, base := start(t, "basic", wasmhost.Options{Workers: workers})
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for range each {
				if r := get(t, base+"/incr"); r.status != http.StatusOK {
					t.Errorf("/incr: %d %q", r.status, r.body)
					return
				}
			}
		})
	}
	wg.Wait()
	v, _, ok := h.SharedData().Get("basic.counter")
	if want := strconv.Itoa(clients * each); !ok || string(v) != want {
		t.Errorf("counter = %q, want %d (%d clients × %d increments)", v, clients*each, clients, each)
	}
	retries, _ := h.Metric("basic.cas_retries")
	t.Logf("%d CAS retries across %d VMs", retries, workers)
}

func TestForcedCASContention(t *testing.T) {
	h, base := start(t, "basic", wasmhost.Options{})
	var mu sync.Mutex
	left := 3
	h.SharedData().Contend(func(key string) bool {
		mu.Lock()
		defer mu.Unlock()
		left--
		return key == "basic.counter" && left >= 0
	})
	if r := get(t, base+"/incr"); r.status != http.StatusOK || r.body != "1" {
		t.Fatalf("/incr: %d %q, want 200 \"1\"", r.status, r.body)
	}
	if n, _ := h.Metric("basic.cas_retries"); n != 3 {
		t.Errorf("cas retries = %d, want 3 (one per forced contention)", n)
	}
}

func TestSharedDataSemantics(t *testing.T) {
	h, err := wasmhost.New(context.Background(), plugins["empty"], wasmhost.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	d := h.SharedData()
	if _, _, ok := d.Get("k"); ok {
		t.Fatal("a missing key was found")
	}
	if !d.Set("k", []byte("a"), 12345) {
		t.Fatal("a missing key must accept any cas")
	}
	_, cas1, _ := d.Get("k")
	if !d.Set("k", []byte("b"), cas1) {
		t.Fatal("the current cas was refused")
	}
	_, cas2, _ := d.Get("k")
	if cas2 == cas1 {
		t.Fatal("the cas did not change on a write")
	}
	if d.Set("k", []byte("c"), cas1) {
		t.Fatal("a stale cas was accepted")
	}
	if !d.Set("k", []byte("d"), 0) {
		t.Fatal("cas 0 must always write")
	}
	if v, cas3, _ := d.Get("k"); string(v) != "d" || cas3 == cas2 {
		t.Fatalf("after a cas-0 write: %q cas %d (was %d)", v, cas3, cas2)
	}
}

func TestHTTPCallout(t *testing.T) {
	up := startEcho(t)
	svc := startEcho(t)
	h, base := start(t, "basic", wasmhost.Options{Workers: 2, Upstream: up, Clusters: map[string]string{"svc": svc}})

	e := decodeEcho(t, get(t, base+"/callout"))
	if e.Headers["x-callout-status"] != "200" || !strings.Contains(e.Headers["x-callout-body"], `"host":"svc.local"`) {
		t.Errorf("the paused request resumed without the callout's answer: %v", e.Headers)
	}

	r := get(t, base+"/callout-local", "X-Callout-Path", "/slow?d=20ms")
	if r.status != http.StatusOK || !strings.HasPrefix(r.body, "callout 200: ") || !strings.Contains(r.body, `"x-from":"basic"`) {
		t.Errorf("/callout-local: %d %q", r.status, r.body)
	}

	start := time.Now()
	r = get(t, base+"/callout-local", "X-Callout-Path", "/slow?d=2s", "X-Callout-Timeout", "50")
	if r.status != http.StatusBadGateway || r.body != "callout failed" {
		t.Errorf("timed-out callout: %d %q, want 502 \"callout failed\"", r.status, r.body)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the 50ms callout timeout took %s", d)
	}

	h.SetFault("svc", wasmhost.Fault{Status: 503})
	if r := get(t, base+"/callout-local"); r.body != "callout 503: " {
		t.Errorf("injected status: %q", r.body)
	}
	h.SetFault("svc", wasmhost.Fault{Reset: true})
	if r := get(t, base+"/callout-local"); r.status != http.StatusBadGateway {
		t.Errorf("injected reset: %d %q", r.status, r.body)
	}
	h.SetFault("svc", wasmhost.Fault{})

	if r := get(t, base+"/badcluster"); r.status != 500 || !strings.Contains(r.body, "bad argument") {
		t.Errorf("unknown cluster: %d %q, want the dispatch refused with BadArgument", r.status, r.body)
	}
}

func TestUpstreamFailures(t *testing.T) {
	_, base := start(t, "basic", wasmhost.Options{Upstream: closedURL(t)})
	r := get(t, base+"/down")
	if r.status != http.StatusServiceUnavailable ||
		r.header.Get("X-Code-Details") != "upstream_reset_before_response_started{connection_failure}" {
		t.Errorf("upstream down: %d %v %q", r.status, r.header, r.body)
	}

	up := startEcho(t)
	_, base = start(t, "basic", wasmhost.Options{Upstream: up, UpstreamTimeout: 100 * time.Millisecond})
	r = get(t, base+"/slow?d=2s")
	if r.status != http.StatusGatewayTimeout || r.header.Get("X-Code-Details") != "upstream_response_timeout" {
		t.Errorf("upstream timeout: %d %v %q", r.status, r.header, r.body)
	}
}

func TestPanicAnswers500AndReloads(t *testing.T) {
	h, base := start(t, "basic", wasmhost.Options{})
	if r := get(t, base+"/panic"); r.status != http.StatusInternalServerError {
		t.Fatalf("/panic: %d %q, want 500", r.status, r.body)
	}
	f := h.Failures()
	if len(f) != 1 || f[0].Callback != "proxy_on_request_headers" || !strings.Contains(f[0].Output, "index out of range") {
		t.Fatalf("failures %v, want one in proxy_on_request_headers with the Go panic", f)
	}
	if r := get(t, base+"/local"); r.status != http.StatusTeapot {
		t.Errorf("after a reload: %d %q, want the plugin's 418", r.status, r.body)
	}

	_, base = start(t, "basic", wasmhost.Options{FailurePolicy: wasmhost.FailClosed, FailStatus: 503})
	get(t, base+"/panic")
	if r := get(t, base+"/local"); r.status != http.StatusServiceUnavailable {
		t.Errorf("fail closed: %d, want 503 for every later request", r.status)
	}
}

func TestMetricsAndTicks(t *testing.T) {
	const workers = 3
	h, base := start(t, "basic", wasmhost.Options{Workers: workers, PluginConfig: "tick"})
	for range 5 {
		get(t, base+"/local")
	}
	if n, _ := h.Metric("basic.requests"); n != 5 {
		t.Errorf("basic.requests = %d, want 5", n)
	}
	if n, _ := h.Metric("basic.gauge"); n != 3*workers {
		t.Errorf("basic.gauge = %d, want %d (+5-2 per VM)", n, 3*workers)
	}
	eventually(t, "proxy_on_log for every request", func() bool { n, _ := h.Metric("basic.done"); return n == 5 })
	eventually(t, "ticks", func() bool { n, _ := h.Metric("basic.ticks"); return n >= workers })
	if _, ok := h.Metric("no.such.metric"); ok {
		t.Error("an undefined metric was found")
	}
}
