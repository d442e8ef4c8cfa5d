package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/e2e/harness"
	"github.com/portcullis/portcullis/e2e/scenarios"
	"github.com/portcullis/portcullis/internal/redistest"
)

// Real-Envoy benchmarks (`make bench`; the memory one is `make bench-memory`).
// Envoy runs with 2 workers beside the load generator on the same machine,
// so the figures compare configurations within one run; they are not a
// capacity statement.

// withRateLimit returns the shipped plugin configuration with rate_limit set
// (none when nil) and, unless keepCache, without caching, so that every
// request is decided and reaches the upstream.
func withRateLimit(b testing.TB, rateLimit map[string]any, keepCache bool) string {
	drop := []string{"rate_limit", "cache"}
	if keepCache {
		drop = drop[:1]
	}
	cfg := shippedWithout(b, drop...)
	if rateLimit != nil {
		cfg["rate_limit"] = rateLimit
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return string(raw)
}

// shippedWithout returns the shipped plugin configuration without the named
// top-level blocks.
func shippedWithout(b testing.TB, blocks ...string) map[string]any {
	var cfg map[string]any
	if err := json.Unmarshal([]byte(harness.ShippedPluginConfig(b)), &cfg); err != nil {
		b.Fatal(err)
	}
	for _, name := range blocks {
		delete(cfg, name)
	}
	return cfg
}

// generousLimit never refuses during a benchmark, so every request costs a
// full decision and reaches the upstream.
var generousLimit = []any{map[string]any{"requests": 1_000_000_000, "window_seconds": 3600}}

// BenchmarkEnvoyRateLimitThroughput: requests per second through Envoy with
// rate limiting off, local (shared data) and fleet (a callout to
// envoyproxy/ratelimit + Redis per request), 256 keys, 8 client connections.
func BenchmarkEnvoyRateLimitThroughput(b *testing.B) {
	envoy := harness.NewEnvoy(b)
	svc := harness.StartRateLimitService(b, redistest.Start(b).Addr, harness.WriteDescriptorConfig(b, `domain: portcullis
descriptors:
  - key: api_key
    descriptors:
      - key: route
        rate_limit: {unit: hour, requests_per_unit: 1000000000}
`))
	modes := []struct {
		name   string
		config string
	}{
		{"off", withRateLimit(b, nil, false)},
		{"local", withRateLimit(b, map[string]any{"default": generousLimit}, false)},
		{"fleet", withRateLimit(b, map[string]any{"mode": "fleet", "fleet": map[string]any{}}, false)},
	}
	tokens := make([]string, 256)
	for i := range tokens {
		tokens[i] = "Bearer " + scenarios.Token(harness.TestSecret, "bench-"+strconv.Itoa(i), nil)
	}
	for _, m := range modes {
		gw := envoy.Start(b, harness.Options{PluginConfig: m.config, Clusters: map[string]string{harness.RateLimitCluster: harness.H2C(svc.GRPCAddr)}})
		b.Run(m.name, func(b *testing.B) {
			var next atomic.Int64
			b.SetParallelism(4) // × GOMAXPROCS (2) = 8 connections
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
				for pb.Next() {
					tok := tokens[next.Add(1)%int64(len(tokens))]
					if err := get(client, gw.BaseURL+"/api/bench", tok, http.StatusOK); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}

func get(client *http.Client, url, authorization string, want int) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", authorization)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		return fmt.Errorf("status %d, want %d", resp.StatusCode, want)
	}
	return nil
}

// BenchmarkEnvoyRateLimitMemory sends requests with PORTCULLIS_MEMORY_KEYS
// distinct keys (default 1,000,000) through Envoy with local rate limiting
// (default table: 65536 slots) and reports Envoy's resident memory after one
// key, after 20,000 keys and after all of them. Run it once: make bench-memory.
func BenchmarkEnvoyRateLimitMemory(b *testing.B) {
	keys := 1_000_000
	if v := os.Getenv("PORTCULLIS_MEMORY_KEYS"); v != "" {
		var err error
		if keys, err = strconv.Atoi(v); err != nil || keys < 20_000 {
			b.Fatalf("PORTCULLIS_MEMORY_KEYS=%q: want a number ≥ 20000", v)
		}
	}
	envoy := harness.NewEnvoy(b)
	gw := envoy.Start(b, harness.Options{PluginConfig: withRateLimit(b, map[string]any{"default": generousLimit}, false)})
	send := func(from, to int) {
		var next atomic.Int64
		next.Store(int64(from))
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
				for i := next.Add(1) - 1; i < int64(to); i = next.Add(1) - 1 {
					tok := "Bearer " + scenarios.Token(harness.TestSecret, "mem-"+strconv.FormatInt(i, 10), nil)
					if err := get(client, gw.BaseURL+"/api/mem", tok, http.StatusOK); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
	}
	for b.Loop() {
		send(0, 1)
		start := rssBytes(b, gw.PID)
		send(1, 20_000)
		warm := rssBytes(b, gw.PID)
		began := time.Now()
		send(20_000, keys)
		end := rssBytes(b, gw.PID)
		b.ReportMetric(float64(start)/(1<<20), "rss-after-1-key-MiB")
		b.ReportMetric(float64(warm)/(1<<20), "rss-after-20k-keys-MiB")
		b.ReportMetric(float64(end)/(1<<20), "rss-after-all-keys-MiB")
		b.ReportMetric(float64(end-warm)/(1<<20), "rss-growth-20k-to-all-MiB")
		b.ReportMetric(float64(keys-20_000)/time.Since(began).Seconds(), "keys/s")
	}
}

// rssBytes reads a process's resident set size (VmRSS) from /proc.
func rssBytes(b *testing.B, pid int) int64 {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatalf("rss: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				b.Fatalf("rss: %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	b.Fatalf("rss: no VmRSS for pid %d", pid)
	return 0
}

// BenchmarkEnvoyCache: the shipped configuration with caching (without rate
// limiting, which has benchmarks of its own), in front of an
// upstream that takes 20 ms (/slow?ms=20), one in-memory cache server.
//   - hit_latency / miss_latency: one client, p50 and p99 of a HIT (the same
//     path every time) and of a MISS (a new path every time);
//   - hit_throughput / bare_throughput: 8 connections, HITs against the same
//     Envoy and plugin without caching proxying every request upstream.
func BenchmarkEnvoyCache(b *testing.B) {
	envoy := harness.NewEnvoy(b)
	// Without rate limiting: one key sends every request here.
	cached := envoy.Start(b, harness.Options{PluginConfig: withRateLimit(b, nil, true)})
	bare := envoy.Start(b, harness.Options{PluginConfig: withRateLimit(b, nil, false)})
	tok := "Bearer " + scenarios.Token(harness.TestSecret, "bench", nil)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	hitPath := cached.BaseURL + "/api/slow?ms=20&k=hit"
	if err := get(client, hitPath, tok, http.StatusOK); err != nil {
		b.Fatal(err)
	}
	// Wait for the fill to land, then every request of hitPath is a HIT.
	deadline := time.Now().Add(5 * time.Second)
	for xcache(b, client, hitPath, tok) != "HIT" {
		if time.Now().After(deadline) {
			b.Fatal("the entry never became a HIT")
		}
		time.Sleep(20 * time.Millisecond)
	}
	latency := func(b *testing.B, path func(i int) string, want string) {
		var d []time.Duration
		i := 0
		for b.Loop() {
			i++
			began := time.Now()
			if got := xcache(b, client, path(i), tok); got != want {
				b.Fatalf("X-Cache %q, want %q", got, want)
			}
			d = append(d, time.Since(began))
		}
		slices.Sort(d)
		b.ReportMetric(float64(d[len(d)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(d[len(d)*99/100].Microseconds())/1000, "p99-ms")
	}
	b.Run("hit_latency", func(b *testing.B) { latency(b, func(int) string { return hitPath }, "HIT") })
	// A new path for every request, across the runs the benchmark makes.
	run, seq := strconv.FormatInt(time.Now().UnixNano(), 36), 0
	b.Run("miss_latency", func(b *testing.B) {
		latency(b, func(int) string {
			seq++
			return cached.BaseURL + "/api/slow?ms=20&k=miss-" + run + "-" + strconv.Itoa(seq)
		}, "MISS")
	})
	throughput := func(b *testing.B, url string) {
		b.SetParallelism(4) // × GOMAXPROCS (2) = 8 connections
		b.RunParallel(func(pb *testing.PB) {
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			for pb.Next() {
				if err := get(c, url, tok, http.StatusOK); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	}
	b.Run("hit_throughput", func(b *testing.B) { throughput(b, hitPath) })
	b.Run("bare_throughput", func(b *testing.B) { throughput(b, bare.BaseURL+"/api/slow?ms=20") })
}

func xcache(b *testing.B, client *http.Client, url, authorization string) string {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Authorization", authorization)
	resp, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.Header.Get("X-Cache")
}
