package jwt_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	golangjwt "github.com/golang-jwt/jwt/v5"

	"github.com/portcullis/portcullis/filter/jwt"
	"github.com/portcullis/portcullis/internal/jwttest"
)

// TestDifferentialGolangJWT verifies generated tokens, valid and mutated,
// with this package and with github.com/golang-jwt/jwt/v5 configured the same
// way, and requires both to agree on accept or reject.
//
// "The same way" for golang-jwt means: WithValidMethods(HS256),
// WithStrictDecoding (canonical base64url, as ours), WithIssuer, WithAudience,
// WithExpirationRequired, WithLeeway, WithTimeFunc; a Keyfunc that returns the
// key a "kid" names (an error for any other kid) or, without kid or with an
// empty one, both keys in order; and, after golang-jwt accepts, the key claim
// check it has no option for: "sub" must be a non-empty string.
//
// The generators leave out what the two verifiers decide differently by
// design (ours is the stricter reading of the RFCs in every case):
//
//   - Duplicate member names: ours refuses the token (RFC 7515 §5.2 allows
//     either); encoding/json keeps the last value.
//   - A "kid" that is not a string: ours refuses it as malformed; golang-jwt
//     hands the header to the Keyfunc and never looks at kid itself.
//   - "crit": ours refuses any (RFC 7515 §4.1.11, no extension is
//     understood); golang-jwt ignores the parameter.
//   - A non-numeric "iat": ours refuses it (RFC 7519 §2 NumericDate);
//     golang-jwt reads iat only under WithIssuedAt.
//   - Fractional exp/nbf: golang-jwt truncates NumericDates to whole seconds
//     (TimePrecision); ours compares the exact value.
//   - exp or nbf equal to 0: golang-jwt treats 0 as absent; ours as 1970.
//   - Numbers beyond float64 (1e999): golang-jwt cannot decode the claims
//     set; ours reads +Inf.
//   - CR or LF inside the signature segment: golang-jwt's base64 decoding
//     skips line breaks, so the signature still verifies; ours refuses a
//     signature segment that is not exactly 43 base64url characters.
//
// An aud array holding a non-string beside a matching audience is NOT in
// this list: golang-jwt refuses it and so must we (RFC 7519 §4.1.3), so the
// "aud-mixed-types" generator stays in.
func TestDifferentialGolangJWT(t *testing.T) {
	const tokens = 3000
	now := testNow()
	r := rand.New(rand.NewPCG(0x706f7274, 0x63756c6c)) // fixed seed: the same tokens every run
	configs := []diffConfig{
		{issuer: testIssuer, audiences: []string{testAudience, otherAudience}, requireExp: true, leeway: 30 * time.Second},
		{requireExp: false, leeway: 0},
		{issuer: testIssuer, requireExp: true, leeway: 300 * time.Second},
		{audiences: []string{testAudience}, requireExp: false, leeway: 5 * time.Second},
	}
	type tally struct{ both, neither int }
	byGen := map[string]*tally{}
	var mismatches []string
	mismatchesByGen := map[string]int{}
	accepted := 0
	for range tokens {
		gen, token := generateToken(r, now)
		if byGen[gen] == nil {
			byGen[gen] = &tally{}
		}
		for i, c := range configs {
			_, err := c.ours().Verify(token, now)
			theirs := c.theirs(now, token)
			ours := err == nil
			switch {
			case ours != (theirs == nil):
				mismatchesByGen[gen]++
				mismatches = append(mismatches, fmt.Sprintf("generator %s, config %d: ours %s, golang-jwt %v\n\ttoken %s",
					gen, i, outcome(reasonOf(t, err)), orAccepted(theirs), token))
			case ours:
				byGen[gen].both++
				if i == 0 {
					accepted++
				}
			default:
				byGen[gen].neither++
			}
		}
	}
	for _, m := range mismatches[:min(len(mismatches), 10)] {
		t.Error(m)
	}
	if len(mismatches) > 0 {
		t.Fatalf("%d disagreements over %d tokens × %d configs, by generator: %v", len(mismatches), tokens, len(configs), mismatchesByGen)
	}
	// The comparison means something only if both outcomes are common.
	if accepted < tokens/10 || accepted > tokens*9/10 {
		t.Fatalf("config 0 accepted %d of %d tokens; the generators are unbalanced", accepted, tokens)
	}
	for _, gen := range slices.Sorted(func(yield func(string) bool) {
		for g := range byGen {
			if !yield(g) {
				return
			}
		}
	}) {
		t.Logf("%-22s both accept %5d, both refuse %5d", gen, byGen[gen].both, byGen[gen].neither)
	}
}

func orAccepted(err error) string {
	if err == nil {
		return "accepted"
	}
	return err.Error()
}

type diffConfig struct {
	issuer     string
	audiences  []string
	requireExp bool
	leeway     time.Duration
}

