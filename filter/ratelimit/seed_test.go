package ratelimit_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/portcullis/portcullis/filter/ratelimit"
)

// Many VMs starting at once agree on one seed: the first stored wins.
func TestSharedSeedAgreement(t *testing.T) {
	store := newMemStore()
	var mu sync.Mutex
	next := uint64(0)
	random := func() (uint64, error) {
		mu.Lock()
		defer mu.Unlock()
		next++
		return next * 0x9e3779b97f4a7c15, nil
	}
	seeds := make([]uint64, 32)
	var wg sync.WaitGroup
	for i := range seeds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := ratelimit.SharedSeed(store, random)
			if err != nil {
				t.Error(err)
			}
			seeds[i] = s
		}()
	}
	wg.Wait()
	for i, s := range seeds {
		if s != seeds[0] || s == 0 {
			t.Fatalf("VM %d has seed %x, VM 0 %x", i, s, seeds[0])
		}
	}
}

func TestSharedSeedErrors(t *testing.T) {
	store := newMemStore()
	store.put(ratelimit.SeedKey, []byte("short"))
	if _, err := ratelimit.SharedSeed(store, func() (uint64, error) { return 1, nil }); err == nil {
		t.Error("a corrupt seed record was accepted")
	}
	broken := errors.New("no entropy")
	if _, err := ratelimit.SharedSeed(newMemStore(), func() (uint64, error) { return 0, broken }); !errors.Is(err, broken) {
		t.Errorf("err = %v, want the random source's error", err)
	}
}
