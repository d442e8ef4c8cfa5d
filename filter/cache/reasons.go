package cache

// Why a request or response is not cached (Plan.Reason, Lookup.Fill), and
// why a stored value did not answer (Lookup.Answer): snake_case, a fixed
// list, for metrics and logs.
const (
	// The request: BYPASS.
	ReasonMethod         = "method"           // not GET or HEAD, and safe (OPTIONS, TRACE): nothing to invalidate
	ReasonRouteDisabled  = "route_disabled"   // the route rule has no cache policy
	ReasonRequestNoStore = "request_no_store" // Cache-Control: no-store on the request (RFC 9111 §5.2.1.5)

	// The response: BYPASS.
	ReasonHead                = "head_request"          // a HEAD response has no body to store
	ReasonIndexUnknown        = "index_unknown"         // the index lookup never answered: filling could discard other variants
	ReasonStatus              = "status"                // the status is not in Config.Statuses
	ReasonSetCookie           = "set_cookie"            // the response sets a cookie
	ReasonResponseNoStore     = "response_no_store"     // RFC 9111 §5.2.2.5
	ReasonMustUnderstand      = "must_understand"       // RFC 9111 §5.2.2.3: must-understand with a status the gateway does not implement
	ReasonResponsePrivate     = "response_private"      // RFC 9111 §5.2.2.7: a shared cache must not store it
	ReasonResponseNoCache     = "response_no_cache"     // RFC 9111 §5.2.2.4: reuse needs revalidation, which the gateway does not do
	ReasonVaryStar            = "vary_star"             // RFC 9111 §4.1: Vary "*" never matches
	ReasonVaryInvalid         = "vary_invalid"          // a Vary member that is not a field name
	ReasonVaryTooMany         = "vary_too_many"         // more than MaxVary varied fields for the path
	ReasonAuthorizedNotPublic = "authorized_not_public" // shared entry, request with credentials, no public/s-maxage/must-revalidate (RFC 9111 §3.5)
	ReasonStale               = "stale"                 // no freshness left once its age is taken off
	ReasonBodyTooLarge        = "body_too_large"        // Content-Length over Config.MaxBodyBytes
	ReasonSurrogateKeys       = "surrogate_keys"        // more than MaxSurrogateKeys, or one that is not a key: it could not be purged by them
	ReasonHeaders             = "headers_not_storable"  // more header lines, longer ones, or values the entry format does not hold

	// The stored value: MISS.
	MissRefresh  = "refresh"        // the request said no-cache: it is not answered from the store
	MissNoIndex  = "no_index"       // the index was absent or unreadable
	MissCorrupt  = "entry_corrupt"  // the entry does not decode
	MissMismatch = "entry_mismatch" // the entry is not this request's (key or varied values differ)
	MissExpired  = "entry_expired"  // past its expires-at
	// MissRevalidate: stale or too old, but with a validator: forward the
	// request with Lookup.Conditional's fields (RFC 9111 §4.3.1).
	MissRevalidate = "entry_revalidate"
	MissTooOld     = "entry_too_old" // older than the request's max-age, or fresh for less than its min-fresh
)
