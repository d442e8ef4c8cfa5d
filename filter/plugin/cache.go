package plugin

import (
	"strconv"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/portcullis/portcullis/filter/cache"
	"github.com/portcullis/portcullis/filter/host"
)

// The cache stage (filter/cache decides, this file talks to the proxy): a
// GET or HEAD is looked up in the in-proxy tier (this Envoy's index copy in
// shared data, this VM's hot entries) and then in the cache cluster (index
// record, unless copied here, then entry) while the request is paused; a
// hit is answered here, a miss goes upstream
// and its response is copied, as it streams to the client, into a fill that
// is PUT from the root context once the response has been passed on. An
// unsafe method's successful response tombstones the path's index copies
// here and deletes its index records in the cluster.

// maxCacheValueBytes bounds what is read of a store answer: the largest
// entry (the configured body maximum plus its head).
func maxCacheValueBytes(c *cache.Config) int { return c.MaxBodyBytes + cache.MaxHeadBytes }

// maxFillsPerVM bounds the fills one VM buffers at once (each holds up to
// max_body_bytes): past it a miss goes upstream without being stored.
const maxFillsPerVM = 32

// cacheState is one stream's cache work.
type cacheState struct {
	lookup *cache.Lookup
	xcache string // the X-Cache value for the response, "" when the cache had no say
	// status is the Cache-Status of a request forwarded without a lookup.
	status string
	// waited is set once the request waited for another's fill: it never
	// waits twice.
	waited bool
	// fillAllowed: a miss whose response may be stored (it holds the fill
	// lock, or it is a refresh, which stores without the lock).
	fillAllowed bool
	lock        *cache.Lock
	fill        *cache.Fill
	invalidate  []string // index keys to delete when the unsafe request succeeds
}

// cacheRequest classifies the request for the cache: a lookup, the
// invalidations of an unsafe method, or a bypass; then forwards it.
func (h *httpContext) cacheRequest() types.Action {
	p := h.plugin
	r := &h.request
	req := cache.Request{Method: r.Method, Scheme: r.Scheme, Authority: r.Authority, Path: r.Path, Tenant: h.tenant, Headers: r.Headers}
	plan := p.cfg.Cache.Classify(h.cachePolicy, &req)
	switch plan.Action {
	case cache.ActionLookup:
		h.cache.lookup = plan.Lookup
		return h.lookUp()
	case cache.ActionInvalidate:
		h.cache.invalidate = plan.Invalidate
	default:
		h.cache.xcache = cache.XCacheBypass
		p.metrics.cacheBypass.Inc()
	}
	h.cache.status = plan.CacheStatus()
	return h.forward()
}

// storeHeaders are a callout's headers for key. The key goes in :authority
// too: Envoy hashes a plugin's callouts on :authority, so a ring_hash or
// maglev cache cluster sends every request for one key to one replica.
// x-portcullis-cache-key carries it for hash policies on routes (Istio's
// DestinationRule), which other clients of the cache would go through.
func storeHeaders(c *cache.Config, method, key string, extra ...[2]string) [][2]string {
	return storeHeadersAt(c, method, "/v1/entries/"+key, key, extra...)
}

// storeHeadersAt are a callout's headers for the store's resource at path,
// hashed on key (an entry's, a tag set's or a tag member's).
func storeHeadersAt(c *cache.Config, method, path, key string, extra ...[2]string) [][2]string {
	h := [][2]string{
		{":method", method}, {":path", path}, {":authority", key[:16] + "." + c.Authority},
		{"x-portcullis-cache-key", key},
	}
	return append(h, extra...)
}

