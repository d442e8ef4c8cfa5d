//go:build !wasip1

package plugin

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// fleetConfig limits protected routes and (by the x-client-id header) the
// public route through the ratelimit service.
func fleetConfig(onFailure string) string {
	return `{
  "jwt": {"secrets": [{"env": "` + testSecretEnv + `"}], "issuer": "portcullis-test", "audiences": ["api"]},
  "routes": [{"name": "public", "prefix": "/api/public", "public": true}, {"name": "api", "prefix": "/api"}],
  "rate_limit": {"mode": "fleet", "public_key": "header:X-Client-Id",
    "fleet": {"cluster": "rl", "authority": "ratelimit.test", "domain": "gw", "timeout_ms": 80, "on_failure": "` + onFailure + `", "protocol": "json"}}
}`
}

// Answers of envoyproxy/ratelimit for a limit of 3 per minute.
const (
	answerOK   = `{"overallCode":"OK","statuses":[{"code":"OK","currentLimit":{"requestsPerUnit":3,"unit":"MINUTE"},"limitRemaining":2,"durationUntilReset":"14s"}]}`
	answerOver = `{"overallCode":"OVER_LIMIT","statuses":[{"code":"OVER_LIMIT","currentLimit":{"requestsPerUnit":3,"unit":"MINUTE"},"durationUntilReset":"14s"}]}`
)

// fleetRequest sends a request and returns its stream id and the one
// callout it made (nil when none).
func fleetRequest(t *testing.T, host proxytest.HostEmulator, q request) (uint32, types.Action, *proxytest.HttpCalloutAttribute) {
	t.Helper()
	id, action := q.send(host)
	calls := host.GetCalloutAttributesFromContext(id)
	switch len(calls) {
	case 0:
		return id, action, nil
	case 1:
		return id, action, &calls[0]
	}
	t.Fatalf("%d callouts for one request", len(calls))
	return 0, 0, nil
}

func TestFleetCallsTheServiceAndForwards(t *testing.T) {
	t.Setenv(testSecretEnv, testSecret)
	host := mustStart(t, runners[0], fleetConfig("allow"))
	id, action, call := fleetRequest(t, host, request{method: "GET", path: "/api/items", headers: [][2]string{{"authorization", rateToken(t, "alice", nil)}}})
	if action != types.ActionPause || call == nil {
		t.Fatalf("action %v, callout %v: want the request paused on a callout", action, call)
	}
	if call.Upstream != "rl" {
		t.Errorf("callout cluster = %q, want rl", call.Upstream)
	}
	for name, want := range map[string]string{":method": "POST", ":path": "/json", ":authority": "ratelimit.test", "content-type": "application/json"} {
		if got, _ := headerValue(call.Headers, name); got != want {
			t.Errorf("callout %s = %q, want %q", name, got, want)
		}
	}
	var body struct {
		Domain      string
		Descriptors []struct{ Entries []struct{ Key, Value string } }
	}
	if err := json.Unmarshal(call.Body, &body); err != nil {
		t.Fatalf("callout body %q: %v", call.Body, err)
	}
	if got, _ := json.Marshal(body); string(got) != `{"Domain":"gw","Descriptors":[{"Entries":[{"Key":"api_key","Value":"alice"},{"Key":"route","Value":"api"}]}]}` {
		t.Errorf("callout body = %s", got)
	}
	host.CallOnHttpCallResponse(call.CalloutID, [][2]string{{":status", "200"}}, nil, []byte(answerOK))
	if resp := host.GetSentLocalResponse(id); resp != nil {
		t.Fatalf("local reply %d %s, want forwarded", resp.StatusCode, resp.Data)
	}
	if got := host.GetCurrentHttpStreamAction(id); got != types.ActionContinue {
		t.Fatalf("stream action after the answer = %v, want Continue", got)
	}
	host.CallOnResponseHeaders(id, [][2]string{{":status", "200"}}, true)
	got := host.GetCurrentResponseHeaders(id)
	pk := headerPK(t, got)
	for name, want := range map[string]string{"x-ratelimit-limit": "3", "x-ratelimit-remaining": "2", "x-ratelimit-reset": "14", "ratelimit-policy": `"fleet";q=3;w=60;pk=` + pk, "ratelimit": `"fleet";r=2;t=14;pk=` + pk} {
		if g, _ := headerValue(got, name); g != want {
			t.Errorf("%s = %q, want %q", name, g, want)
		}
	}
	if n := counterValue(t, host, "ratelimit.fleet.calls"); n != 1 {
		t.Errorf("fleet.calls = %d", n)
	}
}

