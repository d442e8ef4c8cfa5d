package cacheserver

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Writing far more than the budget, from many goroutines and with many
// sizes, keeps the store within its budget: within the budget plus the
// values of the PUTs in progress while they run (see Memory), and within the
// budget itself once they have returned.
func TestMemoryBudget(t *testing.T) {
	const (
		budget   = 1 << 20
		maxEntry = 64 << 10
		writers  = 8
		puts     = 400 // per writer: ~100 MiB in all, a hundred times the budget
	)
	m, err := NewMemory(budget)
	if err != nil {
		t.Fatal(err)
	}
	h := NewHandler(m, Options{MaxEntryBytes: maxEntry})
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range puts {
				size := (i*7919 + g*104729) % maxEntry // spread over 0..maxEntry
				if w := do(t, h, "PUT", entry(g*puts+i), bytes.Repeat([]byte{'x'}, size)); w.Code != 204 {
					t.Errorf("PUT of %d bytes: %d", size, w.Code)
					return
				}
			}
		})
	}
	// Sample the usage while the writers run.
	var done atomic.Bool
	var samples, over int
	sampler := make(chan struct{})
	go func() {
		defer close(sampler)
		for !done.Load() {
			if u, _ := m.Usage(context.Background()); u.Bytes > budget+writers*(KeyLen+maxEntry+EntryOverhead) {
				over++
			}
			samples++
			time.Sleep(time.Millisecond)
		}
	}()
	wg.Wait()
	done.Store(true)
	<-sampler
	if over > 0 {
		t.Errorf("%d of %d samples during the writes were over the budget plus the PUTs in progress", over, samples)
	}
	s := stats(t, h)
	if s["bytes"] > budget || s["budget_bytes"] != budget || s["puts"] != writers*puts {
		t.Fatalf("stats %v: want bytes ≤ %d after %d puts", s, budget, writers*puts)
	}
	if s["entries"] < 10 {
		t.Errorf("%d entries left of a 1 MiB budget filled with entries of 32 KiB on average", s["entries"])
	}
}

// A value heavier than the whole budget is refused, not stored and evicted.
func TestMemoryRefusesEntriesOverTheBudget(t *testing.T) {
	const budget = 64 << 10
	m, err := NewMemory(budget)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Put(context.Background(), key(1), make([]byte, budget), time.Minute); !errors.Is(err, ErrTooLarge) {
		t.Errorf("a value of the whole budget: %v, want ErrTooLarge", err)
	}
	// Through the handler, with a limit larger than the budget: 413 as well.
	h := NewHandler(m, Options{MaxEntryBytes: 2 * budget})
	if w := do(t, h, "PUT", entry(1), make([]byte, budget)); w.Code != 413 {
		t.Errorf("PUT over the budget: %d, want 413", w.Code)
	}
	if _, err := NewMemory(KeyLen + EntryOverhead - 1); err == nil {
		t.Error("a budget smaller than one entry was accepted")
	}
}

// The weight is honest: after filling the store far past its budget with
// entries of one size, the heap it holds is within the budget. Tiny values
// show that EntryOverhead covers otter's cost per entry; values just over an
// allocator size class show that weighing the capacity covers the rounding.
func TestMemoryHeapWithinBudget(t *testing.T) {
	const budget = 2 << 20
	for _, size := range []int{0, 1, 100, 1000, 4097, 70000} {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		m, err := NewMemory(budget)
		if err != nil {
			t.Fatal(err)
		}
		value := make([]byte, size)
		n := 2 * budget / (KeyLen + size + EntryOverhead)
		for i := range n {
			if err := m.Put(context.Background(), key(i), value, time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		u, _ := m.Usage(context.Background())
		runtime.GC()
		runtime.ReadMemStats(&after)
		held := int64(after.HeapAlloc) - int64(before.HeapAlloc)
		t.Logf("values of %d bytes: %d entries, weight %d, heap %d (%.3f of the budget)",
			size, u.Entries, u.Bytes, held, float64(held)/budget)
		if u.Bytes > budget {
			t.Errorf("values of %d bytes: weight %d over the budget %d", size, u.Bytes, budget)
		}
		// 64 KiB of slack for otter's fixed structures (buffers, timer wheel).
		if held > budget+64<<10 {
			t.Errorf("values of %d bytes: the store holds %d bytes of heap, over its budget %d", size, held, budget)
		}
		runtime.KeepAlive(m)
	}
}
