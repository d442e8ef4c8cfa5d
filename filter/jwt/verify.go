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
	"math"
	"strings"
	"time"
	"unsafe"

	"github.com/portcullis/portcullis/filter/jsonread"
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
type Claims struct{ payload jsonread.Value }

// Get returns the claim named name (a top-level member, no path syntax).
func (c Claims) Get(name string) jsonread.Value {
	return c.payload.Get(name)
}

// Verified is the outcome of a successful verification.
type Verified struct {
	Subject string // value of Options.KeyClaim
	Claims  Claims
	// The token is valid while notBefore ≤ now < notAfter (Unix seconds,
	// leeway included; ±Inf when it has no nbf / exp), so that a verdict
	// kept for later can be checked again against the clock (ValidAt).
	notBefore, notAfter float64
}

// ValidAt reports whether a token verified earlier is still within its
// validity at now: ReasonNone, ReasonExpired or ReasonNotYetValid, with the
// same leeway as the verification.
func (v *Verified) ValidAt(now time.Time) Reason {
	nowSec := float64(now.UnixNano()) / 1e9
	switch {
	case nowSec >= v.notAfter:
		return ReasonExpired
	case nowSec < v.notBefore:
		return ReasonNotYetValid
	}
	return ReasonNone
}

type macKey struct {
	id  string
	mac hash.Hash
}

// Verifier checks tokens against fixed options.
type Verifier struct {
	opts       Options
	keys       []macKey
	sig        [sha256.Size]byte // scratch for the decoded signature
	sum        []byte            // scratch for the computed MAC
	input      []byte            // scratch for the signing input
	claimNames []string          // claimMembers then Options.KeyClaim
}

// NewVerifier returns a Verifier for opts.
func NewVerifier(opts Options) *Verifier {
	v := &Verifier{
		opts:       opts,
		sum:        make([]byte, 0, sha256.Size),
		claimNames: append(claimMembers[:len(claimMembers):len(claimMembers)], opts.KeyClaim),
	}
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
	first := strings.IndexByte(token, '.')
	last := strings.LastIndexByte(token, '.')
	if first <= 0 || last == first {
		return Verified{}, fail(ReasonMalformed)
	}
	signingInput, sigText := token[:last], token[last+1:]
	var header [len(headerMembers)]jsonread.Value
	if _, err := decodeObject(token[:first], headerMembers[:], header[:]); err != nil {
		return Verified{}, err
	}
	kid, err := v.checkHeader(&header)
	if err != nil {
		return Verified{}, err
	}
	var claims [len(claimMembers) + 1]jsonread.Value
	payload, err := decodeObject(token[first+1:last], v.claimNames, claims[:])
	if err != nil {
		return Verified{}, err
	}
	if b64.DecodedLen(len(sigText)) != sha256.Size {
		return Verified{}, fail(ReasonMalformed)
	}
	// Exactly 43 characters decoding to exactly 32 bytes: nothing skipped (see decodeObject).
	if n, err := b64.Decode(v.sig[:], []byte(sigText)); err != nil || n != sha256.Size {
		return Verified{}, fail(ReasonMalformed)
	}
	if !v.signedByAny(kid, signingInput) {
		return Verified{}, fail(ReasonBadSignature)
	}
	return v.checkClaims(payload, &claims, now)
}

// The members read from each segment, found in one pass over it.
var (
	headerMembers = [...]string{"alg", "crit", "kid"}
	claimMembers  = [...]string{"exp", "nbf", "iat", "iss", "aud"} // then Options.KeyClaim
)

const (
	hdrAlg = iota
	hdrCrit
	hdrKid
)

const (
	clmExp = iota
	clmNbf
	clmIat
	clmIss
	clmAud
	clmKey
)

// checkHeader validates the JOSE header and returns the token's key id ("" when
// it names none).
//
// Key selection follows google/jwt_verify_lib (behind Envoy's jwt_authn): a
// token naming a kid is tried against the keys with that kid and the keys
// configured without one, in order; a token without kid (or with an empty one,
// which names no key) against every key. Only a kid that no key can verify —
// every key has a kid, none equal — is refused as unknown, before any MAC.
func (v *Verifier) checkHeader(header *[len(headerMembers)]jsonread.Value) (string, error) {
	if alg := header[hdrAlg]; alg.Str() != "HS256" {
		return "", fail(ReasonUnsupportedAlg)
	}
	if header[hdrCrit].Exists() {
		return "", fail(ReasonUnsupportedCrit)
	}
	kid := header[hdrKid]
	if !kid.Exists() {
		return "", nil
	}
	if kid.Kind() != jsonread.String {
		return "", fail(ReasonMalformed)
	}
	name := kid.Str()
	for i := range v.keys {
		if v.keys[i].mayVerify(name) {
			return name, nil
		}
	}
	return "", fail(ReasonUnknownKey)
}

