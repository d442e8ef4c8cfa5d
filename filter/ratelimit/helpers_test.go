package ratelimit_test

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/filter/ratelimit"

	"github.com/portcullis/portcullis/filter/shared"
)

// memStore is a thread-safe Store with Envoy's shared-data semantics: one
// store-wide cas counter that never yields 0; a set with cas 0, on a missing
// key, or with the key's current cas writes and takes a new cas; any other
// cas fails with ErrCasMismatch; keys are never deleted. Get returns a copy,
// as the SDK does.
type memStore struct {
	mu   sync.Mutex
	m    map[string]*memEntry
	cas  uint32
	sets int // successful writes
}

type memEntry struct {
	value []byte
	cas   uint32
}

func newMemStore() *memStore { return &memStore{m: map[string]*memEntry{}} }

func (s *memStore) Get(key string) ([]byte, uint32, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[key]
	if !ok {
		return nil, 0, false, nil
	}
	return append([]byte(nil), e.value...), e.cas, true, nil
}

func (s *memStore) Set(key string, value []byte, cas uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[key]
	if ok && cas != 0 && cas != e.cas {
		return shared.ErrCasMismatch
	}
	if !ok {
		e = &memEntry{}
		s.m[key] = e
	}
	e.value = append(e.value[:0], value...)
	s.cas++
	if s.cas == 0 {
		s.cas++
	}
	e.cas = s.cas
	s.sets++
	return nil
}

// put writes value blindly, as corruption or another program would.
func (s *memStore) put(key string, value []byte) {
	if err := s.Set(key, value, 0); err != nil {
		panic(err)
	}
}

// raw returns the stored value of key, or nil.
func (s *memStore) raw(key string) []byte {
	v, _, _, _ := s.Get(key)
	return v
}

func (s *memStore) keys() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// fakeClock is an injected clock, safe for concurrent use.
type fakeClock struct{ ns atomic.Int64 }

// epoch is the fake clocks' start: a whole second, so window arithmetic in
// tests reads naturally.
var epoch = time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)

func newClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(epoch.UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }
func (c *fakeClock) Since() time.Duration    { return time.Duration(c.ns.Load() - epoch.UnixNano()) }

// oneBucket makes a table of a single bucket with ways entries, so every key
// collides and the bucket's shared-data key is known.
func oneBucket(ways int) func(*ratelimit.Options) {
	return func(o *ratelimit.Options) { o.Slots, o.Ways = ways, ways }
}

const bucket0 = ratelimit.DefaultPrefix + "0"

func newLimiter(t testing.TB, store shared.Store, edits ...func(*ratelimit.Options)) *ratelimit.Limiter {
	t.Helper()
	o := ratelimit.Options{Store: store}
	for _, e := range edits {
		e(&o)
	}
	l, err := ratelimit.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func policy(t testing.TB, name string, limits ...ratelimit.Limit) *ratelimit.Policy {
	t.Helper()
	p, err := ratelimit.NewPolicy(name, limits)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func per(n int64, window time.Duration) ratelimit.Limit {
	return ratelimit.Limit{Requests: n, Window: window}
}

// burst sends n requests at the instant at and returns how many were admitted.
func burst(l *ratelimit.Limiter, p *ratelimit.Policy, key string, n int, at time.Time) int {
	admitted := 0
	for range n {
		if d := l.Decide(p, key, 1, at); d.Allowed {
			admitted++
		}
	}
	return admitted
}

// record builds a bucket value by the documented layout (record.go).
type record struct {
	ways, width int
	shared      uint8
	updated     time.Time
	entries     []entry
}

type entry struct {
	hash uint64
	tats []time.Time
}

func (r record) bytes() []byte {
	b := make([]byte, ratelimit.RecordSize(r.ways, r.width))
	b[0], b[1], b[2], b[3] = 1, byte(r.ways), byte(r.width), r.shared
	binary.LittleEndian.PutUint64(b[8:], uint64(r.updated.UnixNano()))
	for i, e := range r.entries {
		off := 16 + i*(8+8*r.width)
		binary.LittleEndian.PutUint64(b[off:], e.hash)
		for j, t := range e.tats {
			binary.LittleEndian.PutUint64(b[off+8+8*j:], uint64(t.UnixNano()))
		}
	}
	return b
}

// entryHashes decodes the hashes of a stored bucket.
func entryHashes(value []byte) []uint64 {
	ways, width := int(value[1]), int(value[2])
	out := make([]uint64, ways)
	for i := range out {
		out[i] = binary.LittleEndian.Uint64(value[16+i*(8+8*width):])
	}
	return out
}
