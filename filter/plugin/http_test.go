//go:build !wasip1

package plugin

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/portcullis/portcullis/internal/jwttest"
)

const (
	testSecretEnv = "PORTCULLIS_TEST_SECRET"
	testSecret    = "test-secret-0123456789-abcdefghijklmnop"
)

// publicConfig needs no secret, so it runs on every runner.
const publicConfig = `{
  "identity": {"claim_headers": {"email": "x-user-email"}},
  "routes": [{"name": "public", "prefix": "/api/public", "public": true}],
  "health": {"allow_cidrs": ["127.0.0.0/8", "::1/128"]}
}`

const protectedConfig = `{
  "jwt": {"secrets": [{"env": "` + testSecretEnv + `"}], "issuer": "portcullis-test", "audiences": ["api"]},
  "identity": {"claim_headers": {"email": "x-user-email", "plan": "x-user-plan"}},
  "routes": [
    {"name": "public", "prefix": "/api/public", "public": true},
    {"name": "api", "prefix": "/api"}
  ]
}`

// request is one emulated HTTP request through the plugin.
type request struct {
	method, path string
	headers      [][2]string
	body         bool
}

func (q request) send(host proxytest.HostEmulator) (uint32, types.Action) {
	id := host.InitializeHttpContext()
	headers := append([][2]string{{":method", q.method}, {":path", q.path}, {":authority", "gw.test"}, {"x-request-id", "req-1"}}, q.headers...)
	return id, host.CallOnRequestHeaders(id, headers, !q.body)
}

// envelope decodes the JSON error envelope of a local reply.
func envelope(t *testing.T, resp *proxytest.LocalHttpResponse) map[string]string {
	t.Helper()
	var e map[string]string
	if err := json.Unmarshal(resp.Data, &e); err != nil {
		t.Fatalf("local reply is not a JSON object: %q", resp.Data)
	}
	if ct, _ := headerValue(resp.Headers, "content-type"); ct != "application/json" {
		t.Errorf("content-type = %q, want application/json", ct)
	}
	return e
}

func TestHealth(t *testing.T) {
	eachRunner(t, func(t *testing.T, r runner) {
		host := mustStart(t, r, publicConfig,
			property{[]string{"xds", "node", "id"}, "node-7"},
			property{[]string{"xds", "node", "locality", "region"}, "eu-west-1"},
			property{[]string{"source", "address"}, "127.0.0.1:40000"})
		id, action := request{method: "GET", path: "/health"}.send(host)
		if action != types.ActionPause {
			t.Fatalf("action = %v, want Pause after a local reply", action)
		}
		resp := host.GetSentLocalResponse(id)
		if resp == nil || resp.StatusCode != 200 {
			t.Fatalf("health reply = %+v, want 200", resp)
		}
		var report map[string]string
		if err := json.Unmarshal(resp.Data, &report); err != nil {
			t.Fatalf("health body %q: %v", resp.Data, err)
		}
		if report["status"] != "ok" || report["node"] != "node-7" || report["region"] != "eu-west-1" || report["version"] != Version {
			t.Errorf("health report = %v", report)
		}
		if _, err := time.Parse(time.RFC3339, report["timestamp"]); err != nil {
			t.Errorf("timestamp %q is not RFC 3339", report["timestamp"])
		}
	})
}

func TestHealthAllowlistRefusesOtherClients(t *testing.T) {
	eachRunner(t, func(t *testing.T, r runner) {
		host := mustStart(t, r, publicConfig, property{[]string{"source", "address"}, "10.1.2.3:5555"})
		id, _ := request{method: "GET", path: "/health"}.send(host)
		resp := host.GetSentLocalResponse(id)
		if resp == nil || resp.StatusCode != 403 {
			t.Fatalf("reply = %+v, want 403", resp)
		}
		if e := envelope(t, resp); e["error"] != "forbidden" || e["request_id"] != "req-1" {
			t.Errorf("envelope = %v", e)
		}
	})
}

func TestUnknownRouteIs404JSON(t *testing.T) {
	eachRunner(t, func(t *testing.T, r runner) {
		host := mustStart(t, r, publicConfig)
		id, action := request{method: "GET", path: "/x?secret=1"}.send(host)
		resp := host.GetSentLocalResponse(id)
		if action != types.ActionPause || resp == nil || resp.StatusCode != 404 {
			t.Fatalf("action %v reply %+v, want Pause and 404", action, resp)
		}
		e := envelope(t, resp)
		if e["error"] != "not_found" || e["message"] != "Route GET /x not found" || e["request_id"] != "req-1" {
			t.Errorf("envelope = %v", e)
		}
		if n := counterValue(t, host, "rejected.route_not_found"); n != 1 {
			t.Errorf("route_not_found counter = %d, want 1", n)
		}
		assertLogged(t, host, `"status":404`, `"path":"/x"`)
		assertNotLogged(t, host, "secret=1")
	})
}