func TestFleetOverLimitIsRememberedUntilReset(t *testing.T) {
	t.Setenv(testSecretEnv, testSecret)
	host := mustStart(t, runners[0], fleetConfig("allow"))
	alice := [][2]string{{"authorization", rateToken(t, "alice", nil)}}
	id, _, call := fleetRequest(t, host, request{method: "GET", path: "/api/items", headers: alice})
	host.CallOnHttpCallResponse(call.CalloutID, [][2]string{{":status", "429"}}, nil, []byte(answerOver))
	resp := host.GetSentLocalResponse(id)
	if resp == nil || resp.StatusCode != 429 {
		t.Fatalf("reply %+v, want 429", resp)
	}
	var e struct {
		Error      string `json:"error"`
		RetryAfter int    `json:"retry_after"`
	}
	if err := json.Unmarshal(resp.Data, &e); err != nil || e.Error != "rate_limit_exceeded" || e.RetryAfter != 14 {
		t.Errorf("body %s: %+v %v", resp.Data, e, err)
	}
	if ra, _ := headerValue(resp.Headers, "retry-after"); ra != "14" {
		t.Errorf("Retry-After = %q, want 14", ra)
	}

	// The same key and route again: refused from the blocklist, no callout.
	id, _, call = fleetRequest(t, host, request{method: "GET", path: "/api/other", headers: alice})
	if call != nil {
		t.Fatal("a blocked key made a callout")
	}
	if resp := host.GetSentLocalResponse(id); resp == nil || resp.StatusCode != 429 {
		t.Fatalf("blocked key: reply %+v, want 429", resp)
	} else if rem, _ := headerValue(resp.Headers, "x-ratelimit-remaining"); rem != "0" {
		t.Errorf("blocked key: X-RateLimit-Remaining = %q, want 0", rem)
	}
	// Another key still asks the service.
	if _, _, call = fleetRequest(t, host, request{method: "GET", path: "/api/items", headers: [][2]string{{"authorization", rateToken(t, "bob", nil)}}}); call == nil {
		t.Fatal("another key was not sent to the service")
	}
	if calls, cached := counterValue(t, host, "ratelimit.fleet.calls"), counterValue(t, host, "ratelimit.fleet.blocklisted"); calls != 2 || cached != 1 {
		t.Errorf("calls = %d, blocklisted = %d; want 2 and 1", calls, cached)
	}
}

func TestFleetFailureModes(t *testing.T) {
	t.Setenv(testSecretEnv, testSecret)
	failures := map[string]struct {
		headers [][2]string
		body    string
	}{
		"no answer (timeout)": {nil, ""},
		"service error":       {[][2]string{{":status", "400"}}, "Bad Request\n"},
		"garbage":             {[][2]string{{":status", "200"}}, `{"overallCode":`},
	}
	for name, f := range failures {
		t.Run(name, func(t *testing.T) {
			for _, mode := range []string{"allow", "deny"} {
				t.Run(mode, func(t *testing.T) {
					host := mustStart(t, runners[0], fleetConfig(mode))
					id, _, call := fleetRequest(t, host, request{method: "GET", path: "/api/items", headers: [][2]string{{"authorization", rateToken(t, "alice", nil)}}})
					host.CallOnHttpCallResponse(call.CalloutID, f.headers, nil, []byte(f.body))
					resp := host.GetSentLocalResponse(id)
					switch {
					case mode == "allow" && resp != nil:
						t.Errorf("reply %d %s, want forwarded", resp.StatusCode, resp.Data)
					case mode == "allow" && host.GetCurrentHttpStreamAction(id) != types.ActionContinue:
						t.Errorf("stream not resumed")
					case mode == "deny" && (resp == nil || resp.StatusCode != 429):
						t.Errorf("reply %+v, want 429", resp)
					case mode == "deny" && !strings.Contains(string(resp.Data), "rate limit service unavailable"):
						t.Errorf("body %s", resp.Data)
					}
					if n := counterValue(t, host, "ratelimit.fleet.unavailable"); n != 1 {
						t.Errorf("fleet.unavailable = %d, want 1", n)
					}
					if n, want := counterValue(t, host, "ratelimit.fleet.no_answer"), uint64(len(f.headers)); (n == 1) != (want == 0) {
						t.Errorf("fleet.no_answer = %d, want 1 only when nothing answered", n)
					}
				})
			}
		})
	}
}

