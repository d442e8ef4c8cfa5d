// Package e2e runs the gateway end to end: the compiled plugin in a real
// Envoy, 1.36 to 1.40 (this file), and in the wazero host, with the scenarios
// of e2e/scenarios. Envoy and build/portcullis.wasm are found as described in
// harness.NewEnvoy; `make test` passes them in ENVOY_BIN and PORTCULLIS_WASM.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/e2e/harness"
	"github.com/portcullis/portcullis/e2e/scenarios"
	"github.com/portcullis/portcullis/internal/cacheserver/cachetest"
)

const allowedOrigin = "http://localhost:3000"

// exposed are the response headers browsers must be allowed to read.
var exposed = []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "RateLimit", "RateLimit-Policy", "Retry-After", "X-Cache", "X-Request-Id"}

// TestEnvoy runs every scenario against the plugin in Envoy, configured from
// the shipped envoy.yaml, plus the checks of what envoy.yaml itself does.
func TestEnvoy(t *testing.T) {
	t.Parallel()
	envoy := harness.NewEnvoy(t)
	scenarios.Run(t, envoy, scenarios.Extras{
		Main: []scenarios.Check{
			{Name: "cors_preflight_allowed_origin", Run: corsPreflightAllowed},
			{Name: "cors_preflight_other_origin", Run: corsPreflightOther},
			{Name: "cors_headers_on_gateway_errors", Run: corsOnErrors},
			{Name: "path_normalisation", Run: pathNormalisation},
			{Name: "client_request_id_replaced", Run: requestIDReplaced},
			{Name: "request_header_timeout_408_json", Run: requestHeaderTimeout},
		},
		LiveUpstream: []scenarios.Check{
			{Name: "retries_503_for_idempotent_methods_only", Run: retriesOn503},
		},
		DeadUpstream: []scenarios.Check{
			{Name: "retries_connect_failures_for_idempotent_methods_only", Run: retriesOnConnectFailure},
		},
	})
}

func corsPreflightAllowed(t *testing.T, gw *harness.Gateway) {
	resp := scenarios.Send(t, gw, scenarios.Request{Method: "OPTIONS", Path: "/api/things", Header: map[string][]string{
		"Origin":                         {allowedOrigin},
		"Access-Control-Request-Method":  {"POST"},
		"Access-Control-Request-Headers": {"authorization, content-type"},
	}})
	if resp.Status != http.StatusOK {
		t.Fatalf("preflight: want 200 from Envoy's CORS filter, got:\n%s", resp)
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != allowedOrigin {
		t.Errorf("Access-Control-Allow-Origin %q, want %q", got, allowedOrigin)
	}
	if got := resp.Header.Get("Access-Control-Allow-Methods"); !strings.Contains(got, "POST") {
		t.Errorf("Access-Control-Allow-Methods %q lacks POST", got)
	}
	got := strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers"))
	for _, h := range []string{"authorization", "content-type"} {
		if !strings.Contains(got, h) {
			t.Errorf("Access-Control-Allow-Headers %q lacks %s", got, h)
		}
	}
	if resp.Header.Get("Access-Control-Max-Age") == "" {
		t.Errorf("no Access-Control-Max-Age")
	}
}

func corsPreflightOther(t *testing.T, gw *harness.Gateway) {
	for _, origin := range []string{"http://evil.example", "null", "http://localhost:3001"} {
		resp := scenarios.Send(t, gw, scenarios.Request{Method: "OPTIONS", Path: "/api/things", Header: map[string][]string{
			"Origin":                        {origin},
			"Access-Control-Request-Method": {"POST"},
		}})
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("origin %s: Access-Control-Allow-Origin %q, want none", origin, got)
		}
		if resp.Status == http.StatusOK && strings.Contains(string(resp.Body), `"method"`) {
			t.Errorf("origin %s: the preflight reached the upstream:\n%s", origin, resp)
		}
	}
}

