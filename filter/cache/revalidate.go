package cache

import (
	"strings"
	"time"
)

// Validation (RFC 9111 §4.3) and the cache's own conditional answers
// (RFC 9110 §13).

// Conditional returns the fields to set on the forwarded request when a
// stale entry is to be revalidated (Answer or AnswerHot said
// MissRevalidate): If-None-Match with its ETag, If-Modified-Since with its
// Last-Modified (§4.3.1). They replace the client's own If-None-Match and
// If-Modified-Since (the plugin removes those), which are then evaluated
// against the refreshed entry (Revalidated). nil when there is nothing to
// revalidate.
func (l *Lookup) Conditional() [][2]string {
	if !l.revalidate {
		return nil
	}
	var out [][2]string
	if etag, _ := singleField(l.stale.Headers, "etag"); etag != "" {
		out = append(out, [2]string{"if-none-match", etag})
	}
	if lm, _ := singleField(l.stale.Headers, "last-modified"); lm != "" {
		out = append(out, [2]string{"if-modified-since", lm})
	}
	return out
}

// Revalidating reports whether the request was forwarded to revalidate a
// stale entry.
func (l *Lookup) Revalidating() bool { return l.revalidate }

// Revalidation is the outcome of a 304 to a revalidation: the reply, and the
// refreshed entry to PUT back at the same key (Envelope nil when the 304's
// fields forbid storing it).
type Revalidation struct {
	Hit      Hit
	EntryKey string
	Envelope []byte
	TTL      time.Duration
	// Fresh: the refreshed entry may be reused without another
	// revalidation (it has freshness and no no-cache), so requests waiting
	// on the key's fill lock are better served once it is stored.
	Fresh bool
}

// Revalidated takes the upstream's answer to a revalidation. A 304 freshens
// the stored entry (§4.3.4): every stored field the 304 also carries is
// replaced by the 304's lines (less the fields never stored), freshness is
// computed again from the result, and the stored status and body answer
// the client (or a 304, when the client's own conditionals match). ok is
// false for any other status: a 200 replaces the entry through Fill, an
// error goes to the client.
func (l *Lookup) Revalidated(resp *Response, now time.Time) (r Revalidation, ok bool) {
	if !l.revalidate || resp.Status != 304 {
		return Revalidation{}, false
	}
	old := l.stale
	fresh := l.cfg.replayHeaders(resp.Headers, "")
	merged := make([][2]string, 0, len(old.Headers)+len(fresh))
	for _, h := range old.Headers {
		if _, replaced := fieldValue(fresh, h[0]); !replaced || bodyField(h[0]) {
			merged = append(merged, h)
		}
	}
	for _, h := range fresh {
		if !bodyField(h[0]) {
			merged = append(merged, h)
		}
	}

	cc := responseCacheControl(merged)
	heuristic, _ := l.cfg.heuristicTTL(old.Status, l.policy)
	// The Age of the 304 is the refreshed entry's (it is never stored).
	withAge := append(merged[:len(merged):len(merged)], ageLines(resp.Headers)...)
	fr := responseFreshness(cc, withAge, now, heuristic)
	ms := now.UnixMilli()
	e := Entry{
		Key: old.Key, Status: old.Status, StoredAt: ms, ExpiresAt: ms + max(fr.fresh, 0)*1000,
		InitialAge: fr.age, Headers: merged, Vary: old.Vary, Body: old.Body,
	}
	r.Hit = l.reply(&e, fr.age, ms, XCacheRevalidated, cacheStatusRevalidated)
	r.Fresh = fr.fresh > 0 && !cc.NoCache
	if cc.NoStore || cc.Private {
		return r, true
	}
	head, err := e.appendHead(make([]byte, 0, e.headSize()+len(e.Body)))
	if err != nil {
		return r, true
	}
	r.Envelope = append(head, e.Body...)
	setBodyLength(r.Envelope, len(e.Body))
	r.EntryKey, r.TTL = hexKey(e.Key), fr.retention(l.policy.staleWindows(merged))
	return r, true
}

