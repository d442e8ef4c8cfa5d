package ratelimit_test

import (
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/filter/ratelimit"

	"github.com/portcullis/portcullis/filter/shared"
)

// hammer runs workers goroutines, each its own Limiter (as each Envoy worker
// runs its own VM) over one shared store, released together; each sends
// requests decisions on key(worker, i), ticking the shared clock by 1 ns.
func hammer(t *testing.T, store shared.Store, clock *fakeClock, opts func(*ratelimit.Options), p *ratelimit.Policy,
	workers, requests int, key func(worker, i int) string) (decisions []ratelimit.Decision, keys []string) {
	t.Helper()
	limiters := make([]*ratelimit.Limiter, workers)
	for w := range limiters {
		limiters[w] = newLimiter(t, store, opts)
	}
	decisions = make([]ratelimit.Decision, workers*requests)
	keys = make([]string, workers*requests)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			<-start
			for i := range requests {
				k := key(w, i)
				keys[w*requests+i] = k
				decisions[w*requests+i] = limiters[w].Decide(p, k, 1, clock.Now())
				clock.Advance(time.Nanosecond)
			}
		})
	}
	close(start)
	wg.Wait()
	return decisions, keys
}

// yieldingStore gives the scheduler a chance to run another worker between
// every read and write, so CAS races happen even on few CPUs.
type yieldingStore struct{ *memStore }

func (s yieldingStore) Get(key string) ([]byte, uint32, bool, error) {
	v, cas, found, err := s.memStore.Get(key)
	runtime.Gosched()
	return v, cas, found, err
}

func TestHammerOneColdKeyAdmitsExactlyN(t *testing.T) {
	const workers, requests, n = 64, 30, 100
	for _, tc := range []struct {
		name    string
		mode    ratelimit.FailMode
		retries int
	}{
		{"default retries, fail closed", ratelimit.FailClosed, ratelimit.DefaultCASRetries},
		{"max retries, fail open", ratelimit.FailOpen, ratelimit.MaxCASRetries},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := policy(t, "default", per(n, time.Minute))
			opts := func(o *ratelimit.Options) { o.FailMode, o.CASRetries = tc.mode, tc.retries }
			decisions, _ := hammer(t, yieldingStore{newMemStore()}, newClock(), opts, p, workers, requests,
				func(int, int) string { return "alice" })
			var admitted, degraded, degradedAllowed, retries int
			for _, d := range decisions {
				retries += d.Retries
				if d.Degraded() {
					degraded++
					if d.Allowed {
						degradedAllowed++
					}
					continue
				}
				if d.Faults != 0 {
					t.Fatalf("unexpected faults %b", d.Faults)
				}
				if d.Allowed {
					admitted++
				}
			}
			t.Logf("%d decisions, %d CAS retries, %d ran out of retries", len(decisions), retries, degraded)
			if admitted != n {
				t.Fatalf("admitted %d, want exactly %d", admitted, n)
			}
			if tc.mode == ratelimit.FailClosed && degradedAllowed != 0 {
				t.Fatalf("fail closed admitted %d degraded decisions", degradedAllowed)
			}
		})
	}
}

func TestHammerManyKeysInATinyTable(t *testing.T) {
	const workers, requests, n, keys = 64, 40, 10, 12
	p := policy(t, "default", per(n, time.Hour))
	opts := func(o *ratelimit.Options) {
		o.Slots, o.Ways, o.FailMode, o.CASRetries = 8, 4, ratelimit.FailClosed, ratelimit.MaxCASRetries
	}
	decisions, names := hammer(t, yieldingStore{newMemStore()}, newClock(), opts, p, workers, requests,
		func(w, i int) string { return "key" + strconv.Itoa((w+i)%keys) })
	perKey := map[string]int{}
	var shared atomic.Int64
	for i, d := range decisions {
		if d.Faults.Has(ratelimit.FaultShared) {
			shared.Add(1)
		}
		if d.Allowed {
			perKey[names[i]]++
		}
	}
	total := 0
	for k, got := range perKey {
		total += got
		if got > n {
			t.Errorf("%s admitted %d, over its limit %d", k, got, n)
		}
	}
	// 12 keys, 8 entries: sharing must have happened, and everything admitted
	// fits in the entries' budgets.
	if shared.Load() == 0 || total > 8*n {
		t.Fatalf("shared %d times, %d admitted in all (at most %d)", shared.Load(), total, 8*n)
	}
}
