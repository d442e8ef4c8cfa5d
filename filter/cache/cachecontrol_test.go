package cache_test

import (
	"strings"
	"testing"

	"github.com/portcullis/portcullis/filter/cache"
)

func cc(edit func(*cache.CacheControl)) cache.CacheControl {
	c := cache.CacheControl{MaxAge: -1, SMaxAge: -1, MinFresh: -1, StaleWhileRevalidate: -1, StaleIfError: -1, MaxStale: -1}
	edit(&c)
	return c
}

func TestParseCacheControl(t *testing.T) {
	none := func(*cache.CacheControl) {}
	for _, tc := range []struct {
		value string
		want  cache.CacheControl
	}{
		{"", cc(none)},
		{",, ,", cc(none)},
		{"no-store", cc(func(c *cache.CacheControl) { c.NoStore = true })},
		{"No-Store", cc(func(c *cache.CacheControl) { c.NoStore = true })},
		{"  public ,max-age=60 ", cc(func(c *cache.CacheControl) { c.Public, c.MaxAge = true, 60 })},
		{"max-age=060", cc(func(c *cache.CacheControl) { c.MaxAge = 60 })},
		{`max-age="60"`, cc(func(c *cache.CacheControl) { c.MaxAge = 60 })},
		{"s-maxage=5, must-revalidate", cc(func(c *cache.CacheControl) { c.SMaxAge, c.MustRevalidate, c.Revalidate = 5, true, true })},
		{"proxy-revalidate", cc(func(c *cache.CacheControl) { c.Revalidate = true })},
		{"max-age=10, stale-while-revalidate=30, stale-if-error=60", cc(func(c *cache.CacheControl) {
			c.MaxAge, c.StaleWhileRevalidate, c.StaleIfError = 10, 30, 60
		})},
		{"stale-while-revalidate, stale-if-error=x", cc(none)}, // malformed: no stale serving
		{"max-stale", cc(func(c *cache.CacheControl) { c.MaxStale = cache.MaxDelta })},
		{"max-stale=5", cc(func(c *cache.CacheControl) { c.MaxStale = 5 })},
		{"max-stale=x", cc(none)},
		{"must-understand, no-store", cc(func(c *cache.CacheControl) { c.MustUnderstand, c.NoStore = true, true })},
		{"min-fresh=10", cc(func(c *cache.CacheControl) { c.MinFresh = 10 })},
		{"unknown, x-ext=\"a,b\", no-cache", cc(func(c *cache.CacheControl) { c.NoCache = true })},
		// Qualified forms name fields (RFC 9111 §5.2.2.4, §5.2.2.7); any
		// other argument reads as the unqualified directive.
		{`private="set-cookie, x-user"`, cc(func(c *cache.CacheControl) { c.PrivateFields = "set-cookie, x-user" })},
		{`no-cache="set-cookie"`, cc(func(c *cache.CacheControl) { c.NoCacheFields = "set-cookie" })},
		{`no-cache=x-a, no-cache="x-b"`, cc(func(c *cache.CacheControl) { c.NoCacheFields = "x-a, x-b" })},
		{`no-cache="a b"`, cc(func(c *cache.CacheControl) { c.NoCache = true })},
		{`no-cache=""`, cc(func(c *cache.CacheControl) { c.NoCache = true })},
		{`private="x-a", private`, cc(func(c *cache.CacheControl) { c.PrivateFields, c.Private = "x-a", true })},

		// Malformed and conflicting: the conservative reading.
		{"max-age", cc(func(c *cache.CacheControl) { c.MaxAge = 0 })},
		{"max-age=", cc(func(c *cache.CacheControl) { c.MaxAge = 0 })},
		{"max-age=-1", cc(func(c *cache.CacheControl) { c.MaxAge = 0 })},
		{"max-age=1.5", cc(func(c *cache.CacheControl) { c.MaxAge = 0 })},
		{"max-age = 60", cc(func(c *cache.CacheControl) { c.MaxAge = 0 })},
		{"max-age=60 junk", cc(func(c *cache.CacheControl) { c.MaxAge = 0 })},
		{`max-age="60`, cc(func(c *cache.CacheControl) { c.MaxAge = 0 })},
		{`max-age="6\0"`, cc(func(c *cache.CacheControl) { c.MaxAge = 0 })},
		{`max-age="60"x`, cc(func(c *cache.CacheControl) { c.MaxAge = 0 })},
		{"max-age=60, max-age=30", cc(func(c *cache.CacheControl) { c.MaxAge = 0 })},
		{"max-age=60, max-age=60", cc(func(c *cache.CacheControl) { c.MaxAge = 60 })},
		{"max-age=60, max-age=x, max-age=60", cc(func(c *cache.CacheControl) { c.MaxAge = 0 })},
		{"s-maxage=x", cc(func(c *cache.CacheControl) { c.SMaxAge = 0 })},
		{"min-fresh=x", cc(func(c *cache.CacheControl) { c.MinFresh = cache.MaxDelta })},
		{"min-fresh=1, min-fresh=2", cc(func(c *cache.CacheControl) { c.MinFresh = cache.MaxDelta })},
		{"max-age=2147483649", cc(func(c *cache.CacheControl) { c.MaxAge = cache.MaxDelta })},
		{"max-age=" + strings.Repeat("9", 100), cc(func(c *cache.CacheControl) { c.MaxAge = cache.MaxDelta })},
		{"no-store=x", cc(func(c *cache.CacheControl) { c.NoStore = true })},
		{"no-store junk", cc(func(c *cache.CacheControl) { c.NoStore = true })},
		{"private junk", cc(func(c *cache.CacheControl) { c.Private = true })},
		{"public=yes, must-revalidate=1", cc(func(c *cache.CacheControl) { c.Revalidate = true })},
		{"public junk", cc(none)},
		{"nostore, no_store, no-stores", cc(none)},
		{`"no-store"`, cc(none)},
	} {
		if got := cache.ParseCacheControl(tc.value); got != tc.want {
			t.Errorf("ParseCacheControl(%q) = %+v, want %+v", tc.value, got, tc.want)
		}
	}
}

// FuzzCacheControl checks that the parser never panics, that every value
// it reports is in range, and that it is conservative: adding a directive
// never removes a restriction (no-store, private, no-cache stay set).
func FuzzCacheControl(f *testing.F) {
	f.Fuzz(func(t *testing.T, value string) {
		got := cache.ParseCacheControl(value)
		for _, v := range []int64{got.MaxAge, got.SMaxAge, got.MinFresh} {
			if v < -1 || v > cache.MaxDelta {
				t.Fatalf("%q: value %d out of range in %+v", value, v, got)
			}
		}
		more := cache.ParseCacheControl(value + ", public, max-age=1")
		if got.NoStore && !more.NoStore || got.Private && !more.Private || got.NoCache && !more.NoCache {
			t.Fatalf("%q: a restriction was lost by appending: %+v then %+v", value, got, more)
		}
		if strings.Contains(strings.ToLower(value), "no-store") && !got.NoStore && !strings.Contains(value, `"`) &&
			!strings.Contains(value, "\\") {
			// Without quotes, a no-store element can only be missed when it
			// is part of a longer name (no-stores) or not a name at all.
			for elem := range strings.SplitSeq(value, ",") {
				name := strings.Trim(elem, " \t")
				if strings.EqualFold(name, "no-store") {
					t.Fatalf("%q: no-store missed", value)
				}
			}
		}
	})
}
