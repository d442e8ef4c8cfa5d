// Package scenarios holds the gateway's end-to-end scenarios, written once
// against harness.Target and run against every host (Envoy, the wazero host).
// Same outcomes on every host is the evidence that the hosts are faithful.
//
// Everything time-dependent (tokens) is minted at test time.
package scenarios

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/e2e/harness"
	"github.com/portcullis/portcullis/internal/cacheserver/cachetest"
	"github.com/portcullis/portcullis/internal/jwttest"
	"github.com/portcullis/portcullis/internal/redistest"
)

// Check is a host-specific check run on one of the scenario gateways.
type Check struct {
	Name string
	Run  func(t *testing.T, gw *harness.Gateway)
}

// Extras are host-specific checks (Envoy: CORS, path normalisation, retries)
// that reuse the scenario gateways instead of starting their own.
type Extras struct {
	// Main checks run after the scenarios on the gateway with the shipped configuration.
	Main []Check
	// LiveUpstream checks run one after another on the "upstream faults"
	// gateway (route timeout SlowRouteTimeout) while its upstream is up;
	// DeadUpstream checks after the upstream was stopped.
	LiveUpstream, DeadUpstream []Check
}

// SlowRouteTimeout is the route timeout of the "upstream faults" gateway.
const SlowRouteTimeout = time.Second

// TestRegion is the locality region of the main gateway.
const TestRegion = "e2e-region-1"

