package cache

import (
	"strings"
	"time"
)

// Response freshness (RFC 9111 §4.2).

// Targeted cache-control fields (RFC 9213), the most specific first: the
// gateway's own, then the one every CDN reads. The first present replaces
// Cache-Control for every decision about storing and reusing; Cache-Control
// still goes on to clients.
var targetedFields = [...]string{"portcullis-cache-control", "cdn-cache-control"}

// responseCacheControl reads the directives that govern a response: the
// first targeted field present, else Cache-Control.
func responseCacheControl(headers [][2]string) CacheControl {
	for _, name := range targetedFields {
		if value, ok := fieldValue(headers, name); ok {
			return ParseCacheControl(value)
		}
	}
	value, _ := fieldValue(headers, "cache-control")
	return ParseCacheControl(value)
}

// freshness is what a response's headers say about its reuse.
type freshness struct {
	// fresh is the freshness lifetime left once the age is taken off, in
	// seconds (≤ 0: stale on arrival, or no-cache: every reuse revalidates).
	fresh int64
	// age is the initial age (§4.2.3); 0 when unknown (then fresh is 0).
	age int64
	// validator: an ETag or Last-Modified to revalidate with (§4.3.1).
	validator bool
}

// responseFreshness reads the freshness of a response received at received
// under the directives cc, with heuristic as the heuristic bound.
func responseFreshness(cc CacheControl, headers [][2]string, received time.Time, heuristic time.Duration) freshness {
	f := freshness{validator: hasValidator(headers)}
	date := responseDate(headers, received)
	age, ok := initialAge(headers, date, received)
	if !ok {
		return f
	}
	f.age = age
	f.fresh = freshnessLifetime(cc, headers, date, heuristic) - age
	if cc.NoCache { // §5.2.2.4: stored, but never reused without revalidation
		f.fresh = min(f.fresh, 0)
	}
	return f
}

// retention is the store hint of an entry: its freshness, then as long as it
// may be served stale (RFC 5861: w) or, with a validator, revalidated;
// within what the cache server takes.
func (f freshness) retention(w staleWindows) time.Duration {
	stale := max(w.whileRevalidate, w.ifError)
	if f.validator {
		stale = max(stale, revalidationRetention)
	}
	return min(max(time.Duration(max(f.fresh, 0))*time.Second+stale, time.Second), MaxStoreTTL)
}

// hasValidator reports whether a response carries a validator a conditional
// request can use (RFC 9110 §8.8): an ETag or a Last-Modified.
func hasValidator(headers [][2]string) bool {
	etag, _ := singleField(headers, "etag")
	lm, _ := singleField(headers, "last-modified")
	return etag != "" || lm != ""
}

// heuristicFraction is the share of the time since Last-Modified a response
// without explicit freshness is taken to stay fresh (RFC 9111 §4.2.2
// suggests 10 %), up to the configured bound.
const heuristicFraction = 10

// freshnessLifetime is how long a response stays fresh from its Date, in
// seconds (§4.2.1): s-maxage, else max-age, else Expires − Date, else the
// heuristic (§4.2.2): a tenth of Date − Last-Modified, at most the
// configured bound, or the bound itself without a usable Last-Modified. A
// bound of 0 turns heuristics off: such a response has no freshness. date is
// the response's Date, or when it was received.
func freshnessLifetime(cc CacheControl, headers [][2]string, date time.Time, heuristic time.Duration) int64 {
	switch {
	case cc.SMaxAge >= 0:
		return cc.SMaxAge
	case cc.MaxAge >= 0:
		return cc.MaxAge
	}
	if expires, ok := singleField(headers, "expires"); ok {
		exp, ok := parseHTTPDate(expires)
		if !ok { // an invalid Expires, such as "0", is in the past (§5.3)
			return 0
		}
		return min(max(int64(exp.Sub(date)/time.Second), 0), MaxDelta)
	}
	bound := int64(heuristic / time.Second)
	if lm, ok := singleField(headers, "last-modified"); ok && bound > 0 {
		if t, ok := parseHTTPDate(lm); ok && !t.After(date) {
			return min(int64(date.Sub(t)/time.Second)/heuristicFraction, bound)
		}
	}
	return bound
}

// responseDate is the response's Date, or received when it has none or an
// invalid one (RFC 9110 §6.6.1: the recipient's own time then).
func responseDate(headers [][2]string, received time.Time) time.Time {
	if v, ok := singleField(headers, "date"); ok {
		if d, ok := parseHTTPDate(v); ok {
			return d
		}
	}
	return received
}

// initialAge is the response's age when received (RFC 9111 §4.2.3,
// corrected_initial_age): the larger of its Age field and its apparent age,
// received − Date (the gateway talks to the origin directly, so the
// response delay is left out). ok is false when Age is not a single line
// of one non-negative integer: how old the response is cannot be known, and
// a shared cache takes it as stale rather than trust its first member
// (stricter than §5.1, which lets a cache use it, and the conservative
// reading the HTTP cache test suite asks for).
func initialAge(headers [][2]string, date, received time.Time) (age int64, ok bool) {
	lines := 0
	for _, h := range headers {
		if strings.EqualFold(h[0], "age") {
			lines++
			var valid bool
			if age, valid = parseDelta(strings.Trim(h[1], " \t")); !valid {
				return 0, false
			}
		}
	}
	if lines > 1 {
		return 0, false
	}
	apparent := max(int64(received.Sub(date)/time.Second), 0)
	return min(max(age, apparent), MaxDelta), true
}

// singleField is the value of a singleton field; ok is false when it is
// absent. A field sent on several lines is invalid, and reads as "" (which
// no date parse accepts: Expires then means stale, §4.2.1).
func singleField(headers [][2]string, name string) (value string, ok bool) {
	for _, h := range headers {
		if strings.EqualFold(h[0], name) {
			if ok {
				return "", true
			}
			value, ok = strings.Trim(h[1], " \t"), true
		}
	}
	return value, ok
}
