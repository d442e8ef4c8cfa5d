//go:build !wasip1

package plugin

import (
	"strconv"
	"testing"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/portcullis/portcullis/filter/fleet"
)

// monthlyQuotaConfig counts a public route by a header against 3 requests
// per calendar month in UTC+01:00.
const monthlyQuotaConfig = `{
  "routes": [{"name": "open", "prefix": "/api", "public": true}],
  "rate_limit": {"public_key": "header:x-client", "default": [{"requests": 3, "calendar": "month"}], "utc_offset_minutes": 60}
}`

// The month window crosses a month boundary under an injected clock: the
// quota is spent until the last second of January in UTC+01:00 and full
// again on the first of February there. (The compiled plugin does the same
// in e2e/quota_test.go, on the wazero host with an injected wall clock.)
func TestMonthlyQuotaCrossesAMonthBoundary(t *testing.T) {
	now := time.Date(2026, 1, 31, 22, 59, 58, 0, time.UTC) // 23:59:58 in UTC+01:00
	t.Cleanup(func() { clockNow = time.Now })
	clockNow = func() time.Time { return now }
	opt := proxytest.NewEmulatorOption().WithVMContext(&VM{}).
		WithPluginConfiguration([]byte(monthlyQuotaConfig))
	host, reset := proxytest.NewHostEmulator(opt)
	defer reset()
	if host.StartPlugin() != types.OnPluginStartStatusOK {
		t.Fatalf("start: %v", host.GetCriticalLogs())
	}
	send := func() (*proxytest.LocalHttpResponse, [][2]string) {
		id, _ := request{method: "GET", path: "/api/x", headers: [][2]string{{"x-client", "c1"}}}.send(host)
		if resp := host.GetSentLocalResponse(id); resp != nil {
			return resp, resp.Headers
		}
		host.CallOnResponseHeaders(id, [][2]string{{":status", "200"}}, true)
		return nil, host.GetCurrentResponseHeaders(id)
	}
	for i := range 3 {
		if resp, headers := send(); resp != nil {
			t.Fatalf("request %d: %d %s, want forwarded", i+1, resp.StatusCode, resp.Data)
		} else if policy, _ := headerValue(headers, "ratelimit-policy"); policy == "" {
			t.Fatalf("request %d: no RateLimit-Policy", i+1)
		} else if p, _ := dropPK(t, policy); p != `"default";q=3;w=2592000` {
			t.Errorf("RateLimit-Policy %q, want the month's nominal 30 days as w", p)
		}
	}
	resp, _ := send()
	if resp == nil || resp.StatusCode != 429 {
		t.Fatalf("4th request in January: %+v, want 429", resp)
	}
	if retry, _ := headerValue(resp.Headers, "retry-after"); retry != "2" {
		t.Errorf("Retry-After %q, want 2 (the month ends in 2 s)", retry)
	}
	now = now.Add(2 * time.Second) // 1 February, 00:00:00 in UTC+01:00
	for i := range 3 {
		if resp, headers := send(); resp != nil {
			t.Fatalf("February request %d: %d %s, want forwarded", i+1, resp.StatusCode, resp.Data)
		} else if rl, _ := headerValue(headers, "ratelimit"); rl == "" {
			t.Errorf("no RateLimit header")
		} else if r, _ := dropPK(t, rl); r != `"default";r=`+strconv.Itoa(2-i)+`;t=2419200` {
			t.Errorf("February request %d: RateLimit %q, want r=%d and t until 1 March (28 days)", i+1, r, 2-i)
		}
	}
	if resp, _ := send(); resp == nil || resp.StatusCode != 429 {
		t.Fatalf("4th request in February: %+v, want 429", resp)
	}
}

// meteredConfig counts a public route by a header against 10 per minute
// and charges what the response's x-tokens-used reports.
const meteredConfig = `{
  "routes": [{"name": "llm", "prefix": "/api", "public": true, "cost_header": "x-tokens-used"}],
  "rate_limit": {"public_key": "header:x-client", "default": [{"requests": 10, "window_seconds": 60}]}
}`

