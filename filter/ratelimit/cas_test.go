package ratelimit_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/portcullis/portcullis/filter/ratelimit"

	"github.com/portcullis/portcullis/filter/shared"
)

// hookStore wraps a Store with callbacks, to inject races and check calls.
type hookStore struct {
	shared.Store
	afterGet  func(found bool)
	beforeSet func(key string, cas uint32)
}

func (h *hookStore) Get(key string) ([]byte, uint32, bool, error) {
	v, cas, found, err := h.Store.Get(key)
	if h.afterGet != nil {
		h.afterGet(found)
	}
	return v, cas, found, err
}

func (h *hookStore) Set(key string, value []byte, cas uint32) error {
	if h.beforeSet != nil {
		h.beforeSet(key, cas)
	}
	return h.Store.Set(key, value, cas)
}

// conflictStore makes another VM write the bucket between the limiter's Get
// and Set on the first `conflicts` attempts (-1: always), by rewriting the
// current value, which changes the cas, as a concurrent no-op update would.
type conflictStore struct {
	*memStore
	conflicts int
	sets      int // attempted
}

func (s *conflictStore) Set(key string, value []byte, cas uint32) error {
	s.sets++
	if s.conflicts < 0 || s.sets <= s.conflicts {
		if cur := s.raw(key); cur != nil {
			s.put(key, cur)
		} else {
			s.put(key, record{ways: 4, width: 2, updated: epoch}.bytes()) // another VM created it
		}
	}
	return s.memStore.Set(key, value, cas)
}

func TestCASRetriesSucceed(t *testing.T) {
	for _, k := range []int{1, 2, 7, 8} {
		t.Run(fmt.Sprintf("%d conflicts", k), func(t *testing.T) {
			clock := newClock()
			store := &conflictStore{memStore: newMemStore(), conflicts: k}
			l := newLimiter(t, store, func(o *ratelimit.Options) { o.CASRetries = 8 })
			p := policy(t, "p", per(3, time.Minute))
			d := l.Decide(p, "alice", 1, clock.Now())
			if !d.Allowed || d.Retries != k || d.Degraded() {
				t.Fatalf("got %+v, want admitted after %d retries", d, k)
			}
			// The admission was recorded exactly once.
			store.conflicts = 0
			if got := burst(l, p, "alice", 10, clock.Now()); got != 2 {
				t.Fatalf("then admitted %d, want 2", got)
			}
		})
	}
}

func TestCASRetriesRunOut(t *testing.T) {
	for _, tc := range []struct {
		mode    ratelimit.FailMode
		allowed bool
	}{{ratelimit.FailOpen, true}, {ratelimit.FailClosed, false}} {
		t.Run(fmt.Sprintf("mode %d", tc.mode), func(t *testing.T) {
			store := &conflictStore{memStore: newMemStore(), conflicts: -1}
			l := newLimiter(t, store, func(o *ratelimit.Options) { o.CASRetries = 3; o.FailMode = tc.mode })
			d := l.Decide(policy(t, "p", per(3, time.Minute)), "alice", 1, epoch)
			if d.Allowed != tc.allowed || d.Faults != ratelimit.FaultContention || d.Retries != 4 || store.sets != 4 {
				t.Fatalf("got %+v after %d writes, want the fail mode (allowed=%v) with FaultContention after 1+3 attempts", d, store.sets, tc.allowed)
			}
			if !d.Degraded() {
				t.Fatal("not degraded")
			}
			if !tc.allowed && d.RetryAfterSeconds() != 1 {
				t.Fatalf("RetryAfterSeconds = %d, want 1", d.RetryAfterSeconds())
			}
		})
	}
}

type errStore struct {
	*memStore
	getErr, setErr error
}

func (s *errStore) Get(key string) ([]byte, uint32, bool, error) {
	if s.getErr != nil {
		return nil, 0, false, s.getErr
	}
	return s.memStore.Get(key)
}

func (s *errStore) Set(key string, value []byte, cas uint32) error {
	if s.setErr != nil {
		return s.setErr
	}
	return s.memStore.Set(key, value, cas)
}

func TestStoreErrorsFollowTheFailMode(t *testing.T) {
	boom := errors.New("shared data: bad argument")
	for _, tc := range []struct {
		name           string
		getErr, setErr error
	}{
		{"get fails", boom, nil},
		{"set fails", nil, boom},
		{"set fails with a wrapped mismatch", nil, fmt.Errorf("host: %w", shared.ErrCasMismatch)},
	} {
		for _, mode := range []ratelimit.FailMode{ratelimit.FailOpen, ratelimit.FailClosed} {
			t.Run(fmt.Sprintf("%s/mode %d", tc.name, mode), func(t *testing.T) {
				store := &errStore{memStore: newMemStore(), getErr: tc.getErr, setErr: tc.setErr}
				l := newLimiter(t, store, func(o *ratelimit.Options) { o.FailMode = mode })
				d := l.Decide(policy(t, "p", per(3, time.Minute)), "alice", 1, epoch)
				want := ratelimit.FaultStore
				if errors.Is(tc.setErr, shared.ErrCasMismatch) {
					want = ratelimit.FaultContention
				}
				if d.Allowed != (mode == ratelimit.FailOpen) || d.Faults != want {
					t.Fatalf("got %+v, want allowed=%v with faults %b", d, mode == ratelimit.FailOpen, want)
				}
				if h := d.AppendHeaders(nil, ratelimit.HeaderOptions{}); d.Allowed && len(h) != 0 || !d.Allowed && len(h) != 1 {
					t.Fatalf("headers of a degraded decision: %v", h)
				}
			})
		}
	}
}