func TestErrorLinesAreBoundedPerReason(t *testing.T) {
	eachRunner(t, func(t *testing.T, r runner) {
		host := mustStart(t, r, strings.Replace(publicConfig, `"routes"`, `"log": {"errors_per_second": 2}, "routes"`, 1))
		start := time.Now()
		for range 5 {
			request{method: "GET", path: "/nope"}.send(host)
		}
		want := 2
		if time.Now().Unix() != start.Unix() {
			want = 4 // the five crossed into another second: two lines for each
		}
		lines := 0
		for _, l := range allLogs(host) {
			if strings.Contains(l, `"event":"gateway_error"`) {
				lines++
			}
		}
		if lines > want || lines < 2 {
			t.Errorf("%d error lines for 5 refusals, want 2 per second (%d)", lines, want)
		}
		if n := counterValue(t, host, "rejected.route_not_found"); n != 5 {
			t.Errorf("route_not_found counter = %d, want every refusal counted (5)", n)
		}
	})
}

func TestAmbiguousPathIs400(t *testing.T) {
	eachRunner(t, func(t *testing.T, r runner) {
		host := mustStart(t, r, publicConfig)
		for _, path := range []string{"/api/public/../admin", "/api/public/%2e%2e/admin", "/api/public\\..\\admin"} {
			id, _ := request{method: "GET", path: path}.send(host)
			if resp := host.GetSentLocalResponse(id); resp == nil || resp.StatusCode != 400 {
				t.Errorf("%s: reply %+v, want 400", path, resp)
			}
		}
	})
}

func TestPublicRouteForwardsAndStripsIdentityHeaders(t *testing.T) {
	eachRunner(t, func(t *testing.T, r runner) {
		host := mustStart(t, r, publicConfig)
		id, action := request{method: "GET", path: "/api/public/items", headers: [][2]string{
			{"x-api-key", "mallory"}, {"x-user-email", "root@example.com"}, {"authorization", "Bearer whatever"}, {"accept", "application/json"},
		}}.send(host)
		if action != types.ActionContinue || host.GetSentLocalResponse(id) != nil {
			t.Fatalf("action %v, local reply %+v; want the request forwarded", action, host.GetSentLocalResponse(id))
		}
		got := host.GetCurrentRequestHeaders(id)
		for _, name := range []string{"x-api-key", "x-user-email", "authorization"} {
			if v, ok := headerValue(got, name); ok {
				t.Errorf("%s = %q reached the upstream; it must be stripped", name, v)
			}
		}
		if v, _ := headerValue(got, "accept"); v != "application/json" {
			t.Errorf("unrelated header lost: accept = %q", v)
		}
	})
}

func TestUnsupportedMediaTypeIs415(t *testing.T) {
	eachRunner(t, func(t *testing.T, r runner) {
		host := mustStart(t, r, publicConfig)
		cases := []struct {
			contentType string
			body        bool
			want        uint32 // 0: forwarded
		}{
			{"text/plain", true, 415},
			{"", true, 415},
			{"application/json; charset=utf-8", true, 0},
			{"Application/JSON", true, 0},
			{"text/plain", false, 0}, // no body: nothing to type-check
		}
		for _, c := range cases {
			headers := [][2]string{}
			if c.contentType != "" {
				headers = append(headers, [2]string{"content-type", c.contentType})
			}
			id, _ := request{method: "POST", path: "/api/public/items", headers: headers, body: c.body}.send(host)
			resp := host.GetSentLocalResponse(id)
			switch {
			case c.want == 0 && resp != nil:
				t.Errorf("%q body=%v: got %d, want forwarded", c.contentType, c.body, resp.StatusCode)
			case c.want != 0 && (resp == nil || resp.StatusCode != c.want):
				t.Errorf("%q body=%v: got %+v, want %d", c.contentType, c.body, resp, c.want)
			case c.want != 0 && envelope(t, resp)["error"] != "unsupported_media_type":
				t.Errorf("%q: envelope %s", c.contentType, resp.Data)
			}
		}
	})
}

