// Package cache is the pure core of Portcullis's response cache (RFC 9111,
// as a shared cache): which requests and responses are cacheable, the store
// keys, the stored formats, freshness, invalidation and the fill locks that
// stop stampedes. It never talks to the proxy: the plugin makes the callouts
// to the cache service (GET, PUT, DELETE of a key) and hands the answers in,
// and the fill locks reach shared data through shared.Store.
//
// # A request's path through the cache
//
// Config.Classify decides per request (Plan):
//
//   - GET and HEAD on a rule with a cache policy are looked up, unless the
//     request says Cache-Control: no-store (BYPASS, and nothing stored). A
//     request with no-cache, or Pragma: no-cache without Cache-Control
//     (RFC 9111 §5.4), is a Refresh: never answered from the store, its
//     response stored.
//   - Other safe methods (OPTIONS, TRACE) bypass. Every other method is
//     unsafe (RFC 9111 §4.4): when its response status is not an error the
//     stored GETs of its path are invalidated, for the caller and shared.
//
// A Lookup then reads the index (UseIndex), the entry (Answer: a Hit is the
// reply, with x-cache, Age and Cache-Status), and on a miss decides on the
// response headers whether to store the response (Fill) and collects its
// body. Responses are stored when all of these hold:
//
//   - the status is in Config.Statuses (default 200 only);
//   - no Set-Cookie; the governing directives (Portcullis-Cache-Control,
//     else CDN-Cache-Control, else Cache-Control: RFC 9213) have no
//     no-store or private (must-understand with a status the gateway
//     implements overrides no-store, §5.2.2.3; with another status it
//     forbids storing); Vary is not "*" (§4.1). The qualified no-cache="f"
//     and private="f" store the response without the named fields;
//   - in a shared entry (a public rule, or an anonymous caller), a request
//     with credentials (a tenant, or an Authorization field forwarded) gets
//     its response stored only with public, s-maxage or must-revalidate
//     (§3.5); a tenant's own entry needs none of them, since no other
//     caller can reach it;
//   - it is fresh once its age is taken off, or it has a validator (ETag,
//     Last-Modified) to be revalidated with: the lifetime is s-maxage, else
//     max-age, else Expires − Date, else the heuristic (§4.2.2: a tenth of
//     Date − Last-Modified, at most the status's configured bound, 0 for
//     none), less the initial age (§4.2.3: the larger of Age and the
//     apparent age; an Age that is not one integer makes it stale);
//     no-cache makes it stale at once;
//   - its body fits Config.MaxBodyBytes.
//
// Past its freshness an entry is served only (revalidate.go): within its
// stale-while-revalidate window (RFC 5861, or the rule's default; Hit.Stale:
// the plugin sends one request of the key upstream to refresh it), to a
// request's max-stale, or instead of an upstream 5xx within stale-if-error
// (StaleIfError); never when must-revalidate, proxy-revalidate, s-maxage or
// no-cache forbid it (§4.2.4). Otherwise an entry with a validator is
// revalidated: the request goes upstream with Conditional's fields, and a
// 304 (Revalidated) freshens the entry (§4.3.4) and answers the client from
// it. A fresh entry answers the client's own conditionals with a 304
// (RFC 9110 §13.2.2).
//
// Cache-Control is parsed robustly (ParseCacheControl): anything malformed,
// duplicated with different values or qualified reads the conservative way.
//
// # Keys
//
// Store keys are the lower-case hex SHA-256 (64 characters) of canonical
// key strings. Each string is lines "label value": values that come from the
// request are written "<length>:<bytes>", so no value, whatever bytes it
// holds, reads as another field. For GET
// https://API.example.com:443/api/orders?q=x&page=2&lang=en by tenant
// alice with Accept-Encoding: gzip (key_test.go checks these bytes), the
// index key K0 is the SHA-256 of:
//
//	portcullis-cache/1 index
//	host 15:api.example.com
//	path 11:/api/orders
//	tenant 5:alice
//
// host is :authority in lower case without the scheme's default port; path
// is :path up to "?" (Envoy has normalised it); the last line is
// "scope shared" for a shared entry, else the tenant (the API key): private
// by default, so one caller's entry is never served to another. With an
// index of epoch 1c0ffee5badc0de5 varying on Accept-Encoding and
// Accept-Language, the entry key K1 is the SHA-256 of:
//
//	portcullis-cache/1 entry
//	index 62dfcfbb816a69e0348cf2e7088d5de9a1af6e82deb1374be3ed8a91a2e9080c
//	epoch 1c0ffee5badc0de5
//	method GET
//	query 18:lang=en&page=2&q=x
//	vary 15:accept-encoding 4:gzip
//	vary 15:accept-language -
//
// index is K0 in hex (so a variant of one scope is never another's); epoch
// is the index record's, 16 hex digits; method is always GET (HEAD reads
// the GET entry, and nothing else is stored); query is CanonicalQuery of
// the request's; one vary line per field name the path varies on (sorted),
// with the request's value (its lines trimmed and joined with ", ", RFC 9110
// §5.3) or "-" when absent (absent and empty differ, §4.1). The fill lock key is the entry key's
// string with kind "fill" and no epoch line.
//
// # Two levels, and invalidation
//
// Store keys are hashes, so "every variant of this path" cannot be listed.
// The index record at K0 (Index) holds an epoch, a random 64-bit number
// drawn when the record is written, and the Vary names seen for the path;
// entries live at K1, which includes the epoch.
//
//   - Lookup: GET K0 (404: miss) → GET K1 → Answer; the in-proxy tier
//     (below) answers either step on this Envoy when it can.
//   - Fill: PUT K0 when it was absent or the path's Vary names grew (the
//     names only grow, up to MaxVary, so variants never thrash), then PUT
//     K1. Every K0 write draws a new epoch.
//   - Invalidate: DELETE K0. Every K1 below it becomes unreachable (the
//     entries age out by their TTL); the next fill starts a new epoch.
//
// Races, and why none serves an entry past its expires-at or to another
// scope:
//
//   - Any entry is served only while fresh by its own envelope (Answer
//     checks expires-at, not the store's TTL), and only at the K1 it was
//     written for: the envelope carries K1 and the index carries K0, and
//     both are checked, so not even a store answering with another key's
//     value crosses scopes. K1 derives from K0, which includes the scope.
//   - Concurrent fills with different epochs (two Envoys, or the fill lock
//     unavailable, both find no index): each PUTs K0 with its epoch and its
//     K1 below it; the last K0 wins and the other entry is unreachable (one
//     wasted write). Either PUT order is safe: an entry before its index is
//     unreachable, an index before its entry is a miss.
//   - A fill racing an invalidation: a fill that needs no K0 write puts its
//     entry under the epoch it read; if the DELETE came first, that epoch is
//     gone for good, because no K0 write ever reuses an epoch, so the entry
//     is never reachable. A fill that writes K0 after the DELETE with a
//     response fetched before the change does store that response: it is
//     served until its expires-at. That is the one window; without a
//     conditional store nothing closes it, and the TTL bounds it. Since each
//     K0 write starts a new generation, an index write never makes an entry
//     from before an invalidation reachable again.
//   - Vary names growing in two fills at once (F1 adds a, F2 adds b): the
//     last K0 wins; the other's entry is unreachable and its next fill adds
//     its name again. Each growth costs the path's variants one refetch.
//   - A reader that read K0 before a DELETE and the entry after it gets
//     the entry: the request was concurrent with the invalidating one.
//   - An index record's TTL hint is its entry's, and at least an hour; when a
//     store drops it sooner, its entries are unreachable: misses, not errors.
//
// # The in-proxy tier
//
// Two callouts per hit cost more than proxying the request. Every proxy_*
// call crosses from the VM into the proxy (and each that returns data
// allocates in the module), so a hit the proxy answers by itself must make
// very few. Two tables sit in front of the cache cluster:
//
//   - LocalIndex: this Envoy's copies of index records, in shared data
//     (all workers), one per slot "pc:idx:<n>", each used for
//     Config.LocalIndexTTL after it was written. UseLocalIndex reads it
//     first; with a copy the entry key is derived without asking the cluster
//     (one callout for the entry instead of two). A fill that writes K0
//     copies it (LocalIndex.Fill); a lookup that read K0 from the cluster
//     copies it (Remember), compare-and-swapped against the slot as the
//     lookup found it, so a read in flight never undoes an invalidation.
//   - HotEntries: per VM, the entries that answered a hit from the cluster,
//     by K1, within LocalEntries, LocalMaxEntryBytes and LocalBytes. A hit
//     from here needs no host call beyond the index copy's read; freshness
//     is decided from the envelope as for any hit (AnswerHot).
//
// Why the index is shared and the entries are not: invalidation has to
// reach every worker at once, and shared data is the only memory the VMs
// share, so the small record that decides reachability lives there. Entries
// are larger and read far more often: a shared-data read of one costs a
// host call and a copy of the whole value into the VM, which is what a hot
// hit must avoid. Since K1 includes the epoch, a VM's table never has to be
// told about an invalidation: the copy changes, and the old K1s are never
// derived again (they age out by eviction).
//
// Invalidation on this Envoy (Invalidate) writes a tombstone over the
// path's copies before the unsafe request's response goes on and before
// the DELETEs leave. A tombstone is an absent index: the lookup is a miss
// without a callout, and its fill starts a new epoch. It lives
// Config.Timeout plus a second, past the DELETE's answer, so no worker
// reads the old record back from the cluster meanwhile. Nothing overwrites
// another path's live tombstone but more tombstones (up to 8 per slot; a
// 9th within a tombstone's life drops the one nearest its deadline, which
// then relies on its DELETE alone: with 4096 slots, it takes thousands of
// invalidations a second before any slot sees 9). Another Envoy's copy stays until its
// LocalIndexTTL runs out: that, plus the DELETE's own time, is how long
// another Envoy can serve a path's old entries (README "Caching").
//
// Collisions: a slot's copy carries the full K0 and is used only for it; two
// paths in one slot cost each other copy misses (a callout more), never a
// wrong index. The races of "Two levels" are unchanged: a fill that writes
// K0 after an invalidation with a response fetched before it is, here too,
// the one window, bounded by the entry's TTL.
//
// # Purge
//
// With Config.Purge, an operator purges by path or by surrogate key, for
// one tenant or for all (PurgeRequest; README "Caching", purge). Since store
// keys are hashes, the cluster keeps what a purge needs: tag sets. A fill
// files its member, K0 with its scope's id (scopeID: 16 hex digits of a
// SHA-256 of the tenant, or of "shared"), under the set of its path
// (pathTagDigest: host and path, every scope's variants) and of each of its
// surrogate keys (surrogateTagDigest: host and key), before its entry is
// PUT: an entry whose filing failed is not stored, so none is stored that a
// purge cannot reach. A purge names one set and a scope (or all); the store
// deletes the members of the scope, deletes the index records they name,
// and answers their keys (ParsePurgedKeys). Those are then exactly like an
// invalidation's keys: LocalIndex.Invalidate tombstones them on this Envoy
// before the answer goes out, and other Envoys see the records gone when
// their copies expire (LocalIndexTTL). A tenant's purge by path also names
// its K0 directly (PurgeRequest.Direct), so it holds for entries filed
// before purging was turned on.
//
// Why members are K0s and not entries: a purge must reach the in-proxy
// tier, whose hot entries are unreachable only once their index copy
// changes; deleting K1s would leave every VM's hot copy. Purging a path's
// K0 for a tag is coarser than the tag (every variant of the path goes),
// which only costs refetches. A member's scope lets one tenant's purge
// leave the others' members of the same set, and the server sees neither
// tenants nor keys, only hashes. The races are an invalidation's: a fill
// that writes K0 after the purge with a response fetched before it is the
// one window, bounded by the entry's TTL.
//
// # Stored formats
//
// Entry and Index document their versioned binary layouts. Hit replies
// carry the stored status, header fields (less hop-by-hop fields, fields
// named in Connection, Set-Cookie, the Proxy- fields and the per-response
// ones: age, x-cache, rate-limit fields, retry-after, x-request-id,
// content-length, Envoy's x-envoy-*), the body, x-cache, cache-status and
// age: the initial age plus the seconds since stored-at (§4.2.3, §5.1). The
// entry layout is version 1 as before; what changed is that an entry may be
// stored past its expires-at (its TTL hint adds the stale and revalidation
// windows) and that expires-at may equal stored-at (no-cache, or stale on
// arrival, with a validator). Decoding anything else returns an
// error wrapping ErrCorrupt and is a miss; the next fill overwrites it.
//
// # Stampedes: fill locks
//
// Within one Envoy, concurrent misses of one entry make one upstream
// request. A miss that can fill (GET, not a Refresh) calls
// FillLocks.TryAcquire(FillKey, now, Config.FillWait):
//
//   - Acquired: it goes upstream and fills, and releases the lock when the
//     entry is stored or the fill is abandoned (not cacheable, body too
//     big, upstream failure, stream gone).
//   - Busy: it waits, polling Held on the plugin's tick, then looks up
//     again (UseIndex and Answer on the same Lookup) when the lock is free
//     or its deadline passed; on a miss it goes upstream, without the lock
//     and without waiting again, and fills (Fill sees the new index).
//   - Unavailable (shared data failed or stayed contended through
//     lockCASRetries retries): it goes upstream at once.
//
// Bounds: the lock is one shared-data key updated by compare-and-swap, so
// one request at most acquires it per lock period, which ends at release
// or at its deadline, FillWait after acquisition (the hammer test checks
// that exactly one of many concurrent misses does). Hence at most one upstream request per entry per lock period per
// Envoy, and a waiter waits at most FillWait (plus one tick) before it looks
// up again and, on a miss, goes upstream itself: its latency is bounded by
// FillWait plus its own upstream time.
//
// FillWait defaults to 2 s: a wait ends as soon as the fill lands, so a long
// bound costs only when the fill fails or the upstream is slower than the
// bound, while a short one lets every request to an endpoint slower than it
// go upstream together. 2 s covers the slow tail of typical API responses
// and the 50 ms PUT, and keeps the worst added wait well inside Envoy's 15 s
// route timeout.
//
// The table is fixed: Config.FillLockSlots keys "pc:fill:<n>" of 17 bytes
// (version, key hash, deadline), chosen by a 64-bit hash of the fill key;
// shared data never shrinks, and this never grows (4096 slots: well under
// 1 MiB with Envoy's per-key overhead). Two keys in one slot make the second
// one's misses Busy until the first releases or its deadline passes, at
// most FillWait: a delay, never a wrong answer, since the waiter looks up
// its own key again. With k fills in flight the chance is about k/slots.
//
// # Memory
//
// The in-proxy tier: per VM at most LocalEntries entries of at most
// LocalMaxEntryBytes each (the stored value), LocalBytes in all, each
// charged its value, its decoded header copy and tables and 256 bytes
// (entryCharge); per Envoy LocalIndexSlots shared-data keys, each an index
// copy (10 bytes and the record) or up to 8 tombstones (131 bytes).
//
// A fill's buffer never exceeds the envelope's head plus
// Config.MaxBodyBytes: the body is appended to the envelope's head as it
// streams (bodyBuffer), so the finished entry is never copied, and a body
// that passes the limit releases its memory at once. A hit's reply shares
// the stored value's memory (one copy of its header part).
package cache