// lookUp answers a hit or forwards a miss. With this Envoy's copy of the
// path's index (shared data) the entry key is derived here: a hot entry is
// answered with no callout, any other with one (the entry). Without a copy
// the index is read from the cache cluster first, and copied.
func (h *httpContext) lookUp() types.Action {
	p := h.plugin
	c := p.cfg.Cache
	l := h.cache.lookup
	switch ok, known := l.UseLocalIndex(p.localIndex, clockNow()); {
	case ok:
		return h.lookUpEntry()
	case known: // invalidated on this Envoy, or a refresh
		return h.miss()
	}
	return h.call("cache", c.Cluster, storeHeaders(c, "GET", l.IndexKey), nil, c.Timeout, maxCacheValueBytes(c), func(a answer) types.Action {
		if a.status != 200 && a.status != 404 {
			return h.cacheUnavailable()
		}
		_, ok := l.UseIndex(a.body, a.status == 200)
		if err := p.localIndex.Remember(l, clockNow()); err != nil {
			host.Log(host.Warn, "portcullis: cannot copy a cache index record to shared data: "+err.Error())
		}
		if !ok {
			return h.miss()
		}
		return h.lookUpEntry()
	})
}

// lookUpEntry answers from this VM's hot entries, or GETs the entry from
// the cache cluster (and keeps it hot when it is small enough).
func (h *httpContext) lookUpEntry() types.Action {
	p := h.plugin
	c := p.cfg.Cache
	l := h.cache.lookup
	now := clockNow()
	if hit, ok := l.AnswerHot(p.hot, now); ok {
		if !hit.Stale {
			p.metrics.cacheLocalHit.Inc()
			return h.answerHit(hit)
		}
		// A stale hot entry while another request refreshes the key (its
		// fill lock is held) is answered from here: the store cannot hold
		// the refreshed response before that refresh has stored it.
		if _, refreshing := p.fillLocks.Held(l.FillKey(), now); refreshing {
			p.metrics.cacheLocalHit.Inc()
			p.metrics.cacheStale.Inc()
			return h.answerHit(hit)
		}
	}
	return h.call("cache", c.Cluster, storeHeaders(c, "GET", l.EntryKey()), nil, c.Timeout, maxCacheValueBytes(c), func(a answer) types.Action {
		switch a.status {
		case 200:
		case 404:
			return h.miss()
		default:
			return h.cacheUnavailable()
		}
		hit, reason := l.Answer(a.body, clockNow())
		if reason != "" {
			return h.miss()
		}
		p.hot.Keep(l, a.body)
		return h.answerStored(hit)
	})
}

// answerStored answers a hit. A stale one (within stale-while-revalidate)
// is answered at once unless this request takes the key's fill lock: that
// one goes upstream to refresh the entry, while every other request of the
// key is answered stale (RFC 5861 §3, one refresh per key and Envoy).
func (h *httpContext) answerStored(hit cache.Hit) types.Action {
	if !hit.Stale {
		return h.answerHit(hit)
	}
	p := h.plugin
	l := h.cache.lookup
	if l.CanFill() && p.fills < maxFillsPerVM {
		if acq := p.fillLocks.TryAcquire(l.FillKey(), clockNow(), p.cfg.Cache.FillWait); acq.State == cache.Acquired {
			h.cache.lock, h.cache.fillAllowed = &acq.Lock, true
			h.cache.xcache = cache.XCacheMiss
			return h.goUpstream()
		}
	}
	p.metrics.cacheStale.Inc()
	return h.answerHit(hit)
}

// cacheUnavailable: the store did not answer usefully (down, slow, an error,
// garbage); the request goes upstream, neither looked up nor stored.
func (h *httpContext) cacheUnavailable() types.Action {
	h.plugin.metrics.cacheUnavailable.Inc()
	h.cache.xcache = cache.XCacheBypass
	return h.forward()
}

// answerHit replies with the stored response, with this request's
// rate-limit headers (a hit is still charged).
func (h *httpContext) answerHit(hit cache.Hit) types.Action {
	p := h.plugin
	p.metrics.cacheHit.Inc()
	headers := append(hit.Headers, h.rateHeaders...)
	h.stage = stageReplied
	h.access.Cache = cache.XCacheHit
	if hit.Stale {
		h.access.Cache = cache.XCacheStale
	}
	h.publishAccess()
	if err := proxywasm.SendHttpResponse(uint32(hit.Status), headers, hit.Body, -1); err != nil {
		host.Log(host.Error, "portcullis: cannot send a cached response: "+err.Error())
	}
	return types.ActionPause
}

