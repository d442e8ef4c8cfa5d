//go:build wasip1

package host

import (
	"strconv"
	"unsafe"
)

// Inside the VM the counters call the proxy-wasm ABI directly: the SDK's
// DefineCounterMetric and Increment format their panics with fmt, and fmt
// with the reflect and strconv code it brings is about a tenth of the
// module (README "Performance", module footprint). A failing counter is
// logged once when it is defined and never panics.

//go:wasmimport env proxy_define_metric
func proxyDefineMetric(metricType uint32, name *byte, nameSize int32, id *uint32) uint32

//go:wasmimport env proxy_increment_metric
func proxyIncrementMetric(id uint32, offset int64) uint32

const metricTypeCounter = 0 // proxy-wasm ABI 0.2.1 MetricType::Counter

// Counter is a proxy-wide counter; Envoy shows it in /stats as wasmcustom.<name>.
type Counter struct {
	id      uint32
	defined bool
}

// NewCounter defines (or finds) the counter called name.
func NewCounter(name string) Counter {
	var id uint32
	if st := proxyDefineMetric(metricTypeCounter, unsafe.StringData(name), int32(len(name)), &id); st != 0 {
		Log(Error, "portcullis: cannot define counter "+name+": proxy-wasm status "+strconv.Itoa(int(st)))
		return Counter{}
	}
	return Counter{id: id, defined: true}
}

// Add adds n.
func (c Counter) Add(n uint64) {
	if c.defined {
		proxyIncrementMetric(c.id, int64(n))
	}
}