// The cost a response reports is charged after it (natively and in the
// compiled plugin): at 5 a request, 2 of 10 are admitted; a value that is
// not a number is ignored and counted, and the response goes on.
func TestCostHeaderChargedAfterTheResponse(t *testing.T) {
	eachRunner(t, func(t *testing.T, r runner) {
		host := mustStart(t, r, meteredConfig)
		send := func(client, tokens string) *proxytest.LocalHttpResponse {
			id, _ := request{method: "GET", path: "/api/chat", headers: [][2]string{{"x-client", client}}}.send(host)
			if resp := host.GetSentLocalResponse(id); resp != nil {
				return resp
			}
			if action := host.CallOnResponseHeaders(id, [][2]string{{":status", "200"}, {"x-tokens-used", tokens}}, true); action != types.ActionContinue {
				t.Fatalf("response headers: action %v, want the response to go on", action)
			}
			if got, _ := headerValue(host.GetCurrentResponseHeaders(id), "x-tokens-used"); got != tokens {
				t.Errorf("x-tokens-used %q on the response, want the upstream's %q", got, tokens)
			}
			return nil
		}
		admitted := 0
		for range 10 {
			if send("c1", "5") == nil {
				admitted++
			}
		}
		if admitted != 2 {
			t.Errorf("admitted %d, want 10/5 = 2", admitted)
		}
		for _, bad := range []string{"lots", "-3", "12345678901"} {
			if resp := send("c2", bad); resp != nil {
				t.Errorf("x-tokens-used %q: local reply %d, want forwarded", bad, resp.StatusCode)
			}
		}
		if n := counterValue(t, host, "ratelimit.charged"); n != 2 {
			t.Errorf("ratelimit.charged = %d, want 2", n)
		}
		if n := counterValue(t, host, "ratelimit.fault.cost_header_invalid"); n != 3 {
			t.Errorf("ratelimit.fault.cost_header_invalid = %d, want 3", n)
		}
	})
}

// In fleet mode the debt goes to the service as a hitsAddend call, made
// from the root context on the next tick: the response is not delayed.
func TestCostHeaderFleetCall(t *testing.T) {
	for _, proto := range []struct {
		name     fleet.Protocol
		config   string
		path     string
		headers  [][2]string
		trailers [][2]string
		answer   func(t *testing.T) []byte
	}{
		{fleet.JSON, "json", "/json", [][2]string{{":status", "200"}}, nil, func(*testing.T) []byte { return []byte(answerOK) }},
		{fleet.GRPC, "grpc", fleet.GRPCPath, [][2]string{{":status", "200"}}, [][2]string{{"grpc-status", "0"}}, func(t *testing.T) []byte { return grpcAnswer(t, 1, 2) }},
	} {
		eachRunner(t, func(t *testing.T, r runner) {
			t.Run(proto.config, func(t *testing.T) {
				host := mustStart(t, r, `{
  "routes": [{"name": "llm", "prefix": "/api", "public": true, "cost_header": "x-tokens-used"}],
  "rate_limit": {"mode": "fleet", "public_key": "header:x-client", "fleet": {"cluster": "rl", "protocol": "`+proto.config+`"}}}`)
				id, _, call := fleetRequest(t, host, request{method: "GET", path: "/api/chat", headers: [][2]string{{"x-client", "c1"}}})
				if call == nil {
					t.Fatal("no call to the service")
				}
				host.CallOnHttpCallResponse(call.CalloutID, proto.headers, proto.trailers, proto.answer(t))
				if action := host.CallOnResponseHeaders(id, [][2]string{{":status", "200"}, {"x-tokens-used", "9"}}, true); action != types.ActionContinue {
					t.Fatalf("response headers: action %v, want the response to go on", action)
				}
				if n := len(host.GetCalloutAttributesFromContext(proxytest.PluginContextID)); n != 0 {
					t.Fatalf("%d calls before the tick", n)
				}
				host.Tick()
				calls := host.GetCalloutAttributesFromContext(proxytest.PluginContextID)
				want := proto.name.RequestBody(nil, "portcullis", fleet.HeaderEntry, "c1", "llm", 8)
				if len(calls) != 1 || calls[0].Upstream != "rl" || string(calls[0].Body) != string(want) {
					t.Fatalf("calls after the tick: %+v, want one to rl with hitsAddend 8: %q", calls, want)
				}
				if path, _ := headerValue(calls[0].Headers, ":path"); path != proto.path {
					t.Errorf("debt call :path %q, want the request's protocol's %s", path, proto.path)
				}
				if n := counterValue(t, host, "ratelimit.fleet.calls"); n != 2 {
					t.Errorf("ratelimit.fleet.calls = %d, want 2 (the request's and the debt's)", n)
				}
			})
		})
	}
}
