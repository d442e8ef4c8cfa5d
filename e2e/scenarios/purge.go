package scenarios

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/e2e/harness"
)

// The purge scenarios: two gateways (two Envoys, each its own shared data
// and VMs) share one cache server; a purge through one is seen at once by
// it and by the other within local_index_ttl_ms (README "Caching", purge).

// PurgeSecretEnv and PurgeSecret are the purge endpoint's admin secret in
// the purge scenarios' VMs: random per test process, and not the JWT secret.
const PurgeSecretEnv = "PURGE_SECRET"

var PurgeSecret = "purge-" + freshKey("secret") + freshKey("s")

// PurgePath is the purge endpoint in PurgeConfig.
const PurgePath = "/_portcullis/purge"

// purgeIndexTTL is the gateways' local_index_ttl_ms in the purge scenarios.
const purgeIndexTTL = 300 * time.Millisecond

// purgeOrigin is the Host every purge scenario request names: the two
// gateways listen on different ports, and the authority is part of every
// cache key.
const purgeOrigin = "api.example.com"

// PurgeConfig is CacheConfig with the purge endpoint on, a short
// local_index_ttl_ms and every refusal logged.
func PurgeConfig(t *testing.T) string {
	return patchConfig(t, CacheConfig(t), func(cfg map[string]any) {
		c := cfg["cache"].(map[string]any)
		c["local_index_ttl_ms"] = purgeIndexTTL.Milliseconds()
		c["purge"] = map[string]any{"path": PurgePath, "secret": map[string]any{"env": PurgeSecretEnv}}
		cfg["log"] = map[string]any{"errors_per_second": 0}
	})
}

// PurgeOptions start a purge scenario gateway on the cache server at addr.
func PurgeOptions(t *testing.T, cacheAddr string) harness.Options {
	return harness.Options{
		PluginConfig: PurgeConfig(t),
		Env:          map[string]string{harness.SecretEnv: harness.TestSecret, PurgeSecretEnv: PurgeSecret},
		Clusters:     map[string]string{harness.CacheCluster: cacheAddr},
	}
}

// PurgeScenarios runs the purge scenarios against gateways a and b, which
// share a cache server.
func PurgeScenarios(t *testing.T, a, b *harness.Gateway) {
	for _, s := range []struct {
		name string
		run  func(*testing.T, *harness.Gateway, *harness.Gateway)
	}{
		{"purge_by_path_across_gateways", purgeByPath},
		{"purge_by_tag_across_gateways", purgeByTag},
		{"purge_is_per_tenant", purgeTenantIsolation},
		{"purge_refusals", purgeRefusals},
	} {
		t.Run(s.name, func(t *testing.T) { s.run(t, a, b) })
	}
}

// purgeGet is a GET of path by sub, naming purgeOrigin, with the origin's
// surrogate keys tags (none when "").
func purgeGet(t *testing.T, gw *harness.Gateway, sub, path, tags string) Response {
	t.Helper()
	h := With(Bearer(Token(harness.TestSecret, sub, nil)), "Host", purgeOrigin)
	if tags != "" {
		h = With(h, "X-Upstream-Surrogate-Key", tags)
	}
	resp := Send(t, gw, Request{Path: path, Header: h})
	if resp.Status != http.StatusOK {
		t.Fatalf("GET %s: %s", path, resp)
	}
	if v := resp.Header.Get("Surrogate-Key"); v != "" {
		t.Fatalf("the client got the surrogate keys %q:\n%s", v, resp)
	}
	return resp
}

// purgeHit repeats the GET until it is a HIT and returns its body: the
// stored one.
func purgeHit(t *testing.T, gw *harness.Gateway, sub, path, tags string) []byte {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if resp := purgeGet(t, gw, sub, path, tags); resp.Header.Get("X-Cache") == "HIT" {
			return resp.Body
		}
	}
	t.Fatalf("GET %s never became a HIT", path)
	return nil
}

// purgeAnswer is the purge endpoint's 200 body.
type purgeAnswer struct {
	Status, By, Host, Path, Tag, Scope string
	IndexRecords                       int `json:"index_records"`
}

// purge POSTs a purge with query q and the admin secret, and returns the answer.
func purge(t *testing.T, gw *harness.Gateway, q url.Values) purgeAnswer {
	t.Helper()
	resp := Send(t, gw, Request{Method: "POST", Path: PurgePath + "?" + q.Encode(),
		Header: With(Bearer(PurgeSecret), "Host", purgeOrigin)})
	var a purgeAnswer
	if resp.Status != http.StatusOK || json.Unmarshal(resp.Body, &a) != nil || a.Status != "purged" {
		t.Fatalf("purge %s: %s", q.Encode(), resp)
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Errorf("purge answer content-type %q", resp.Header.Get("Content-Type"))
	}
	return a
}