func (c diffConfig) ours() *jwt.Verifier {
	return jwt.NewVerifier(jwt.Options{
		Keys:          []jwt.Key{{ID: "k1", Secret: secretK1}, {ID: "k2", Secret: secretK2}},
		Issuer:        c.issuer,
		Audiences:     c.audiences,
		Leeway:        c.leeway,
		RequireExp:    c.requireExp,
		MaxTokenBytes: 8192,
		KeyClaim:      "sub",
	})
}

// theirs verifies token with golang-jwt configured like ours; nil is accepted.
func (c diffConfig) theirs(now time.Time, token string) error {
	opts := []golangjwt.ParserOption{
		golangjwt.WithValidMethods([]string{"HS256"}),
		golangjwt.WithStrictDecoding(),
		golangjwt.WithLeeway(c.leeway),
		golangjwt.WithTimeFunc(func() time.Time { return now }),
	}
	if c.issuer != "" {
		opts = append(opts, golangjwt.WithIssuer(c.issuer))
	}
	if len(c.audiences) > 0 {
		opts = append(opts, golangjwt.WithAudience(c.audiences...))
	}
	if c.requireExp {
		opts = append(opts, golangjwt.WithExpirationRequired())
	}
	claims := golangjwt.MapClaims{}
	_, err := golangjwt.NewParser(opts...).ParseWithClaims(token, claims, func(tok *golangjwt.Token) (any, error) {
		// An empty kid names no key, as an absent one (google/jwt_verify_lib).
		kid, ok := tok.Header["kid"]
		if !ok || kid == "" {
			return golangjwt.VerificationKeySet{Keys: []golangjwt.VerificationKey{secretK1, secretK2}}, nil
		}
		switch kid {
		case "k1":
			return secretK1, nil
		case "k2":
			return secretK2, nil
		}
		return nil, errors.New("unknown kid")
	})
	if err != nil {
		return err
	}
	if sub, ok := claims["sub"].(string); !ok || sub == "" {
		return errors.New("no key claim")
	}
	return nil
}

// pick returns a random element of xs.
func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

// offsets around every leeway the configs use (0, 5, 30, 300 s), in seconds.
var boundaryOffsets = []int64{-301, -300, -299, -31, -30, -29, -6, -5, -4, -1, 0, 1, 4, 5, 6, 29, 30, 31, 299, 300, 301}

// randomClaims is a claims set that testOptions would accept, with none,
// one or two of its registered claims then replaced at random by a variant
// that is absent, of the wrong type, or just inside or outside a boundary
// (integer seconds relative to now).
func randomClaims(r *rand.Rand, now time.Time) jwttest.Claims {
	at := func(offset int64) int64 { return now.Unix() + offset }
	c := jwttest.Claims{
		"sub": fmt.Sprintf("user-%d", r.IntN(1000)),
		"exp": at(1 + r.Int64N(1_000_000)),
		"iss": testIssuer,
		"aud": pick[any](r, testAudience, otherAudience, []string{"x", testAudience}),
	}
	if r.IntN(2) == 0 {
		c["iat"] = at(-r.Int64N(100))
	}
	if r.IntN(4) == 0 {
		c["nbf"] = at(-r.Int64N(1_000_000))
	}
	for i := range r.IntN(4) {
		c[fmt.Sprintf("x%d", i)] = pick[any](r, "v", 1.5, true, nil, []string{"a"}, map[string]int{"n": 1})
	}
	perturbations := pick(r, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2)
	for range perturbations {
		switch pick(r, "sub", "exp", "exp", "nbf", "nbf", "iss", "aud") {
		case "sub":
			c["sub"] = pick[any](r, "", 42, nil, []string{"a"})
			if r.IntN(3) == 0 {
				delete(c, "sub")
			}
		case "exp":
			switch r.IntN(5) {
			case 0:
				delete(c, "exp")
			case 1:
				c["exp"] = at(-1 - r.Int64N(1_000_000))
			case 2:
				c["exp"] = fmt.Sprint(at(3600)) // a string
			default:
				c["exp"] = at(pick(r, boundaryOffsets...))
			}
		case "nbf":
			switch r.IntN(4) {
			case 0:
				c["nbf"] = at(302 + r.Int64N(1_000_000))
			case 1:
				c["nbf"] = "yesterday"
			default:
				c["nbf"] = at(pick(r, boundaryOffsets...))
			}
		case "iss":
			c["iss"] = pick[any](r, "someone-else", 7, "", nil)
			if r.IntN(3) == 0 {
				delete(c, "iss")
			}
		case "aud":
			c["aud"] = pick[any](r, "someone-else", []string{"x", "y"}, []string{}, "", 42, nil)
			if r.IntN(3) == 0 {
				delete(c, "aud")
			}
		}
	}
	return c
}

