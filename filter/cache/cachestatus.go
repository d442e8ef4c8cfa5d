package cache

// Cache-Status (RFC 9211): the gateway names itself "Portcullis" and says
// what it did, next to X-Cache. A response from the store says hit and the
// freshness left (ttl, negative once stale, §2.5); a forwarded one says why
// (fwd, §2.2) and whether it was stored (§2.7).
const (
	HeaderCacheStatus = "cache-status"

	cacheStatusHit         = "Portcullis; hit; ttl="
	cacheStatusRevalidated = "Portcullis; fwd=stale; fwd-status=304; ttl="
	// An upstream error answered from a stale entry (RFC 5861 §4).
	cacheStatusStaleIfError = "Portcullis; hit; fwd=stale; fwd-status=5xx; ttl="
)

// Why a request was forwarded (RFC 9211 §2.2).
const (
	fwdBypass   = "bypass"   // the rule does not cache
	fwdMethod   = "method"   // a method never answered from the store (unsafe ones invalidate)
	fwdRequest  = "request"  // the request said no-store or no-cache
	fwdURIMiss  = "uri-miss" // nothing stored for the URI
	fwdVaryMiss = "vary-miss"
	fwdMiss     = "miss"  // a stored response, but not usable (another key's, corrupt)
	fwdStale    = "stale" // a stored response, stale or too old for the request
)

// CacheStatus is the Cache-Status of a looked-up request that went
// upstream; stored when its response is being stored.
func (l *Lookup) CacheStatus(stored bool) string {
	fwd := l.fwd
	switch {
	case l.Refresh:
		fwd = fwdRequest
	case fwd != "":
	case l.index != indexPresent:
		fwd = fwdURIMiss
	case len(l.idx.Vary) > 0: // the path has responses, none for these varied values
		fwd = fwdVaryMiss
	default:
		fwd = fwdMiss
	}
	s := "Portcullis; fwd=" + fwd
	if stored {
		s += "; stored"
	}
	return s
}

// CacheStatus is the Cache-Status of a request the plan forwarded without
// a lookup.
func (p *Plan) CacheStatus() string {
	switch {
	case p.Action == ActionInvalidate, p.Reason == ReasonMethod:
		return "Portcullis; fwd=" + fwdMethod
	case p.Reason == ReasonRequestNoStore:
		return "Portcullis; fwd=" + fwdRequest
	}
	return "Portcullis; fwd=" + fwdBypass
}