func corsOnErrors(t *testing.T, gw *harness.Gateway) {
	// A browser must be able to read the gateway's JSON 401 and its headers.
	resp := scenarios.Send(t, gw, scenarios.Request{Path: "/api/things", Header: map[string][]string{"Origin": {allowedOrigin}}})
	scenarios.ExpectError(t, gw, resp, http.StatusUnauthorized, "unauthorized")
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != allowedOrigin {
		t.Errorf("401: Access-Control-Allow-Origin %q, want %q", got, allowedOrigin)
	}
	got := strings.ToLower(resp.Header.Get("Access-Control-Expose-Headers"))
	for _, h := range exposed {
		if !strings.Contains(got, strings.ToLower(h)) {
			t.Errorf("Access-Control-Expose-Headers %q lacks %s", got, h)
		}
	}
	resp = scenarios.Send(t, gw, scenarios.Request{Path: "/api/things", Header: map[string][]string{"Origin": {"http://evil.example"}}})
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("other origin: Access-Control-Allow-Origin %q, want none", got)
	}
}

// pathNormalisation: the plugin and Envoy's router see one canonical path, so
// a public prefix can never be used to reach a protected one.
func pathNormalisation(t *testing.T, gw *harness.Gateway) {
	for _, p := range []string{"/api/public/../things", "/api/public/%2e%2e/things", "/api/public/./../things"} {
		resp := scenarios.Send(t, gw, scenarios.Request{Path: p})
		if resp.Status == http.StatusOK {
			t.Errorf("%s without a token reached the upstream:\n%s", p, resp)
		} else if resp.Status != http.StatusUnauthorized && resp.Status != http.StatusBadRequest {
			t.Errorf("%s: want 401 (normalised to /api/things) or 400, got:\n%s", p, resp)
		}
	}
	// Escaped slashes reach the plugin unchanged (path_with_escaped_slashes_action:
	// KEEP_UNCHANGED), which refuses them with its JSON 400.
	for _, p := range []string{"/api/public%2F..%2Fthings", "/api/public%5c..%5cthings"} {
		resp := scenarios.Send(t, gw, scenarios.Request{Path: p})
		scenarios.ExpectError(t, gw, resp, http.StatusBadRequest, "bad_request")
	}
	// Repeated slashes are merged before routing.
	resp := scenarios.Send(t, gw, scenarios.Request{Path: "//api//public///items"})
	if resp.Status != http.StatusOK {
		t.Fatalf("//api//public///items: want 200, got:\n%s", resp)
	}
	if e := scenarios.Echo(t, resp); e.Path != "/public/items" {
		t.Errorf("//api//public///items: upstream path %q, want /public/items", e.Path)
	}
}

// requestIDReplaced: at the edge Envoy makes its own x-request-id, so a client
// cannot choose the id that appears in responses and logs.
func requestIDReplaced(t *testing.T, gw *harness.Gateway) {
	const chosen = "client-chosen-request-id"
	resp := scenarios.Send(t, gw, scenarios.Request{Path: "/nope", Header: map[string][]string{"X-Request-Id": {chosen}}})
	e := scenarios.ExpectError(t, gw, resp, http.StatusNotFound, "not_found")
	if e.RequestID == chosen || resp.Header.Get("X-Request-Id") == chosen {
		t.Errorf("the client's x-request-id was kept: %s", resp)
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("no x-request-id in the response (always_set_request_id_in_response)")
	}
}

const retryStat = "cluster." + harness.UpstreamCluster + ".upstream_rq_retry"

func stat(t *testing.T, gw *harness.Gateway, name string) int64 {
	t.Helper()
	n, ok := gw.HostStat(name)
	if !ok {
		t.Fatalf("Envoy has no stat %s", name)
	}
	return n
}

func retriesOnConnectFailure(t *testing.T, gw *harness.Gateway) {
	tok := scenarios.Token(harness.TestSecret, "alice", nil)
	for _, tc := range []struct {
		method  string
		retries int64
	}{{"GET", 2}, {"DELETE", 2}, {"POST", 0}, {"PATCH", 0}} {
		before := stat(t, gw, retryStat)
		r := scenarios.Request{Method: tc.method, Path: "/api/things", Header: scenarios.Bearer(tok)}
		if tc.method == "POST" || tc.method == "PATCH" {
			r.Body, r.Header = `{}`, scenarios.With(r.Header, "Content-Type", "application/json")
		}
		resp := scenarios.Send(t, gw, r)
		scenarios.ExpectError(t, gw, resp, http.StatusBadGateway, "upstream_error")
		if got := stat(t, gw, retryStat) - before; got != tc.retries {
			t.Errorf("%s to a dead upstream: %d retries, want %d", tc.method, got, tc.retries)
		}
	}
}