// Run runs every scenario against target. The gateways start in parallel
// (t.Parallel); the requests to one gateway are sent one after another, which
// takes milliseconds, while a gateway's start is what costs (Envoy compiles
// the module).
func Run(t *testing.T, target harness.Target, extras Extras) {
	t.Run("shipped_config", func(t *testing.T) {
		t.Parallel()
		gw := target.Start(t, harness.Options{Region: TestRegion})
		secrets := &seen{}
		secrets.add(harness.TestSecret)
		t.Run("scenarios", func(t *testing.T) {
			for _, s := range []struct {
				name string
				run  func(*testing.T, *harness.Gateway, *seen)
			}{
				{"valid_token_forwards_identity", validToken},
				{"spoofed_identity_headers_are_replaced", spoofedProtected},
				{"spoofed_identity_headers_are_removed_on_public_routes", spoofedPublic},
				{"public_rule_honours_methods", publicMethods},
				{"invalid_tokens_get_401_json", invalidTokens},
				{"health", healthOK},
				{"no_rule_gets_404_json", notFound},
				{"unsupported_media_type_gets_415_json", mediaType},
				{"upstream_answers_pass_through", passThrough},
				{"token_kid_with_an_unnamed_secret", func(t *testing.T, gw *harness.Gateway, s *seen) {
					keyIDs(t, gw, s, unnamedSecretCases())
				}},
			} {
				t.Run(s.name, func(t *testing.T) { s.run(t, gw, secrets) })
			}
			for _, c := range extras.Main {
				t.Run(c.Name, func(t *testing.T) { c.Run(t, gw) })
			}
		})
		// After every request above: each gateway error was logged once, and no
		// token the tests sent was ever logged.
		t.Run("every_error_logged_once", func(t *testing.T) { AssertErrorsLogged(t, gw) })
		t.Run("tokens_never_logged", func(t *testing.T) { secrets.assertAbsent(t, gw.HostLogs()) })
	})

	// One gateway for every upstream fault: a short route timeout, then the
	// upstream stopped. No locality, so /health reports region "unknown".
	t.Run("upstream_faults", func(t *testing.T) {
		t.Parallel()
		gw := target.Start(t, harness.Options{RouteTimeout: SlowRouteTimeout})
		t.Run("health_region_unknown", func(t *testing.T) {
			if h := health(t, gw); h.Region != "unknown" {
				t.Errorf("region %q, want \"unknown\" for a node without locality", h.Region)
			}
		})
		t.Run("timeout_504_json", func(t *testing.T) { upstreamTimeout(t, gw) })
		for _, c := range extras.LiveUpstream {
			t.Run(c.Name, func(t *testing.T) { c.Run(t, gw) })
		}
		gw.StopUpstream()
		t.Run("unreachable_502_json", func(t *testing.T) { upstreamDown(t, gw) })
		for _, c := range extras.DeadUpstream {
			t.Run(c.Name, func(t *testing.T) { c.Run(t, gw) })
		}
		t.Run("every_error_logged_once", func(t *testing.T) { AssertErrorsLogged(t, gw) })
	})

	// Local rate limiting across the workers of one gateway.
	t.Run("rate_limit_local", func(t *testing.T) {
		t.Parallel()
		gw := target.Start(t, harness.Options{PluginConfig: RateLimitConfig(t), Concurrency: BurstWorkers})
		t.Run("cold_burst_admits_exactly_the_limit", func(t *testing.T) { coldBurst(t, gw) })
		t.Run("every_error_logged_once", func(t *testing.T) { AssertErrorsLogged(t, gw) })
	})
	// Shadow mode and request cost, on one gateway: the shadow burst runs
	// first, so the counters it checks are its own.
	t.Run("rate_limit_shadow_and_cost", func(t *testing.T) {
		t.Parallel()
		gw := target.Start(t, harness.Options{PluginConfig: ShadowCostConfig(t), Concurrency: BurstWorkers})
		t.Run("shadow_forwards_all_and_counts_the_would_be_refusals", func(t *testing.T) { shadowForwardsAll(t, gw) })
		t.Run("cost_admits_N_over_cost", func(t *testing.T) { costAdmitsNOverCost(t, gw) })
		t.Run("cost_header_admits_N_over_cost", func(t *testing.T) { costFromResponseHeader(t, gw) })
		t.Run("waiting_retry_after_is_enough", func(t *testing.T) { retryAfterIsEnough(t, gw) })
		t.Run("jwt_shadow_forwards_without_identity", func(t *testing.T) { jwtShadowForwardsAnonymously(t, gw) })
		t.Run("every_error_logged_once", func(t *testing.T) { AssertErrorsLogged(t, gw) })
	})
	t.Run("rate_limit_sliding_window", func(t *testing.T) {
		t.Parallel()
		gw := target.Start(t, harness.Options{PluginConfig: SlideConfig(t), Concurrency: BurstWorkers})
		t.Run("no_window_admits_more_than_2N-1", func(t *testing.T) { noWindowAdmitsTooMany(t, gw) })
		t.Run("strict_no_window_admits_more_than_N", func(t *testing.T) { strictNoWindowAdmitsMoreThanN(t, gw) })
	})

	// Fleet mode: two gateways (and a fail-closed third) in front of one
	// envoyproxy/ratelimit with its own Redis.
	t.Run("rate_limit_fleet", func(t *testing.T) {
		t.Parallel()
		fleetScenarios(t, target, redistest.Start(t).Addr)
	})

	// Caching, once per cache-server backend: in memory, and in Redis.
	for _, backend := range cachetest.Backends {
		t.Run("cache_"+string(backend), func(t *testing.T) {
			t.Parallel()
			srv := cachetest.StartBackend(t, backend)
			gw := target.Start(t, harness.Options{PluginConfig: CacheConfig(t), Clusters: map[string]string{harness.CacheCluster: srv.Addr}})
			cacheScenarios(t, gw)
			t.Run("cache_server_killed", func(t *testing.T) { cacheServerKilled(t, gw, srv.Stop) })
		})
	}
	// stale-if-error with the upstream gone: a gateway of its own, since its
	// upstream is stopped.
	t.Run("cache_stale_if_error_upstream_killed", func(t *testing.T) {
		t.Parallel()
		srv := cachetest.StartBackend(t, cachetest.Memory)
		gw := target.Start(t, harness.Options{PluginConfig: CacheConfig(t), Clusters: map[string]string{harness.CacheCluster: srv.Addr}})
		staleIfErrorUpstreamKilled(t, gw)
	})

	// Purges across two gateways sharing one cache server: per backend on
	// the wazero host; on Envoy, whose gateways cost far more to start,
	// with Redis, the store a fleet of Envoys shares (the memory backend's
	// purges on Envoy: TestEnvoyCachePurgeReplicas).
	purgeBackends := cachetest.Backends
	if target.Name() == "envoy" {
		purgeBackends = []cachetest.Backend{cachetest.Redis}
	}
	for _, backend := range purgeBackends {
		t.Run("cache_purge_"+string(backend), func(t *testing.T) {
			t.Parallel()
			srv := cachetest.StartBackend(t, backend)
			opts := PurgeOptions(t, srv.Addr)
			a, b := target.Start(t, opts), target.Start(t, opts)
			PurgeScenarios(t, a, b)
			t.Run("every_error_logged_once", func(t *testing.T) { AssertErrorsLogged(t, a); AssertErrorsLogged(t, b) })
		})
	}

	// The shipped configuration with everything on at once: JWT, local rate
	// limiting and caching, in front of a running cache server.
	t.Run("whole_gateway", func(t *testing.T) {
		t.Parallel()
		srv := cachetest.StartBackend(t, cachetest.Memory)
		gw := target.Start(t, harness.Options{PluginConfig: wholeGatewayConfig(t), Clusters: map[string]string{harness.CacheCluster: srv.Addr}})
		wholeGateway(t, gw)
		t.Run("every_error_logged_once", func(t *testing.T) { AssertErrorsLogged(t, gw) })
	})

	// What the host answers itself (no route, limits) and what it must not touch.
	t.Run("host_answers", func(t *testing.T) {
		t.Parallel()
		gw := target.Start(t, harness.Options{PluginConfig: HostAnswersConfig(t)})
		hostAnswers(t, gw)
		t.Run("every_error_logged_once", func(t *testing.T) { AssertErrorsLogged(t, gw) })
	})

	// Tokens with and without kid against secrets with and without kid.
	t.Run("jwt_key_ids", func(t *testing.T) {
		t.Parallel()
		keyIDScenarios(t, target)
	})

	t.Run("bad_config_refused", func(t *testing.T) {
		t.Parallel()
		badConfigs(t, target)
	})
}

