//go:build !wasip1

package plugin

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/proxytest"
)

const (
	purgeSecretEnv = "PORTCULLIS_TEST_PURGE_SECRET"
	purgeSecret    = "purge-secret-0123456789-abcdefghijklmnop"
	purgeConfig    = `{
  "routes": [{"name": "public", "prefix": "/api", "public": true}],
  "cache": {"cluster": "cachec", "authority": "store.test",
            "purge": {"path": "/_purge", "secret": {"env": "` + purgeSecretEnv + `"}}}
}`
)

// answerTag answers the tag calls as the cache server does: a PUT files
// the member under the tag of its body (the plugin sends one per set), a DELETE answers and forgets the
// members of the scope and deletes the records they name.
func (s cacheStore) answerTag(t *testing.T, host proxytest.HostEmulator, call proxytest.HttpCalloutAttribute, method, rest string) {
	t.Helper()
	name, query, _ := strings.Cut(rest, "?")
	set := name // a PUT is hashed on the set it files the member under, a DELETE on the set it purges
	if method == "PUT" {
		set = string(call.Body)
	}
	if auth, _ := headerValue(call.Headers, ":authority"); auth != set[:16]+".store.test" {
		t.Errorf(":authority %q does not carry the tag set's key", auth)
	}
	status, body := "204", ""
	switch method {
	case "PUT":
		for _, tag := range strings.Fields(string(call.Body)) {
			s["tag:"+tag] = append(s["tag:"+tag], name+"\n"...)
		}
	case "DELETE":
		scope := strings.TrimPrefix(query, "scope=")
		var kept []string
		for _, m := range strings.Fields(string(s["tag:"+name])) {
			key, sc, _ := strings.Cut(m, "-")
			if scope != "" && sc != scope {
				kept = append(kept, m+"\n")
				continue
			}
			delete(s, key)
			body += key + "\n"
		}
		s["tag:"+name] = []byte(strings.Join(kept, ""))
		status = "200"
	default:
		t.Fatalf("tag call %s", method)
	}
	host.CallOnHttpCallResponse(call.CalloutID, [][2]string{{":status", status}}, nil, []byte(body))
}

// drain runs the tick and answers the root context's calls until none is
// left (a fill files its tags, then PUTs its records on a later tick).
func (c *cacheHost) drain() {
	for {
		c.host.Tick()
		if c.answerAll(proxytest.PluginContextID) == 0 {
			return
		}
	}
}

// purge POSTs a purge of query with authorization ("" for none) and
// returns the local reply.
func (c *cacheHost) purge(method, query, authorization string) *proxytest.LocalHttpResponse {
	c.t.Helper()
	q := request{method: method, path: "/_purge?" + query}
	if authorization != "" {
		q.headers = [][2]string{{"authorization", authorization}}
	}
	id, _ := q.send(c.host)
	c.answerAll(id)
	resp := c.host.GetSentLocalResponse(id)
	if resp == nil {
		c.t.Fatalf("purge %s: no local reply", query)
	}
	return resp
}

