package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/e2e/harness"
	"github.com/portcullis/portcullis/e2e/scenarios"
)

// BenchmarkSoak (`make soak`, README "Envoy and Istio versions") runs the
// shipped configuration in Envoy (2 workers, cache on) at full rate with wrk
// for SOAK_DURATION (default 10m), rotating SOAK_TOKENS tokens (4096) over
// SOAK_PATHS paths (1024), and samples Envoy every 10 s: requests, non-2xx,
// VM reloads (wasm.portcullis.vm_reload*) and resident memory. It fails when
// a VM was reloaded, a request was not answered 2xx, or RSS grew more than 5 %
// after the warm-up (the first minute, at most half the run). Run it once
// (-benchtime 1x); it is a soak, not a timing.
func BenchmarkSoak(b *testing.B) {
	duration := envDuration(b, "SOAK_DURATION", 10*time.Minute)
	tokens := envInt(b, "SOAK_TOKENS", 4096)
	paths := envInt(b, "SOAK_PATHS", 1024)
	connections := envInt(b, "SOAK_CONNECTIONS", 32)
	warmup := min(time.Minute, duration/2)
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		harness.Unavailable(b, "wrk is missing (apt-get install wrk)")
	}
	envoy := harness.NewEnvoy(b)
	gw := envoy.Start(b, harness.Options{})
	// The tokens must outlive the run; the shipped configuration's leeway
	// does not stretch to ten minutes.
	script := writeSoakScript(b, tokens, paths, time.Now().Add(duration+5*time.Minute))

	ctx, cancel := context.WithTimeout(context.Background(), duration+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, wrk, "-t2", "-c"+strconv.Itoa(connections), "-d"+strconv.Itoa(int(duration.Seconds()))+"s",
		"--timeout", "5s", "-s", script, gw.BaseURL)
	var wrkOut strings.Builder
	cmd.Stdout, cmd.Stderr = &wrkOut, &wrkOut
	soakf("soak: Envoy %s, %v at full rate, %d connections, %d tokens × %d paths", envoy.Version, duration, connections, tokens, paths)
	began := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatalf("soak: start wrk: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	first := sampleSoak(b, gw)
	var warm soakSample
	last := first
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for running := true; running; {
		select {
		case err := <-done:
			if err != nil {
				b.Fatalf("soak: wrk: %v\n%s", err, wrkOut.String())
			}
			running = false
		case <-tick.C:
		}
		s := sampleSoak(b, gw)
		if warm.rss == 0 && time.Since(began) >= warmup {
			warm = s
		}
		soakf("soak: %4ds  requests %9d  non-2xx %6d  vm_reload %v  rss %6.1f MiB",
			int(time.Since(began).Seconds()), s.requests-first.requests, s.non2xx()-first.non2xx(), s.reloads, float64(s.rss)/(1<<20))
		last = s
	}
	elapsed := time.Since(began)

	requests := last.requests - first.requests
	non2xx := last.non2xx() - first.non2xx()
	reloads := int64(0)
	for _, n := range last.reloads {
		reloads += n
	}
	growth := 100 * float64(last.rss-warm.rss) / float64(warm.rss)
	soakf("soak: Envoy %s: %d requests in %v (%.0f/s), %d non-2xx, %d VM reloads, RSS %.1f MiB after warm-up, %.1f MiB at the end (%+.1f %%)\n--- wrk ---\n%s",
		envoy.Version, requests, elapsed.Round(time.Second), float64(requests)/elapsed.Seconds(), non2xx, reloads,
		float64(warm.rss)/(1<<20), float64(last.rss)/(1<<20), growth, wrkOut.String())
	b.ReportMetric(float64(requests), "requests")
	b.ReportMetric(float64(requests)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(non2xx), "non-2xx")
	b.ReportMetric(float64(reloads), "vm-reloads")
	b.ReportMetric(growth, "rss-growth-%")
	b.ReportMetric(float64(last.rss)/(1<<20), "rss-MiB")
	if requests == 0 {
		b.Errorf("soak: no request reached Envoy")
	}
	if non2xx != 0 {
		b.Errorf("soak: %d responses were not 2xx", non2xx)
	}
	if reloads != 0 {
		b.Errorf("soak: VMs were reloaded: %v", last.reloads)
	}
	if growth > 5 {
		b.Errorf("soak: RSS grew %.1f %% after the warm-up (floor: 5 %%)", growth)
	}
	if m := regexp.MustCompile(`Socket errors: .*`).FindString(wrkOut.String()); m != "" {
		b.Errorf("soak: wrk %s", m)
	}
}

