//go:build !wasip1

package plugin

import (
	"runtime"
	"testing"
)

// TestHeapPacerCollectsOnceTheHeapDoubled: garbage past twice the live heap
// is collected on the next tick, and a tick right after finds nothing to do.
func TestHeapPacerCollectsOnceTheHeapDoubled(t *testing.T) {
	runtime.GC()
	p := newHeapPacer()
	if collected, _ := p.onTick(); collected {
		t.Fatal("collected right after a collection")
	}
	garbage := make([][]byte, 0, 12)
	for range cap(garbage) { // 12 MiB: past 2 × max(live, 2 MiB), short of the runtime's own 16 MiB minimum
		garbage = append(garbage, make([]byte, 1<<20))
	}
	runtime.KeepAlive(garbage)
	garbage = nil
	if collected, inRequests := p.onTick(); !collected || inRequests != 0 {
		t.Fatalf("onTick after 12 MiB of garbage: collected %v, runtime collections %d; want collected by the tick alone", collected, inRequests)
	}
	if collected, _ := p.onTick(); collected {
		t.Error("collected again with nothing allocated")
	}
}
