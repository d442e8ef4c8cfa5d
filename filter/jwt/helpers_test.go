package jwt_test

import (
	"encoding/base64"
	"errors"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/filter/jwt"
	"github.com/portcullis/portcullis/internal/jwttest"
)

// Secrets of the two configured keys ("k1", "k2") and of one key the
// verifier does not know. Each is longer than the 32 bytes HS256 needs.
var (
	secretK1      = []byte("portcullis-test-key-one-0123456789abcdef")
	secretK2      = []byte("portcullis-test-key-two-fedcba9876543210")
	secretUnknown = []byte("portcullis-test-key-nobody-configured-42")
)

const (
	testIssuer    = "portcullis-test"
	testAudience  = "portcullis-api"
	otherAudience = "portcullis-admin"
	testLeeway    = 30 * time.Second
)

// testOptions is the configuration most tests verify against: two named keys,
// issuer and two audiences checked, exp required, the default size limit.
func testOptions() jwt.Options {
	return jwt.Options{
		Keys:          []jwt.Key{{ID: "k1", Secret: secretK1}, {ID: "k2", Secret: secretK2}},
		Issuer:        testIssuer,
		Audiences:     []string{testAudience, otherAudience},
		Leeway:        testLeeway,
		RequireExp:    true,
		MaxTokenBytes: 8192,
		KeyClaim:      "sub",
	}
}

// testNow is the clock every test injects: the real time of the run (so no
// token in these tests can ever go stale), truncated to a whole second so
// that the leeway boundary cases are exact.
func testNow() time.Time { return time.Now().Truncate(time.Second) }

// validClaims is a claims set testOptions accepts at now.
func validClaims(now time.Time) jwttest.Claims {
	c := jwttest.Valid("alice", now, time.Hour)
	c["iss"] = testIssuer
	c["aud"] = testAudience
	return c
}

// with returns a copy of c with the name/value pairs set.
func with(c jwttest.Claims, nameValues ...any) jwttest.Claims {
	out := maps.Clone(c)
	for i := 0; i+1 < len(nameValues); i += 2 {
		out[nameValues[i].(string)] = nameValues[i+1]
	}
	return out
}

// without returns a copy of c without the named claims.
func without(c jwttest.Claims, names ...string) jwttest.Claims {
	out := maps.Clone(c)
	for _, n := range names {
		delete(out, n)
	}
	return out
}

// unix renders t as a fractional NumericDate.
func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func hs256Header() jwttest.Header { return jwttest.Header{"alg": "HS256", "typ": "JWT"} }

// hs256 signs claims with secretK1 and no kid (so every key is tried).
func hs256(claims jwttest.Claims) string { return jwttest.HS256(secretK1, claims) }

// signSegments completes already-encoded header and payload segments with a
// correct HS256 signature over exactly that text, so that whatever the test
// put in the segments is the only thing wrong with the token.
func signSegments(secret []byte, header, payload string) string {
	input := header + "." + payload
	return input + "." + jwttest.MAC("HS256", secret, input)
}

// signRaw builds a correctly HS256-signed token (secretK1) from raw header
// and payload bytes, which need not be JSON at all.
func signRaw(header, payload string) string {
	return signSegments(secretK1, jwttest.EncodeRaw([]byte(header)), jwttest.EncodeRaw([]byte(payload)))
}

// parts splits a compact token into its three segments.
func parts(t testing.TB, token string) (header, payload, signature string) {
	t.Helper()
	p := strings.Split(token, ".")
	if len(p) != 3 {
		t.Fatalf("test bug: %d segments", len(p))
	}
	return p[0], p[1], p[2]
}

// claimsJSON is the JSON text of a claims set (jwttest encodes it the same way).
func claimsJSON(t testing.TB, c jwttest.Claims) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(jwttest.Encode(c))
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// withTrailingBits returns JSON text whose unpadded base64 encoding ends in
// a partial group (so it has trailing bits that can be set): JSON may carry
// insignificant whitespace after its opening brace.
func withTrailingBits(json string) string {
	if len(json)%3 == 0 {
		return json[:1] + " " + json[1:]
	}
	return json
}

const b64url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// nonCanonical sets the unused low bits of the last character of an unpadded
// base64url segment, so a lenient decoder still yields the same bytes.
func nonCanonical(t testing.TB, segment string) string {
	t.Helper()
	var unused int
	switch len(segment) % 4 {
	case 2:
		unused = 4
	case 3:
		unused = 2
	default:
		t.Fatalf("test bug: segment of length %d has no trailing bits", len(segment))
	}
	last := strings.IndexByte(b64url, segment[len(segment)-1])
	if last%(1<<unused) != 0 {
		t.Fatalf("test bug: segment already non-canonical")
	}
	return segment[:len(segment)-1] + string(b64url[last|1])
}

// padded appends the '=' padding a padded encoder would write (at least one).
func padded(t testing.TB, segment string) string {
	t.Helper()
	if len(segment)%4 == 0 {
		t.Fatalf("test bug: segment of length %d takes no padding", len(segment))
	}
	return segment + strings.Repeat("=", 4-len(segment)%4)
}

// toStdBase64 rewrites a base64url segment in the standard alphabet.
func toStdBase64(segment string) string {
	return strings.NewReplacer("-", "+", "_", "/").Replace(segment)
}

func hasURLOnlyChars(segment string) bool { return strings.ContainsAny(segment, "-_") }

// search returns the first of build(0), build(1), ... that satisfies ok; tests
// use it to find a token whose encoding has the property a case needs.
func search(t testing.TB, build func(i int) string, ok func(string) bool) string {
	t.Helper()
	for i := range 10000 {
		if s := build(i); ok(s) {
			return s
		}
	}
	t.Fatal("test bug: search found nothing")
	return ""
}

// filler is a claim value of n bytes.
func filler(n int) string { return strings.Repeat("x", n) }

// reasonOf returns the Reason of a Verify error (ReasonNone for nil).
func reasonOf(t testing.TB, err error) jwt.Reason {
	t.Helper()
	if err == nil {
		return jwt.ReasonNone
	}
	var e *jwt.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %T %q is not a *jwt.Error", err, err)
	}
	return e.Reason
}

// assertErrorHoldsNoToken checks that a refusal's text is the fixed sentence
// of its reason and contains neither the token nor any segment of it.
func assertErrorHoldsNoToken(t testing.TB, err error, token string) {
	t.Helper()
	msg := err.Error()
	if want := "jwt: " + reasonOf(t, err).Message(); msg != want {
		t.Errorf("Error() = %q, want the fixed sentence %q", msg, want)
	}
	if len(token) >= 8 && strings.Contains(msg, token) {
		t.Errorf("Error() %q contains the token", msg)
	}
	for _, seg := range strings.Split(token, ".") {
		if len(seg) >= 8 && strings.Contains(msg, seg) {
			t.Errorf("Error() %q contains token segment %q", msg, seg)
		}
	}
}

func outcome(r jwt.Reason) string {
	if r == jwt.ReasonNone {
		return "accepted"
	}
	return r.Metric()
}

func itoa(i int) string { return strconv.Itoa(i) }