func retriesOn503(t *testing.T, gw *harness.Gateway) {
	tok := scenarios.Token(harness.TestSecret, "alice", nil)
	for _, tc := range []struct {
		method   string
		attempts int64
	}{{"GET", 3}, {"PUT", 3}, {"POST", 1}} {
		before := gw.Upstream.Count()
		r := scenarios.Request{Method: tc.method, Path: "/api/status/503", Header: scenarios.Bearer(tok)}
		if tc.method != "GET" {
			r.Body, r.Header = `{}`, scenarios.With(r.Header, "Content-Type", "application/json")
		}
		resp := scenarios.Send(t, gw, r)
		if resp.Status != http.StatusServiceUnavailable {
			t.Errorf("%s: the upstream's 503 must pass through, got:\n%s", tc.method, resp)
		} else if e := scenarios.Echo(t, resp); e.Status != 503 {
			t.Errorf("%s: the body is not the upstream's", tc.method)
		}
		if got := gw.Upstream.Count() - before; got != tc.attempts {
			t.Errorf("%s answered 503 by the upstream: %d attempts, want %d", tc.method, got, tc.attempts)
		}
	}
}

// requestHeaderTimeout: headers not complete within envoy.yaml's
// request_headers_timeout (10 s) get 408 in the envelope.
func requestHeaderTimeout(t *testing.T, gw *harness.Gateway) {
	resp := scenarios.RawExchange(t, gw, []byte("GET /api/things HTTP/1.1\r\nHost: gateway\r\n"), 0)
	scenarios.ExpectHostAnswer(t, resp, http.StatusRequestTimeout, "request_timeout")
}

// TestEnvoyNoHealthyUpstream: a routed cluster without a healthy host makes
// Envoy's router answer 503 no_healthy_upstream. The plugin forwarded the
// request, so it rewrites that answer into its own 502 upstream_error
// envelope (README "Errors"); no text of Envoy's reaches the client.
func TestEnvoyNoHealthyUpstream(t *testing.T) {
	t.Parallel()
	gw := harness.NewEnvoy(t).Start(t, harness.Options{Clusters: map[string]string{harness.UpstreamCluster: ""}})
	tok := scenarios.Token(harness.TestSecret, "alice", nil)
	resp := scenarios.Send(t, gw, scenarios.Request{Path: "/api/things", Header: scenarios.Bearer(tok)})
	if e := scenarios.ExpectError(t, gw, resp, http.StatusBadGateway, "upstream_error"); e.Message != "upstream unreachable" {
		t.Errorf("message %q, want \"upstream unreachable\"", e.Message)
	}
	if n, ok := gw.HostStat("cluster." + harness.UpstreamCluster + ".upstream_cx_none_healthy"); !ok || n < 1 {
		t.Errorf("cluster.%s.upstream_cx_none_healthy = %d (exists %v): Envoy did not answer for want of a host", harness.UpstreamCluster, n, ok)
	}
	scenarios.AssertErrorsLogged(t, gw)
}

// TestEnvoyShippedConfigValidates checks envoy.yaml exactly as `make run`
// uses it (relative wasm path, JWT_SECRET from the environment).
func TestEnvoyShippedConfigValidates(t *testing.T) {
	t.Parallel()
	envoy := harness.NewEnvoy(t)
	root := harness.RepoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "build", "portcullis.wasm")); err != nil {
		harness.Unavailable(t, "build/portcullis.wasm is missing; run `make build`")
	}
	cmd := exec.Command(envoy.Bin, "--mode", "validate", "-c", "envoy.yaml", "--concurrency", "2", "--disable-hot-restart")
	cmd.Dir = root
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), harness.SecretEnv + "=" + harness.TestSecret}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK") {
		t.Fatalf("envoy --mode validate -c envoy.yaml: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "portcullis: started") {
		t.Errorf("validation did not start the plugin with the shipped configuration:\n%s", out)
	}
}

