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
	// Past 2 × max(live, tickGCMinLive), and short of the runtime's own
	// trigger (5 × live, at least 16 MiB). The test binary's live heap
	// depends on the tests before (the compiled plugin's VM is large).
	live := p.samples[0].Value.Uint64()
	mib := int((max(live, tickGCMinLive) + 2<<20) >> 20)
	garbage := make([][]byte, 0, mib)
	for range mib {
		garbage = append(garbage, make([]byte, 1<<20))
	}
	runtime.KeepAlive(garbage)
	garbage = nil
	if collected, inRequests := p.onTick(); !collected || inRequests != 0 {
		t.Fatalf("onTick after %d MiB of garbage over %d B live: collected %v, runtime collections %d; want collected by the tick alone", mib, live, collected, inRequests)
	}
	if collected, _ := p.onTick(); collected {
		t.Error("collected again with nothing allocated")
	}
}
