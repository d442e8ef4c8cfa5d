package cacheserver

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/maypok86/otter/v2"
)

// EntryOverhead is what one entry costs the memory store besides its key and
// value bytes: otter's node (112 bytes: links, expiry, weight, the value's
// slice header and TTL), its share of otter's hash table (17–34 bytes, by how
// full the table is) and of the frequency sketch (8–16 bytes). Measured with
// otter v2.4.0 on amd64 at 150–165 bytes (TestMemoryHeapWithinBudget) and
// rounded up, so that a store of many tiny entries stays within its budget too.
const EntryOverhead = 192

// Memory is an in-process store with a byte budget: otter's W-TinyLFU cache
// weighted by what each entry costs (weight), entries expiring after their
// TTL. Replicas share nothing: each keeps its own entries.
//
// Otter is eventually consistent on weight: it accounts a write and evicts in
// a maintenance pass after Set, not in Set. Put therefore runs the pass itself
// before returning: once every Put has returned, the store holds at most its
// budget, and while Puts are running it holds at most the budget plus the
// entries of the Puts in progress — whose values are in memory anyway, as
// their requests' bodies.
type Memory struct {
	c      *otter.Cache[string, memEntry]
	budget int64
	tags   memTags
}

// memTags are the tag sets, beside the entries: a set's members must not be
// evicted while the entries they lead to live, so they are not in otter.
// They are bounded on their own: at most maxMembers members in all
// (TagMemberWeight bytes each, a quarter of the budget), MaxTagMembers per
// set; past either a PUT is refused, after expired sets are dropped.
type memTags struct {
	mu         sync.Mutex
	sets       map[string]*memTagSet
	members    int
	maxMembers int
}

type memTagSet struct {
	members map[string]struct{}
	expires time.Time
}

// TagMemberWeight is what one tag member costs the memory store: the
// member, its share of its set's map and the set's own.
const TagMemberWeight = 256

type memEntry struct {
	value []byte
	ttl   time.Duration
}

// weight is what the entry costs in bytes: the key, the value's allocation
// (its capacity, which the allocator rounds up from its length) and
// EntryOverhead.
func weight(key string, value []byte) int64 {
	return int64(len(key)) + int64(cap(value)) + EntryOverhead
}

// NewMemory returns a store that keeps at most budget bytes, as weight counts
// them.
func NewMemory(budget int64) (*Memory, error) {
	if budget < weight(strings.Repeat("0", KeyLen), nil) {
		return nil, fmt.Errorf("memory store: a budget of %d bytes is too small for a single entry", budget)
	}
	c, err := otter.New(&otter.Options[string, memEntry]{
		MaximumWeight: uint64(budget),
		// Put refuses entries heavier than the budget, and so than
		// MaxUint32 when the budget is that large; min() only guards.
		Weigher: func(key string, e memEntry) uint32 {
			return uint32(min(weight(key, e.value), math.MaxUint32))
		},
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, memEntry]) time.Duration {
			return e.Value.ttl
		}),
		Executor: runInline,
	})
	if err != nil {
		return nil, fmt.Errorf("memory store: %w", err)
	}
	return &Memory{c: c, budget: budget, tags: memTags{
		sets: map[string]*memTagSet{}, maxMembers: int(max(budget/4/TagMemberWeight, 1)),
	}}, nil
}

// runInline is otter's executor: maintenance runs in the goroutine of the
// request that triggered it, not in a goroutine of its own, so it is done
// when the request ends and no goroutine outlives a store.
func runInline(fn func()) { fn() }

// Get implements Store. The value is the store's own: callers must not
// modify it.
func (m *Memory) Get(_ context.Context, key string) ([]byte, bool, error) {
	e, ok := m.c.GetIfPresent(key)
	return e.value, ok, nil
}

// Put implements Store. A value that could never fit the budget is refused
// with ErrTooLarge rather than stored and evicted at once.
func (m *Memory) Put(_ context.Context, key string, value []byte, ttl time.Duration) error {
	// Own copies: a key cut from a request path would keep the whole path
	// alive, and a value read by io.ReadAll can have twice its length in
	// capacity. bytes.Clone's capacity is the size of the allocation it made
	// (the allocator's size class for the length), so weight is the cost.
	e := memEntry{value: bytes.Clone(value), ttl: ttl}
	if w := weight(key, e.value); w > m.budget || w > math.MaxUint32 {
		return ErrTooLarge
	}
	m.c.Set(strings.Clone(key), e)
	m.c.CleanUp() // account and evict now, not later (see Memory)
	return nil
}

// Delete implements Store.
func (m *Memory) Delete(_ context.Context, key string) error {
	m.c.Invalidate(key)
	return nil
}

// Usage implements Store. It runs otter's pending maintenance first, so that
// expired entries are gone and every write is accounted.
func (m *Memory) Usage(context.Context) (Usage, error) {
	m.c.CleanUp()
	return Usage{Entries: int64(m.c.EstimatedSize()), Bytes: int64(m.c.WeightedSize()), BudgetBytes: m.budget}, nil
}

// AddToTags implements Store.
func (m *Memory) AddToTags(_ context.Context, member string, tags []string, ttl time.Duration) error {
	t := &m.tags
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	adding := 0
	for _, tag := range tags {
		if s := t.live(tag, now); s == nil {
			adding++
		} else if _, ok := s.members[member]; !ok {
			if len(s.members) >= MaxTagMembers {
				return ErrTooLarge
			}
			adding++
		}
	}
	if t.members+adding > t.maxMembers {
		t.dropExpired(now)
		if t.members+adding > t.maxMembers {
			return ErrTooLarge
		}
	}
	expires := now.Add(ttl)
	for _, tag := range tags {
		s := t.live(tag, now)
		if s == nil {
			s = &memTagSet{members: map[string]struct{}{}}
			t.sets[strings.Clone(tag)] = s
		}
		if _, ok := s.members[member]; !ok {
			s.members[strings.Clone(member)] = struct{}{}
			t.members++
		}
		if expires.After(s.expires) {
			s.expires = expires
		}
	}
	return nil
}

// PurgeTag implements Store.
func (m *Memory) PurgeTag(_ context.Context, tag, scope string) ([]string, error) {
	t := &m.tags
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.live(tag, time.Now())
	if s == nil {
		return nil, nil
	}
	var keys []string
	for member := range s.members {
		key, sc := memberScope(member)
		if scope == "" || sc == scope {
			keys = append(keys, key)
			delete(s.members, member)
			t.members--
			m.c.Invalidate(key)
		}
	}
	if len(s.members) == 0 {
		delete(t.sets, tag)
	}
	return keys, nil
}

// live returns tag's set, or nil when there is none or it expired (then it
// is dropped).
func (t *memTags) live(tag string, now time.Time) *memTagSet {
	s := t.sets[tag]
	if s != nil && !now.Before(s.expires) {
		t.members -= len(s.members)
		delete(t.sets, tag)
		return nil
	}
	return s
}

func (t *memTags) dropExpired(now time.Time) {
	for tag := range t.sets {
		t.live(tag, now)
	}
}
