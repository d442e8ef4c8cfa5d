package cache

import (
	"slices"
	"strconv"
	"time"
)

// Response is what the gateway knows of the upstream's response when its
// headers arrive.
type Response struct {
	Status  int
	Headers [][2]string
}

// Fill is a response being stored: the keys and records to PUT once its
// body has streamed through Append.
type Fill struct {
	// IndexKey and Index: the index record to PUT first, or nil when the
	// stored one already fits. IndexTTL is its store hint.
	IndexKey string
	Index    []byte
	IndexTTL time.Duration
	// EntryKey is where Envelope goes; TTL is the store hint: the entry's
	// freshness, plus how long it may be served stale or revalidated
	// (retention). Past its freshness it is never served without one of
	// those, whatever the store keeps.
	EntryKey string
	TTL      time.Duration
	// TagMember and Tags, when Config.Purge is set: file TagMember (the
	// index key and its scope) under each of the tag sets Tags (their keys)
	// before the entry is PUT, so that no entry is stored that a purge
	// cannot reach.
	TagMember string
	Tags      []string

	k0   digest
	idx  Index // the record in Index, for LocalIndex.Fill
	body bodyBuffer
}

// MaxStoreTTL is the longest store hint the cache server takes
// (x-cache-ttl, README "Cache server"): an entry fresh for longer may be
// dropped by the store after it, and is then fetched again.
const MaxStoreTTL = 24 * time.Hour

// revalidationRetention is how long past its freshness an entry with a
// validator stays in the store, to be revalidated (one upstream round trip
// without a body) instead of fetched again.
const revalidationRetention = time.Hour

// minIndexTTL is the least store hint of an index record: an index that
// expires before its entries makes them unreachable (one more upstream call
// each), so it outlives the entry it is written with, and most later ones.
const minIndexTTL = time.Hour

// Fill decides on the response headers whether the response is stored
// (reason "" and a Fill) or not (why: mark it BYPASS). now is when the
// headers arrived. epoch is a fresh random number, used when the index
// record has to be written, which always starts a new generation (doc.go
// explains why).
func (l *Lookup) Fill(resp *Response, now time.Time, epoch uint64) (*Fill, string) {
	if l.head {
		return nil, ReasonHead
	}
	if l.index == indexUnknown {
		return nil, ReasonIndexUnknown
	}
	heuristic, cacheable := l.cfg.heuristicTTL(resp.Status, l.policy)
	if !cacheable {
		return nil, ReasonStatus
	}
	if _, ok := fieldValue(resp.Headers, "set-cookie"); ok {
		return nil, ReasonSetCookie
	}
	cc := responseCacheControl(resp.Headers)
	switch {
	case cc.MustUnderstand && !understoodStatus(resp.Status):
		return nil, ReasonMustUnderstand
	case cc.NoStore && !cc.MustUnderstand: // §5.2.2.3: must-understand overrides no-store for a known status
		return nil, ReasonResponseNoStore
	case cc.Private:
		return nil, ReasonResponsePrivate
	}
	vary, _ := fieldValue(resp.Headers, "vary")
	names, reason := varyNames(vary)
	if reason != "" {
		return nil, reason
	}
	// RFC 9111 §3.5: an entry every caller shares may hold the response to
	// a request with credentials only when the response says so.
	if l.shared && l.credentials && !cc.Public && cc.SMaxAge < 0 && !cc.MustRevalidate {
		return nil, ReasonAuthorizedNotPublic
	}
	expected := 0
	if v, ok := singleField(resp.Headers, "content-length"); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err == nil && n > int64(l.cfg.MaxBodyBytes) {
			return nil, ReasonBodyTooLarge
		}
		expected = int(max(n, 0))
	}
	var surrogate []string
	if pc := l.cfg.Purge; pc != nil {
		value, _ := fieldValue(resp.Headers, pc.TagHeader)
		var ok bool
		if surrogate, ok = SurrogateKeys(value); !ok {
			return nil, ReasonSurrogateKeys
		}
	}
	fr := responseFreshness(cc, resp.Headers, now, heuristic)
	if fr.fresh <= 0 && !fr.validator {
		// Reusable only after revalidation, which needs a validator.
		if cc.NoCache {
			return nil, ReasonResponseNoCache
		}
		return nil, ReasonStale
	}

	f := &Fill{IndexKey: l.IndexKey, TTL: fr.retention(l.policy.staleWindows(resp.Headers))}
	f.IndexTTL = min(max(f.TTL, minIndexTTL), MaxStoreTTL)
	if l.cfg.Purge != nil {
		f.TagMember, f.Tags = l.tags(surrogate)
	}
	// The entry is keyed by every name the path varies on, so one index
	// serves all its variants; the set only grows.
	writeIndex := l.index == indexAbsent
	if l.index == indexPresent {
		names = unionNames(l.idx.Vary, names)
		if len(names) > MaxVary {
			return nil, ReasonVaryTooMany
		}
		if slices.Equal(names, l.idx.Vary) {
			epoch = l.idx.Epoch
		} else {
			writeIndex = true
		}
	}
	if writeIndex {
		f.k0, f.idx = l.k0, Index{Key: l.k0, Epoch: epoch, Vary: names}
		var err error
		if f.Index, err = f.idx.Append(nil); err != nil {
			return nil, ReasonVaryInvalid
		}
	}
	ms := now.UnixMilli()
	e := Entry{
		Key:        variantDigest("entry", l.k0, &epoch, l.query, names, l.headers),
		Status:     resp.Status,
		StoredAt:   ms,
		ExpiresAt:  ms + max(fr.fresh, 0)*1000,
		InitialAge: fr.age,
		Headers:    l.cfg.replayHeaders(resp.Headers, joinList(cc.NoCacheFields, cc.PrivateFields)),
		Vary:       varyValues(names, l.headers),
	}
	head, err := e.appendHead(make([]byte, 0, e.headSize()+min(expected, l.cfg.MaxBodyBytes)))
	if err != nil {
		return nil, ReasonHeaders
	}
	f.EntryKey = hexKey(e.Key)
	f.body = newBodyBuffer(head, l.cfg.MaxBodyBytes)
	return f, ""
}