func TestBadConfigRefusesToStartNamingTheField(t *testing.T) {
	eachRunner(t, func(t *testing.T, r runner) {
		cases := map[string]struct{ config, field string }{
			"unknown field":    {`{"routes":[{"prefix":"/a","public":true}],"helth":{}}`, "helth: unknown field"},
			"nested unknown":   {`{"routes":[{"prefix":"/a","public":true,"pubic":true}]}`, "routes[0].pubic: unknown field"},
			"wrong type":       {`{"routes":[{"prefix":"/a","public":"yes"}]}`, "routes[0].public: must be a boolean"},
			"leeway too large": {`{"jwt":{"secrets":[{"env":"X"}],"leeway_seconds":900},"routes":[{"prefix":"/a"}]}`, "jwt."},
			"missing jwt":      {`{"routes":[{"prefix":"/a"}]}`, "jwt: required"},
			"secret env unset": {`{"jwt":{"secrets":[{"env":"PORTCULLIS_UNSET_VAR"}]},"routes":[{"prefix":"/a"}]}`, `jwt.secrets[0].env: environment variable "PORTCULLIS_UNSET_VAR" is not set`},
			"empty":            {``, "the configuration is empty"},
		}
		for name, c := range cases {
			t.Run(name, func(t *testing.T) { assertRefused(t, r, c.config, c.field) })
		}
	})
}

func TestProtectedRoute(t *testing.T) {
	t.Setenv(testSecretEnv, testSecret)
	now := time.Now()
	valid := func(mut func(jwttest.Claims)) string {
		c := jwttest.Claims{"sub": "alice", "iss": "portcullis-test", "aud": "api", "exp": now.Add(time.Hour).Unix(), "email": "alice@example.com", "plan": "pro"}
		if mut != nil {
			mut(c)
		}
		return jwttest.HS256([]byte(testSecret), c)
	}
	rejections := map[string]struct {
		authorization string
		message       string
		challenge     string // substring of WWW-Authenticate
	}{
		"missing":        {"", "missing bearer token", `Bearer realm="portcullis"`},
		"other scheme":   {"Basic YWxpY2U6cHc=", "missing bearer token", `Bearer realm="portcullis"`},
		"malformed":      {"Bearer a.b", "malformed token", `error="invalid_token"`},
		"bad signature":  {"Bearer " + jwttest.HS256([]byte("another-secret-0123456789-abcdefghij"), jwttest.Valid("alice", now, time.Hour)), "invalid signature", `error_description="invalid signature"`},
		"expired":        {"Bearer " + valid(func(c jwttest.Claims) { c["exp"] = now.Add(-time.Hour).Unix() }), "token expired", `error_description="token expired"`},
		"not yet valid":  {"Bearer " + valid(func(c jwttest.Claims) { c["nbf"] = now.Add(time.Hour).Unix() }), "token not yet valid", `invalid_token`},
		"wrong issuer":   {"Bearer " + valid(func(c jwttest.Claims) { c["iss"] = "evil" }), "invalid issuer", `invalid_token`},
		"wrong audience": {"Bearer " + valid(func(c jwttest.Claims) { c["aud"] = []string{"other"} }), "invalid audience", `invalid_token`},
		"no subject":     {"Bearer " + valid(func(c jwttest.Claims) { delete(c, "sub") }), "token lacks the identity claim", `invalid_token`},
		"alg none":       {"Bearer " + jwttest.Encode(jwttest.Header{"alg": "none"}) + "." + jwttest.Encode(jwttest.Valid("alice", now, time.Hour)) + ".", "unsupported token algorithm", `invalid_token`},
		"too large":      {"Bearer " + valid(func(c jwttest.Claims) { c["pad"] = strings.Repeat("x", 9000) }), "token too large", `invalid_token`},
	}
	eachRunner(t, func(t *testing.T, r runner) {
		if !r.hasEnv {
			t.Skip("proxytest.NewWasmVMContext gives the module no environment, so no JWT secret; the compiled plugin's token handling runs in e2e/ (wazero host and Envoy)")
		}
		host := mustStart(t, r, protectedConfig)
		for name, c := range rejections {
			t.Run(name, func(t *testing.T) {
				var headers [][2]string
				if c.authorization != "" {
					headers = append(headers, [2]string{"authorization", c.authorization})
				}
				id, action := request{method: "GET", path: "/api/items", headers: headers}.send(host)
				resp := host.GetSentLocalResponse(id)
				if action != types.ActionPause || resp == nil || resp.StatusCode != 401 {
					t.Fatalf("action %v reply %+v, want Pause and 401", action, resp)
				}
				e := envelope(t, resp)
				if e["error"] != "unauthorized" || e["message"] != c.message || e["request_id"] != "req-1" {
					t.Errorf("envelope = %v, want message %q", e, c.message)
				}
				if ch, _ := headerValue(resp.Headers, "www-authenticate"); !strings.Contains(ch, c.challenge) {
					t.Errorf("WWW-Authenticate = %q, want it to contain %q", ch, c.challenge)
				}
				if token, _ := strings.CutPrefix(c.authorization, "Bearer "); token != "" && strings.Contains(string(resp.Data), token) {
					t.Errorf("the reply echoes the token")
				}
			})
		}
		for _, c := range rejections {
			if token, _ := strings.CutPrefix(c.authorization, "Bearer "); len(token) > 8 {
				assertNotLogged(t, host, token)
			}
		}
		assertNotLogged(t, host, testSecret)

		t.Run("valid token forwards identity", func(t *testing.T) {
			token := valid(nil)
			id, action := request{method: "GET", path: "/api/items", headers: [][2]string{
				{"authorization", "bearer " + token}, {"x-api-key", "mallory"}, {"x-user-plan", "enterprise"},
			}}.send(host)
			if action != types.ActionContinue || host.GetSentLocalResponse(id) != nil {
				t.Fatalf("action %v reply %+v, want forwarded", action, host.GetSentLocalResponse(id))
			}
			got := host.GetCurrentRequestHeaders(id)
			want := map[string]string{"x-api-key": "alice", "x-user-email": "alice@example.com", "x-user-plan": "pro"}
			for name, v := range want {
				if g, _ := headerValue(got, name); g != v {
					t.Errorf("%s = %q, want %q", name, g, v)
				}
			}
			if v, ok := headerValue(got, "authorization"); ok {
				t.Errorf("authorization %q reached the upstream", v)
			}
			assertNotLogged(t, host, token)
		})
	})
}

