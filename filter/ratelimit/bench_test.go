package ratelimit_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/portcullis/portcullis/filter/ratelimit"
)

// Benchmarks, not timed assertions:
//
//	go test -run '^$' -bench . -benchmem ./filter/ratelimit
//	GOOS=wasip1 GOARCH=wasm go test -exec "$PWD/build/wasirun" -run '^$' -bench . -benchmem ./filter/ratelimit
//
// The store is the in-memory one with Envoy's semantics (a mutex, a map);
// its Get copies the value, as the SDK's GetSharedData does, so allocs/op
// include that copy. The Limiter itself allocates only a bucket's key string
// on a miss in its cache of recent keys ("limiter-only" shows 0). The floor
// in the wasm is 5 µs per decision.

func benchDecide(b *testing.B, p *ratelimit.Policy, keys int, step time.Duration, wantAllowed bool) {
	clock := newClock()
	l := newLimiter(b, newMemStore(), func(o *ratelimit.Options) { o.Width = p.Width() })
	names := make([]string, keys)
	for i := range names {
		names[i] = "user-" + strconv.Itoa(i)
		l.Decide(p, names[i], 1, clock.Now()) // warm: the bucket exists and holds the key
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		clock.Advance(step)
		if d := l.Decide(p, names[i%keys], 1, clock.Now()); d.Allowed != wantAllowed || d.Faults != 0 {
			b.Fatalf("decision %+v", d)
		}
		i++
	}
}

func BenchmarkDecide(b *testing.B) {
	one := policy(b, "default", per(1_000_000, time.Second))
	two := policy(b, "default", per(1_000_000, time.Second), per(1_000_000_000, time.Hour))
	b.Run("one-limit", func(b *testing.B) { benchDecide(b, one, 1, time.Microsecond, true) })
	b.Run("two-limits", func(b *testing.B) { benchDecide(b, two, 1, time.Microsecond, true) })
	b.Run("denied", func(b *testing.B) {
		clock := newClock()
		l := newLimiter(b, newMemStore())
		p := policy(b, "default", per(100, time.Minute))
		burst(l, p, "alice", 100, clock.Now())
		b.ReportAllocs()
		for b.Loop() {
			if d := l.Decide(p, "alice", 1, clock.Now()); d.Allowed {
				b.Fatal("admitted")
			}
		}
	})
	// Many keys: each decision touches another bucket of a default table.
	b.Run("10k-keys", func(b *testing.B) { benchDecide(b, one, 10_000, time.Microsecond, true) })
	// The limiter's own cost: a store that neither locks nor copies.
	b.Run("limiter-only", func(b *testing.B) {
		clock := newClock()
		l := newLimiter(b, &sliceStore{})
		l.Decide(one, "alice", 1, clock.Now())
		b.ReportAllocs()
		for b.Loop() {
			clock.Advance(time.Microsecond)
			if d := l.Decide(one, "alice", 1, clock.Now()); !d.Allowed {
				b.Fatal("denied")
			}
		}
	})
}

// sliceStore holds one bucket and hands out its own buffer: single-threaded,
// for measuring the limiter alone.
type sliceStore struct{ v []byte }

func (s *sliceStore) Get(string) ([]byte, uint32, bool, error) { return s.v, 1, s.v != nil, nil }

func (s *sliceStore) Set(_ string, v []byte, _ uint32) error {
	s.v = append(s.v[:0], v...)
	return nil
}

func BenchmarkAppendHeaders(b *testing.B) {
	clock := newClock()
	l := newLimiter(b, newMemStore())
	p := policy(b, "default", per(100, time.Minute))
	d := l.Decide(p, "alice", 1, clock.Now())
	dst := make([][2]string, 0, 8)
	b.ReportAllocs()
	for b.Loop() {
		dst = d.AppendHeaders(dst[:0], ratelimit.HeaderOptions{})
	}
}

// BenchmarkPartitionKey: the pk of a recent key, which every rate-limited
// response with headers needs: a hit in the Partitioner's cache (the HMAC
// itself costs about 4.7 µs inside wasm).
func BenchmarkPartitionKey(b *testing.B) {
	p := ratelimit.NewPartitioner(42)
	b.ReportAllocs()
	for b.Loop() {
		_ = p.Key("alice-0123456789")
	}
}
