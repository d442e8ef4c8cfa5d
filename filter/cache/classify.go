package cache

import "strings"

// Request is what the gateway knows of a request when it decides about the
// cache: after the route rule matched and the caller was identified.
type Request struct {
	Method    string
	Scheme    string // :scheme, which says which port is the default one
	Authority string // :authority
	Path      string // :path, query included
	// Tenant is the verified API key; "" for an anonymous caller.
	Tenant string
	// Headers are the request's header lines as they are forwarded upstream
	// (the gateway's own identity headers set, and Authorization removed
	// unless it is kept): what the upstream's response can vary on. A Lookup
	// keeps reading them until the fill is decided; they must not change.
	Headers [][2]string
}

// Action is what the plugin does about the cache for one request.
type Action uint8

const (
	// ActionBypass: the request is not answered from the cache nor stored
	// (Plan.Reason says why): forward it and mark the response BYPASS.
	ActionBypass Action = iota
	// ActionLookup: look the request up with Plan.Lookup, forward it on a miss.
	ActionLookup
	// ActionInvalidate: an unsafe method. Forward it; when the upstream's
	// status is not an error (Invalidates), delete Plan.Invalidate from the
	// store, and mark the response BYPASS.
	ActionInvalidate
)

// Plan is the decision for a request.
type Plan struct {
	Action     Action
	Reason     string   // ActionBypass
	Lookup     *Lookup  // ActionLookup
	Invalidate []string // ActionInvalidate: the index keys to delete
}

// The X-Cache field the gateway sets on every response it decided about.
const (
	HeaderXCache      = "x-cache"
	XCacheHit         = "HIT"         // answered from the store, by the gateway
	XCacheMiss        = "MISS"        // looked up, not found: forwarded (and stored when it can be)
	XCacheBypass      = "BYPASS"      // the request or the response is not cacheable
	XCacheRevalidated = "REVALIDATED" // a stale entry the upstream confirmed (304): answered from the store
	XCacheStale       = "STALE"       // a stale entry served (stale-while-revalidate, stale-if-error, RFC 5861)
)

// hitHeaderCount is the number of header lines a hit adds (x-cache, age,
// cache-status).
const hitHeaderCount = 3

// Classify decides what the cache does for req on a rule with policy p (nil
// when the rule does not cache). It is pure and cheap: two SHA-256 at most.
func (c *Config) Classify(p *RoutePolicy, req *Request) Plan {
	switch req.Method {
	case "GET", "HEAD":
	case "OPTIONS", "TRACE": // safe (RFC 9110 §9.2.1), but not cached here
		return Plan{Action: ActionBypass, Reason: ReasonMethod}
	default: // unsafe, or of unknown safety: RFC 9111 §4.4
		return Plan{Action: ActionInvalidate, Invalidate: invalidationKeys(req)}
	}
	if p == nil {
		return Plan{Action: ActionBypass, Reason: ReasonRouteDisabled}
	}
	value, hasCC := fieldValue(req.Headers, "cache-control")
	cc := ParseCacheControl(value)
	if cc.NoStore {
		return Plan{Action: ActionBypass, Reason: ReasonRequestNoStore}
	}
	// Pragma: no-cache counts only without Cache-Control (RFC 9111 §5.4).
	pragma, _ := fieldValue(req.Headers, "pragma")
	refresh := cc.NoCache || !hasCC && listContains(pragma, "no-cache")
	host := canonicalHost(req.Scheme, req.Authority)
	path, query := splitTarget(req.Path)
	_, authorization := fieldValue(req.Headers, "authorization")
	l := &Lookup{
		Refresh:     refresh,
		cfg:         c,
		policy:      p,
		head:        req.Method == "HEAD",
		shared:      p.Public || req.Tenant == "",
		credentials: req.Tenant != "" || authorization,
		query:       CanonicalQuery(query),
		host:        host,
		path:        path,
		tenant:      req.Tenant,
		headers:     req.Headers,
		maxAge:      cc.MaxAge,
		minFresh:    cc.MinFresh,
		maxStale:    cc.MaxStale,
	}
	l.k0 = indexDigest(host, path, req.Tenant, l.shared)
	l.IndexKey = hexKey(l.k0)
	return Plan{Action: ActionLookup, Lookup: l}
}

// invalidationKeys are the index keys an unsafe request to req's path makes
// stale: the shared one and, for a known caller, the caller's own (the rule
// that caches the path's GETs may be another than this request's, public or
// not).
func invalidationKeys(req *Request) []string {
	host := canonicalHost(req.Scheme, req.Authority)
	path, _ := splitTarget(req.Path)
	keys := []string{hexKey(indexDigest(host, path, "", true))}
	if req.Tenant != "" {
		keys = append(keys, hexKey(indexDigest(host, path, req.Tenant, false)))
	}
	return keys
}

// RelatedInvalidations are the index keys an unsafe request's successful
// response also makes stale (RFC 9111 §4.4): those of the paths its
// Location and Content-Location (uris) name on the request's own host, for
// the caller and shared. Another host's are left alone (§4.4: that would let
// one origin evict another's entries), as are references the gateway does
// not resolve (dot segments).
func RelatedInvalidations(req *Request, uris ...string) []string {
	host := canonicalHost(req.Scheme, req.Authority)
	var keys []string
	for _, uri := range uris {
		path, ok := sameHostPath(req, host, strings.Trim(uri, " \t"))
		if !ok {
			continue
		}
		related := *req
		related.Path = path
		keys = append(keys, invalidationKeys(&related)...)
	}
	return keys
}

// sameHostPath resolves a URI reference against req: an absolute URI on
// host, an absolute path, or a relative path (against req's directory).
func sameHostPath(req *Request, host, uri string) (string, bool) {
	if i := strings.IndexAny(uri, "?#"); i >= 0 {
		uri = uri[:i]
	}
	switch {
	case uri == "" || strings.Contains(uri, "/.") || strings.HasPrefix(uri, "."):
		return "", false
	case strings.HasPrefix(uri, "//"):
		return "", false // a network-path reference: another authority
	case strings.HasPrefix(uri, "/"):
		return uri, true
	}
	if scheme, rest, ok := strings.Cut(uri, "://"); ok {
		authority, path, _ := strings.Cut(rest, "/")
		if !isToken(scheme) || canonicalHost(strings.ToLower(scheme), authority) != host {
			return "", false
		}
		return "/" + path, true
	}
	if strings.Contains(uri, ":") {
		return "", false // another scheme (mailto:, urn:)
	}
	dir, _ := splitTarget(req.Path)
	return dir[:strings.LastIndexByte(dir, '/')+1] + uri, true
}

// Invalidates reports whether an unsafe request's response with status
// invalidates the stored GETs of its path: a non-error status (RFC 9111 §4.4).
func Invalidates(status int) bool { return 200 <= status && status < 400 }
