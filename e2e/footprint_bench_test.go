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
// removed), with the Go do-nothing module in the plugin's place (what the
// SDK and the Go runtime cost before the plugin adds anything;
// PORTCULLIS_NOOP_GO_WASM, as for bench-compare) and with the plugin, one
// Envoy at a time, and reports the time
// from start to admin /ready, the CPU time Envoy spent until then (all its
// threads: on a shared machine the wall time depends on the neighbours, the
// CPU time on the work, mostly V8 compiling the module) and VmRSS once it has
// served. It then prints both side by side as a Markdown table on stdout (a
// parent benchmark's log is not shown). Run it once: make bench-footprint.
func BenchmarkEnvoyFootprint(b *testing.B) {
	envoy := harness.NewEnvoy(b)
	modules := map[string]string{"bare": "", "noop-go": noopGoModule(b), "plugin": envoy.Wasm}
	variants := []string{"bare", "noop-go", "plugin"}
	tok := "Bearer " + scenarios.Token(harness.TestSecret, "footprint", nil)
	type sample struct{ rss, ready, cpu float64 } // MiB, seconds, seconds
	results := map[string]sample{}
	workers := []int{1, 2, 4}
	for _, n := range workers {
		for _, variant := range variants {
			name := fmt.Sprintf("workers=%d/%s", n, variant)
			b.Run(name, func(b *testing.B) {
				for b.Loop() {
					began := time.Now()
					gw := envoy.Start(b, harness.Options{Concurrency: n, WithoutPlugin: variant == "bare", Wasm: modules[variant]})
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
	for _, variant := range variants[1:] {
		module, err := os.Stat(modules[variant])
		if err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(&table, "%s module %s: %d bytes\n", variant, modules[variant], module.Size())
	}
	table.WriteString("| workers | bare RSS | Go do-nothing module | with plugin | do-nothing − bare | plugin − bare | bare ready (CPU) | do-nothing ready (CPU) | with plugin ready (CPU) |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, n := range workers {
		bare, okBare := results[fmt.Sprintf("workers=%d/bare", n)]
		noop, okNoop := results[fmt.Sprintf("workers=%d/noop-go", n)]
		plugin, okPlugin := results[fmt.Sprintf("workers=%d/plugin", n)]
		if !okBare || !okNoop || !okPlugin {
			continue // filtered out with -bench
		}
		fmt.Fprintf(&table, "| %d | %.0f MiB | %.0f MiB | %.0f MiB | +%.0f MiB | +%.0f MiB | %.2f s (%.2f s) | %.2f s (%.2f s) | %.2f s (%.2f s) |\n",
			n, bare.rss, noop.rss, plugin.rss, noop.rss-bare.rss, plugin.rss-bare.rss,
			bare.ready, bare.cpu, noop.ready, noop.cpu, plugin.ready, plugin.cpu)
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
