package gateway

import "github.com/portcullis/portcullis/filter/jwt"

// Reason says why the gateway answered a request itself. It names the
// rejection metric (rejected.<metric>) and the log line's reason; the
// plugin defines one counter per Reason, so no reason can go uncounted.
type Reason uint8

const (
	ReasonBadPath Reason = iota
	ReasonRouteNotFound
	ReasonUnsupportedMediaType
	ReasonHealthForbidden
	ReasonInternalError
	ReasonRateLimited
	ReasonRateLimitUnavailable
	ReasonPurgeMethod
	ReasonPurgeUnauthorized
	ReasonPurgeForbidden
	ReasonPurgeBadRequest
	ReasonPurgeUnavailable
	// reasonJWT is the first of the token refusals, one per jwt.Reason
	// after jwt.ReasonNone, in jwt.Reasons order (see JWTReason).
	reasonJWT
)

var reasonMetrics = func() []string {
	out := []string{
		ReasonBadPath:              "bad_path",
		ReasonRouteNotFound:        "route_not_found",
		ReasonUnsupportedMediaType: "unsupported_media_type",
		ReasonHealthForbidden:      "health_forbidden",
		ReasonInternalError:        "internal_error",
		ReasonRateLimited:          "rate_limited",
		ReasonRateLimitUnavailable: "ratelimit_unavailable",
		ReasonPurgeMethod:          "purge_method",
		ReasonPurgeUnauthorized:    "purge_unauthorized",
		ReasonPurgeForbidden:       "purge_forbidden",
		ReasonPurgeBadRequest:      "purge_bad_request",
		ReasonPurgeUnavailable:     "purge_unavailable",
	}
	for _, r := range jwt.Reasons() {
		out = append(out, "jwt_"+r.Metric())
	}
	return out
}()

// JWTReason is the rejection reason of a refused token (r is not ReasonNone).
func JWTReason(r jwt.Reason) Reason { return reasonJWT + Reason(r-jwt.ReasonMissing) }

// Reasons lists every reason, in order: Reasons()[r] == r.
func Reasons() []Reason {
	out := make([]Reason, len(reasonMetrics))
	for i := range out {
		out[i] = Reason(i)
	}
	return out
}

// Metric is the snake_case name of r in metric names and logs.
func (r Reason) Metric() string {
	if int(r) >= len(reasonMetrics) {
		return "unknown"
	}
	return reasonMetrics[r]
}
