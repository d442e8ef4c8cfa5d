package route

import "strings"

// HasBody reports whether a method's request body is subject to the
// Content-Type allowlist.
func HasBody(method string) bool {
	return method == "POST" || method == "PUT" || method == "PATCH"
}

// MediaTypeAllowed reports whether the media type of a Content-Type header
// value (parameters ignored, case-insensitive per RFC 9110 §8.3.1) is in
// allowed, which holds lower-case media types.
func MediaTypeAllowed(contentType string, allowed []string) bool {
	mediaType, _, _ := strings.Cut(contentType, ";")
	mediaType = strings.TrimSpace(mediaType)
	for _, a := range allowed {
		if strings.EqualFold(mediaType, a) {
			return true
		}
	}
	return false
}
