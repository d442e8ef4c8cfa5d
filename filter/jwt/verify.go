// Package jwt verifies HS256 JSON Web Tokens in pure Go.
//
// It implements exactly the subset a gateway needs and nothing a JOSE library
// would add as attack surface: the algorithm is pinned to HS256 (RFC 8725 §3.1),
// signatures are compared in constant time, only canonical unpadded base64url is
// accepted, "crit" is refused (RFC 7515 §4.1.11, no extension is understood),
// exp/nbf must be JSON numbers (RFC 7519 §2 NumericDate), and duplicate member
// names are refused rather than resolved (RFC 7515 §5.2 allows either).
//
// A Verifier holds reusable HMAC state and is not safe for concurrent use;
// proxy-wasm runs one VM per worker thread, so each VM owns one.
package jwt

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"strings"
	"time"
	"unsafe"

	"github.com/tidwall/gjson"
)

// Key is one HS256 secret, optionally named by a key id ("kid").
type Key struct {
	ID     string
	Secret []byte
}

// Options configures a Verifier. The config package validates the values.
type Options struct {
	Keys          []Key
	Issuer        string   // required "iss" when non-empty
	Audiences     []string // "aud" must contain one of these when non-empty
	Leeway        time.Duration
	RequireExp    bool
	MaxTokenBytes int
	KeyClaim      string // claim that names the caller; must be a non-empty string
}

// Claims gives read access to a verified token's payload.
type Claims struct{ payload string }

// Get returns the claim named name (a top-level member, no path syntax).
func (c Claims) Get(name string) gjson.Result {
	return gjson.Get(c.payload, gjson.Escape(name))
}

// Verified is the outcome of a successful verification.
type Verified struct {
	Subject string // value of Options.KeyClaim
	Claims  Claims
}

type macKey struct {
	id  string
	mac hash.Hash
}

// Verifier checks tokens against fixed options.
type Verifier struct {
	opts  Options
	keys  []macKey
	sig   [sha256.Size]byte // scratch for the decoded signature
	sum   []byte            // scratch for the computed MAC
	input []byte            // scratch for the signing input
}

// NewVerifier returns a Verifier for opts.
func NewVerifier(opts Options) *Verifier {
	v := &Verifier{opts: opts, sum: make([]byte, 0, sha256.Size)}
	for _, k := range opts.Keys {
		v.keys = append(v.keys, macKey{id: k.ID, mac: hmac.New(sha256.New, k.Secret)})
	}
	return v
}

var b64 = base64.RawURLEncoding.Strict()

// Verify checks token at time now and returns the identity it carries.
func (v *Verifier) Verify(token string, now time.Time) (Verified, error) {
	if token == "" {
		return Verified{}, fail(ReasonMissing)
	}
	if len(token) > v.opts.MaxTokenBytes {
		return Verified{}, fail(ReasonTooLarge)
	}
	if !compactAlphabet(token) {
		return Verified{}, fail(ReasonMalformed)
	}
	first := strings.IndexByte(token, '.')
	last := strings.LastIndexByte(token, '.')
	if first <= 0 || last == first {
		return Verified{}, fail(ReasonMalformed)
	}
	signingInput, sigText := token[:last], token[last+1:]
	header, err := decodeObject(token[:first])
	if err != nil {
		return Verified{}, err
	}
	keys, err := v.checkHeader(header)
	if err != nil {
		return Verified{}, err
	}
	payload, err := decodeObject(token[first+1 : last])
	if err != nil {
		return Verified{}, err
	}
	if b64.DecodedLen(len(sigText)) != sha256.Size {
		return Verified{}, fail(ReasonMalformed)
	}
	if n, err := b64.Decode(v.sig[:], []byte(sigText)); err != nil || n != sha256.Size {
		return Verified{}, fail(ReasonMalformed)
	}
	if !v.signedByAny(keys, signingInput) {
		return Verified{}, fail(ReasonBadSignature)
	}
	return v.checkClaims(payload, now)
}

// checkHeader validates the JOSE header and returns the keys worth trying.
func (v *Verifier) checkHeader(header string) ([]macKey, error) {
	if alg := gjson.Get(header, "alg"); alg.Type != gjson.String || alg.Str != "HS256" {
		return nil, fail(ReasonUnsupportedAlg)
	}
	if gjson.Get(header, "crit").Exists() {
		return nil, fail(ReasonUnsupportedCrit)
	}
	kid := gjson.Get(header, "kid")
	if !kid.Exists() {
		return v.keys, nil
	}
	if kid.Type != gjson.String {
		return nil, fail(ReasonMalformed)
	}
	for i := range v.keys {
		if v.keys[i].id != "" && v.keys[i].id == kid.Str {
			return v.keys[i : i+1], nil
		}
	}
	return nil, fail(ReasonUnknownKey)
}

