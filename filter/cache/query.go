package cache

import (
	"cmp"
	"slices"
	"strings"
)

// CanonicalQuery returns the query q (without the "?") in the form the key
// uses: its parameters ("&"-separated; empty ones dropped) stably sorted by
// name, then value, each kept byte for byte as sent (no decoding, so
// "a=%41" and "a=A" stay different: two keys for one resource at worst,
// never one key for two). The name is what precedes the first "=".
//
// Sorting makes "?b=2&a=1" and "?a=1&b=2" one entry. It assumes the
// upstream does not give meaning to the order of different parameters, nor
// to the order of repeated ones with different values ("a=2&a=1" and
// "a=1&a=2" share an entry); a route whose upstream does should not be cached.
func CanonicalQuery(q string) string {
	if canonicalAlready(q) {
		return q
	}
	var scratch [16]string
	params := scratch[:0]
	for p := range strings.SplitSeq(q, "&") {
		if p != "" {
			params = append(params, p)
		}
	}
	slices.SortStableFunc(params, compareParams)
	return strings.Join(params, "&")
}

// canonicalAlready reports whether q is already in canonical form: no empty
// parameter and sorted; most queries are, and then cost no allocation.
func canonicalAlready(q string) bool {
	if q == "" {
		return true
	}
	prev := ""
	for p := range strings.SplitSeq(q, "&") {
		if p == "" || prev != "" && compareParams(prev, p) > 0 {
			return false
		}
		prev = p
	}
	return true
}

func compareParams(a, b string) int {
	an, av, _ := strings.Cut(a, "=")
	bn, bv, _ := strings.Cut(b, "=")
	return cmp.Or(strings.Compare(an, bn), strings.Compare(av, bv))
}