// stays checks that a GET after a purge of something else is still a HIT:
// a purge of it would have made it a MISS here at once (a tombstone), and
// on another gateway once its index copy expired (the record gone). The
// body is not compared: under load two fills of one key can race (the
// package documentation of filter/cache), and VMs may hold either.
func stays(t *testing.T, gw *harness.Gateway, sub, path, tags string) {
	t.Helper()
	if resp := purgeGet(t, gw, sub, path, tags); resp.Header.Get("X-Cache") != "HIT" {
		t.Errorf("GET %s by %s after a purge of something else: want a HIT, got:\n%s", path, sub, resp)
	}
}

// goneHere checks, on the gateway that took the purge, that the very next
// GET is a MISS (its index copy is tombstoned).
func goneHere(t *testing.T, gw *harness.Gateway, sub, path, tags string) {
	t.Helper()
	if resp := purgeGet(t, gw, sub, path, tags); resp.Header.Get("X-Cache") != "MISS" {
		t.Fatalf("GET %s by %s right after its purge on this gateway: want a MISS, got:\n%s", path, sub, resp)
	}
}

// gone checks, on another gateway, that a GET is not answered with any of
// the old bodies (a HIT of a fill made after the purge is fine: the
// upstream's count differs).
func gone(t *testing.T, gw *harness.Gateway, sub, path, tags string, old ...[]byte) {
	t.Helper()
	resp := purgeGet(t, gw, sub, path, tags)
	for _, o := range old {
		if bytes.Equal(resp.Body, o) {
			t.Fatalf("GET %s by %s after its purge served the old body:\n%s", path, sub, resp)
		}
	}
}

// filledOnBoth fills path on both gateways and makes it hot on b; it
// returns the bodies either serves.
func filledOnBoth(t *testing.T, a, b *harness.Gateway, sub, path, tags string) [][]byte {
	t.Helper()
	oldA, oldB := purgeHit(t, a, sub, path, tags), purgeHit(t, b, sub, path, tags)
	for range 4 {
		purgeHit(t, b, sub, path, tags)
	}
	return [][]byte{oldA, oldB}
}

func purgeByPath(t *testing.T, a, b *harness.Gateway) {
	path := uniquePath("/api/cache")
	old := append(filledOnBoth(t, a, b, "alice", path+"?v=1", ""), filledOnBoth(t, a, b, "bob", path+"?v=2", "")...)
	other := uniquePath("/api/cache")
	purgeHit(t, a, "alice", other, "")
	got := purge(t, a, url.Values{"path": {path}, "all": {"true"}})
	if got.By != "path" || got.Path != path || got.Scope != "all" || got.Host != purgeOrigin || got.IndexRecords != 2 {
		t.Errorf("answer %+v, want 2 index records (alice's and bob's)", got)
	}
	goneHere(t, a, "alice", path+"?v=1", "") // this gateway: at once
	goneHere(t, a, "bob", path+"?v=2", "")
	stays(t, a, "alice", other, "")
	time.Sleep(purgeIndexTTL + time.Second)
	gone(t, b, "alice", path+"?v=1", "", old...) // the other: once its copy expired
	gone(t, b, "bob", path+"?v=2", "", old...)
}

func purgeByTag(t *testing.T, a, b *harness.Gateway) {
	tag := freshKey("product")
	p1, p2, p3 := uniquePath("/api/cache"), uniquePath("/api/cache"), uniquePath("/api/cache")
	old := append(filledOnBoth(t, a, b, "alice", p1, tag+" list"), filledOnBoth(t, a, b, "alice", p2+"?page=2", "list, "+tag)...)
	old = append(old, filledOnBoth(t, a, b, "bob", p3, tag)...)
	untagged := uniquePath("/api/cache")
	purgeHit(t, a, "alice", untagged, "list")
	purgeHit(t, b, "alice", untagged, "list")
	got := purge(t, b, url.Values{"tag": {tag}, "all": {"true"}})
	if got.By != "tag" || got.Tag != tag || got.Scope != "all" || got.IndexRecords != 3 {
		t.Errorf("answer %+v, want 3 index records", got)
	}
	goneHere(t, b, "alice", p1, tag)
	goneHere(t, b, "alice", p2+"?page=2", tag)
	goneHere(t, b, "bob", p3, tag)
	stays(t, b, "alice", untagged, "list")
	time.Sleep(purgeIndexTTL + time.Second)
	gone(t, a, "alice", p1, tag, old...)
	gone(t, a, "alice", p2+"?page=2", tag, old...)
	stays(t, a, "alice", untagged, "list")
}

