package wrap_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/portcullis/portcullis/filter/wrap"
)

var (
	errA = errors.New("a failed")
	errB = errors.New("b failed")
)

// TestLikeFmt: each constructor reads and unwraps as the fmt.Errorf it replaces.
func TestLikeFmt(t *testing.T) {
	for _, tc := range []struct {
		got, want error
		wraps     []error
	}{
		{wrap.With("reading seed", errA), fmt.Errorf("reading seed: %w", errA), []error{errA}},
		{wrap.Detail(errA, "status 7"), fmt.Errorf("%w: status 7", errA), []error{errA}},
		{wrap.New("set: a failed (b failed)", errA, errB), fmt.Errorf("set: %w (%w)", errA, errB), []error{errA, errB}},
		{wrap.With("outer", wrap.Detail(errA, "inner")), fmt.Errorf("outer: %w", fmt.Errorf("%w: inner", errA)), []error{errA}},
	} {
		if tc.got.Error() != tc.want.Error() {
			t.Errorf("text %q, fmt says %q", tc.got, tc.want)
		}
		for _, w := range tc.wraps {
			if !errors.Is(tc.got, w) || !errors.Is(tc.want, w) {
				t.Errorf("%q does not wrap %q", tc.got, w)
			}
		}
		if errors.Is(tc.got, errors.New("a failed")) {
			t.Errorf("%q matches an error it does not wrap", tc.got)
		}
	}
}
