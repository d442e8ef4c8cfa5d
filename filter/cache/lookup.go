package cache

import (
	"strconv"
	"time"
)

// Lookup carries one GET or HEAD request through the cache:
//
//  1. UseLocalIndex (this Envoy's copy of the index). When it does not
//     know: GET IndexKey from the store, UseIndex with the answer, then
//     LocalIndex.Remember.
//  2. If either gives an entry key: AnswerHot (this VM's hot entries);
//     failing that, GET EntryKey, Answer, and HotEntries.Keep on a hit. A
//     hit is the reply.
//  3. On a miss, forward the request. If CanFill: with the fill lock
//     (FillKey, unless Refresh), call Fill on the response headers, feed
//     the body to the Fill, then LocalIndex.Fill and PUT its Index (when
//     not nil) and Envelope.
//
// When the index GET fails (no answer, an error status), do not call
// UseIndex: the request is forwarded and its response not stored (Fill
// says index_unknown), since a fill that cannot see the index would start
// a new generation and drop the path's other variants. A failed entry GET
// is a plain miss.
type Lookup struct {
	// IndexKey is K0, the store key of the path's index record.
	IndexKey string
	// Refresh is set when the request said no-cache (or Pragma: no-cache):
	// it is never answered from the store and neither waits for nor takes
	// the fill lock, but its response is stored (RFC 9111 §5.2.1.4).
	Refresh bool

	cfg                        *Config
	policy                     *RoutePolicy
	head, shared, credentials  bool
	query                      string
	host, path, tenant         string // what K0 was derived from, for the purge tags
	headers                    [][2]string
	maxAge, minFresh, maxStale int64 // the request's directives, -1 when absent

	k0    digest
	index indexState
	idx   Index  // when indexPresent
	k1    digest // the entry key, when UseIndex gave one
	// local is what UseLocalIndex read of this Envoy's copy of the index,
	// for Remember.
	local localRead
	// stale is the entry Answer found stale or too old, kept when it has a
	// validator (revalidate: Conditional) or may answer an upstream error
	// until ifErrorUntil (Unix ms, RFC 5861 §4).
	stale        *Entry
	revalidate   bool
	ifErrorUntil int64
	// fwd is why the request goes upstream, for Cache-Status (RFC 9211 §2.2).
	fwd string
}

type indexState uint8

const (
	indexUnknown indexState = iota // the index was not read (yet)
	indexAbsent                    // not found, or unreadable
	indexPresent
)

// UseIndex takes the store's answer for IndexKey (found false for a 404)
// and returns the entry key to GET next. ok is false when there is none to
// look up: no index, an unreadable one, or a Refresh. That is a miss.
func (l *Lookup) UseIndex(value []byte, found bool) (entryKey string, ok bool) {
	l.index = indexAbsent
	if !found {
		return "", false
	}
	x, err := DecodeIndex(value)
	if err != nil || x.Key != l.k0 { // unreadable, or another key's record: as absent; a fill replaces it
		return "", false
	}
	if !l.useIndex(x) {
		return "", false
	}
	return l.EntryKey(), true
}

// useIndex takes the index record x (already checked to be K0's) and
// derives the entry key; false for a Refresh, which is never answered.
func (l *Lookup) useIndex(x Index) bool {
	l.index, l.idx = indexPresent, x
	if l.Refresh {
		return false
	}
	l.k1 = variantDigest("entry", l.k0, &x.Epoch, l.query, x.Vary, l.headers)
	return true
}

// EntryKey is the entry key (K1) to GET, once UseIndex or UseLocalIndex
// gave one.
func (l *Lookup) EntryKey() string { return hexKey(l.k1) }

// FillKey is the key of this request's fill lock: the same for every
// request that would be answered by the same entry (given what the index
// said), whatever the index's epoch, so that concurrent misses agree on it.
func (l *Lookup) FillKey() string {
	var names []string
	if l.index == indexPresent {
		names = l.idx.Vary
	}
	return hexKey(variantDigest("fill", l.k0, nil, l.query, names, l.headers))
}

// CanFill reports whether a miss of this request is stored: not for HEAD,
// whose response has no body (HEAD only reads the GET entry).
func (l *Lookup) CanFill() bool { return !l.head }

