package route

import (
	"strings"

	"github.com/portcullis/portcullis/filter/jsonread"
)

// ClaimHeader copies one verified claim into one upstream request header.
type ClaimHeader struct {
	Claim  string
	Header string // lower case
}

// Identity says which request headers carry the caller's verified identity.
type Identity struct {
	KeyHeader         string // lower case; carries the key claim
	ClaimHeaders      []ClaimHeader
	KeepAuthorization bool
}

// Managed lists every header the gateway sets. Incoming copies of all of them
// are removed from every request, public or not, so none can be spoofed.
func (id Identity) Managed() []string {
	out := make([]string, 0, 1+len(id.ClaimHeaders))
	out = append(out, id.KeyHeader)
	for _, c := range id.ClaimHeaders {
		out = append(out, c.Header)
	}
	return out
}

// maxClaimHeaderBytes bounds one forwarded claim value.
const maxClaimHeaderBytes = 1024

// ClaimHeaderValue renders a claim as a header value: strings as they are,
// numbers and booleans as their JSON text, non-empty arrays of scalars joined
// by ",". ok is false for objects, nulls, empty arrays, oversized values and
// values holding control characters, which are not forwarded.
func ClaimHeaderValue(claim jsonread.Value) (value string, ok bool) {
	switch claim.Kind() {
	case jsonread.String:
		value = claim.Str()
	case jsonread.Number, jsonread.True, jsonread.False:
		value = claim.Raw
	case jsonread.Array:
		var parts []string
		for el := range claim.Elements() {
			v, good := ClaimHeaderValue(el)
			if !good || el.Kind() == jsonread.Array {
				return "", false
			}
			parts = append(parts, v)
		}
		if len(parts) == 0 {
			return "", false
		}
		value = strings.Join(parts, ",")
	default:
		return "", false
	}
	return value, SafeHeaderValue(value)
}

// SafeHeaderValue reports whether v can be sent as a header value unchanged:
// bounded, with no control characters (RFC 9110 §5.5).
func SafeHeaderValue(v string) bool {
	if len(v) > maxClaimHeaderBytes {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
