//go:build !wasip1

package plugin

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/proxytest"

	"github.com/portcullis/portcullis/internal/jwttest"
)

// rateLimitConfig limits protected routes to 3 per minute by default, 5 per
// minute for plan "pro", and the /api/tight rule to 1 per minute.
const rateLimitConfig = `{
  "jwt": {"secrets": [{"env": "` + testSecretEnv + `"}], "issuer": "portcullis-test", "audiences": ["api"]},
  "routes": [
    {"name": "public", "prefix": "/api/public", "public": true},
    {"name": "tight", "prefix": "/api/tight", "rate_limit": [{"requests": 1, "window_seconds": 60}]},
    {"name": "api", "prefix": "/api"}
  ],
  "rate_limit": {
    "default": [{"requests": 3, "window_seconds": 60}],
    "plans": {"by_plan": {"pro": [{"requests": 5, "window_seconds": 60}, {"requests": 100, "window_seconds": 3600}]}}
  }
}`

func rateToken(t *testing.T, sub string, extra jwttest.Claims) string {
	t.Helper()
	c := jwttest.Claims{"sub": sub, "iss": "portcullis-test", "aud": "api", "exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range extra {
		c[k] = v
	}
	return "Bearer " + jwttest.HS256([]byte(testSecret), c)
}

// sendLimited sends one request with authorization and returns the stream
// id and the local reply (nil when forwarded).
func sendLimited(host proxytest.HostEmulator, path, authorization string) (uint32, *proxytest.LocalHttpResponse) {
	id, _ := request{method: "GET", path: path, headers: [][2]string{{"authorization", authorization}}}.send(host)
	return id, host.GetSentLocalResponse(id)
}

// pkParam is the partition key parameter of RateLimit-Policy and RateLimit
// items: 12 bytes as a structured-field byte sequence.
var pkParam = regexp.MustCompile(`;pk=(:[A-Za-z0-9+/]{16}:)`)

// dropPK returns a rate-limit field without its pk parameters, and the
// partition key they all carry ("" when none; the test fails when the items
// disagree).
func dropPK(t *testing.T, field string) (string, string) {
	t.Helper()
	pk := ""
	for _, m := range pkParam.FindAllStringSubmatch(field, -1) {
		if pk != "" && m[1] != pk {
			t.Errorf("%q: items carry different partition keys", field)
		}
		pk = m[1]
	}
	return pkParam.ReplaceAllString(field, ""), pk
}

// headerPK is the partition key of the response's rate-limit fields,
// checked to be the same in RateLimit-Policy and RateLimit.
func headerPK(t *testing.T, headers [][2]string) string {
	t.Helper()
	policy, _ := headerValue(headers, "ratelimit-policy")
	limit, _ := headerValue(headers, "ratelimit")
	_, a := dropPK(t, policy)
	_, b := dropPK(t, limit)
	if a == "" || a != b {
		t.Errorf("pk %q in RateLimit-Policy %q and %q in RateLimit %q, want one partition key in both", a, policy, b, limit)
	}
	return a
}

