package plugin

import (
	"runtime"
	"runtime/debug"
	runtimemetrics "runtime/metrics"
)

// The VM's garbage collector runs on the tick, between requests, rather
// than inside the allocation of whichever request crosses the heap's
// target: a VM runs one callback at a time, so a collection inside a
// request adds its whole pause to that request. The Go runtime's own
// trigger is pushed out to gcPercent as a backstop for a heap that grows
// faster than the ticks come. The counters vm.gc_on_tick and
// vm.gc_in_request say which of the two collected (README "Performance").
const (
	// gcPercent is GOGC inside the VM: the runtime collects by itself
	// only once the heap is 5 times what the last collection kept (and at
	// least 4 MiB × gcPercent/100 = 16 MiB, the runtime's minimum).
	gcPercent = 400
	// tickGCMinLive is the smallest live heap the tick's trigger assumes:
	// the tick collects once the heap holds twice max(live, tickGCMinLive).
	tickGCMinLive = 2 << 20
)

// heapPacer decides, on each tick, whether to collect now.
type heapPacer struct {
	samples [3]runtimemetrics.Sample
	// automatic is the runtime's count of the collections it started
	// itself, at the last tick.
	automatic uint64
}

func newHeapPacer() *heapPacer {
	debug.SetGCPercent(gcPercent)
	p := &heapPacer{}
	p.samples[0].Name = "/gc/heap/live:bytes"
	p.samples[1].Name = "/memory/classes/heap/objects:bytes"
	p.samples[2].Name = "/gc/cycles/automatic:gc-cycles"
	runtimemetrics.Read(p.samples[:])
	p.automatic = p.samples[2].Value.Uint64()
	return p
}

// onTick collects when the heap has doubled since the last collection,
// and reports whether it did and how many collections the runtime
// started by itself (inside requests) since the last tick.
func (p *heapPacer) onTick() (collected bool, inRequests uint64) {
	runtimemetrics.Read(p.samples[:])
	live, objects, automatic := p.samples[0].Value.Uint64(), p.samples[1].Value.Uint64(), p.samples[2].Value.Uint64()
	inRequests, p.automatic = automatic-p.automatic, automatic
	if objects < 2*max(live, tickGCMinLive) {
		return false, inRequests
	}
	runtime.GC()
	return true, inRequests
}