// mayVerify reports whether k is a candidate for a token naming kid.
func (k *macKey) mayVerify(kid string) bool {
	return kid == "" || k.id == "" || k.id == kid
}

func (v *Verifier) signedByAny(kid, signingInput string) bool {
	for i := range v.keys {
		if !v.keys[i].mayVerify(kid) {
			continue
		}
		m := v.keys[i].mac
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

func (v *Verifier) checkClaims(payload jsonread.Value, claims *[len(claimMembers) + 1]jsonread.Value, now time.Time) (Verified, error) {
	nowSec := float64(now.UnixNano()) / 1e9
	leeway := v.opts.Leeway.Seconds()
	notBefore, notAfter := math.Inf(-1), math.Inf(1)
	exp := claims[clmExp]
	switch {
	case !exp.Exists():
		if v.opts.RequireExp {
			return Verified{}, fail(ReasonMissingExp)
		}
	case exp.Kind() != jsonread.Number:
		return Verified{}, fail(ReasonMalformed)
	default:
		if notAfter = numericDate(exp) + leeway; nowSec >= notAfter {
			return Verified{}, fail(ReasonExpired)
		}
	}
	if nbf := claims[clmNbf]; nbf.Exists() {
		if nbf.Kind() != jsonread.Number {
			return Verified{}, fail(ReasonMalformed)
		}
		if notBefore = numericDate(nbf) - leeway; nowSec < notBefore {
			return Verified{}, fail(ReasonNotYetValid)
		}
	}
	if iat := claims[clmIat]; iat.Exists() && iat.Kind() != jsonread.Number {
		return Verified{}, fail(ReasonMalformed)
	}
	if v.opts.Issuer != "" {
		if iss := claims[clmIss]; iss.Kind() != jsonread.String || iss.Str() != v.opts.Issuer {
			return Verified{}, fail(ReasonWrongIssuer)
		}
	}
	if len(v.opts.Audiences) > 0 && !v.audienceMatches(claims[clmAud]) {
		return Verified{}, fail(ReasonWrongAudience)
	}
	sub := claims[clmKey].Str()
	if sub == "" {
		return Verified{}, fail(ReasonMissingKeyClaim)
	}
	return Verified{Subject: sub, Claims: Claims{payload: payload}, notBefore: notBefore, notAfter: notAfter}, nil
}

// audienceMatches accepts "aud" as a string or an array of strings (RFC 7519 §4.1.3).
func (v *Verifier) audienceMatches(aud jsonread.Value) bool {
	switch {
	case aud.Kind() == jsonread.String:
		return v.wantsAudience(aud.Str())
	case aud.Kind() == jsonread.Array:
		// RFC 7519 §4.1.3: an array of strings; any other element refuses the token.
		found := false
		for el := range aud.Elements() {
			if el.Kind() != jsonread.String {
				return false
			}
			found = found || v.wantsAudience(el.Str())
		}
		return found
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

// decodeObject decodes one base64url segment that must hold a JSON object
// without duplicate top-level member names, stores the members named in names
// into out (same index; absent members stay Absent), and returns the object.
// Its text aliases a fresh buffer nothing else holds, so values slice it
// without copying.
func decodeObject(segment string, names []string, out []jsonread.Value) (jsonread.Value, error) {
	if segment == "" {
		return jsonread.Value{}, fail(ReasonMalformed)
	}
	raw := make([]byte, b64.DecodedLen(len(segment)))
	n, err := b64.Decode(raw, []byte(segment))
	// Go's decoder skips CR and LF even in strict mode, which JWS compact
	// serialization forbids (RFC 7515 §2, §7.1); a skipped byte shows as a
	// short result.
	if err != nil || n == 0 || n != len(raw) {
		return jsonread.Value{}, fail(ReasonMalformed)
	}
	obj, ok := jsonread.Parse(unsafe.String(&raw[0], n))
	if !ok || obj.Kind() != jsonread.Object || !collectMembers(obj, names, out) {
		return jsonread.Value{}, fail(ReasonMalformed)
	}
	return obj, nil
}