// purgeTenantIsolation: a purge for one tenant leaves every other tenant's
// entries of the same path and tag; a tenant's own token cannot purge.
func purgeTenantIsolation(t *testing.T, a, b *harness.Gateway) {
	tag := freshKey("t")
	path := uniquePath("/api/cache")
	purgeHit(t, a, "alice", path, tag)
	purgeHit(t, a, "bob", path, tag)
	got := purge(t, a, url.Values{"path": {path}, "tenant": {"alice"}})
	if got.Scope != "tenant" || got.IndexRecords != 1 {
		t.Errorf("answer %+v, want alice's one index record", got)
	}
	goneHere(t, a, "alice", path, tag)
	stays(t, a, "bob", path, tag)

	purgeHit(t, a, "alice", path, tag)
	if got := purge(t, a, url.Values{"tag": {tag}, "tenant": {"bob"}}); got.IndexRecords != 1 {
		t.Errorf("bob's tag purge: %+v, want his one index record", got)
	}
	goneHere(t, a, "bob", path, tag)
	stays(t, a, "alice", path, tag)

	// Alice's own token, on either gateway, is not the admin secret.
	for _, gw := range []*harness.Gateway{a, b} {
		resp := Send(t, gw, Request{Method: "POST", Path: PurgePath + "?path=" + path + "&tenant=bob",
			Header: With(Bearer(Token(harness.TestSecret, "alice", nil)), "Host", purgeOrigin)})
		ExpectError(t, gw, resp, http.StatusForbidden, "forbidden")
	}
	stays(t, a, "alice", path, tag)
}

// purgeRefusals: every bad purge gets its JSON error, and neither a wrong
// secret nor the right one is ever logged.
func purgeRefusals(t *testing.T, a, _ *harness.Gateway) {
	wrong := "not-the-purge-secret-" + freshKey("w")
	q := "?path=/api/cache/x&all=true"
	for _, tc := range []struct {
		name          string
		method, path  string
		authorization string
		status        int
		code          string
	}{
		{"no credential", "POST", PurgePath + q, "", 401, "unauthorized"},
		{"basic credential", "POST", PurgePath + q, "Basic " + wrong, 401, "unauthorized"},
		{"wrong secret", "POST", PurgePath + q, "Bearer " + wrong, 403, "forbidden"},
		{"GET", "GET", PurgePath + q, "Bearer " + PurgeSecret, 405, "method_not_allowed"},
		{"neither path nor tag", "POST", PurgePath + "?all=true", "Bearer " + PurgeSecret, 400, "bad_request"},
		{"no scope", "POST", PurgePath + "?path=/api/x", "Bearer " + PurgeSecret, 400, "bad_request"},
		{"unknown parameter", "POST", PurgePath + q + "&everything=1", "Bearer " + PurgeSecret, 400, "bad_request"},
		{"tag with a comma", "POST", PurgePath + "?tag=a,b&all=true", "Bearer " + PurgeSecret, 400, "bad_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := map[string][]string{"Host": {purgeOrigin}}
			if tc.authorization != "" {
				h["Authorization"] = []string{tc.authorization}
			}
			resp := Send(t, a, Request{Method: tc.method, Path: tc.path, Header: h})
			ExpectError(t, a, resp, tc.status, tc.code)
			switch tc.status {
			case 401:
				if !strings.HasPrefix(resp.Header.Get("Www-Authenticate"), "Bearer") {
					t.Errorf("401 without WWW-Authenticate: Bearer:\n%s", resp)
				}
			case 405:
				if resp.Header.Get("Allow") != "POST" {
					t.Errorf("405 without Allow: POST:\n%s", resp)
				}
			}
		})
	}
	// Each refusal is logged (the metric's reason), the secrets never.
	if !eventually(2*time.Second, func() bool { return strings.Contains(a.Logs(), `"reason":"purge_forbidden"`) }) {
		t.Errorf("no log line for the refused secret:\n%s", a.Logs())
	}
	for _, secret := range []string{wrong, PurgeSecret} {
		if strings.Contains(a.HostLogs(), secret) {
			t.Fatalf("a purge secret is in the host's logs")
		}
	}
	if n, _ := a.Counter("portcullis.rejected.purge_forbidden"); n == 0 {
		t.Error("rejected.purge_forbidden is 0")
	}
}
