//go:build !wasip1

package plugin

import (
	"strings"
	"testing"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/portcullis/portcullis/internal/jwttest"
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
	if rest, ok := strings.CutPrefix(path, "/v1/tags/"); ok {
		s.answerTag(t, host, call, method, rest)
		return
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

// cacheHost is an emulated host whose cache cluster is a cacheStore.
type cacheHost struct {
	t     *testing.T
	host  proxytest.HostEmulator
	store cacheStore
	// proxytest reuses callout ids: count the calls answered per context.
	answered map[uint32]int
}

func newCacheHost(t *testing.T, r runner, config string) *cacheHost {
	return &cacheHost{t: t, host: mustStart(t, r, config), store: cacheStore{}, answered: map[uint32]int{}}
}

// answerAll answers every callout of context id made so far and returns
// how many it answered.
func (c *cacheHost) answerAll(id uint32) int {
	n := 0
	for calls := c.host.GetCalloutAttributesFromContext(id); c.answered[id] < len(calls); calls = c.host.GetCalloutAttributesFromContext(id) {
		call := calls[c.answered[id]]
		c.answered[id]++
		n++
		c.store.answer(c.t, c.host, call)
	}
	return n
}

// miss sends q, which must miss and go upstream, and has the upstream answer
// it with body and response headers extra; the fill's writes are answered.
func (c *cacheHost) miss(q request, body string, extra ...[2]string) {
	c.t.Helper()
	id, _ := q.send(c.host)
	c.answerAll(id)
	if resp := c.host.GetSentLocalResponse(id); resp != nil {
		c.t.Fatalf("%s %s: want a miss, answered locally: %d %s", q.method, q.path, resp.StatusCode, resp.Data)
	}
	if got := c.host.GetCurrentHttpStreamAction(id); got != types.ActionContinue {
		c.t.Fatalf("miss: stream action %v, want Continue", got)
	}
	c.host.CallOnResponseHeaders(id, append([][2]string{{":status", "200"}, {"content-type", "application/json"}}, extra...), false)
	if x, _ := headerValue(c.host.GetCurrentResponseHeaders(id), "x-cache"); x != "MISS" {
		c.t.Errorf("miss: x-cache %q", x)
	}
	c.host.CallOnResponseBody(id, []byte(body[:len(body)/2]), false)
	c.host.CallOnResponseBody(id, []byte(body[len(body)/2:]), true)
	c.host.CompleteHttpContext(id)
	c.host.Tick() // the writes go out from the root context
	c.answerAll(proxytest.PluginContextID)
}

// hit sends q, which must be answered from the cache with body after
// exactly callouts callouts to the cache cluster.
func (c *cacheHost) hit(q request, body string, callouts int) {
	c.t.Helper()
	id, _ := q.send(c.host)
	if n := c.answerAll(id); n != callouts {
		c.t.Errorf("%s %s: %d callouts, want %d", q.method, q.path, n, callouts)
	}
	resp := c.host.GetSentLocalResponse(id)
	if resp == nil || resp.StatusCode != 200 || string(resp.Data) != body {
		c.t.Fatalf("%s %s: want a hit with %q, got %+v", q.method, q.path, body, resp)
	}
	if x, _ := headerValue(resp.Headers, "x-cache"); x != "HIT" {
		c.t.Errorf("hit: x-cache %q", x)
	}
	if ct, _ := headerValue(resp.Headers, "content-type"); ct != "application/json" {
		c.t.Errorf("hit: content-type %q", ct)
	}
}

func TestCacheMissFillThenHit(t *testing.T) {
	eachRunner(t, func(t *testing.T, r runner) {
		c := newCacheHost(t, r, cacheConfig)
		c.miss(request{method: "GET", path: "/api/items?b=2&a=1"}, `{"n":1}`)
		if len(c.store) != 2 {
			t.Fatalf("store holds %d records after the fill, want the index and the entry", len(c.store))
		}
		// The fill copied the index to shared data: one callout, the entry.
		c.hit(request{method: "GET", path: "/api/items?a=1&b=2"}, `{"n":1}`, 1)
		if n := counterValue(t, c.host, "cache.hit"); n != 1 {
			t.Errorf("cache.hit = %d", n)
		}
	})
}

// A hit from the cluster keeps the entry in the VM: the next hit makes no
// callout. Once the index copy expired (it stands for what other Envoys may
// have changed), a hit reads the index from the cluster again, and the
// entry too unless it is hot.
func TestCacheHotHitWithoutCallout(t *testing.T) {
	eachRunner(t, func(t *testing.T, r runner) {
		c := newCacheHost(t, r, strings.Replace(cacheConfig, `"authority": "store.test"`, `"authority": "store.test", "local_index_ttl_ms": 200`, 1))
		hot, cold := request{method: "GET", path: "/api/hot"}, request{method: "GET", path: "/api/cold"}
		c.miss(hot, `{"n":1}`)
		c.miss(cold, `{"n":2}`)
		c.hit(hot, `{"n":1}`, 1)
		c.hit(hot, `{"n":1}`, 0)
		c.hit(request{method: "HEAD", path: "/api/hot"}, `{"n":1}`, 0)
		if hit, local := counterValue(t, c.host, "cache.hit"), counterValue(t, c.host, "cache.local_hit"); hit != 3 || local != 2 {
			t.Errorf("cache.hit = %d, cache.local_hit = %d; want 3 and 2", hit, local)
		}
		if !r.realClock {
			return // the rest waits for the copy to expire: natively only (runner.realClock)
		}
		time.Sleep(250 * time.Millisecond) // past local_index_ttl_ms: the plugin reads the real clock
		c.hit(cold, `{"n":2}`, 2)
		c.hit(hot, `{"n":1}`, 1)
		c.hit(cold, `{"n":2}`, 0)
		c.hit(hot, `{"n":1}`, 0)
	})
}

// An unsafe request that succeeds makes the path's copies unreachable on
// this Envoy before its DELETEs leave: the very next GET goes upstream,
// without even a callout, and its fill starts a new epoch.
func TestCacheInvalidationIsImmediate(t *testing.T) {
	eachRunner(t, func(t *testing.T, r runner) {
		c := newCacheHost(t, r, cacheConfig)
		get := request{method: "GET", path: "/api/items?x=1"}
		c.miss(get, `{"n":1}`)
		c.hit(get, `{"n":1}`, 1)
		c.hit(get, `{"n":1}`, 0)

		id, _ := request{method: "POST", path: "/api/items", body: true, headers: [][2]string{{"content-type", "application/json"}}}.send(c.host)
		c.host.CallOnResponseHeaders(id, [][2]string{{":status", "201"}}, true)
		c.host.CompleteHttpContext(id)
		// No tick: the DELETEs to the cluster have not left.
		next, _ := get.send(c.host)
		if n := len(c.host.GetCalloutAttributesFromContext(next)); n != 0 {
			t.Errorf("the GET after the POST made %d callouts, want none (the index is known gone)", n)
		}
		if resp := c.host.GetSentLocalResponse(next); resp != nil {
			t.Fatalf("the GET after the POST was answered locally: %s", resp.Data)
		}
		if got := c.host.GetCurrentHttpStreamAction(next); got != types.ActionContinue {
			t.Fatalf("the GET after the POST: stream action %v, want Continue (upstream)", got)
		}
		c.host.CompleteHttpContext(next)

		// Once the DELETE landed, a new fill is served, never the old body.
		c.host.Tick()
		c.answerAll(proxytest.PluginContextID)
		c.miss(get, `{"n":2}`)
		c.hit(get, `{"n":2}`, 1)
		c.hit(get, `{"n":2}`, 0)
	})
}

// A hot entry is served only while fresh by its envelope.
func TestCacheHotEntryExpires(t *testing.T) {
	eachRunner(t, func(t *testing.T, r runner) {
		if !r.realClock {
			t.Skip("the wasm runner's clock does not move (runner.realClock); the compiled plugin's expiry runs in e2e/ (entry_expires)")
		}
		c := newCacheHost(t, r, cacheConfig)
		get := request{method: "GET", path: "/api/items"}
		c.miss(get, `{"n":1}`, [2]string{"cache-control", "max-age=1"})
		c.hit(get, `{"n":1}`, 1)
		c.hit(get, `{"n":1}`, 0)
		time.Sleep(1100 * time.Millisecond) // the plugin reads the real clock
		id, _ := get.send(c.host)
		if n := c.answerAll(id); n == 0 {
			t.Error("an expired hot entry was decided on without asking the cluster")
		}
		if resp := c.host.GetSentLocalResponse(id); resp != nil {
			t.Fatalf("an expired entry was served: %d %s", resp.StatusCode, resp.Data)
		}
	})
}

// Tenants never share a hot entry: each has its own index key, so its own
// index copy and entry keys.
func TestCacheHotEntryPerTenant(t *testing.T) {
	eachRunner(t, func(t *testing.T, r runner) {
		if !r.hasEnv {
			t.Skip("proxytest.NewWasmVMContext gives the module no environment, so no JWT secret; the compiled plugin's per-tenant cache runs in e2e/ (another_tenant_misses)")
		}
		t.Setenv(testSecretEnv, testSecret)
		c := newCacheHost(t, r, `{
		  "jwt": {"secrets": [{"env": "`+testSecretEnv+`"}], "issuer": "portcullis-test", "audiences": ["api"]},
		  "routes": [{"name": "api", "prefix": "/api"}],
		  "cache": {"cluster": "cachec", "authority": "store.test"}
		}`)
		as := func(sub string) request {
			token := jwttest.HS256([]byte(testSecret), jwttest.Claims{"sub": sub, "iss": "portcullis-test", "aud": "api", "exp": time.Now().Add(time.Hour).Unix()})
			return request{method: "GET", path: "/api/items", headers: [][2]string{{"authorization", "Bearer " + token}}}
		}
		c.miss(as("alice"), `{"for":"alice"}`)
		c.hit(as("alice"), `{"for":"alice"}`, 1)
		c.hit(as("alice"), `{"for":"alice"}`, 0)
		c.miss(as("bob"), `{"for":"bob"}`)
		c.hit(as("bob"), `{"for":"bob"}`, 1)
		c.hit(as("alice"), `{"for":"alice"}`, 0)
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