// seen collects every token and secret the scenarios sent, to assert none is logged.
type seen struct {
	mu     sync.Mutex
	values []string
}

// add records a token (the whole token and its payload and signature
// segments; the header segment of an HS256 token is the same for everyone)
// or a secret.
func (s *seen) add(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.values = append(s.values, token)
	parts := strings.Split(token, ".")
	for _, p := range parts[1:] {
		if len(p) >= 12 {
			s.values = append(s.values, p)
		}
	}
}

func (s *seen) assertAbsent(t *testing.T, text string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.values) == 0 {
		t.Fatal("no tokens were recorded; the scenarios did not run")
	}
	for _, v := range s.values {
		if strings.Contains(text, v) {
			t.Errorf("token material %.24s... appears in the gateway's logs", v)
		}
	}
}

func validToken(t *testing.T, gw *harness.Gateway, s *seen) {
	tok := Token(harness.TestSecret, "alice", jwttest.Claims{"email": "alice@example.com", "plan": "pro"})
	s.add(tok)

	resp := Send(t, gw, Request{Path: "/api/users/42?x=1&y=two", Header: Bearer(tok)})
	if resp.Status != http.StatusOK {
		t.Fatalf("valid token: want 200 from the upstream, got:\n%s", resp)
	}
	e := Echo(t, resp)
	if e.Method != "GET" || e.Path != "/users/42" || e.Query != "x=1&y=two" {
		t.Errorf("upstream saw %s %s ?%s, want GET /users/42 ?x=1&y=two (the /api prefix stripped)", e.Method, e.Path, e.Query)
	}
	if got := Header(t, e, "x-api-key"); got != "alice" {
		t.Errorf("upstream x-api-key = %q, want the token's sub \"alice\"", got)
	}
	if got := Header(t, e, "x-user-email"); got != "alice@example.com" {
		t.Errorf("upstream x-user-email = %q, want the email claim", got)
	}
	if got := Header(t, e, "x-user-plan"); got != "pro" {
		t.Errorf("upstream x-user-plan = %q, want the plan claim", got)
	}
	if _, ok := e.Headers["authorization"]; ok {
		t.Errorf("upstream saw the Authorization header; it must be stripped")
	}
	if rid := Header(t, e, "x-request-id"); rid == "" {
		t.Errorf("upstream saw no x-request-id")
	} else if got := resp.Header.Get("X-Request-Id"); got != "" && got != rid {
		t.Errorf("response x-request-id %q differs from the one the upstream saw %q", got, rid)
	}

	// The scheme is case-insensitive (RFC 6750 / RFC 9110 §11.1); /api itself is routed.
	resp = Send(t, gw, Request{Path: "/api", Header: map[string][]string{"Authorization": {"bEaReR " + tok}}})
	if resp.Status != http.StatusOK {
		t.Fatalf("\"bEaReR\" scheme on /api: want 200, got:\n%s", resp)
	}
	if e := Echo(t, resp); e.Path != "/" || Header(t, e, "x-api-key") != "alice" {
		t.Errorf("GET /api: upstream saw path %q x-api-key %q, want \"/\" and \"alice\"", e.Path, Header(t, e, "x-api-key"))
	}

	// A body of an allowed type is forwarded whole.
	resp = Send(t, gw, Request{Method: "POST", Path: "/api/items", Body: `{"name":"x"}`,
		Header: With(Bearer(tok), "Content-Type", "application/json; charset=utf-8")})
	if resp.Status != http.StatusOK {
		t.Fatalf("POST application/json: want 200, got:\n%s", resp)
	}
	if e := Echo(t, resp); e.Method != "POST" || e.BodyBytes != int64(len(`{"name":"x"}`)) {
		t.Errorf("POST: upstream saw %s with %d body bytes", e.Method, e.BodyBytes)
	}
}

