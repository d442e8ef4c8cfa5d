package cachetest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/cacheserver"
	"github.com/portcullis/portcullis/internal/cacheserver/cachetest"
	"github.com/portcullis/portcullis/internal/redistest"
)

var client = &http.Client{Timeout: 5 * time.Second}

func entryURL(s *cachetest.Server, n int) string {
	return fmt.Sprintf("%s/v1/entries/%064x", s.URL(), n)
}

// send makes one request and returns its status and body; err is a
// transport error (the server is down).
func send(method, url string, body []byte) (status int, respBody []byte, err error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	respBody, err = io.ReadAll(resp.Body)
	return resp.StatusCode, respBody, err
}

func mustSend(t *testing.T, method, url string, body []byte, want int) []byte {
	t.Helper()
	status, got, err := send(method, url, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	if status != want {
		t.Fatalf("%s %s: %d %s, want %d", method, url, status, got, want)
	}
	return got
}

// A server answers the protocol over real connections, and Stop kills it:
// its port refuses connections from then on.
func TestServerServesUntilStopped(t *testing.T) {
	for _, backend := range cachetest.Backends {
		t.Run(string(backend), func(t *testing.T) {
			s := cachetest.StartBackend(t, backend)
			mustSend(t, "PUT", entryURL(s, 1), []byte("envelope"), 204)
			if got := mustSend(t, "GET", entryURL(s, 1), nil, 200); string(got) != "envelope" {
				t.Fatalf("GET: %q", got)
			}
			mustSend(t, "DELETE", entryURL(s, 1), nil, 204)
			mustSend(t, "GET", entryURL(s, 1), nil, 404)
			mustSend(t, "GET", s.URL()+"/healthz", nil, 200)
			st, err := s.Handler.Stats(context.Background())
			if err != nil || st.Hits != 1 || st.Misses != 1 || st.Puts != 1 || st.Deletes != 1 || st.Entries != 0 {
				t.Errorf("Stats: %+v (%v)", st, err)
			}
			s.Stop()
			if _, _, err := send("GET", s.URL()+"/healthz", nil); err == nil {
				t.Fatal("a stopped server still answers")
			}
			s.Stop() // twice is fine
		})
	}
}

// In-memory replicas share nothing: an entry put on one is not on another
// (Envoy's consistent hashing sends each key to one of them).
func TestMemoryReplicasAreIndependent(t *testing.T) {
	a := cachetest.StartBackend(t, cachetest.Memory)
	b := cachetest.StartBackend(t, cachetest.Memory)
	mustSend(t, "PUT", entryURL(a, 1), []byte("on a"), 204)
	mustSend(t, "GET", entryURL(b, 1), nil, 404)
}

// With Redis, entries outlive the cache server: a server restarted on the
// same address (with a new Redis client) finds what the first one stored,
// and so does a replica on another address.
func TestRedisKeepsEntriesAcrossServerRestart(t *testing.T) {
	redis := redistest.Start(t)
	first := cachetest.Start(t, cachetest.RedisStore(t, redis.Addr), cacheserver.Options{})
	mustSend(t, "PUT", entryURL(first, 7), []byte("kept"), 204)
	first.Stop()

	restarted := cachetest.StartAt(t, first.Addr, cachetest.RedisStore(t, redis.Addr), cacheserver.Options{})
	if restarted.Addr != first.Addr {
		t.Fatalf("restarted on %s, not %s", restarted.Addr, first.Addr)
	}
	if got := mustSend(t, "GET", entryURL(restarted, 7), nil, 200); string(got) != "kept" {
		t.Fatalf("after the restart: %q", got)
	}
	replica := cachetest.Start(t, cachetest.RedisStore(t, redis.Addr), cacheserver.Options{})
	if got := mustSend(t, "GET", entryURL(replica, 7), nil, 200); string(got) != "kept" {
		t.Fatalf("on a replica: %q", got)
	}
}

// A Redis that dies under a running server, or one that accepts connections
// but never answers, makes every request a quick 503 JSON error, never a hang.
func TestRedisFailureIsAQuick503(t *testing.T) {
	killed := redistest.Start(t)
	hanging, err := net.Listen("tcp", "127.0.0.1:0") // the kernel accepts; nobody reads
	if err != nil {
		t.Fatal(err)
	}
	defer hanging.Close()
	for name, addr := range map[string]string{"killed": killed.Addr, "hanging": hanging.Addr().String()} {
		t.Run(name, func(t *testing.T) {
			// The production timeout, 100 ms: a dead Redis costs little even on a loaded machine.
			r := cachetest.RedisStoreWith(t, cacheserver.RedisOptions{Addrs: []string{addr}, Timeout: cacheserver.DefaultRedisTimeout})
			s := cachetest.Start(t, r, cacheserver.Options{})
			if name == "killed" {
				mustSend(t, "PUT", entryURL(s, 1), []byte("v"), 204) // the client has a live connection…
				killed.Stop()                                        // …that dies now
			}
			for _, method := range []string{"GET", "PUT", "DELETE"} {
				began := time.Now()
				status, body, err := send(method, entryURL(s, 1), []byte("v"))
				took := time.Since(began)
				if err != nil || status != 503 {
					t.Fatalf("%s: %d %s (%v), want 503", method, status, body, err)
				}
				var e map[string]string
				if err := json.Unmarshal(body, &e); err != nil || e["error"] != "store_unavailable" {
					t.Errorf("%s: body %q, want the JSON error store_unavailable", method, body)
				}
				// At most two attempts of 100 ms and a retry backoff; go-redis's
				// defaults would take seconds.
				if took > time.Second {
					t.Errorf("%s: the 503 took %v", method, took)
				}
			}
		})
	}
}
