// Package httperr is the one JSON error envelope every gateway-made response uses.
package httperr

import "encoding/json"

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
	UnsupportedMediaType = Kind{415, "unsupported_media_type"}
	Internal             = Kind{500, "internal_error"}
	BadGateway           = Kind{502, "upstream_error"}
	GatewayTimeout       = Kind{504, "upstream_error"}
)

// Envelope is the body of every error the gateway makes.
type Envelope struct {
	Error     string `json:"error"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

// Body renders the envelope for kind; message must never hold secrets or tokens.
func Body(kind Kind, message, requestID string) []byte {
	body, err := json.Marshal(Envelope{Error: kind.Code, Message: message, RequestID: requestID})
	if err != nil { // unreachable: three strings always marshal
		return []byte(`{"error":"internal_error"}`)
	}
	return body
}

// ContentType is the media type of Body.
const ContentType = "application/json"
