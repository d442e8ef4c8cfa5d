// Package sharedtest is an in-memory shared.Store with Envoy's semantics,
// for the tests of the packages that keep tables in shared data.
package sharedtest

import (
	"runtime"
	"sync"

	"github.com/portcullis/portcullis/filter/shared"
)

// Store has Envoy's shared-data semantics: one cas counter that never
// yields 0; cas 0, a missing key, or the key's current cas writes; anything
// else is shared.ErrCasMismatch. Get returns a copy. Safe for concurrent
// use, with a scheduling point after each read so that CAS races happen
// even on few CPUs.
type Store struct {
	mu  sync.Mutex
	m   map[string]value
	cas uint32
}

type value struct {
	bytes []byte
	cas   uint32
}

var _ shared.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store { return &Store{m: map[string]value{}} }

// Get implements shared.Store.
func (s *Store) Get(key string) ([]byte, uint32, bool, error) {
	s.mu.Lock()
	v, ok := s.m[key]
	s.mu.Unlock()
	runtime.Gosched()
	return append([]byte(nil), v.bytes...), v.cas, ok, nil
}

// Set implements shared.Store.
func (s *Store) Set(key string, b []byte, cas uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.m[key]; ok && cas != 0 && cas != v.cas {
		return shared.ErrCasMismatch
	}
	if s.cas++; s.cas == 0 {
		s.cas++
	}
	s.m[key] = value{bytes: append([]byte(nil), b...), cas: s.cas}
	return nil
}

// Keys is the number of keys written.
func (s *Store) Keys() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}
