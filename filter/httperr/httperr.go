// Package httperr is the one JSON error envelope every gateway-made response uses.
package httperr

import "github.com/portcullis/portcullis/filter/jsonobj"

// Kind pairs an HTTP status with the envelope's machine-readable "error" code.
type Kind struct {
	Status int
	Code   string
}

var (
	BadRequest           = Kind{400, "bad_request"}
	Unauthorized         = Kind{401, "unauthorized"}
	Forbidden            = Kind{403, "forbidden"}
	NotFound             = Kind{404, "not_found"}
	MethodNotAllowed     = Kind{405, "method_not_allowed"}
	UnsupportedMediaType = Kind{415, "unsupported_media_type"}
	TooManyRequests      = Kind{429, "rate_limit_exceeded"}
	Internal             = Kind{500, "internal_error"}
	BadGateway           = Kind{502, "upstream_error"}
	ServiceUnavailable   = Kind{503, "service_unavailable"}
	GatewayTimeout       = Kind{504, "upstream_error"}
)

// Body renders the envelope every gateway-made error carries:
// {"error":kind.Code,"message":message,"request_id":requestID}. The message
// must never hold secrets or tokens.
func Body(kind Kind, message, requestID string) []byte {
	return envelope(kind, message, requestID, nil, "")
}

// BodyRetryAfter is Body with the seconds a client should wait before
// retrying (the Retry-After header's value) and the rate-limit policy that
// refused the request (omitted when "": no limit is known), for
// TooManyRequests:
// {"error":...,"message":...,"retry_after":N,"policy":...,"request_id":...}.
func BodyRetryAfter(kind Kind, message string, retryAfter int, policy, requestID string) []byte {
	return envelope(kind, message, requestID, &retryAfter, policy)
}

func envelope(kind Kind, message, requestID string, retryAfter *int, policy string) []byte {
	var o jsonobj.Object
	o.String("error", kind.Code).String("message", message)
	if retryAfter != nil {
		o.Int("retry_after", *retryAfter)
	}
	if policy != "" {
		o.String("policy", policy)
	}
	return o.String("request_id", requestID).Bytes()
}

// ContentType is the media type of Body.
const ContentType = "application/json"