// miss forwards the request as a MISS. A GET that may fill takes the
// key's fill lock first; when another request holds it, this one waits for
// that fill (at most until the lock's deadline) and looks up again.
func (h *httpContext) miss() types.Action {
	p := h.plugin
	l := h.cache.lookup
	h.cache.xcache = cache.XCacheMiss
	switch {
	case !l.CanFill():
	case l.Refresh:
		h.cache.fillAllowed = true
	default:
		if p.fills >= maxFillsPerVM {
			break
		}
		acq := p.fillLocks.TryAcquire(l.FillKey(), clockNow(), p.cfg.Cache.FillWait)
		switch {
		case acq.State == cache.Acquired:
			h.cache.lock, h.cache.fillAllowed = &acq.Lock, true
		case acq.State == cache.Busy && !h.cache.waited:
			h.cache.waited = true
			p.metrics.cacheWaits.Inc()
			p.wait(&fillWaiter{h: h, key: l.FillKey(), until: acq.Until.UnixNano()})
			h.stage = stageAwaiting
			return types.ActionPause
		}
	}
	return h.goUpstream()
}

// goUpstream forwards a looked-up request. With a stale entry that has a
// validator the upstream is asked whether it changed (RFC 9111 §4.3.1); a
// 304 is answered in cacheResponseHeaders.
func (h *httpContext) goUpstream() types.Action {
	h.plugin.metrics.cacheMiss.Inc()
	conditional := h.cache.lookup.Conditional()
	if conditional != nil {
		// The client's own validators name some other representation: a 304
		// to them would not validate the stored one.
		_ = proxywasm.RemoveHttpRequestHeader("if-none-match")
		_ = proxywasm.RemoveHttpRequestHeader("if-modified-since")
	}
	for _, kv := range conditional {
		if err := proxywasm.ReplaceHttpRequestHeader(kv[0], kv[1]); err != nil {
			host.Log(host.Warn, "portcullis: cannot make a cache revalidation conditional: "+err.Error())
		}
	}
	return h.forward()
}

// fillWaiter is a request waiting for another request's fill of its key.
type fillWaiter struct {
	h     *httpContext
	key   string
	until int64 // the fill lock's deadline, Unix nanoseconds
}

func (w *fillWaiter) streamID() uint32 { return w.h.id }

// poll looks the request up again once the fill lock is free (the fill was
// stored, or abandoned) or its deadline passed.
func (w *fillWaiter) poll(now int64) bool {
	h := w.h
	if h.stage != stageAwaiting {
		return true
	}
	if _, held := h.plugin.fillLocks.Held(w.key, time.Unix(0, now)); held && now < w.until {
		return false
	}
	if h.lookUp() == types.ActionContinue {
		if err := proxywasm.ResumeHttpRequest(); err != nil {
			host.Log(host.Warn, "portcullis: cannot resume a request after waiting for a cache fill: "+err.Error())
		}
	}
	return true
}