func TestFleetAnswerAfterTheClientLeft(t *testing.T) {
	t.Setenv(testSecretEnv, testSecret)
	host := mustStart(t, runners[0], fleetConfig("allow"))
	id, _, call := fleetRequest(t, host, request{method: "GET", path: "/api/items", headers: [][2]string{{"authorization", rateToken(t, "alice", nil)}}})
	host.CompleteHttpContext(id)
	host.CallOnHttpCallResponse(call.CalloutID, [][2]string{{":status", "429"}}, nil, []byte(answerOver))
	if logs := host.GetErrorLogs(); len(logs) != 0 {
		t.Errorf("error logs: %q", logs)
	}
}

// Public routes are counted by the configured header, on both runners (no
// secret needed); without the header they are not counted.
func TestFleetPublicRouteByHeader(t *testing.T) {
	config := `{
  "routes": [{"name": "public", "prefix": "/api/public", "public": true}],
  "rate_limit": {"mode": "fleet", "public_key": "header:x-client-id", "fleet": {"cluster": "rl", "protocol": "json"}}
}`
	eachRunner(t, func(t *testing.T, r runner) {
		host := mustStart(t, r, config)
		_, _, call := fleetRequest(t, host, request{method: "GET", path: "/api/public/x", headers: [][2]string{{"x-client-id", "tenant-7"}}})
		if call == nil {
			t.Fatal("no callout for a public route with the key header")
		}
		if !strings.Contains(string(call.Body), `{"key":"client_header","value":"tenant-7"},{"key":"route","value":"public"}`) {
			t.Errorf("callout body = %s", call.Body)
		}
		id, action, call := fleetRequest(t, host, request{method: "GET", path: "/api/public/x"})
		if call != nil || action != types.ActionContinue || host.GetSentLocalResponse(id) != nil {
			t.Errorf("without the header: action %v, callout %v; want forwarded uncounted", action, call)
		}
	})
}

func TestFleetBadConfigNamesTheField(t *testing.T) {
	t.Setenv(testSecretEnv, testSecret)
	base := fleetConfig("allow")
	cases := map[string]string{
		"rate_limit.default":           strings.Replace(base, `"mode": "fleet",`, `"mode": "fleet", "default": [{"requests": 1, "window_seconds": 1}],`, 1),
		"rate_limit.fleet.on_failure":  fleetConfig("sometimes"),
		"rate_limit.fleet.timeout_ms":  strings.Replace(base, `"timeout_ms": 80`, `"timeout_ms": 60000`, 1),
		"rate_limit.fleet.cluster":     strings.Replace(base, `"cluster": "rl"`, `"cluster": "r l"`, 1),
		"rate_limit.mode":              strings.Replace(base, `"mode": "fleet"`, `"mode": "global"`, 1),
		"rate_limit.fleet":             strings.Replace(base, `"mode": "fleet",`, ``, 1),
		"rate_limit.public_key":        strings.Replace(base, `"header:X-Client-Id"`, `"cookie:id"`, 1),
		"rate_limit.fleet.block_slots": strings.Replace(base, `"timeout_ms": 80`, `"block_slots": -1`, 1),
		"rate_limit.fleet.protocol":    strings.Replace(base, `"protocol": "json"`, `"protocol": "h2"`, 1),
	}
	for field, config := range cases {
		t.Run(field, func(t *testing.T) { assertRefused(t, runners[0], config, field) })
	}
}
