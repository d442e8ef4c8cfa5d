package e2e

import (
	"fmt"
	"net/http"
	"os"
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
// from start to admin /ready and VmRSS once it has served; it then prints
// both side by side as a Markdown table on stdout (a parent benchmark's log is
// not shown). Run it once: make bench-footprint.
func BenchmarkEnvoyFootprint(b *testing.B) {
	envoy := harness.NewEnvoy(b)
	module, err := os.Stat(envoy.Wasm)
	if err != nil {
		b.Fatal(err)
	}
	tok := "Bearer " + scenarios.Token(harness.TestSecret, "footprint", nil)
	type sample struct{ rss, ready float64 } // MiB, seconds
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
					client := &http.Client{}
					for range footprintRequests {
						if err := get(client, gw.BaseURL+"/api/footprint", tok, http.StatusOK); err != nil {
							b.Fatal(err)
						}
					}
					time.Sleep(footprintSettle)
					s := sample{rss: float64(rssBytes(b, gw.PID)) / (1 << 20), ready: ready.Seconds()}
					results[name] = s
					b.ReportMetric(s.rss, "rss-MiB")
					b.ReportMetric(s.ready, "ready-s")
				}
			})
		}
	}
	var table strings.Builder
	fmt.Fprintf(&table, "module %s: %d bytes\n", envoy.Wasm, module.Size())
	table.WriteString("| workers | bare RSS | with plugin | plugin − bare | bare ready | with plugin ready |\n|---|---|---|---|---|---|\n")
	for _, n := range workers {
		bare, okBare := results[fmt.Sprintf("workers=%d/bare", n)]
		plugin, okPlugin := results[fmt.Sprintf("workers=%d/plugin", n)]
		if !okBare || !okPlugin {
			continue // filtered out with -bench
		}
		fmt.Fprintf(&table, "| %d | %.0f MiB | %.0f MiB | +%.0f MiB | %.2f s | %.2f s |\n",
			n, bare.rss, plugin.rss, plugin.rss-bare.rss, bare.ready, plugin.ready)
	}
	fmt.Print(table.String())
}
