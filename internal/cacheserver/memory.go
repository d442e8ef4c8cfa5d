package cacheserver

import (
	"context"
	"fmt"
	"time"

	"github.com/maypok86/otter/v2"
)

// entryOverhead is what one entry costs besides its key and value bytes:
// otter's node, the map slot and the slice headers, rounded up. Counting it
// keeps a store of many small entries within its budget too.
const entryOverhead = 160

// Memory is an in-process store with a byte budget: otter's W-TinyLFU cache
// weighted by each entry's bytes, entries expiring after their TTL.
type Memory struct {
	c      *otter.Cache[string, memEntry]
	budget int64
}

type memEntry struct {
	value []byte
	ttl   time.Duration
}

// NewMemory returns a store that keeps at most budget bytes (keys, values
// and per-entry overhead).
func NewMemory(budget int64) (*Memory, error) {
	if budget < entryOverhead+64 {
		return nil, fmt.Errorf("memory budget %d bytes: too small for a single entry", budget)
	}
	c, err := otter.New(&otter.Options[string, memEntry]{
		MaximumWeight: uint64(budget),
		Weigher: func(key string, e memEntry) uint32 {
			return uint32(min(int64(len(key))+int64(len(e.value))+entryOverhead, 1<<32-1))
		},
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, memEntry]) time.Duration { return e.Value.ttl }),
	})
	if err != nil {
		return nil, fmt.Errorf("memory store: %w", err)
	}
	return &Memory{c: c, budget: budget}, nil
}

// Get implements Store.
func (m *Memory) Get(_ context.Context, key string) ([]byte, bool, error) {
	e, ok := m.c.GetIfPresent(key)
	return e.value, ok, nil
}

// Put implements Store. A value that could never fit the budget is refused
// rather than stored and evicted at once.
func (m *Memory) Put(_ context.Context, key string, value []byte, ttl time.Duration) error {
	if int64(len(key))+int64(len(value))+entryOverhead > m.budget {
		return ErrTooLarge
	}
	// The handler reuses nothing, but a caller might: keep our own copy.
	m.c.Set(key, memEntry{value: append([]byte(nil), value...), ttl: ttl})
	return nil
}

// Delete implements Store.
func (m *Memory) Delete(_ context.Context, key string) error {
	m.c.Invalidate(key)
	return nil
}

// Usage implements Store. Eviction runs in otter's maintenance, so the
// weight can overshoot the budget for a moment under concurrent writes;
// CleanUp settles it (see TestMemoryBudget).
func (m *Memory) Usage(context.Context) (Usage, error) {
	return Usage{Entries: int64(m.c.EstimatedSize()), Bytes: int64(m.c.WeightedSize()), BudgetBytes: m.budget}, nil
}

// settle runs otter's pending maintenance (evictions), for tests and stats.
func (m *Memory) settle() { m.c.CleanUp() }