// cacheResponseHeaders decides, on the response headers of a forwarded
// request, whether it is stored, sets X-Cache and Cache-Status, and
// schedules the deletions of an unsafe request that succeeded. replied is
// true when it answered the request itself: a 304 to a revalidation.
func (h *httpContext) cacheResponseHeaders(status int, endOfStream bool) (replied bool) {
	p := h.plugin
	cs := &h.cache
	if status == 304 && cs.lookup != nil && cs.lookup.Revalidating() {
		if h.answerRevalidated() {
			return true
		}
	}
	if status >= 500 && cs.lookup != nil {
		if hit, ok := cs.lookup.StaleIfError(status, clockNow()); ok {
			h.releaseFillLock()
			p.metrics.cacheStale.Inc()
			h.stage = stageReplied
			h.access.Cache = cache.XCacheStale
			h.publishAccess()
			if err := proxywasm.SendHttpResponse(uint32(hit.Status), append(hit.Headers, h.rateHeaders...), hit.Body, -1); err != nil {
				host.Log(host.Error, "portcullis: cannot send a stale cached response: "+err.Error())
			}
			return true
		}
	}
	if cs.invalidate != nil {
		if cache.Invalidates(status) {
			keys := cs.invalidate
			// The paths the response names are invalidated too (RFC 9111 §4.4).
			if loc, cl := responseHeader("location"), responseHeader("content-location"); loc != "" || cl != "" {
				r := &h.request
				req := cache.Request{Method: r.Method, Scheme: r.Scheme, Authority: r.Authority, Path: r.Path, Tenant: h.tenant}
				keys = append(keys, cache.RelatedInvalidations(&req, loc, cl)...)
			}
			p.invalidateIndexes(keys)
			p.metrics.cacheInvalidations.Inc()
		}
		cs.xcache = cache.XCacheBypass
	}
	if cs.fillAllowed {
		headers, err := proxywasm.GetHttpResponseHeaders()
		if err == nil {
			epoch, _ := randomUint64()
			fill, _ := cs.lookup.Fill(&cache.Response{Status: status, Headers: headers}, clockNow(), epoch)
			if fill != nil {
				cs.fill = fill
				p.fills++
			} else {
				cs.xcache = cache.XCacheBypass // the response is not cacheable
				p.metrics.cacheNotStored.Inc()
			}
		}
		if cs.fill == nil {
			h.releaseFillLock()
		}
	}
	if cs.xcache != "" {
		_ = proxywasm.ReplaceHttpResponseHeader(cache.HeaderXCache, cs.xcache)
		status := cs.status
		if cs.lookup != nil {
			status = cs.lookup.CacheStatus(cs.fill != nil)
		}
		_ = proxywasm.ReplaceHttpResponseHeader(cache.HeaderCacheStatus, status)
	}
	if c := p.cfg.Cache; c != nil && c.Purge != nil {
		// Surrogate keys are for the gateway, as in Fastly's and
		// Cloudflare's conventions: the client never sees them.
		_ = proxywasm.RemoveHttpResponseHeader(c.Purge.TagHeader)
	}
	if endOfStream {
		h.finishFill()
	}
	return false
}

// answerRevalidated answers a revalidation the upstream confirmed (304)
// with the refreshed entry, and PUTs it back (releasing the fill lock once
// stored). false when the 304 cannot be used: it goes to the client as it is.
func (h *httpContext) answerRevalidated() bool {
	p := h.plugin
	cs := &h.cache
	headers, err := proxywasm.GetHttpResponseHeaders()
	if err != nil {
		return false
	}
	rv, ok := cs.lookup.Revalidated(&cache.Response{Status: 304, Headers: headers}, clockNow())
	if !ok {
		return false
	}
	p.metrics.cacheRevalidated.Inc()
	// A refreshed entry that is fresh keeps the key's fill lock until its
	// PUT is answered, so that the requests waiting on it find it stored and
	// answer HIT. One that every request must revalidate anyway (no-cache,
	// no freshness) gives the lock up at once: waiting for its PUT would
	// only delay the next revalidation (BenchmarkPluginCacheRevalidated: 22
	// ms a revalidation that way, 0.6 ms now).
	if !rv.Fresh || rv.Envelope == nil {
		h.releaseFillLock()
	}
	lock := cs.lock
	cs.lock = nil
	if rv.Envelope != nil {
		p.hot.Keep(cs.lookup, rv.Envelope)
		p.store("PUT", rv.EntryKey, rv.Envelope, &rv.TTL, func(int) {
			if lock != nil {
				_ = p.fillLocks.Release(*lock)
			}
		})
	}
	h.stage = stageReplied
	h.access.Cache = cache.XCacheRevalidated
	h.publishAccess()
	if err := proxywasm.SendHttpResponse(uint32(rv.Hit.Status), append(rv.Hit.Headers, h.rateHeaders...), rv.Hit.Body, -1); err != nil {
		host.Log(host.Error, "portcullis: cannot send a revalidated cached response: "+err.Error())
	}
	return true
}

// invalidateIndexes makes index records unreachable: this Envoy's copies at
// once (tombstones), then the cache cluster's, deleted from the tick.
func (p *Plugin) invalidateIndexes(keys []string) {
	if len(keys) == 0 {
		return
	}
	if err := p.localIndex.Invalidate(keys, clockNow()); err != nil {
		host.Log(host.Warn, "portcullis: "+err.Error())
	}
	for _, key := range keys {
		p.store("DELETE", key, nil, nil, nil)
	}
}