// Hit is the reply to a request answered from the store.
type Hit struct {
	// Stale is set for an entry served within its stale-while-revalidate
	// window: the plugin refreshes it (one request per key, the fill lock).
	Stale   bool
	Status  int         // the stored one, or 304 for a request whose conditionals match
	Headers [][2]string // the stored ones, then x-cache, age and cache-status
	// Body is the stored body, for HEAD too: the proxy's local reply sets
	// content-length from it and sends no body to a HEAD request.
	Body []byte
}

// Answer reads the store's value for the entry key UseIndex gave and
// returns the reply, or why it cannot answer (a miss; reason not "").
// Freshness is decided here, from the envelope, so a store that keeps
// entries past their TTL never serves them stale.
func (l *Lookup) Answer(value []byte, now time.Time) (hit Hit, reason string) {
	switch {
	case l.Refresh:
		return Hit{}, MissRefresh
	case l.index != indexPresent:
		return Hit{}, MissNoIndex
	}
	e, err := DecodeEntry(value)
	if err != nil {
		return Hit{}, MissCorrupt
	}
	return l.answer(&e, now)
}

// answer is the reply from the decoded entry e, or why there is none. e is
// not changed: a hot entry answers many requests. An entry that is stale, or
// too old for the request, but has a validator is kept as the one to
// revalidate (Conditional): MissRevalidate.
func (l *Lookup) answer(e *Entry, now time.Time) (hit Hit, reason string) {
	if e.Key != l.k1 {
		return Hit{}, MissMismatch // the store answered with another key's value
	}
	for _, v := range e.Vary { // RFC 9111 §4.1
		value, present := fieldValue(l.headers, v.Name)
		if present != v.Present || value != v.Value {
			l.fwd = fwdVaryMiss
			return Hit{}, MissMismatch
		}
	}
	ms := now.UnixMilli()
	age := e.InitialAge + max(ms-e.StoredAt, 0)/1000 // RFC 9111 §4.2.3: age on arrival + time resident
	switch {
	case ms >= e.ExpiresAt:
		reason = MissExpired
	case l.maxAge >= 0 && age > l.maxAge || l.minFresh >= 0 && (e.ExpiresAt-ms)/1000 < l.minFresh:
		reason = MissTooOld // RFC 9111 §5.2.1.1, §5.2.1.3
	default:
		return l.reply(e, age, ms, XCacheHit, cacheStatusHit), ""
	}
	l.fwd = fwdStale
	var windows staleWindows
	if reason == MissExpired {
		windows = l.policy.staleWindows(e.Headers)
	}
	validator := hasValidator(e.Headers)
	if validator || windows.ifError > 0 {
		stale := *e // the fields are never written after decoding: a copy shares them safely
		l.stale, l.revalidate, l.ifErrorUntil = &stale, validator, e.ExpiresAt+windows.ifError.Milliseconds()
	}
	// RFC 5861 §3: within stale-while-revalidate the stale entry answers at
	// once; the plugin sends one request of the key upstream to refresh it.
	// So does a request that accepts it stale (max-stale, RFC 9111 §5.2.1.2).
	if reason == MissExpired && !windows.forbidden && (ms < e.ExpiresAt+windows.whileRevalidate.Milliseconds() ||
		l.maxStale >= 0 && (ms-e.ExpiresAt)/1000 <= l.maxStale) {
		hit = l.reply(e, age, ms, XCacheStale, cacheStatusHit)
		hit.Stale = true
		return hit, ""
	}
	if validator {
		return Hit{}, MissRevalidate
	}
	return Hit{}, reason
}

// reply is the answer from e, of age age at ms: the stored response, or a
// 304 when the request's own conditionals match it (RFC 9110 §13.2.2: a
// cache evaluates them against the response it selected).
func (l *Lookup) reply(e *Entry, age, ms int64, xcache, cacheStatus string) Hit {
	status, body := e.Status, e.Body
	if notModified(l.headers, e) {
		status, body = 304, nil
	}
	ttl := (e.ExpiresAt - ms) / 1000
	if ms >= e.ExpiresAt { // stale: a negative ttl (RFC 9211 §2.5), never a truncated 0
		ttl = -(ms-e.ExpiresAt)/1000 - 1
	}
	// A new slice: e.Headers stays as stored (a hot entry answers again).
	headers := append(make([][2]string, 0, len(e.Headers)+hitHeaderCount), e.Headers...)
	headers = append(headers, [2]string{HeaderXCache, xcache}, [2]string{"age", strconv.FormatInt(age, 10)},
		[2]string{HeaderCacheStatus, cacheStatus + strconv.FormatInt(ttl, 10)})
	return Hit{Status: status, Headers: headers, Body: body}
}