// TestEnvoyFailurePolicy proves that a dead VM fails closed: a stand-in
// plugin (e2e/testdata/crasher) that requires an Authorization header is
// crashed on purpose, and no request without one may reach the upstream
// afterwards. With the shipped FAIL_RELOAD a fresh VM takes over; a control
// run with FAIL_OPEN shows the test would catch a gateway that fails open.
func TestEnvoyFailurePolicy(t *testing.T) {
	t.Parallel()
	envoy := harness.NewEnvoy(t)
	policy, err := harness.ShippedFailurePolicy(harness.ShippedEnvoyYAML(t))
	if err != nil {
		t.Fatal(err)
	}
	crasher := buildCrasher(t)

	t.Run("shipped_"+policy, func(t *testing.T) {
		t.Parallel()
		// One worker, so every request meets the VM that crashed.
		gw := envoy.Start(t, harness.Options{Wasm: crasher, Concurrency: 1})
		expectStatus(t, gw, nil, http.StatusUnauthorized)
		crash := scenarios.Send(t, gw, scenarios.Request{Path: "/api/things", Header: map[string][]string{"X-Crash": {"now"}}})
		// Envoy's 503, in the envelope (envoy.yaml's local_reply_config).
		scenarios.ExpectHostAnswer(t, crash, http.StatusServiceUnavailable, "service_unavailable")
		recovered := false
		deadline := time.Now().Add(10 * time.Second)
		for n := 0; n < 20 || (!recovered && time.Now().Before(deadline)); n++ {
			resp := scenarios.Send(t, gw, scenarios.Request{Path: "/api/things"})
			switch resp.Status {
			case http.StatusUnauthorized:
				recovered = true
			case http.StatusServiceUnavailable:
				scenarios.ExpectHostAnswer(t, resp, http.StatusServiceUnavailable, "service_unavailable")
			default:
				t.Fatalf("request %d without a token after the crash: want 401 or 503, got:\n%s", n, resp)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if got := gw.Upstream.Count(); got != 0 {
			t.Errorf("the upstream received %d requests without a token", got)
		}
		switch policy {
		case "FAIL_RELOAD":
			if !recovered {
				t.Errorf("FAIL_RELOAD: no fresh VM answered within 10s of the crash")
			}
			// The PortcullisVMReloads alert (deploy/prometheus/alerts.yaml)
			// reads this counter. (Envoy 1.40 leaves wasm.<plugin>.vm_reload
			// and wasm.envoy.wasm.runtime.v8.created unchanged here.)
			if n := stat(t, gw, "wasm.portcullis.vm_reload_success"); n == 0 {
				t.Errorf("FAIL_RELOAD: Envoy's wasm.portcullis.vm_reload_success is 0 after a fresh VM took over")
			}
		case "FAIL_CLOSED", "UNSPECIFIED", "":
			if recovered {
				t.Errorf("%s: a plugin answered after the crash; want 503 until restart", policy)
			}
		default:
			t.Errorf("failure_policy %q is not fail-closed", policy)
		}
		// A request with a token still works once a VM is back.
		if recovered {
			expectStatus(t, gw, map[string][]string{"Authorization": {"Bearer x"}}, http.StatusOK)
		}
	})

	t.Run("control_FAIL_OPEN_would_leak", func(t *testing.T) {
		t.Parallel()
		gw := envoy.Start(t, harness.Options{Wasm: crasher, Concurrency: 1, FailurePolicy: "FAIL_OPEN"})
		expectStatus(t, gw, nil, http.StatusUnauthorized)
		scenarios.Send(t, gw, scenarios.Request{Path: "/api/things", Header: map[string][]string{"X-Crash": {"now"}}})
		resp := scenarios.Send(t, gw, scenarios.Request{Path: "/api/things"})
		if resp.Status != http.StatusOK || gw.Upstream.Count() == 0 {
			t.Errorf("with FAIL_OPEN a request without a token should have reached the upstream after the crash "+
				"(otherwise this test cannot tell open from closed); got:\n%s", resp)
		}
	})
}

func expectStatus(t *testing.T, gw *harness.Gateway, h map[string][]string, status int) {
	t.Helper()
	if resp := scenarios.Send(t, gw, scenarios.Request{Path: "/api/things", Header: h}); resp.Status != status {
		t.Fatalf("want %d, got:\n%s", status, resp)
	}
}

// buildCrasher compiles e2e/testdata/crasher to a wasm module.
func buildCrasher(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		harness.Unavailable(t, "no go toolchain to build the crasher plugin")
	}
	out := filepath.Join(t.TempDir(), "crasher.wasm")
	cmd := exec.Command(goBin, "build", "-buildmode=c-shared", "-o", out, "./testdata/crasher")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the crasher plugin: %v\n%s", err, b)
	}
	return out
}