func spoofedProtected(t *testing.T, gw *harness.Gateway, s *seen) {
	tok := Token(harness.TestSecret, "alice", jwttest.Claims{"email": "alice@example.com"}) // no plan claim
	s.add(tok)
	h := Bearer(tok)
	h = With(h, "X-Api-Key", "mallory", "eve")
	h = With(h, "X-User-Email", "mallory@example.com")
	h = With(h, "X-User-Plan", "enterprise")
	resp := Send(t, gw, Request{Path: "/api/things", Header: h})
	if resp.Status != http.StatusOK {
		t.Fatalf("want 200, got:\n%s", resp)
	}
	e := Echo(t, resp)
	if got := Header(t, e, "x-api-key"); got != "alice" {
		t.Errorf("upstream x-api-key = %q, want only the token's \"alice\"", got)
	}
	if got := Header(t, e, "x-user-email"); got != "alice@example.com" {
		t.Errorf("upstream x-user-email = %q, want the token's claim", got)
	}
	if v, ok := e.Headers["x-user-plan"]; ok {
		t.Errorf("upstream saw x-user-plan %v: the client's copy must be removed when the token has no plan claim", v)
	}
}

func spoofedPublic(t *testing.T, gw *harness.Gateway, s *seen) {
	h := map[string][]string{
		"X-Api-Key":    {"mallory"},
		"X-User-Email": {"mallory@example.com"},
		"X-User-Plan":  {"enterprise"},
	}
	resp := Send(t, gw, Request{Path: "/api/public/items", Header: h})
	if resp.Status != http.StatusOK {
		t.Fatalf("public route without a token: want 200, got:\n%s", resp)
	}
	e := Echo(t, resp)
	if e.Path != "/public/items" {
		t.Errorf("upstream path %q, want /public/items", e.Path)
	}
	for _, name := range []string{"x-api-key", "x-user-email", "x-user-plan"} {
		if v, ok := e.Headers[name]; ok {
			t.Errorf("public route: upstream saw the client's %s %v; it must be removed", name, v)
		}
	}

	// A token on a public route is not verified, and still not forwarded.
	tok := Token(harness.TestSecret, "alice", nil)
	s.add(tok)
	resp = Send(t, gw, Request{Path: "/api/public/items", Header: With(Bearer(tok), "X-Api-Key", "mallory")})
	if resp.Status != http.StatusOK {
		t.Fatalf("public route with a token: want 200, got:\n%s", resp)
	}
	e = Echo(t, resp)
	if v, ok := e.Headers["authorization"]; ok {
		t.Errorf("public route: upstream saw Authorization %v; it must be stripped", v)
	}
	if v, ok := e.Headers["x-api-key"]; ok {
		t.Errorf("public route: upstream saw x-api-key %v", v)
	}
}

