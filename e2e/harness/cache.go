package harness

import (
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/portcullis/portcullis/internal/cacheserver"
)

// CacheCluster is the Envoy cluster of the cache servers in the shipped
// envoy.yaml.
const CacheCluster = "cache"

// CacheServer is a cache server (internal/cacheserver) running in the test
// process on a free loopback port.
type CacheServer struct {
	// Addr is "127.0.0.1:port".
	Addr  string
	Store cacheserver.Store
	srv   *httptest.Server
	once  sync.Once
}

// StartCacheServer serves store with the cache protocol until t ends (or Stop).
func StartCacheServer(t testing.TB, store cacheserver.Store) *CacheServer {
	t.Helper()
	c := &CacheServer{Store: store, srv: httptest.NewServer(cacheserver.NewHandler(store, cacheserver.Options{}))}
	c.Addr = strings.TrimPrefix(c.srv.URL, "http://")
	t.Cleanup(c.Stop)
	return c
}

// Stop closes the listener and every connection, as a crashed server would.
func (c *CacheServer) Stop() {
	c.once.Do(func() {
		c.srv.CloseClientConnections()
		c.srv.Close()
	})
}

// clustersFor returns opts.Clusters with the cache cluster added when the
// test did not name one: every gateway gets its own in-memory cache server,
// so no test ever reaches a cache server on the shipped port.
func clustersFor(t testing.TB, opts Options) map[string]string {
	out := map[string]string{}
	for name, addr := range opts.Clusters {
		out[name] = addr
	}
	if _, ok := out[CacheCluster]; !ok {
		store, err := cacheserver.NewMemory(16 << 20)
		if err != nil {
			t.Fatalf("harness: %v", err)
		}
		out[CacheCluster] = StartCacheServer(t, store).Addr
	}
	return out
}
