package harness

import (
	"testing"

	"github.com/portcullis/portcullis/internal/cacheserver/cachetest"
)

// CacheCluster is the Envoy cluster of the cache servers in the shipped
// envoy.yaml.
const CacheCluster = "cache"

// clustersFor returns opts.Clusters with the cache cluster added when the
// test did not name one: every gateway gets its own in-memory cache server,
// so no test ever reaches a cache server on the shipped port.
func clustersFor(t testing.TB, opts Options) map[string]string {
	out := map[string]string{}
	for name, addr := range opts.Clusters {
		out[name] = addr
	}
	if _, ok := out[CacheCluster]; !ok {
		out[CacheCluster] = cachetest.StartBackend(t, cachetest.Memory).Addr
	}
	return out
}