// TestEnvoyCacheReplicas: two in-memory cache servers behind the shipped
// cache cluster (ring_hash). Envoy hashes the plugin's callouts on
// :authority, which carries the entry key, so each key always reaches the
// same replica: every second GET is a HIT, and the entries spread over both.
func TestEnvoyCacheReplicas(t *testing.T) {
	t.Parallel()
	envoy := harness.NewEnvoy(t)
	var replicas []*cachetest.Server
	var addrs []string
	for range 2 {
		srv := cachetest.StartBackend(t, cachetest.Memory)
		replicas = append(replicas, srv)
		addrs = append(addrs, srv.Addr)
	}
	gw := envoy.Start(t, harness.Options{PluginConfig: scenarios.CacheConfig(t),
		Clusters: map[string]string{harness.CacheCluster: strings.Join(addrs, ",")}})
	tok := scenarios.Bearer(scenarios.Token(harness.TestSecret, "alice", nil))
	const paths = 24
	for i := range paths {
		path := fmt.Sprintf("/api/replicas/%d", i)
		if resp := scenarios.Send(t, gw, scenarios.Request{Path: path, Header: tok}); resp.Header.Get("X-Cache") != "MISS" {
			t.Fatalf("%s: first GET X-Cache %q, want MISS", path, resp.Header.Get("X-Cache"))
		}
	}
	// The fills are written after each response: give them time to land.
	time.Sleep(300 * time.Millisecond)
	for i := range paths {
		path := fmt.Sprintf("/api/replicas/%d", i)
		if resp := scenarios.Send(t, gw, scenarios.Request{Path: path, Header: tok}); resp.Header.Get("X-Cache") != "HIT" {
			t.Errorf("%s: second GET X-Cache %q, want HIT (the lookup reached another replica than the fill?)", path, resp.Header.Get("X-Cache"))
		}
	}
	for i, r := range replicas {
		u, err := r.Handler.Stats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if u.Entries == 0 {
			t.Errorf("replica %d holds no entry: the keys did not spread", i)
		}
		t.Logf("replica %d: %d records", i, u.Entries)
	}
}

// TestEnvoyCachePurgeReplicas: with two in-memory replicas behind Envoy's
// consistent hashing, a tag's set lives on one replica and the index
// records it lists on both; a purge still reaches every record (the
// gateway deletes each on its own replica), seen once this Envoy's
// tombstones are gone: a GET then finds no old record in the cluster.
func TestEnvoyCachePurgeReplicas(t *testing.T) {
	t.Parallel()
	envoy := harness.NewEnvoy(t)
	var addrs []string
	for range 2 {
		addrs = append(addrs, cachetest.StartBackend(t, cachetest.Memory).Addr)
	}
	gw := envoy.Start(t, scenarios.PurgeOptions(t, strings.Join(addrs, ",")))
	tag := "replicas-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	tok := scenarios.With(scenarios.Bearer(scenarios.Token(harness.TestSecret, "alice", nil)), "Host", "api.example.com")
	tagged := scenarios.With(tok, "X-Upstream-Surrogate-Key", tag)
	const paths = 16
	old := map[string][]byte{}
	for i := range paths {
		path := fmt.Sprintf("/api/purge-replicas/%s/%d", tag, i)
		scenarios.Send(t, gw, scenarios.Request{Path: path, Header: tagged})
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			resp := scenarios.Send(t, gw, scenarios.Request{Path: path, Header: tagged})
			if resp.Header.Get("X-Cache") == "HIT" {
				old[path] = resp.Body
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never became a HIT", path)
			}
		}
	}
	resp := scenarios.Send(t, gw, scenarios.Request{Method: "POST", Path: scenarios.PurgePath + "?tag=" + tag + "&all=true",
		Header: scenarios.With(scenarios.Bearer(scenarios.PurgeSecret), "Host", "api.example.com")})
	if resp.Status != http.StatusOK || !strings.Contains(string(resp.Body), fmt.Sprintf(`"index_records":%d`, paths)) {
		t.Fatalf("purge: %s", resp)
	}
	// Past the tombstones' life (cache timeout_ms 1000 plus a second), the
	// lookups read the cluster's index records again.
	time.Sleep(2500 * time.Millisecond)
	for path, body := range old {
		if resp := scenarios.Send(t, gw, scenarios.Request{Path: path, Header: tagged}); bytes.Equal(resp.Body, body) {
			t.Errorf("%s: the old entry is still reachable in the cluster:\n%s", path, resp)
		}
	}
}