func TestRateLimitAllowsNThenRefuses429(t *testing.T) {
	t.Setenv(testSecretEnv, testSecret)
	host := mustStart(t, runners[0], rateLimitConfig)
	alice := rateToken(t, "alice", nil)
	pks := map[string]bool{}
	for i := range 3 {
		id, resp := sendLimited(host, "/api/items", alice)
		if resp != nil {
			t.Fatalf("request %d: local reply %d %s, want forwarded", i+1, resp.StatusCode, resp.Data)
		}
		host.CallOnResponseHeaders(id, [][2]string{{":status", "200"}, {"x-ratelimit-remaining", "999"}}, true)
		got := host.GetCurrentResponseHeaders(id)
		pks[headerPK(t, got)] = true
		want := map[string]string{
			"x-ratelimit-limit":     "3",
			"x-ratelimit-remaining": strconv.Itoa(2 - i),
			"ratelimit-policy":      `"default";q=3;w=60`,
		}
		for name, v := range want {
			if g, _ := headerValue(got, name); name == "ratelimit-policy" {
				if g, _ = dropPK(t, g); g != v {
					t.Errorf("request %d: %s = %q, want %q with a pk", i+1, name, g, v)
				}
			} else if g != v {
				t.Errorf("request %d: %s = %q, want %q", i+1, name, g, v)
			}
		}
		if reset, _ := headerValue(got, "x-ratelimit-reset"); reset == "" || reset == "0" {
			t.Errorf("request %d: x-ratelimit-reset = %q, want seconds until the budget is full", i+1, reset)
		}
		if rl, _ := headerValue(got, "ratelimit"); !strings.HasPrefix(rl, `"default";r=`+strconv.Itoa(2-i)+";t=") {
			t.Errorf("request %d: RateLimit = %q", i+1, rl)
		}
		if _, ok := headerValue(got, "retry-after"); ok {
			t.Errorf("request %d: Retry-After on an admitted request", i+1)
		}
	}
	id, resp := sendLimited(host, "/api/items", alice)
	if resp == nil || resp.StatusCode != 429 {
		t.Fatalf("4th request: reply %+v, want 429", resp)
	}
	if h := host.GetCurrentRequestHeaders(id); len(h) > 0 {
		if v, ok := headerValue(h, "x-api-key"); ok {
			t.Errorf("a denied request was prepared for the upstream (x-api-key %q)", v)
		}
	}
	var body map[string]any
	if err := json.Unmarshal(resp.Data, &body); err != nil {
		t.Fatalf("429 body %q: %v", resp.Data, err)
	}
	retry, _ := headerValue(resp.Headers, "retry-after")
	n, err := strconv.Atoi(retry)
	if err != nil || n < 1 || n > 20 {
		t.Errorf("Retry-After = %q, want 1..20 s (one emission interval of 3/60 s)", retry)
	}
	if body["error"] != "rate_limit_exceeded" || body["message"] != "rate limit exceeded" || body["request_id"] != "req-1" || body["retry_after"] != float64(n) || body["policy"] != "default" {
		t.Errorf("429 body = %s, want the envelope naming policy \"default\"", resp.Data)
	}
	if rl, _ := headerValue(resp.Headers, "ratelimit"); !strings.HasPrefix(rl, `"default";r=0;t=`) {
		t.Errorf("429 RateLimit = %q, want the refusing policy \"default\" with r=0", rl)
	}
	// The partition key is stable for a key, another for another key, and
	// never the key itself.
	pks[headerPK(t, resp.Headers)] = true
	if len(pks) != 1 {
		t.Errorf("alice's responses carry %d partition keys, want 1: %v", len(pks), pks)
	}
	for pk := range pks {
		if strings.Contains(strings.ToLower(pk), "alice") {
			t.Errorf("pk %q reveals the key", pk)
		}
	}
	if !strings.HasPrefix(string(resp.Data), `{"error":"rate_limit_exceeded","message":"rate limit exceeded","retry_after":`) {
		t.Errorf("429 body member order: %s", resp.Data)
	}
	for name, v := range map[string]string{"x-ratelimit-limit": "3", "x-ratelimit-remaining": "0", "content-type": "application/json"} {
		if g, _ := headerValue(resp.Headers, name); g != v {
			t.Errorf("429 %s = %q, want %q", name, g, v)
		}
	}
	// Another key has its own budget (and partition key); public routes are
	// not limited.
	bobID, resp := sendLimited(host, "/api/items", rateToken(t, "bob", nil))
	if resp != nil {
		t.Errorf("bob: reply %d, want forwarded", resp.StatusCode)
	}
	host.CallOnResponseHeaders(bobID, [][2]string{{":status", "200"}}, true)
	if pk := headerPK(t, host.GetCurrentResponseHeaders(bobID)); pks[pk] {
		t.Errorf("bob has alice's partition key %q", pk)
	}
	for range 5 {
		if _, resp := sendLimited(host, "/api/public/x", alice); resp != nil {
			t.Errorf("public route: reply %d, want forwarded", resp.StatusCode)
		}
	}
	counters := map[string]uint64{
		"portcullis.ratelimit.allowed":               4,
		"portcullis.ratelimit.denied":                1,
		"portcullis.rejected.rate_limited":           1,
		"portcullis.ratelimit.fault.contention":      0,
		"portcullis.ratelimit.fault.corrupt_record":  0,
		"portcullis.ratelimit.fault.policy_too_wide": 0,
	}
	for name, want := range counters {
		if got := counterValue(t, host, strings.TrimPrefix(name, "portcullis.")); got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
	assertLogged(t, host, `"status":429`, `"reason":"rate_limited"`)
}

func TestRateLimitPlanAndRouteOverride(t *testing.T) {
	t.Setenv(testSecretEnv, testSecret)
	host := mustStart(t, runners[0], rateLimitConfig)
	admitted := func(auth, path string) (n int, last *proxytest.LocalHttpResponse) {
		for range 10 {
			if _, resp := sendLimited(host, path, auth); resp != nil {
				return n, resp
			}
			n++
		}
		return n, nil
	}
	pro := rateToken(t, "carol", jwttest.Claims{"plan": "pro"})
	n, resp := admitted(pro, "/api/items")
	if n != 5 || resp == nil || resp.StatusCode != 429 {
		t.Fatalf("plan pro: %d admitted then %+v, want 5 then 429", n, resp)
	}
	if p, _ := headerValue(resp.Headers, "ratelimit-policy"); p != `"plan-pro-60s";q=5;w=60;pk=`+headerPK(t, resp.Headers)+`, "plan-pro-3600s";q=100;w=3600;pk=`+headerPK(t, resp.Headers) {
		t.Errorf("plan pro RateLimit-Policy = %q", p)
	}
	// An unknown plan, or a plan claim that is not a string, gets the default.
	for i, plan := range []any{"enterprise", 7, []string{"pro"}} {
		if n, _ := admitted(rateToken(t, "dave-"+strconv.Itoa(i), jwttest.Claims{"plan": plan}), "/api/items"); n != 3 {
			t.Errorf("plan %v: %d admitted, want the default 3", plan, n)
		}
	}
	// The route override wins over the plan and counts separately.
	n, resp = admitted(rateToken(t, "frank", jwttest.Claims{"plan": "pro"}), "/api/tight/x")
	if n != 1 || resp == nil {
		t.Fatalf("route override: %d admitted, want 1", n)
	}
	if p, _ := headerValue(resp.Headers, "ratelimit-policy"); p != `"route-tight";q=1;w=60;pk=`+headerPK(t, resp.Headers) {
		t.Errorf("route override RateLimit-Policy = %q", p)
	}
}

func TestRateLimitResetTimestamp(t *testing.T) {
	t.Setenv(testSecretEnv, testSecret)
	config := strings.Replace(rateLimitConfig, `"rate_limit": {`, `"rate_limit": {"reset_format": "timestamp", `, 1)
	host := mustStart(t, runners[0], config)
	id, resp := sendLimited(host, "/api/items", rateToken(t, "alice", nil))
	if resp != nil {
		t.Fatalf("reply %d, want forwarded", resp.StatusCode)
	}
	host.CallOnResponseHeaders(id, [][2]string{{":status", "200"}}, true)
	reset, _ := headerValue(host.GetCurrentResponseHeaders(id), "x-ratelimit-reset")
	ts, err := time.Parse("2006-01-02T15:04:05.000Z", reset)
	if err != nil || ts.Before(time.Now()) || ts.After(time.Now().Add(time.Minute)) {
		t.Errorf("x-ratelimit-reset = %q (%v), want an ISO timestamp within the next minute", reset, err)
	}
}

func TestRateLimitBadConfigNamesTheField(t *testing.T) {
	t.Setenv(testSecretEnv, testSecret)
	base := `{"jwt": {"secrets": [{"env": "` + testSecretEnv + `"}]}, "routes": [ROUTES], "rate_limit": RL}`
	build := func(routes, rl string) string {
		return strings.Replace(strings.Replace(base, "ROUTES", routes, 1), "RL", rl, 1)
	}
	api := `{"name": "api", "prefix": "/api"}`
	cases := map[string]struct{ config, field string }{
		"zero requests":     {build(api, `{"default": [{"requests": 0, "window_seconds": 60}]}`), "rate_limit.default[0].requests: must be between 1 and"},
		"negative window":   {build(api, `{"default": [{"requests": 10, "window_seconds": 1}, {"requests": 10, "window_seconds": -5}]}`), "rate_limit.default[1].window_seconds: must be between 1 and 86400"},
		"absurd window":     {build(api, `{"default": [{"requests": 10, "window_seconds": 99999999999}]}`), "rate_limit.default[0].window_seconds"},
		"duplicate window":  {build(api, `{"default": [{"requests": 10, "window_seconds": 60}, {"requests": 5, "window_seconds": 60}]}`), "rate_limit.default[1].window_seconds: duplicate window"},
		"empty default":     {build(api, `{"default": []}`), "rate_limit.default: required"},
		"unknown field":     {build(api, `{"default": [{"requests": 1, "window": 60}]}`), "rate_limit.default[0].window: unknown field"},
		"unknown in plan":   {build(api, `{"plans": {"by_plan": {"pro": [{"requests": 1, "window_seconds": 60, "burst": 3}]}}}`), "rate_limit.plans.by_plan.pro[0].burst: unknown field"},
		"bad plan limit":    {build(api, `{"plans": {"by_plan": {"pro": [{"requests": 2000000000, "window_seconds": 60}]}}}`), "rate_limit.plans.by_plan.pro[0].requests"},
		"bad plan name":     {build(api, `{"plans": {"by_plan": {"p\"ro": [{"requests": 1, "window_seconds": 60}]}}}`), "rate_limit.plans.by_plan.p\"ro"},
		"bad route limit":   {build(`{"name": "a", "prefix": "/a", "rate_limit": [{"requests": 1, "window_seconds": 0}]}`, `{}`), "routes[0].rate_limit[0].window_seconds"},
		"route no block":    {`{"jwt": {"secrets": [{"env": "` + testSecretEnv + `"}]}, "routes": [{"prefix": "/a", "rate_limit": [{"requests": 1, "window_seconds": 60}]}]}`, "routes[0].rate_limit: requires the top-level rate_limit block"},
		"public route":      {build(`{"prefix": "/p", "public": true, "rate_limit": [{"requests": 1, "window_seconds": 60}]}`, `{}`), "routes[0].rate_limit: public routes are rate-limited only with rate_limit.public_key"},
		"slots":             {build(api, `{"slots": 10}`), "rate_limit.slots: must be a multiple of 4"},
		"cas retries":       {build(api, `{"cas_retries": 100}`), "rate_limit.cas_retries: must be between 1 and 64"},
		"on contention":     {build(api, `{"on_contention": "maybe"}`), "rate_limit.on_contention: must be allow or deny"},
		"reset format":      {build(api, `{"reset_format": "iso"}`), "rate_limit.reset_format: must be seconds or timestamp"},
		"wrong type":        {build(api, `{"default": {"requests": 1}}`), "rate_limit.default: must be an array"},
		"requests a string": {build(api, `{"default": [{"requests": "10", "window_seconds": 60}]}`), "rate_limit.default[0].requests: must be an integer"},
		"unknown calendar":  {build(api, `{"default": [{"requests": 10, "calendar": "year"}]}`), "rate_limit.default[0].calendar: must be day, week or month"},
		"utc offset":        {build(api, `{"default": [{"requests": 10, "calendar": "day"}], "utc_offset_minutes": 900}`), "rate_limit.utc_offset_minutes: must be between -720 and 840"},
		"unknown algorithm": {build(api, `{"default": [{"requests": 10, "window_seconds": 1, "algorithm": "leaky"}]}`), "rate_limit.default[0].algorithm: must be gcra or strict"},
		"hybrid no fleet":   {build(api, `{"mode": "hybrid"}`), "rate_limit.fleet: required in fleet and hybrid mode"},
		"cost header":       {build(`{"name": "a", "prefix": "/a", "cost_header": "retry-after"}`, `{}`), "routes[0].cost_header: not a response header the upstream can set"},
	}
	// rate_limit is checked before the JWT secrets, so these run in the
	// compiled plugin too (whose VM has no environment).
	eachRunner(t, func(t *testing.T, r runner) {
		for name, c := range cases {
			t.Run(name, func(t *testing.T) { assertRefused(t, r, c.config, c.field) })
		}
	})
}

// Public routes counted by client address: the port does not matter, the
// address does; both runners (no secret needed).
func TestRateLimitPublicRouteByClientAddress(t *testing.T) {
	config := `{
  "routes": [{"name": "public", "prefix": "/api/public", "public": true}],
  "rate_limit": {"public_key": "client_address", "default": [{"requests": 1, "window_seconds": 60}]}
}`
	eachRunner(t, func(t *testing.T, r runner) {
		host := mustStart(t, r, config)
		for _, tc := range []struct {
			address string
			want    int // 0: forwarded
		}{
			{"10.0.0.1:1234", 0},
			{"10.0.0.1:5678", 429},
			{"[::ffff:10.0.0.1]:9", 429},
			{"10.0.0.2:1234", 0},
		} {
			if err := host.SetProperty([]string{"source", "address"}, []byte(tc.address)); err != nil {
				t.Fatal(err)
			}
			id, _ := request{method: "GET", path: "/api/public/x"}.send(host)
			got := 0
			if resp := host.GetSentLocalResponse(id); resp != nil {
				got = int(resp.StatusCode)
			}
			if got != tc.want {
				t.Errorf("%s: status %d, want %d (0: forwarded)", tc.address, got, tc.want)
			}
		}
	})
}

// A corrupted record in shared data (as another plugin version, or a bug,
// could leave) is treated as empty, repaired and counted, never a crash —
// through the plugin, on both runners.
func TestRateLimitCorruptRecordIsCounted(t *testing.T) {
	config := `{
  "routes": [{"name": "public", "prefix": "/api/public", "public": true}],
  "rate_limit": {"public_key": "header:x-client", "slots": 4, "default": [{"requests": 2, "window_seconds": 60}]}
}`
	eachRunner(t, func(t *testing.T, r runner) {
		host := mustStart(t, r, config)
		send := func() int {
			id, _ := request{method: "GET", path: "/api/public/x", headers: [][2]string{{"x-client", "c1"}}}.send(host)
			if resp := host.GetSentLocalResponse(id); resp != nil {
				return int(resp.StatusCode)
			}
			return 0
		}
		if got := send(); got != 0 {
			t.Fatalf("first request: %d, want forwarded", got)
		}
		// slots 4 = one bucket: every key lives in pc:rl:0.
		if err := proxywasm.SetSharedData("pc:rl:0", []byte("garbage of the wrong length"), 0); err != nil {
			t.Fatal(err)
		}
		if got := send(); got != 0 {
			t.Fatalf("after corruption: %d, want forwarded (the record is treated as empty)", got)
		}
		if got := send(); got != 0 {
			t.Fatalf("third request: %d, want forwarded (2nd of 2 since the repair)", got)
		}
		if got := send(); got != 429 {
			t.Fatalf("fourth request: %d, want 429 (the repaired record counts again)", got)
		}
		if n := counterValue(t, host, "ratelimit.fault.corrupt_record"); n != 1 {
			t.Errorf("fault.corrupt_record = %d, want 1", n)
		}
	})
}

// TestRateLimitCountedPerRoute: every request is counted under its route
// rule, and a 429 for a rate limit under the rule that refused it, so an
// alert can compare routes; a request no rule covers has no route counter.
func TestRateLimitCountedPerRoute(t *testing.T) {
	t.Setenv(testSecretEnv, testSecret)
	host := mustStart(t, runners[0], rateLimitConfig)
	alice := rateToken(t, "alice", nil)
	for range 3 { // tight admits 1 per minute
		sendLimited(host, "/api/tight/x", alice)
	}
	sendLimited(host, "/api/items", alice)
	sendLimited(host, "/api/public/x", "")
	sendLimited(host, "/elsewhere", "")
	for name, want := range map[string]uint64{
		"route.tight.requests": 3, "route.tight.rate_limited": 2,
		"route.api.requests": 1, "route.api.rate_limited": 0,
		"route.public.requests": 1, "route.public.rate_limited": 0,
		"requests": 6,
	} {
		if got := counterValue(t, host, name); got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
}

func TestRouteSegment(t *testing.T) {
	for name, want := range map[string]string{
		"orders":     "orders",
		"/api/v1":    "/api/v1",
		"api.v1":     "api_v1",
		"a b:c":      "a_b_c",
		"ünïcode-ok": "_n_code-ok",
	} {
		if got := routeSegment(name); got != want {
			t.Errorf("routeSegment(%q) = %q, want %q", name, got, want)
		}
	}
}
