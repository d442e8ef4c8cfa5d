package shared_test

import (
	"testing"

	"github.com/portcullis/portcullis/filter/shared"
)

func TestPairHashSeparatesItsParts(t *testing.T) {
	// The NUL separator keeps ("ab", "c") and ("a", "bc") apart.
	if shared.PairHash("ab", "c") == shared.PairHash("a", "bc") {
		t.Error(`PairHash("ab", "c") == PairHash("a", "bc")`)
	}
	first, again := shared.PairHash("key", "route"), shared.PairHash("key", "route")
	if first != again {
		t.Error("PairHash is not deterministic")
	}
}

func TestPairHashIsNeverZero(t *testing.T) {
	for _, p := range [][2]string{{"", ""}, {"a", ""}, {"", "a"}, {"key", "route"}} {
		if shared.PairHash(p[0], p[1]) == 0 {
			t.Errorf("PairHash(%q, %q) = 0", p[0], p[1])
		}
	}
}

func TestFNVKnownValue(t *testing.T) {
	// FNV-1a 64 of "a" (the published test vector).
	if got := shared.FNVString(shared.FNVOffset, "a"); got != 0xaf63dc4c8601ec8c {
		t.Errorf("FNV-1a(\"a\") = %#x", got)
	}
}
