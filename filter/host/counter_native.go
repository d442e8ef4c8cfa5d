//go:build !wasip1

package host

import "github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"

// Natively (proxytest) the counters go through the SDK, whose emulator
// records them; inside the VM counter_wasm.go calls the ABI itself.

// Counter is a proxy-wide counter; Envoy shows it in /stats as wasmcustom.<name>.
type Counter struct{ c proxywasm.MetricCounter }

// NewCounter defines (or finds) the counter called name.
func NewCounter(name string) Counter { return Counter{c: proxywasm.DefineCounterMetric(name)} }

// Add adds n.
func (c Counter) Add(n uint64) { c.c.Increment(n) }