// understoodStatus reports whether the gateway implements the caching
// rules of status (RFC 9110 §15): a must-understand response with another
// one is not stored (RFC 9111 §5.2.2.3).
func understoodStatus(status int) bool {
	switch {
	case 200 <= status && status <= 206, 300 <= status && status <= 308 && status != 306,
		400 <= status && status <= 417, status == 421, status == 422, status == 426, 500 <= status && status <= 505:
		return true
	}
	return false
}

// varyValues are the request's values of the varied fields names.
func varyValues(names []string, headers [][2]string) []VaryValue {
	if len(names) == 0 {
		return nil
	}
	out := make([]VaryValue, len(names))
	for i, name := range names {
		value, present := fieldValue(headers, name)
		out[i] = VaryValue{Name: name, Value: value, Present: present}
	}
	return out
}

// Append adds the next chunk of the response body as it streams through.
// false means the body is over Config.MaxBodyBytes: the fill is abandoned
// (its memory released); release the fill lock and store nothing.
func (f *Fill) Append(chunk []byte) bool { return f.body.append(chunk) }

// Envelope is the finished entry, after the body's last chunk: the value to
// PUT at EntryKey. nil when Append reported the body too big.
func (f *Fill) Envelope() []byte {
	b := f.body.bytes()
	if b != nil {
		setBodyLength(b, f.body.bodyLen())
	}
	return b
}

// tags are the fill's tag member (its index key and scope) and the tag sets
// to file it under: the path's, and each surrogate key's.
func (l *Lookup) tags(surrogate []string) (member string, tags []string) {
	member = l.IndexKey + TagMemberSeparator + scopeID(l.tenant, l.shared)
	tags = make([]string, 0, 1+len(surrogate))
	tags = append(tags, hexKey(pathTagDigest(l.host, l.path)))
	for _, k := range surrogate {
		tags = append(tags, hexKey(surrogateTagDigest(l.host, k)))
	}
	return member, tags
}