func TestPurge(t *testing.T) {
	t.Setenv(purgeSecretEnv, purgeSecret)
	c := newCacheHost(t, runners[0], purgeConfig) // native: the secret comes from the environment
	tagged := request{method: "GET", path: "/api/items?x=1"}
	id, _ := tagged.send(c.host)
	c.answerAll(id)
	c.host.CallOnResponseHeaders(id, [][2]string{{":status", "200"}, {"content-type", "application/json"}, {"surrogate-key", "items product-7"}}, false)
	if v, ok := headerValue(c.host.GetCurrentResponseHeaders(id), "surrogate-key"); ok {
		t.Errorf("the client gets the surrogate keys %q", v)
	}
	c.host.CallOnResponseBody(id, []byte(`{"n":1}`), true)
	c.host.CompleteHttpContext(id)
	c.drain()
	c.hit(tagged, `{"n":1}`, 1) // from the cluster, then hot
	c.miss(request{method: "GET", path: "/api/other"}, `{"n":2}`)
	c.drain()
	c.hit(request{method: "GET", path: "/api/other"}, `{"n":2}`, 1)

	for _, tc := range []struct {
		method, query, authorization string
		status                       int
		code                         string
	}{
		{"POST", "tag=product-7&all=true", "", 401, "unauthorized"},
		{"POST", "tag=product-7&all=true", "Bearer " + testSecret, 403, "forbidden"},
		{"POST", "tag=product-7&all=true", "Bearer " + purgeSecret + "x", 403, "forbidden"},
		{"GET", "tag=product-7&all=true", "Bearer " + purgeSecret, 405, "method_not_allowed"},
		{"POST", "tag=product-7", "Bearer " + purgeSecret, 400, "bad_request"},
	} {
		resp := c.purge(tc.method, tc.query, tc.authorization)
		if resp.StatusCode != uint32(tc.status) || envelope(t, resp)["error"] != tc.code {
			t.Errorf("%s %s with %q: %d %s, want %d %s", tc.method, tc.query, tc.authorization, resp.StatusCode, resp.Data, tc.status, tc.code)
		}
	}
	for _, l := range slices.Concat(c.host.GetInfoLogs(), c.host.GetWarnLogs()) {
		if strings.Contains(l, purgeSecret) || strings.Contains(l, testSecret) {
			t.Fatalf("a secret is logged: %s", l)
		}
	}
	c.hit(tagged, `{"n":1}`, 0) // the refusals purged nothing

	resp := c.purge("POST", "tag=product-7&all=true", "Bearer "+purgeSecret)
	var answer struct {
		Status, By, Tag, Scope string
		IndexRecords           int `json:"index_records"`
	}
	if err := json.Unmarshal(resp.Data, &answer); err != nil || resp.StatusCode != 200 || answer.IndexRecords != 1 || answer.By != "tag" || answer.Scope != "all" {
		t.Fatalf("purge: %d %s", resp.StatusCode, resp.Data)
	}
	// Tombstoned here at once: a miss without a callout.
	id, _ = tagged.send(c.host)
	if n := c.answerAll(id); n != 0 || c.host.GetSentLocalResponse(id) != nil {
		t.Fatalf("GET after the purge: %d callouts, reply %+v; want a miss without a callout", n, c.host.GetSentLocalResponse(id))
	}
	c.host.CompleteHttpContext(id)
	c.drain()
	c.hit(request{method: "GET", path: "/api/other"}, `{"n":2}`, 0) // another path, no such tag
	if n := counterValue(t, c.host, "cache.purges"); n != 1 {
		t.Errorf("cache.purges = %d", n)
	}
	if n := counterValue(t, c.host, "rejected.purge_forbidden"); n != 2 {
		t.Errorf("rejected.purge_forbidden = %d", n)
	}
}

// The cache cluster failing a purge is a 503 JSON, never an unexplained
// error; the entries stay.
func TestPurgeUnavailable(t *testing.T) {
	t.Setenv(purgeSecretEnv, purgeSecret)
	c := newCacheHost(t, runners[0], purgeConfig)
	id, _ := request{method: "POST", path: "/_purge?path=/api/items&all=true", headers: [][2]string{{"authorization", "Bearer " + purgeSecret}}}.send(c.host)
	calls := c.host.GetCalloutAttributesFromContext(id)
	if len(calls) != 1 {
		t.Fatalf("%d callouts, want the purge", len(calls))
	}
	c.host.CallOnHttpCallResponse(calls[0].CalloutID, [][2]string{{":status", "503"}}, nil, []byte(`{"error":"store_unavailable"}`))
	resp := c.host.GetSentLocalResponse(id)
	if resp == nil || resp.StatusCode != 503 || envelope(t, resp)["error"] != "service_unavailable" {
		t.Fatalf("reply %+v", resp)
	}
}
