package sharedtest_test

import (
	"errors"
	"testing"

	"github.com/portcullis/portcullis/filter/shared"
	"github.com/portcullis/portcullis/filter/shared/sharedtest"
)

func TestStoreHasEnvoyCASSemantics(t *testing.T) {
	s := sharedtest.New()
	if _, _, found, _ := s.Get("k"); found {
		t.Fatal("a new store has k")
	}
	// A missing key is created whatever the cas.
	if err := s.Set("k", []byte("a"), shared.CreateCAS); err != nil {
		t.Fatal(err)
	}
	v, cas, found, _ := s.Get("k")
	if !found || string(v) != "a" || cas == 0 {
		t.Fatalf("Get = %q, %d, %v", v, cas, found)
	}
	if err := s.Set("k", []byte("b"), cas+1); !errors.Is(err, shared.ErrCasMismatch) {
		t.Fatalf("stale cas: %v, want ErrCasMismatch", err)
	}
	if err := s.Set("k", []byte("b"), cas); err != nil {
		t.Fatalf("current cas: %v", err)
	}
	if err := s.Set("k", []byte("c"), 0); err != nil {
		t.Fatalf("cas 0 always writes: %v", err)
	}
	if v, _, _, _ := s.Get("k"); string(v) != "c" || s.Keys() != 1 {
		t.Fatalf("Get = %q, keys %d", v, s.Keys())
	}
}
