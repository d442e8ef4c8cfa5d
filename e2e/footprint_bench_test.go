package e2e

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/e2e/harness"
	"github.com/portcullis/portcullis/e2e/scenarios"
)

// footprintRequests are sent, then footprintSettle waited, before memory is
// read: what is measured is a process that has served and gone idle, not one
// caught in the middle of its first requests.
const (
	footprintRequests = 50
	footprintSettle   = 2 * time.Second
)

// BenchmarkEnvoyFootprint: what loading the plugin costs an Envoy. For 1, 2
// and 4 workers it starts the shipped envoy.yaml bare (the wasm filter
// removed) and with the plugin, one Envoy at a time, and reports the time
// from start to admin /ready, the CPU time Envoy spent until then (all its
// threads: on a shared machine the wall time depends on the neighbours, the
// CPU time on the work, mostly V8 compiling the module) and VmRSS once it has
// served. It then prints both side by side as a Markdown table on stdout (a
// parent benchmark's log is not shown). Run it once: make bench-footprint.
func BenchmarkEnvoyFootprint(b *testing.B) {
	envoy := harness.NewEnvoy(b)
	module, err := os.Stat(envoy.Wasm)
	if err != nil {
		b.Fatal(err)
	}
	tok := "Bearer " + scenarios.Token(harness.TestSecret, "footprint", nil)
	type sample struct{ rss, ready, cpu float64 } // MiB, seconds, seconds
	results := map[string]sample{}
	workers := []int{1, 2, 4}
	for _, n := range workers {
		for _, variant := range []string{"bare", "plugin"} {
			name := fmt.Sprintf("workers=%d/%s", n, variant)
			b.Run(name, func(b *testing.B) {
				for b.Loop() {
					began := time.Now()
					gw := envoy.Start(b, harness.Options{Concurrency: n, WithoutPlugin: variant == "bare"})
					ready := time.Since(began)
					cpu := cpuSeconds(b, gw.PID)
					client := &http.Client{}
					for range footprintRequests {
						if err := get(client, gw.BaseURL+"/api/footprint", tok, http.StatusOK); err != nil {
							b.Fatal(err)
						}
					}
					time.Sleep(footprintSettle)
					s := sample{rss: float64(rssBytes(b, gw.PID)) / (1 << 20), ready: ready.Seconds(), cpu: cpu}
					results[name] = s
					b.ReportMetric(s.rss, "rss-MiB")
					b.ReportMetric(s.ready, "ready-s")
					b.ReportMetric(s.cpu, "cpu-to-ready-s")
				}
			})
		}
	}
	var table strings.Builder
	fmt.Fprintf(&table, "module %s: %d bytes\n", envoy.Wasm, module.Size())
	table.WriteString("| workers | bare RSS | with plugin | plugin − bare | bare ready (CPU) | with plugin ready (CPU) |\n|---|---|---|---|---|---|\n")
	for _, n := range workers {
		bare, okBare := results[fmt.Sprintf("workers=%d/bare", n)]
		plugin, okPlugin := results[fmt.Sprintf("workers=%d/plugin", n)]
		if !okBare || !okPlugin {
			continue // filtered out with -bench
		}
		fmt.Fprintf(&table, "| %d | %.0f MiB | %.0f MiB | +%.0f MiB | %.2f s (%.2f s) | %.2f s (%.2f s) |\n",
			n, bare.rss, plugin.rss, plugin.rss-bare.rss, bare.ready, bare.cpu, plugin.ready, plugin.cpu)
	}
	fmt.Print(table.String())
}

// cpuSeconds is the user plus system CPU time a process has used so far, from
// /proc/<pid>/stat (fields 14 and 15, in USER_HZ ticks, 100 per second on
// Linux whatever the kernel's HZ).
func cpuSeconds(b *testing.B, pid int) float64 {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		b.Fatalf("cpu: %v", err)
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	_, rest, ok := strings.Cut(string(raw), ") ")
	fields := strings.Fields(rest)
	if !ok || len(fields) < 13 {
		b.Fatalf("cpu: cannot parse %q", raw)
	}
	// rest starts at field 3, so utime (14) and stime (15) are fields[11] and fields[12].
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			b.Fatalf("cpu: %q: %v", f, err)
		}
		ticks += n
	}
	return float64(ticks) / 100
}