// cacheResponseBody copies a chunk of the streaming body into the fill.
func (h *httpContext) cacheResponseBody(bodySize int, endOfStream bool) {
	cs := &h.cache
	if cs.fill == nil {
		return
	}
	if bodySize > 0 {
		chunk, err := proxywasm.GetHttpResponseBody(0, bodySize)
		if err != nil || !cs.fill.Append(chunk) {
			h.abandonFill()
			return
		}
	}
	if endOfStream {
		h.finishFill()
	}
}

// finishFill schedules the PUTs of a complete response (index first, then
// the entry); the fill lock is released once the entry's PUT has answered,
// so waiters find it.
func (h *httpContext) finishFill() {
	cs := &h.cache
	fill := cs.fill
	if fill == nil {
		return
	}
	cs.fill = nil
	h.plugin.fills--
	envelope := fill.Envelope()
	if envelope == nil {
		h.abandonFill()
		return
	}
	p := h.plugin
	lock := cs.lock
	cs.lock = nil
	release := func() {
		if lock != nil {
			_ = p.fillLocks.Release(*lock)
		}
	}
	storeEntry := func() {
		if fill.Index != nil {
			if err := p.localIndex.Fill(fill, clockNow()); err != nil {
				host.Log(host.Warn, "portcullis: cannot copy a cache index record to shared data: "+err.Error())
			}
			p.store("PUT", fill.IndexKey, fill.Index, &fill.IndexTTL, nil)
		}
		p.store("PUT", fill.EntryKey, envelope, &fill.TTL, func(status int) {
			if stored(status) {
				p.metrics.cacheStored.Inc()
			} else {
				p.metrics.cacheUnavailable.Inc()
			}
			release()
		})
	}
	if len(fill.Tags) == 0 {
		storeEntry()
		return
	}
	// The index key is filed under its tag sets first, and the entry stored
	// only once every one has it: no entry is stored that a purge cannot
	// reach. One call per set, hashed on the set's key, so that with
	// in-memory replicas each set lives on the replica a purge of it asks.
	pending, failed := len(fill.Tags), false
	for _, tag := range fill.Tags {
		p.storeAt("PUT", "/v1/tags/"+fill.TagMember, tag, []byte(tag), &fill.IndexTTL, func(status int) {
			failed = failed || !stored(status)
			if pending--; pending > 0 {
				return
			}
			if failed {
				p.metrics.cacheUnavailable.Inc()
				release()
				return
			}
			storeEntry()
		})
	}
}

// stored reports whether a store write's answer status is a success.
func stored(status int) bool { return status == 204 || status == 200 }

// abandonFill drops a fill (the body was too big, or the stream ended early).
func (h *httpContext) abandonFill() {
	if h.cache.fill != nil {
		h.cache.fill = nil
		h.plugin.fills--
	}
	h.plugin.metrics.cacheNotStored.Inc()
	h.releaseFillLock()
}

func (h *httpContext) releaseFillLock() {
	if l := h.cache.lock; l != nil {
		h.cache.lock = nil
		_ = h.plugin.fillLocks.Release(*l)
	}
}

// store queues a write of the entry or index record at key to the cache
// cluster from the root context (so it outlives the stream that asked for
// it); done, when set, gets the answer's status.
func (p *Plugin) store(method, key string, value []byte, ttl *time.Duration, done func(status int)) {
	p.storeAt(method, "/v1/entries/"+key, key, value, ttl, done)
}

// storeAt is store for the store's resource at path, hashed on key.
func (p *Plugin) storeAt(method, path, key string, value []byte, ttl *time.Duration, done func(status int)) {
	c := p.cfg.Cache
	var extra [][2]string
	if ttl != nil {
		extra = append(extra, [2]string{"x-cache-ttl", strconv.FormatInt(int64(max(*ttl/time.Second, 1)), 10)},
			[2]string{"content-type", "application/octet-stream"})
	}
	ok := p.enqueue(backgroundCall{
		what: "cache", cluster: c.Cluster, headers: storeHeadersAt(c, method, path, key, extra...),
		body: value, timeout: c.Timeout, done: done,
	})
	if !ok {
		p.metrics.cacheDropped.Inc()
		if done != nil {
			done(0)
		}
	}
}
