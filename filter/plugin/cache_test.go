//go:build !wasip1

package plugin

import (
	"strings"
	"testing"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

const cacheConfig = `{
  "routes": [{"name": "public", "prefix": "/api", "public": true}],
  "cache": {"cluster": "cachec", "authority": "store.test"}
}`

// cacheStore answers the plugin's callouts like the cache server would.
type cacheStore map[string][]byte

// serve answers every callout of stream id (and of the root context, for
// writes) and returns how many it answered.
func (s cacheStore) answer(t *testing.T, host proxytest.HostEmulator, call proxytest.HttpCalloutAttribute) {
	t.Helper()
	method, _ := headerValue(call.Headers, ":method")
	path, _ := headerValue(call.Headers, ":path")
	if call.Upstream != "cachec" {
		t.Fatalf("callout to %q, want the cache cluster", call.Upstream)
	}
	key := strings.TrimPrefix(path, "/v1/entries/")
	if auth, _ := headerValue(call.Headers, ":authority"); auth != key[:16]+".store.test" {
		t.Errorf(":authority %q does not carry the key", auth)
	}
	status := "204"
	var body []byte
	switch method {
	case "GET":
		v, ok := s[key]
		if !ok {
			status = "404"
		} else {
			status, body = "200", v
		}
	case "PUT":
		s[key] = call.Body
		if ttl, _ := headerValue(call.Headers, "x-cache-ttl"); ttl == "" {
			t.Errorf("PUT without x-cache-ttl")
		}
	case "DELETE":
		delete(s, key)
	}
	host.CallOnHttpCallResponse(call.CalloutID, [][2]string{{":status", status}}, nil, body)
}

func TestCacheMissFillThenHit(t *testing.T) {
	eachRunner(t, func(t *testing.T, r runner) {
		host := mustStart(t, r, cacheConfig)
		store := cacheStore{}
		// proxytest reuses callout ids: count the calls answered per context.
		answered := map[uint32]int{}
		answerAll := func(id uint32) {
			for calls := host.GetCalloutAttributesFromContext(id); answered[id] < len(calls); calls = host.GetCalloutAttributesFromContext(id) {
				c := calls[answered[id]]
				answered[id]++
				store.answer(t, host, c)
			}
		}
		get := request{method: "GET", path: "/api/items?b=2&a=1"}

		id, action := get.send(host)
		if action != types.ActionPause {
			t.Fatalf("lookup: action %v, want Pause", action)
		}
		answerAll(id)
		if resp := host.GetSentLocalResponse(id); resp != nil {
			t.Fatalf("miss answered locally: %d", resp.StatusCode)
		}
		if got := host.GetCurrentHttpStreamAction(id); got != types.ActionContinue {
			t.Fatalf("miss: stream action %v, want Continue", got)
		}
		host.CallOnResponseHeaders(id, [][2]string{{":status", "200"}, {"content-type", "application/json"}}, false)
		if x, _ := headerValue(host.GetCurrentResponseHeaders(id), "x-cache"); x != "MISS" {
			t.Errorf("miss: x-cache %q", x)
		}
		host.CallOnResponseBody(id, []byte(`{"n":`), false)
		host.CallOnResponseBody(id, []byte(`1}`), true)
		host.CompleteHttpContext(id)
		host.Tick() // the writes go out from the root context
		answerAll(proxytest.PluginContextID)
		if len(store) != 2 {
			t.Fatalf("store holds %d records after the fill, want the index and the entry", len(store))
		}

		id, _ = request{method: "GET", path: "/api/items?a=1&b=2"}.send(host)
		answerAll(id)
		resp := host.GetSentLocalResponse(id)
		if resp == nil || resp.StatusCode != 200 || string(resp.Data) != `{"n":1}` {
			t.Fatalf("hit: %+v", resp)
		}
		if x, _ := headerValue(resp.Headers, "x-cache"); x != "HIT" {
			t.Errorf("hit: x-cache %q", x)
		}
		if ct, _ := headerValue(resp.Headers, "content-type"); ct != "application/json" {
			t.Errorf("hit: content-type %q", ct)
		}
		if n := counterValue(t, host, "cache.hit"); n != 1 {
			t.Errorf("cache.hit = %d", n)
		}
	})
}

// A cache cluster that does not answer (timeout: no headers), answers an
// error, or answers garbage never fails the request: it goes upstream.
func TestCacheFaultsGoUpstream(t *testing.T) {
	faults := map[string]struct {
		headers [][2]string
		body    string
		xcache  string
	}{
		"timeout":      {nil, "", "BYPASS"},
		"server error": {[][2]string{{":status", "503"}}, `{"error":"store_unavailable"}`, "BYPASS"},
		"garbage":      {[][2]string{{":status", "200"}}, "not an index record", "MISS"},
	}
	for name, f := range faults {
		t.Run(name, func(t *testing.T) {
			eachRunner(t, func(t *testing.T, r runner) {
				host := mustStart(t, r, cacheConfig)
				id, _ := request{method: "GET", path: "/api/items"}.send(host)
				calls := host.GetCalloutAttributesFromContext(id)
				if len(calls) != 1 {
					t.Fatalf("%d callouts, want the index lookup", len(calls))
				}
				host.CallOnHttpCallResponse(calls[0].CalloutID, f.headers, nil, []byte(f.body))
				if resp := host.GetSentLocalResponse(id); resp != nil {
					t.Fatalf("answered locally %d: %s", resp.StatusCode, resp.Data)
				}
				if got := host.GetCurrentHttpStreamAction(id); got != types.ActionContinue {
					t.Fatalf("stream action %v, want Continue", got)
				}
				host.CallOnResponseHeaders(id, [][2]string{{":status", "200"}}, true)
				if x, _ := headerValue(host.GetCurrentResponseHeaders(id), "x-cache"); x != f.xcache {
					t.Errorf("x-cache %q, want %q", x, f.xcache)
				}
			})
		})
	}
}