// soakf prints one line of the soak's report as it happens. Not b.Logf: the
// testing package keeps only the first lines a benchmark logs, and a
// ten-minute soak has sixty samples.
func soakf(format string, args ...any) {
	fmt.Printf(format+"\n", args...)
}

// soakSample is one look at Envoy during the soak.
type soakSample struct {
	// requests and ok2xx count the gateway listener's answered requests
	// (downstream_rq_1xx … _5xx) and its 2xx. Answered, not started: a
	// request in flight when wrk stops is not a non-2xx answer.
	requests, ok2xx int64
	reloads         map[string]int64 // wasm.portcullis.vm_reload*, by name
	rss             int64
}

func (s soakSample) non2xx() int64 { return s.requests - s.ok2xx }

func sampleSoak(b *testing.B, gw *harness.Gateway) soakSample {
	classes := gw.HostStats(`^http\.gateway\.downstream_rq_[1-5]xx$`)
	if classes == nil {
		b.Fatalf("soak: Envoy's admin /stats does not answer")
	}
	var answered int64
	for _, n := range classes {
		answered += n
	}
	return soakSample{
		requests: answered,
		ok2xx:    classes["http.gateway.downstream_rq_2xx"],
		// Envoy's vm_reload, vm_reload_success, _failure and _backoff: any
		// of them above 0 means a VM died.
		reloads: gw.HostStats(`^wasm\.portcullis\.vm_reload`),
		rss:     rssBytes(b, gw.PID),
	}
}

// writeSoakScript writes wrk's Lua script: each request takes the next token
// and a path that shifts every round of tokens, so that the (token, path)
// pairs keep changing and the cache keeps missing and filling; one path in
// eight is on the public route.
func writeSoakScript(b *testing.B, tokens, paths int, exp time.Time) string {
	var s strings.Builder
	s.WriteString("local tokens = {\n")
	for i := range tokens {
		tok := scenarios.Token(harness.TestSecret, fmt.Sprintf("soak-%d", i), map[string]any{"exp": exp.Unix()})
		fmt.Fprintf(&s, "%q,\n", "Bearer "+tok)
	}
	s.WriteString("}\nlocal paths = {\n")
	for i := range paths {
		if i%8 == 7 {
			fmt.Fprintf(&s, "%q,\n", fmt.Sprintf("/api/public/soak/%d", i))
		} else {
			fmt.Fprintf(&s, "%q,\n", fmt.Sprintf("/api/soak/%d", i))
		}
	}
	s.WriteString(`}
local threads = 0
function setup(thread)
  thread:set("first", threads * 7919)
  threads = threads + 1
end
local n
function init(args)
  n = first
end
function request()
  n = n + 1
  return wrk.format("GET", paths[(n * 31 + math.floor(n / #tokens)) % #paths + 1], {["Authorization"] = tokens[n % #tokens + 1]})
end
`)
	path := filepath.Join(b.TempDir(), "soak.lua")
	if err := os.WriteFile(path, []byte(s.String()), 0o600); err != nil {
		b.Fatalf("soak: %v", err)
	}
	return path
}

func envDuration(b *testing.B, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 10*time.Second {
		b.Fatalf("%s=%q: want a duration of at least 10s", name, v)
	}
	return d
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}