func publicMethods(t *testing.T, gw *harness.Gateway, _ *seen) {
	// The public rule lists GET and HEAD only; a POST there falls through to
	// the protected /api rule. Whole segments: /api/publicity is not /api/public.
	for _, r := range []Request{
		{Method: "POST", Path: "/api/public/items", Body: `{}`, Header: map[string][]string{"Content-Type": {"application/json"}}},
		{Path: "/api/publicity"},
	} {
		resp := Send(t, gw, r)
		ExpectError(t, gw, resp, http.StatusUnauthorized, "unauthorized")
	}
	resp := Send(t, gw, Request{Method: "HEAD", Path: "/api/public/items"})
	if resp.Status != http.StatusOK {
		t.Errorf("HEAD on the public rule: want 200, got:\n%s", resp)
	}
}

// tokenCase is one way a token can be wrong.
type tokenCase struct {
	name          string
	authorization string // the whole header; "" sends none
	message       string // exact message when the contract fixes it
	contains      string // else a fragment of it
}

func tokenCases(secret string) []tokenCase {
	now := time.Now()
	claims := func(extra jwttest.Claims) jwttest.Claims { return Claims("alice", extra) }
	unsigned := func(alg string) string {
		return jwttest.Encode(jwttest.Header{"alg": alg, "typ": "JWT"}) + "." + jwttest.Encode(claims(nil)) + "."
	}
	valid := Token(secret, "alice", nil)
	parts := strings.Split(valid, ".")
	tampered := parts[0] + "." + jwttest.Encode(claims(jwttest.Claims{"sub": "admin"})) + "." + parts[2]
	big := strings.Repeat("x", 9*1024)

	return []tokenCase{
		{name: "missing", message: "missing bearer token"},
		{name: "malformed", authorization: "Bearer not-a-jwt", message: "malformed token"},
		{name: "malformed_two_segments", authorization: "Bearer " + parts[0] + "." + parts[1], message: "malformed token"},
		{name: "alg_none", authorization: "Bearer " + unsigned("none"), contains: "algorithm"},
		{name: "alg_NoNe", authorization: "Bearer " + unsigned("NoNe"), contains: "algorithm"},
		{name: "hs384_same_secret", authorization: "Bearer " + jwttest.Sign([]byte(secret), jwttest.Header{"alg": "HS384", "typ": "JWT"}, claims(nil)), contains: "algorithm"},
		{name: "bad_signature", authorization: "Bearer " + jwttest.HS256([]byte("another-secret-that-is-long-enough-0123456789"), claims(nil)), message: "invalid signature"},
		{name: "tampered_payload", authorization: "Bearer " + tampered, message: "invalid signature"},
		{name: "expired", authorization: "Bearer " + jwttest.HS256([]byte(secret), claims(jwttest.Claims{"iat": now.Add(-20 * time.Minute).Unix(), "exp": now.Add(-10 * time.Minute).Unix()})), message: "token expired"},
		{name: "not_yet_valid", authorization: "Bearer " + jwttest.HS256([]byte(secret), claims(jwttest.Claims{"nbf": now.Add(10 * time.Minute).Unix()})), message: "token not yet valid"},
		{name: "wrong_issuer", authorization: "Bearer " + jwttest.HS256([]byte(secret), claims(jwttest.Claims{"iss": "someone-else"})), message: "invalid issuer"},
		{name: "wrong_audience", authorization: "Bearer " + jwttest.HS256([]byte(secret), claims(jwttest.Claims{"aud": []string{"another-api"}})), message: "invalid audience"},
		{name: "oversized_over_8KiB", authorization: "Bearer " + jwttest.HS256([]byte(secret), claims(jwttest.Claims{"pad": big}))},
		{name: "no_subject", authorization: "Bearer " + jwttest.HS256([]byte(secret), claims(jwttest.Claims{"sub": nil}))},
	}
}

