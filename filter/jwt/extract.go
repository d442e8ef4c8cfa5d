package jwt

import "strings"

// BearerToken returns the token of an Authorization header value using the
// Bearer scheme (RFC 6750 §2.1; the scheme name is case-insensitive). ok is
// false when the header is absent or uses another scheme.
func BearerToken(authorization string) (token string, ok bool) {
	const scheme = "bearer"
	value := strings.TrimSpace(authorization)
	if len(value) <= len(scheme) || !strings.EqualFold(value[:len(scheme)], scheme) {
		return "", false
	}
	rest := value[len(scheme):]
	if rest[0] != ' ' && rest[0] != '\t' {
		return "", false
	}
	return strings.TrimLeft(rest, " \t"), true
}