func (v *Verifier) signedByAny(keys []macKey, signingInput string) bool {
	for i := range keys {
		m := keys[i].mac
		m.Reset()
		v.input = append(v.input[:0], signingInput...)
		m.Write(v.input)
		v.sum = m.Sum(v.sum[:0])
		if hmac.Equal(v.sum, v.sig[:]) {
			return true
		}
	}
	return false
}

func (v *Verifier) checkClaims(payload string, now time.Time) (Verified, error) {
	nowSec := float64(now.UnixNano()) / 1e9
	leeway := v.opts.Leeway.Seconds()
	exp := gjson.Get(payload, "exp")
	switch {
	case !exp.Exists():
		if v.opts.RequireExp {
			return Verified{}, fail(ReasonMissingExp)
		}
	case exp.Type != gjson.Number:
		return Verified{}, fail(ReasonMalformed)
	case nowSec >= exp.Num+leeway:
		return Verified{}, fail(ReasonExpired)
	}
	if nbf := gjson.Get(payload, "nbf"); nbf.Exists() {
		if nbf.Type != gjson.Number {
			return Verified{}, fail(ReasonMalformed)
		}
		if nowSec+leeway < nbf.Num {
			return Verified{}, fail(ReasonNotYetValid)
		}
	}
	if iat := gjson.Get(payload, "iat"); iat.Exists() && iat.Type != gjson.Number {
		return Verified{}, fail(ReasonMalformed)
	}
	if v.opts.Issuer != "" {
		if iss := gjson.Get(payload, "iss"); iss.Type != gjson.String || iss.Str != v.opts.Issuer {
			return Verified{}, fail(ReasonWrongIssuer)
		}
	}
	if len(v.opts.Audiences) > 0 && !v.audienceMatches(gjson.Get(payload, "aud")) {
		return Verified{}, fail(ReasonWrongAudience)
	}
	sub := gjson.Get(payload, gjson.Escape(v.opts.KeyClaim))
	if sub.Type != gjson.String || sub.Str == "" {
		return Verified{}, fail(ReasonMissingKeyClaim)
	}
	return Verified{Subject: sub.Str, Claims: Claims{payload: payload}}, nil
}

// audienceMatches accepts "aud" as a string or an array of strings (RFC 7519 §4.1.3).
func (v *Verifier) audienceMatches(aud gjson.Result) bool {
	switch {
	case aud.Type == gjson.String:
		return v.wantsAudience(aud.Str)
	case aud.IsArray():
		// RFC 7519 §4.1.3: an array of strings; any other element refuses the token.
		found, wellFormed := false, true
		aud.ForEach(func(_, el gjson.Result) bool {
			wellFormed = el.Type == gjson.String
			found = found || (wellFormed && v.wantsAudience(el.Str))
			return wellFormed
		})
		return found && wellFormed
	}
	return false
}

func (v *Verifier) wantsAudience(aud string) bool {
	for _, want := range v.opts.Audiences {
		if aud == want {
			return true
		}
	}
	return false
}

// compactAlphabet reports whether token holds only base64url characters and
// dots. Go's base64 decoder skips CR and LF even in strict mode; JWS compact
// serialization allows neither (RFC 7515 §2, §7.1).
func compactAlphabet(token string) bool {
	for i := 0; i < len(token); i++ {
		c := token[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// decodeObject decodes one base64url segment that must hold a JSON object
// without duplicate top-level member names. The result aliases a fresh buffer
// that nothing else holds, so gjson can slice it without copying.
func decodeObject(segment string) (string, error) {
	if segment == "" {
		return "", fail(ReasonMalformed)
	}
	raw := make([]byte, b64.DecodedLen(len(segment)))
	n, err := b64.Decode(raw, []byte(segment))
	if err != nil || n == 0 {
		return "", fail(ReasonMalformed)
	}
	doc := unsafe.String(&raw[0], n)
	if !gjson.Valid(doc) {
		return "", fail(ReasonMalformed)
	}
	obj := gjson.Parse(doc)
	if !obj.IsObject() || hasDuplicateMembers(obj) {
		return "", fail(ReasonMalformed)
	}
	return doc, nil
}

// hasDuplicateMembers reports whether a top-level member name repeats. JOSE
// objects are small, so a quadratic scan over a fixed buffer beats a map.
func hasDuplicateMembers(obj gjson.Result) bool {
	var seen [16]string
	names := seen[:0]
	dup := false
	obj.ForEach(func(key, _ gjson.Result) bool {
		for _, n := range names {
			if n == key.Str {
				dup = true
				return false
			}
		}
		names = append(names, key.Str)
		return true
	})
	return dup
}