func TestKeepAuthorization(t *testing.T) {
	t.Setenv(testSecretEnv, testSecret)
	config := strings.Replace(protectedConfig, `"identity": {`, `"identity": {"keep_authorization": true, `, 1)
	host := mustStart(t, runners[0], config)
	token := jwttest.HS256([]byte(testSecret), jwttest.Claims{"sub": "bob", "iss": "portcullis-test", "aud": "api", "exp": time.Now().Add(time.Minute).Unix()})
	id, _ := request{method: "GET", path: "/api/x", headers: [][2]string{{"authorization", "Bearer " + token}}}.send(host)
	if v, _ := headerValue(host.GetCurrentRequestHeaders(id), "authorization"); v != "Bearer "+token {
		t.Errorf("authorization = %q, want it kept", v)
	}
}

func TestUpstreamFailuresBecomeJSON(t *testing.T) {
	cases := []struct {
		name, details, status string
		wantStatus            string
		wantBody              bool
	}{
		{"connection refused", "upstream_reset_before_response_started{connection_failure}", "503", "502", true},
		{"no healthy upstream", "no_healthy_upstream", "503", "502", true},
		{"timeout", "upstream_response_timeout", "504", "504", true},
		{"upstream's own 503", "via_upstream", "503", "503", false},
		{"upstream's own 500", "via_upstream", "500", "500", false},
	}
	eachRunner(t, func(t *testing.T, r runner) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				host := mustStart(t, r, publicConfig, property{[]string{"response", "code_details"}, c.details})
				id, _ := request{method: "GET", path: "/api/public/x"}.send(host)
				original := []byte("upstream connect error or disconnect/reset before headers")
				host.CallOnResponseHeaders(id, [][2]string{{":status", c.status}, {"content-type", "text/plain"}, {"content-length", "58"}}, false)
				host.CallOnResponseBody(id, original, true)
				headers := host.GetCurrentResponseHeaders(id)
				if s, _ := headerValue(headers, ":status"); s != c.wantStatus {
					t.Errorf(":status = %q, want %q", s, c.wantStatus)
				}
				body := host.GetCurrentResponseBody(id)
				if !c.wantBody {
					if string(body) != string(original) {
						t.Errorf("upstream body changed to %q", body)
					}
					return
				}
				var e map[string]string
				if err := json.Unmarshal(body, &e); err != nil || e["error"] != "upstream_error" || e["request_id"] != "req-1" {
					t.Errorf("body = %q, want the upstream_error envelope", body)
				}
				if ct, _ := headerValue(headers, "content-type"); ct != "application/json" {
					t.Errorf("content-type = %q", ct)
				}
				if _, ok := headerValue(headers, "content-length"); ok {
					t.Errorf("stale content-length kept")
				}
			})
		}
	})
}

func assertLogged(t *testing.T, host proxytest.HostEmulator, parts ...string) {
	t.Helper()
	for _, line := range allLogs(host) {
		if containsAll(line, parts) {
			return
		}
	}
	t.Errorf("no log line contains %q; logs: %q", parts, allLogs(host))
}

func assertNotLogged(t *testing.T, host proxytest.HostEmulator, secret string) {
	t.Helper()
	for _, line := range allLogs(host) {
		if strings.Contains(line, secret) {
			t.Errorf("a log line contains secret material: %q", line)
		}
	}
}

func allLogs(host proxytest.HostEmulator) []string {
	var out []string
	for _, get := range []func() []string{host.GetTraceLogs, host.GetDebugLogs, host.GetInfoLogs, host.GetWarnLogs, host.GetErrorLogs, host.GetCriticalLogs} {
		out = append(out, get()...)
	}
	return out
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