// generateToken returns a generator name and a token: a valid-signature
// token over random claims, usually mutated.
func generateToken(r *rand.Rand, now time.Time) (string, string) {
	claims := randomClaims(r, now)
	secret, kid := secretK1, "k1"
	if r.IntN(2) == 0 {
		secret, kid = secretK2, "k2"
	}
	header := jwttest.Header{"alg": "HS256"}
	if r.IntN(2) == 0 {
		header["typ"] = "JWT"
	}
	if r.IntN(3) == 0 {
		header["kid"] = kid
	}
	token := jwttest.Sign(secret, header, claims)
	h, p, s := splitToken(token)

	switch gen := pick(r,
		"valid", "valid", "valid", "valid", "valid", "valid", "valid", "valid",
		"valid", "valid", "valid", "valid", "valid", "valid", "valid", "valid",
		"flip-header", "flip-payload", "flip-signature",
		"swap-alg", "resign-other-alg", "remove-segment", "padding",
		"wrong-secret", "kid-mismatch", "kid-unknown", "std-base64", "truncate",
		"extra-segment", "insert-char", "non-canonical", "alg-missing",
		"payload-not-object", "aud-mixed-types",
	); gen {
	case "valid":
		return gen, token
	case "flip-header":
		return gen, flipChar(r, h) + "." + p + "." + s
	case "flip-payload":
		return gen, h + "." + flipChar(r, p) + "." + s
	case "flip-signature":
		return gen, h + "." + p + "." + flipChar(r, s)
	case "swap-alg":
		header["alg"] = pick(r, "HS384", "HS512", "none", "None", "RS256", "ES256", "PS256", "hs256", "")
		hs := jwttest.Encode(header)
		return gen, signSegments(secret, hs, p) // an HS256 MAC under another alg
	case "resign-other-alg":
		header["alg"] = pick(r, "HS384", "HS512")
		return gen, jwttest.Sign(secret, header, claims)
	case "remove-segment":
		return gen, pick(r, p+"."+s, h+"."+s, h+"."+p, h+"."+p+".", "."+p+"."+s, h+".."+s, h, p, s)
	case "padding":
		switch r.IntN(3) {
		case 0:
			return gen, signSegments(secret, h+"=", p)
		case 1:
			return gen, signSegments(secret, h, p+"==")
		}
		return gen, token + "="
	case "wrong-secret":
		return gen, jwttest.Sign(secretUnknown, header, claims)
	case "kid-mismatch":
		header["kid"] = map[string]string{"k1": "k2", "k2": "k1"}[kid]
		return gen, jwttest.Sign(secret, header, claims)
	case "kid-unknown":
		header["kid"] = pick(r, "k9", "K1", "")
		return gen, jwttest.Sign(secret, header, claims)
	case "std-base64":
		switch r.IntN(3) {
		case 0:
			return gen, signSegments(secret, toStdBase64(h), p)
		case 1:
			return gen, signSegments(secret, h, toStdBase64(p))
		}
		return gen, h + "." + p + "." + toStdBase64(s)
	case "truncate":
		return gen, token[:r.IntN(len(token))]
	case "extra-segment":
		return gen, pick(r, token+"."+s, token+".", h+"."+token)
	case "insert-char":
		at := r.IntN(len(token) + 1)
		return gen, token[:at] + pick(r, " ", ".", "=", "+", "/", "\t", "%", "\x00") + token[at:]
	case "non-canonical":
		last := strings.IndexByte(b64url, s[len(s)-1])
		return gen, h + "." + p + "." + s[:len(s)-1] + string(b64url[last|(1+r.IntN(3))])
	case "alg-missing":
		delete(header, "alg")
		return gen, signSegments(secret, jwttest.Encode(header), p)
	case "payload-not-object":
		raw := pick(r, `[]`, `"sub"`, `42`, `null`, `not json`, `{"sub":"a"`)
		return gen, signSegments(secret, h, jwttest.EncodeRaw([]byte(raw)))
	case "aud-mixed-types":
		claims["aud"] = pick[any](r, []any{testAudience, 1}, []any{nil, otherAudience}, []any{true}, []any{[]string{testAudience}})
		return gen, jwttest.Sign(secret, header, claims)
	default:
		panic("unknown generator " + gen)
	}
}

func splitToken(token string) (h, p, s string) {
	segs := strings.SplitN(token, ".", 3)
	return segs[0], segs[1], segs[2]
}

// flipChar replaces one character of a base64url segment with another one.
func flipChar(r *rand.Rand, seg string) string {
	i := r.IntN(len(seg))
	c := b64url[r.IntN(len(b64url))]
	for c == seg[i] {
		c = b64url[r.IntN(len(b64url))]
	}
	return seg[:i] + string(c) + seg[i+1:]
}
