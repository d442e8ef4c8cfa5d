package wasmhost

import "sync"

// MetricType is a proxy-wasm metric type.
type MetricType uint32

// The metric types a plugin can define.
const (
	Counter   MetricType = 0
	Gauge     MetricType = 1
	Histogram MetricType = 2
)

// metrics are shared by all VMs of a Host, as Envoy's stats store is: every
// worker that defines a metric by the same name gets the same metric.
type metrics struct {
	mu     sync.Mutex
	byName map[string]uint32
	byID   []*metric
}

type metric struct {
	name    string
	typ     MetricType
	value   int64
	samples []uint64
}

func newMetrics() *metrics { return &metrics{byName: map[string]uint32{}} }

// define returns the id of name, creating it; ids start at 1.
func (m *metrics) define(typ MetricType, name string) (uint32, status) {
	if typ > Histogram {
		return 0, statusBadArgument
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if id, ok := m.byName[name]; ok {
		return id, statusOK
	}
	m.byID = append(m.byID, &metric{name: name, typ: typ})
	id := uint32(len(m.byID))
	m.byName[name] = id
	return id, statusOK
}

func (m *metrics) lookupLocked(id uint32) *metric {
	if id == 0 || int(id) > len(m.byID) {
		return nil
	}
	return m.byID[id-1]
}

func (m *metrics) increment(id uint32, offset int64) status {
	m.mu.Lock()
	defer m.mu.Unlock()
	mt := m.lookupLocked(id)
	switch {
	case mt == nil:
		return statusNotFound
	case mt.typ == Counter && offset < 0, mt.typ == Histogram:
		return statusBadArgument
	}
	mt.value += offset
	return statusOK
}

func (m *metrics) record(id uint32, value uint64) status {
	m.mu.Lock()
	defer m.mu.Unlock()
	mt := m.lookupLocked(id)
	switch {
	case mt == nil:
		return statusNotFound
	case mt.typ == Histogram:
		mt.samples = append(mt.samples, value)
	default:
		mt.value = int64(value)
	}
	return statusOK
}

func (m *metrics) get(id uint32) (uint64, status) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mt := m.lookupLocked(id)
	switch {
	case mt == nil:
		return 0, statusNotFound
	case mt.typ == Histogram:
		return 0, statusBadArgument // as Envoy: histograms cannot be read back
	}
	return uint64(mt.value), statusOK
}

// Metric returns the value of the counter or gauge the plugin defined as
// name; ok is false when no VM defined it (or it is a histogram).
func (h *Host) Metric(name string) (value int64, ok bool) {
	m := h.metrics
	m.mu.Lock()
	defer m.mu.Unlock()
	id, ok := m.byName[name]
	if !ok || m.byID[id-1].typ == Histogram {
		return 0, false
	}
	return m.byID[id-1].value, true
}

// HistogramSamples returns every value recorded in the histogram name.
func (h *Host) HistogramSamples(name string) ([]uint64, bool) {
	m := h.metrics
	m.mu.Lock()
	defer m.mu.Unlock()
	id, ok := m.byName[name]
	if !ok || m.byID[id-1].typ != Histogram {
		return nil, false
	}
	return append([]uint64(nil), m.byID[id-1].samples...), true
}

// Metrics returns every counter and gauge by name.
func (h *Host) Metrics() map[string]int64 {
	m := h.metrics
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]int64, len(m.byID))
	for _, mt := range m.byID {
		if mt.typ != Histogram {
			out[mt.name] = mt.value
		}
	}
	return out
}
