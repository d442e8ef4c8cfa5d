package cache_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/filter/cache"
)

func TestCanonicalQuery(t *testing.T) {
	for q, want := range map[string]string{
		"":                      "",
		"a=1":                   "a=1",
		"b=2&a=1":               "a=1&b=2",
		"a=2&a=1&a=10":          "a=1&a=10&a=2", // by value, bytewise
		"a=1&&b=2&":             "a=1&b=2",
		"&&":                    "",
		"q=caf%C3%A9&Q=x":       "Q=x&q=caf%C3%A9", // encodings and letter case kept as sent
		"a=%41&a=A":             "a=%41&a=A",
		"ab=1&a=2":              "a=2&ab=1", // names compare before values
		"a=b=c&a=b":             "a=b&a=b=c",
		"x&x=":                  "x&x=", // equal names and values: stable
		"x=&x":                  "x=&x",
		"z=1&y=2&x=3&w=4&v=5&u": "u&v=5&w=4&x=3&y=2&z=1",
	} {
		if got := cache.CanonicalQuery(q); got != want {
			t.Errorf("CanonicalQuery(%q) = %q, want %q", q, got, want)
		}
	}
}

func TestCanonicalQueryManyParameters(t *testing.T) {
	var params []string
	for c := 'z'; c >= 'a'; c-- {
		params = append(params, string(c)+"=1")
	}
	got := cache.CanonicalQuery(strings.Join(params, "&"))
	slices.Reverse(params)
	if want := strings.Join(params, "&"); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// FuzzCanonicalQuery checks that the canonical form keeps exactly the
// non-empty parameters, sorted, and is a fixed point.
func FuzzCanonicalQuery(f *testing.F) {
	f.Fuzz(func(t *testing.T, q string) {
		got := cache.CanonicalQuery(q)
		if again := cache.CanonicalQuery(got); again != got {
			t.Fatalf("not a fixed point: %q → %q → %q", q, got, again)
		}
		var in []string
		for p := range strings.SplitSeq(q, "&") {
			if p != "" {
				in = append(in, p)
			}
		}
		var out []string
		if got != "" {
			out = strings.Split(got, "&")
		}
		if !slices.IsSortedFunc(out, func(a, b string) int {
			an, av, _ := strings.Cut(a, "=")
			bn, bv, _ := strings.Cut(b, "=")
			if c := strings.Compare(an, bn); c != 0 {
				return c
			}
			return strings.Compare(av, bv)
		}) {
			t.Fatalf("%q → %q is not sorted", q, got)
		}
		slices.Sort(in)
		slices.Sort(out)
		if !slices.Equal(in, out) {
			t.Fatalf("%q → %q: parameters changed", q, got)
		}
	})
}