func invalidTokens(t *testing.T, gw *harness.Gateway, s *seen) {
	for _, tc := range tokenCases(harness.TestSecret) {
		t.Run(tc.name, func(t *testing.T) {
			var h map[string][]string
			if tc.authorization != "" {
				h = map[string][]string{"Authorization": {tc.authorization}}
				s.add(strings.TrimPrefix(tc.authorization, "Bearer "))
			}
			resp := Send(t, gw, Request{Path: "/api/things?page=2", Header: h})
			e := ExpectError(t, gw, resp, http.StatusUnauthorized, "unauthorized")
			switch {
			case tc.message != "" && e.Message != tc.message:
				t.Errorf("message %q, want %q", e.Message, tc.message)
			case tc.contains != "" && !strings.Contains(e.Message, tc.contains):
				t.Errorf("message %q, want it to mention %q", e.Message, tc.contains)
			}
			challenge := resp.Header.Get("Www-Authenticate")
			if !strings.HasPrefix(challenge, `Bearer realm="portcullis"`) {
				t.Errorf("WWW-Authenticate %q, want Bearer realm=\"portcullis\"...", challenge)
			}
			if tc.authorization == "" {
				if strings.Contains(challenge, "error=") {
					t.Errorf("WWW-Authenticate %q: a request without a token gets no error code (RFC 6750 §3.1)", challenge)
				}
			} else if !strings.Contains(challenge, `error="invalid_token"`) || !strings.Contains(challenge, `error_description="`) {
				t.Errorf("WWW-Authenticate %q, want error=\"invalid_token\" and an error_description", challenge)
			}
			// Again, three times: with two workers at least one repeat meets
			// the VM that refused it, whose refused-token cache may answer;
			// the answer is the same.
			for range 3 {
				again := Send(t, gw, Request{Path: "/api/things?page=2", Header: h})
				if again.Status != resp.Status || again.Header.Get("Www-Authenticate") != challenge || ExpectError(t, gw, again, http.StatusUnauthorized, "unauthorized").Message != e.Message {
					t.Errorf("the same token again: %d %q %q, first %d %q %q", again.Status, again.Header.Get("Www-Authenticate"), again.Body, resp.Status, challenge, resp.Body)
				}
			}
			if tok := strings.TrimPrefix(tc.authorization, "Bearer "); tok != "" {
				var headers strings.Builder
				_ = resp.Header.Write(&headers)
				for _, part := range append([]string{tok}, strings.Split(tok, ".")[1:]...) {
					if len(part) >= 12 && (strings.Contains(string(resp.Body), part) || strings.Contains(headers.String(), part)) {
						t.Errorf("the response echoes token material %.24s...", part)
					}
				}
			}
		})
	}
	s.assertAbsent(t, gw.HostLogs())
	if n, ok := gw.Counter("portcullis.jwt.cache_refused"); !ok || n == 0 {
		t.Errorf("portcullis.jwt.cache_refused = %d (found: %v) after repeated bad signatures, want some refused from the cache", n, ok)
	}
}

// Health is the /health body.
type Health struct {
	Status    string `json:"status"`
	Node      string `json:"node"`
	Region    string `json:"region"`
	Version   string `json:"version"`
	Timestamp string `json:"timestamp"`
}

