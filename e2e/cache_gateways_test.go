package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/portcullis/portcullis/e2e/harness"
	"github.com/portcullis/portcullis/e2e/scenarios"
	"github.com/portcullis/portcullis/internal/cacheserver/cachetest"
)

// TestCacheInvalidationAcrossGateways: two gateways (two Envoys: each its
// own shared data and VMs) share one cache server. After a POST through
// the first, the first never serves the old body again, and the second,
// which held the path hot, stops serving it once its index copy is older
// than local_index_ttl_ms (README "Caching", in-proxy tier): waiting that
// long, plus a second for the DELETE, is enough.
func TestCacheInvalidationAcrossGateways(t *testing.T) {
	t.Parallel()
	const ttl = 300 * time.Millisecond
	var cfg map[string]any
	if err := json.Unmarshal([]byte(scenarios.CacheConfig(t)), &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["cache"].(map[string]any)["local_index_ttl_ms"] = ttl.Milliseconds()
	raw, _ := json.Marshal(cfg)
	opts := harness.Options{PluginConfig: string(raw),
		Clusters: map[string]string{harness.CacheCluster: cachetest.StartBackend(t, cachetest.Memory).Addr}}
	target := harness.NewWasmHost(t)
	a, b := target.Start(t, opts), target.Start(t, opts)
	// One origin behind both: the authority is part of every cache key.
	tok := scenarios.With(scenarios.Bearer(scenarios.Token(harness.TestSecret, "alice", nil)), "Host", "api.example.com")
	path := "/api/cache/across-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	get := func(gw *harness.Gateway) scenarios.Response {
		resp := scenarios.Send(t, gw, scenarios.Request{Path: path, Header: tok})
		if resp.Status != http.StatusOK {
			t.Fatalf("GET: %s", resp)
		}
		return resp
	}
	// hit repeats the GET until it is a HIT and returns its body: the
	// stored one (a MISS's fill lands after its response).
	hit := func(gw *harness.Gateway) []byte {
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if resp := get(gw); resp.Header.Get("X-Cache") == "HIT" {
				return resp.Body
			}
		}
		t.Fatal("the entry never became a HIT")
		return nil
	}
	// Each gateway's own old body: b may have filled too, if its first GET
	// came before a's index PUT landed (filter/cache, concurrent fills).
	oldA, oldB := hit(a), hit(b)
	for range 4 { // hot in b's VMs
		if body := hit(b); !bytes.Equal(body, oldB) {
			t.Fatalf("the other gateway's HITs differ:\n%s\n%s", body, oldB)
		}
	}
	post := scenarios.Send(t, a, scenarios.Request{Method: "POST", Path: path, Body: `{}`,
		Header: scenarios.With(tok, "Content-Type", "application/json")})
	if post.Status != http.StatusOK {
		t.Fatalf("POST: %s", post)
	}
	if resp := get(a); bytes.Equal(resp.Body, oldA) || bytes.Equal(resp.Body, oldB) {
		t.Fatalf("the gateway that took the POST served the old body:\n%s", resp)
	}
	time.Sleep(ttl + time.Second)
	for i := range 4 {
		if resp := get(b); bytes.Equal(resp.Body, oldA) || bytes.Equal(resp.Body, oldB) {
			t.Fatalf("GET %d on the other gateway, local_index_ttl_ms and a second after the POST, served the old body:\n%s", i, resp)
		}
	}
}