// StaleIfError answers an upstream error (a 5xx: the upstream's own, or
// Envoy's for a connection failure or a timeout) to a request whose entry is
// stale with the stale entry, while its stale-if-error window lasts
// (RFC 5861 §4); ok is false otherwise, and the error goes to the client.
func (l *Lookup) StaleIfError(status int, now time.Time) (hit Hit, ok bool) {
	ms := now.UnixMilli()
	if l.stale == nil || status < 500 || ms >= l.ifErrorUntil {
		return Hit{}, false
	}
	e := l.stale
	age := e.InitialAge + max(ms-e.StoredAt, 0)/1000
	return l.reply(e, age, ms, XCacheStale, cacheStatusStaleIfError), true
}

// staleWindows are how long past its freshness an entry may be served
// stale: its own stale-while-revalidate and stale-if-error, else the
// rule's defaults; none when its directives forbid serving it stale
// (must-revalidate, proxy-revalidate, s-maxage, no-cache: RFC 9111 §4.2.4).
// forbidden: the stored response must never be served stale.
type staleWindows struct {
	whileRevalidate, ifError time.Duration
	forbidden                bool
}

func (p *RoutePolicy) staleWindows(stored [][2]string) staleWindows {
	cc := responseCacheControl(stored)
	if cc.NeverStale() {
		return staleWindows{forbidden: true}
	}
	w := staleWindows{whileRevalidate: p.StaleWhileRevalidate, ifError: p.StaleIfError}
	if cc.StaleWhileRevalidate >= 0 {
		w.whileRevalidate = time.Duration(cc.StaleWhileRevalidate) * time.Second
	}
	if cc.StaleIfError >= 0 {
		w.ifError = time.Duration(cc.StaleIfError) * time.Second
	}
	return w
}

// bodyField reports whether a stored field describes the stored body, so
// that a 304 never updates it (RFC 9111 §3.2: the fields the stored
// response depends on): its encoding, range, digest and validator.
func bodyField(name string) bool {
	switch name {
	case "content-encoding", "content-range", "content-md5", "etag":
		return true
	}
	return false
}

// ageLines are the Age lines of headers.
func ageLines(headers [][2]string) [][2]string {
	var out [][2]string
	for _, h := range headers {
		if strings.EqualFold(h[0], "age") {
			out = append(out, h)
		}
	}
	return out
}

// notModified reports whether the request's conditionals, evaluated against
// the stored response e, ask for a 304 (RFC 9110 §13.2.2): If-None-Match
// when present (weak comparison, §8.8.3.2; "*" matches any stored
// response), else If-Modified-Since against the stored Last-Modified.
func notModified(request [][2]string, e *Entry) bool {
	if e.Status != 200 {
		return false // §15.4.5: a 304 stands for a 200
	}
	if inm, ok := fieldValue(request, "if-none-match"); ok {
		etag, _ := singleField(e.Headers, "etag")
		return etagListMatches(inm, etag)
	}
	ims, ok := singleField(request, "if-modified-since")
	if !ok {
		return false
	}
	since, ok := parseHTTPDate(ims)
	if !ok {
		return false // an invalid date is ignored (§13.1.3)
	}
	lmValue, _ := singleField(e.Headers, "last-modified")
	lm, ok := parseHTTPDate(lmValue)
	return ok && !lm.After(since)
}

// etagListMatches reports whether the If-None-Match list matches etag by
// weak comparison: their opaque tags are equal, W/ or not.
func etagListMatches(list, etag string) bool {
	if etag == "" {
		return strings.Trim(list, " \t") == "*"
	}
	want := strings.TrimPrefix(etag, "W/")
	for list != "" {
		var elem string
		elem, list = nextListElement(list)
		elem = strings.Trim(elem, " \t")
		if elem == "*" || elem != "" && strings.TrimPrefix(elem, "W/") == want {
			return true
		}
	}
	return false
}