func health(t *testing.T, gw *harness.Gateway) Health {
	t.Helper()
	resp := Send(t, gw, Request{Path: "/health"})
	var h Health
	if resp.Status != http.StatusOK {
		t.Fatalf("/health: want 200, got:\n%s", resp)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("/health content-type %q", ct)
	}
	dec := json.NewDecoder(strings.NewReader(string(resp.Body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		t.Fatalf("/health body (%v):\n%s", err, resp)
	}
	if h.Status != "ok" || h.Version == "" {
		t.Errorf("/health = %+v", h)
	}
	if h.Node != gw.NodeID {
		t.Errorf("/health node %q, want the proxy's node id %q", h.Node, gw.NodeID)
	}
	ts, err := time.Parse(time.RFC3339, h.Timestamp)
	if err != nil {
		t.Errorf("/health timestamp %q is not RFC 3339: %v", h.Timestamp, err)
	} else if d := time.Since(ts); d < -2*time.Minute || d > 2*time.Minute {
		t.Errorf("/health timestamp %s is %v away from now", h.Timestamp, d)
	}
	return h
}

func healthOK(t *testing.T, gw *harness.Gateway, _ *seen) {
	h := health(t, gw)
	if h.Region != TestRegion {
		t.Errorf("/health region %q, want the node's locality region %q", h.Region, TestRegion)
	}
}

func notFound(t *testing.T, gw *harness.Gateway, _ *seen) {
	for _, tc := range []struct{ method, path, message string }{
		{"GET", "/nope", "Route GET /nope not found"},
		{"GET", "/apix", "Route GET /apix not found"},
		{"DELETE", "/", "Route DELETE / not found"},
		{"POST", "/health", "Route POST /health not found"},
	} {
		resp := Send(t, gw, Request{Method: tc.method, Path: tc.path + "?q=secret-query"})
		e := ExpectError(t, gw, resp, http.StatusNotFound, "not_found")
		if e.Message != tc.message {
			t.Errorf("%s %s: message %q, want %q", tc.method, tc.path, e.Message, tc.message)
		}
	}
}

func mediaType(t *testing.T, gw *harness.Gateway, s *seen) {
	tok := Token(harness.TestSecret, "alice", nil)
	s.add(tok)
	for _, r := range []Request{
		{Method: "POST", Path: "/api/items", Body: "hello", Header: With(Bearer(tok), "Content-Type", "text/plain")},
		{Method: "PUT", Path: "/api/items/1", Body: "<x/>", Header: With(Bearer(tok), "Content-Type", "application/xml")},
		{Method: "PATCH", Path: "/api/items/1", Body: `{"a":1}`, Header: With(Bearer(tok), "Content-Type", "application/jsonx")},
		{Method: "POST", Path: "/api/items", Body: `{"a":1}`, Header: Bearer(tok)}, // a body with no Content-Type at all
	} {
		resp := Send(t, gw, r)
		ExpectError(t, gw, resp, http.StatusUnsupportedMediaType, "unsupported_media_type")
	}
}

func passThrough(t *testing.T, gw *harness.Gateway, s *seen) {
	// The upstream's own errors are not the gateway's: status and body pass unchanged.
	tok := Token(harness.TestSecret, "alice", nil)
	s.add(tok)
	for _, code := range []int{404, 418, 500} {
		resp := Send(t, gw, Request{Path: "/api/status/" + strconv.Itoa(code), Header: Bearer(tok)})
		if resp.Status != code {
			t.Errorf("upstream %d: gateway answered:\n%s", code, resp)
			continue
		}
		if e := Echo(t, resp); e.Status != code || Header(t, e, "x-api-key") != "alice" {
			t.Errorf("upstream %d: body is not the upstream's: %+v", code, e)
		}
	}
}

func upstreamDown(t *testing.T, gw *harness.Gateway) {
	tok := Token(harness.TestSecret, "alice", nil)
	for _, r := range []Request{
		{Path: "/api/things", Header: Bearer(tok)},
		{Method: "POST", Path: "/api/things", Body: `{}`, Header: With(Bearer(tok), "Content-Type", "application/json")},
	} {
		resp := Send(t, gw, r)
		ExpectError(t, gw, resp, http.StatusBadGateway, "upstream_error")
	}
	if n, ok := gw.Counter("portcullis.upstream_error.unreachable"); !ok || n < 2 {
		t.Errorf("plugin counter portcullis.upstream_error.unreachable = %d (exists: %v), want >= 2", n, ok)
	}
}

func upstreamTimeout(t *testing.T, gw *harness.Gateway) {
	tok := Token(harness.TestSecret, "alice", nil)
	start := time.Now()
	resp := Send(t, gw, Request{Path: "/api/slow?ms=5000", Header: Bearer(tok)})
	ExpectError(t, gw, resp, http.StatusGatewayTimeout, "upstream_error")
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("the 504 took %v; the route timeout is %v", d, SlowRouteTimeout)
	}
}
