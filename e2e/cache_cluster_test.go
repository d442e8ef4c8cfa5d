package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/portcullis/portcullis/e2e/harness"
	"github.com/portcullis/portcullis/e2e/scenarios"
	"github.com/portcullis/portcullis/internal/cacheserver"
	"github.com/portcullis/portcullis/internal/cacheserver/cachetest"
	"github.com/portcullis/portcullis/internal/redistest"
)

// TestCacheRedisClusterMasterKilled: the cache server's store is a real
// 3-master Redis Cluster. Cache traffic fills and hits through it; then one
// master is killed mid-run. Every request still gets its 200 from the
// upstream or the cache, never a 5xx: the keys on the dead master answer
// the plugin 503s (a BYPASS, counted in cache.unavailable), the others keep
// hitting.
func TestCacheRedisClusterMasterKilled(t *testing.T) {
	t.Parallel()
	cluster := redistest.StartCluster(t, 3)
	store := cachetest.RedisStoreWith(t, cacheserver.RedisOptions{Mode: cacheserver.RedisCluster, Addrs: cluster.Addrs()})
	server := cachetest.Start(t, store, cacheserver.Options{})
	var cfg map[string]any
	if err := json.Unmarshal([]byte(scenarios.CacheConfig(t)), &cfg); err != nil {
		t.Fatal(err)
	}
	// Short copies and small hot tables, so that lookups reach the cluster.
	cfg["cache"].(map[string]any)["local_index_ttl_ms"] = 50
	cfg["cache"].(map[string]any)["local_entries"] = 1
	raw, _ := json.Marshal(cfg)
	gw := harness.NewWasmHost(t).Start(t, harness.Options{PluginConfig: string(raw),
		Clusters: map[string]string{harness.CacheCluster: server.Addr}})
	tok := scenarios.Bearer(scenarios.Token(harness.TestSecret, "alice", nil))
	base := "/api/cache/cluster-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "/"
	const paths = 24 // spread over the masters' slots
	round := func() map[string]int {
		seen := map[string]int{}
		for i := range paths {
			resp := scenarios.Send(t, gw, scenarios.Request{Path: fmt.Sprintf("%s%d", base, i), Header: tok})
			if resp.Status != http.StatusOK {
				t.Fatalf("GET %d: %s", i, resp)
			}
			seen[resp.Header.Get("X-Cache")]++
		}
		return seen
	}
	for deadline := time.Now().Add(10 * time.Second); round()["HIT"] < paths; {
		if time.Now().After(deadline) {
			t.Fatal("the entries never all became HITs through the cluster")
		}
		time.Sleep(50 * time.Millisecond)
	}
	cluster.Masters[1].Stop()
	time.Sleep(100 * time.Millisecond) // past local_index_ttl_ms: every lookup asks the store
	after := map[string]int{}
	for range 3 {
		for k, n := range round() {
			after[k] += n
		}
	}
	t.Logf("after the kill: %v", after)
	if after["HIT"] == 0 || after["BYPASS"]+after["MISS"] == 0 {
		t.Errorf("want HITs from the live masters and misses for the dead one's keys, got %v", after)
	}
	if n, _ := gw.Counter("portcullis.cache.unavailable"); n == 0 {
		t.Error("cache.unavailable is 0: the dead master's keys were never looked up")
	}
}
