// Package jwttest mints JSON Web Tokens for tests and the dev token command.
//
// It is deliberately independent of filter/jwt (the verifier under test): it
// builds tokens from raw JSON with the standard library only, so it can also
// produce the malformed and hostile tokens a verifier must reject.
package jwttest

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"hash"
	"time"
)

// Claims is a JWT claims set; values are marshalled with encoding/json.
type Claims map[string]any

// Header is a JOSE header; values are marshalled with encoding/json.
type Header map[string]any

var b64 = base64.RawURLEncoding

// Encode base64url-encodes (no padding) the JSON encoding of v.
func Encode(v any) string {
	raw, err := json.Marshal(v)
	if err != nil {
		panic("jwttest: cannot marshal: " + err.Error())
	}
	return b64.EncodeToString(raw)
}

// EncodeRaw base64url-encodes (no padding) raw bytes, which need not be JSON.
func EncodeRaw(raw []byte) string { return b64.EncodeToString(raw) }

// MAC returns the base64url (no padding) HMAC of signingInput with the hash
// that alg names (HS256, HS384, HS512); any other alg uses SHA-256.
func MAC(alg string, secret []byte, signingInput string) string {
	newHash := sha256.New
	switch alg {
	case "HS384":
		newHash = sha512.New384
	case "HS512":
		newHash = sha512.New
	}
	return b64.EncodeToString(sum(newHash, secret, signingInput))
}

func sum(newHash func() hash.Hash, secret []byte, in string) []byte {
	m := hmac.New(newHash, secret)
	m.Write([]byte(in))
	return m.Sum(nil)
}

// Sign returns header.claims.signature, with the signature computed by the
// algorithm the header's "alg" names (HS256 when absent or not a string).
func Sign(secret []byte, header Header, claims Claims) string {
	alg, _ := header["alg"].(string)
	input := Encode(header) + "." + Encode(claims)
	return input + "." + MAC(alg, secret, input)
}

// HS256 signs claims with {"alg":"HS256","typ":"JWT"}.
func HS256(secret []byte, claims Claims) string {
	return Sign(secret, Header{"alg": "HS256", "typ": "JWT"}, claims)
}

// Valid returns claims for subject sub that are valid at now for ttl.
func Valid(sub string, now time.Time, ttl time.Duration) Claims {
	return Claims{"sub": sub, "iat": now.Unix(), "exp": now.Add(ttl).Unix()}
}
