package cache_test

import (
	"errors"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/filter/cache"

	"github.com/portcullis/portcullis/filter/shared"

	"github.com/portcullis/portcullis/filter/shared/sharedtest"
)

const wait = 2 * time.Second

func acquire(t *testing.T, locks *cache.FillLocks, key string, now time.Time) cache.Lock {
	t.Helper()
	a := locks.TryAcquire(key, now, wait)
	if a.State != cache.Acquired {
		t.Fatalf("TryAcquire(%s) = %+v, want Acquired", key, a)
	}
	return a.Lock
}

func busy(t *testing.T, locks *cache.FillLocks, key string, now, until time.Time) {
	t.Helper()
	if a := locks.TryAcquire(key, now, wait); a.State != cache.Busy || !a.Until.Equal(until) {
		t.Fatalf("TryAcquire(%s) = %+v, want Busy until %v", key, a, until)
	}
	if u, held := locks.Held(key, now); !held || !u.Equal(until) {
		t.Fatalf("Held(%s) = %v, %v; want until %v", key, u, held, until)
	}
}

func TestFillLockLifecycle(t *testing.T) {
	store := sharedtest.New()
	a, b := cache.NewFillLocks(store, 64), cache.NewFillLocks(store, 64) // two VMs
	lock := acquire(t, a, "k", t0)
	busy(t, b, "k", t0, t0.Add(wait))
	busy(t, b, "k", t0.Add(wait-time.Millisecond), t0.Add(wait))
	if err := a.Release(lock); err != nil {
		t.Fatal(err)
	}
	if _, held := b.Held("k", t0); held {
		t.Fatal("held after release")
	}
	second := acquire(t, b, "k", t0.Add(time.Millisecond))
	if err := a.Release(lock); err != nil { // the old lock again: not the holder's any more
		t.Fatal(err)
	}
	busy(t, a, "k", t0.Add(time.Millisecond), t0.Add(wait+time.Millisecond))

	// Past its deadline a lock is free, and its late release frees nothing.
	third := acquire(t, a, "k", t0.Add(wait+time.Millisecond))
	if err := b.Release(second); err != nil {
		t.Fatal(err)
	}
	busy(t, b, "k", t0.Add(wait+time.Millisecond), t0.Add(2*wait+time.Millisecond))
	if err := a.Release(third); err != nil {
		t.Fatal(err)
	}
	acquire(t, b, "k", t0.Add(wait+2*time.Millisecond))
}

func TestFillLockSlotCollision(t *testing.T) {
	store := sharedtest.New()
	locks := cache.NewFillLocks(store, 1) // every key in one slot
	lock := acquire(t, locks, "a", t0)
	busy(t, locks, "b", t0.Add(time.Second), t0.Add(wait)) // another key: busy until a's deadline at most
	acquire(t, locks, "b", t0.Add(wait))
	locks.Release(lock) // a's late release does not free b's
	busy(t, locks, "a", t0.Add(wait), t0.Add(2*wait))
}

func TestFillLockTableIsBounded(t *testing.T) {
	store := sharedtest.New()
	locks := cache.NewFillLocks(store, 16)
	for i := range 1000 {
		now := t0.Add(time.Duration(i) * wait) // each one expired by the next
		locks.TryAcquire("key-"+strconv.Itoa(i), now, wait)
	}
	if n := store.Keys(); n > 16 {
		t.Fatalf("%d shared-data keys for 16 slots", n)
	}
}

func TestFillLockUnreadableSlotIsFree(t *testing.T) {
	store := sharedtest.New()
	locks := cache.NewFillLocks(store, 1)
	for _, junk := range [][]byte{nil, []byte("x"), make([]byte, 17), append([]byte{2}, make([]byte, 16)...)} {
		if err := store.Set("pc:fill:0", junk, 0); err != nil {
			t.Fatal(err)
		}
		acquire(t, locks, "k", t0)
		store.Set("pc:fill:0", nil, 0)
	}
}

// failingStore fails every call, or makes every Set a CAS conflict.
type failingStore struct {
	*sharedtest.Store
	getErr   error
	conflict bool
}

func (s *failingStore) Get(key string) ([]byte, uint32, bool, error) {
	if s.getErr != nil {
		return nil, 0, false, s.getErr
	}
	return s.Store.Get(key)
}

func (s *failingStore) Set(key string, value []byte, cas uint32) error {
	if s.conflict {
		return shared.ErrCasMismatch
	}
	return s.Store.Set(key, value, cas)
}

func TestFillLockStoreFailures(t *testing.T) {
	down := errors.New("shared data down")
	a := cache.NewFillLocks(&failingStore{Store: sharedtest.New(), getErr: down}, 8).TryAcquire("k", t0, wait)
	if a.State != cache.Unavailable || !errors.Is(a.Err, down) {
		t.Errorf("store down: %+v", a)
	}
	a = cache.NewFillLocks(&failingStore{Store: sharedtest.New(), conflict: true}, 8).TryAcquire("k", t0, wait)
	if a.State != cache.Unavailable || !errors.Is(a.Err, cache.ErrLockContention) {
		t.Errorf("endless conflicts: %+v", a)
	}
	store := &failingStore{Store: sharedtest.New()}
	locks := cache.NewFillLocks(store, 8)
	lock := acquire(t, locks, "k", t0)
	store.conflict = true
	if err := locks.Release(lock); !errors.Is(err, cache.ErrLockContention) {
		t.Errorf("release with endless conflicts: %v", err)
	}
	store.getErr = down
	if err := locks.Release(lock); !errors.Is(err, down) {
		t.Errorf("release with the store down: %v", err)
	}
}

// TestFillLockHammer: many VMs (goroutines, each its own FillLocks) miss the
// same key at once, round after round. In each lock period exactly one
// acquires, whether the period ends by release or by deadline, and holders
// never overlap.
func TestFillLockHammer(t *testing.T) {
	const vms, rounds = 32, 40
	store := sharedtest.New()
	tables := make([]*cache.FillLocks, vms)
	for i := range tables {
		tables[i] = cache.NewFillLocks(store, 8)
	}
	for round := range rounds {
		// Rounds alternate: released at the end, or left to expire.
		now := t0.Add(time.Duration(round) * wait)
		var acquired, busy, holding atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, locks := range tables {
			wg.Go(func() {
				<-start
				a := locks.TryAcquire("hot", now, wait)
				switch a.State {
				case cache.Acquired:
					acquired.Add(1)
					if holding.Add(1) > 1 {
						t.Error("two holders at once")
					}
					runtime.Gosched()
					holding.Add(-1)
					if round%2 == 0 {
						if err := locks.Release(a.Lock); err != nil {
							t.Error(err)
						}
					}
				case cache.Busy:
					busy.Add(1)
					if !a.Until.Equal(now.Add(wait)) {
						t.Errorf("busy until %v, want %v", a.Until, now.Add(wait))
					}
				default:
					t.Errorf("unavailable: %v", a.Err)
				}
			})
		}
		close(start)
		wg.Wait()
		// A release mid-round lets a late VM acquire again: at most one per
		// period, and the first period has exactly one.
		if acquired.Load() < 1 || round%2 == 1 && acquired.Load() != 1 {
			t.Fatalf("round %d: %d acquired, %d busy", round, acquired.Load(), busy.Load())
		}
	}
}
