package jwt_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/portcullis/portcullis/filter/jwt"
	"github.com/portcullis/portcullis/internal/jwttest"
)

// fuzzNow is the clock the fuzz targets inject. It is fixed, unlike testNow,
// because the committed seed corpus holds tokens minted relative to it: they
// mean the same thing on every run, forever.
var fuzzNow = time.Unix(1_800_000_000, 0)

var updateFuzzCorpus = flag.Bool("update-fuzz-corpus", false, "rewrite testdata/fuzz/FuzzVerify from fuzzVerifySeeds")

// FuzzVerify feeds arbitrary token strings to a Verifier configured like
// testOptions. It must never panic, every refusal must be a fixed sentence,
// and it must never accept a token whose signature an independent HMAC-SHA256
// computation does not reproduce under a configured secret (the one kid names).
func FuzzVerify(f *testing.F) {
	for _, s := range fuzzVerifySeeds() {
		f.Add(s.token)
	}
	v := jwt.NewVerifier(testOptions())
	f.Fuzz(func(t *testing.T, token string) {
		got, err := v.Verify(token, fuzzNow)
		if err != nil {
			checkRefusal(t, err)
			return
		}
		checkAccepted(t, token, got)
	})
}

// FuzzVerifySigned fuzzes the header and payload JSON of tokens that are
// correctly signed with secretK1, so that the claim checks, not only the
// signature, are explored. Whatever is accepted must satisfy, read
// independently with encoding/json, every rule of the package.
func FuzzVerifySigned(f *testing.F) {
	for _, s := range fuzzVerifySeeds() {
		h, p, _ := strings.Cut(s.token, ".")
		p, _, _ = strings.Cut(p, ".")
		hb, err1 := base64.RawURLEncoding.DecodeString(h)
		pb, err2 := base64.RawURLEncoding.DecodeString(p)
		if err1 == nil && err2 == nil {
			f.Add(hb, pb)
		}
	}
	f.Add([]byte(`{"alg":"HS256"}`), []byte(`{"sub":"a","exp":1800000000,"iss":"portcullis-test","aud":["x","portcullis-api"]}`))
	f.Add([]byte(`{"alg":"HS256","kid":"k1"}`), []byte(`{"sub":"a","exp":1800000029.5,"nbf":1800000030,"iss":"portcullis-test","aud":"portcullis-admin"}`))
	v := jwt.NewVerifier(testOptions())
	f.Fuzz(func(t *testing.T, header, payload []byte) {
		token := signSegments(secretK1, jwttest.EncodeRaw(header), jwttest.EncodeRaw(payload))
		got, err := v.Verify(token, fuzzNow)
		if err != nil {
			checkRefusal(t, err)
			return
		}
		checkAccepted(t, token, got)
	})
}

func checkRefusal(t *testing.T, err error) {
	t.Helper()
	r := reasonOf(t, err)
	if r == jwt.ReasonNone {
		t.Fatalf("error %v carries ReasonNone", err)
	}
	if msg := err.Error(); msg != "jwt: "+r.Message() {
		t.Fatalf("Error() = %q, not the fixed sentence of %s", msg, r.Metric())
	}
}

func checkAccepted(t *testing.T, token string, got jwt.Verified) {
	t.Helper()
	if err := acceptanceProblem(token, got); err != nil {
		t.Fatalf("accepted %q: %v", token, err)
	}
}

// acceptanceProblem re-derives, without the package under test, whether
// token may be accepted, and returns the first rule it breaks.
func acceptanceProblem(token string, got jwt.Verified) error {
	segs := strings.Split(token, ".")
	if len(segs) != 3 {
		return fmt.Errorf("%d segments", len(segs))
	}
	header, _, err := decodeSegment(segs[0])
	if err != nil {
		return fmt.Errorf("header: %w", err)
	}
	payload, rawPayload, err := decodeSegment(segs[1])
	if err != nil {
		return fmt.Errorf("payload: %w", err)
	}

	if header["alg"] != "HS256" {
		return fmt.Errorf("alg %#v", header["alg"])
	}
	if _, ok := header["crit"]; ok {
		return fmt.Errorf("a crit header")
	}
	secrets := map[string][]byte{"k1": secretK1, "k2": secretK2}
	candidates := [][]byte{secretK1, secretK2}
	if kid, ok := header["kid"]; ok {
		id, _ := kid.(string)
		if secrets[id] == nil {
			return fmt.Errorf("kid %#v names no configured key", kid)
		}
		candidates = [][]byte{secrets[id]}
	}
	input := segs[0] + "." + segs[1]
	signed := false
	for _, secret := range candidates {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(input))
		if base64.RawURLEncoding.EncodeToString(m.Sum(nil)) == segs[2] {
			signed = true
		}
	}
	if !signed {
		return fmt.Errorf("no configured secret produces the signature")
	}

	now := float64(fuzzNow.Unix())
	leeway := testLeeway.Seconds()
	if exp, ok := number(payload, "exp"); !ok || now >= exp+leeway {
		return fmt.Errorf("exp %#v at %v", payload["exp"], now)
	}
	if _, present := payload["nbf"]; present {
		if nbf, ok := number(payload, "nbf"); !ok || now+leeway < nbf {
			return fmt.Errorf("nbf %#v at %v", payload["nbf"], now)
		}
	}
	if _, present := payload["iat"]; present {
		if _, ok := number(payload, "iat"); !ok {
			return fmt.Errorf("iat %#v", payload["iat"])
		}
	}
	if payload["iss"] != testIssuer {
		return fmt.Errorf("iss %#v", payload["iss"])
	}
	if !audienceOK(payload["aud"]) {
		return fmt.Errorf("aud %#v", payload["aud"])
	}
	sub, ok := payload["sub"].(string)
	if !ok || sub == "" || got.Subject == "" {
		return fmt.Errorf("sub %#v", payload["sub"])
	}
	// encoding/json replaces invalid UTF-8 and lone surrogates; compare
	// only where it cannot have.
	if utf8.ValidString(got.Subject) && !bytes.Contains(rawPayload, []byte(`\u`)) && sub != got.Subject {
		return fmt.Errorf("Subject = %q, but the payload's sub is %q", got.Subject, sub)
	}
	return nil
}

// decodeSegment decodes a segment with the standard library, which must find
// canonical unpadded base64url holding exactly one JSON object. Numbers stay
// text so that values beyond float64 are not an error.
func decodeSegment(seg string) (map[string]any, []byte, error) {
	raw, err := base64.RawURLEncoding.Strict().DecodeString(seg)
	if err != nil || strings.ContainsAny(seg, "\r\n=") {
		return nil, nil, fmt.Errorf("not canonical unpadded base64url (%v)", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var out map[string]any
	if err := dec.Decode(&out); err != nil || out == nil {
		return nil, nil, fmt.Errorf("not a JSON object (%v)", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, fmt.Errorf("data after the JSON object")
	}
	return out, raw, nil
}

// number reads a NumericDate; ok is false unless it is a JSON number.
func number(m map[string]any, name string) (float64, bool) {
	n, ok := m[name].(json.Number)
	if !ok {
		return 0, false
	}
	f, _ := strconv.ParseFloat(string(n), 64) // ±Inf when out of range, as JSON means
	return f, true
}

// audienceOK is RFC 7519 §4.1.3 for testOptions: a string naming a
// configured audience, or an array of strings one of which does.
func audienceOK(aud any) bool {
	want := testOptions().Audiences
	switch a := aud.(type) {
	case string:
		return slices.Contains(want, a)
	case []any:
		match := false
		for _, el := range a {
			s, ok := el.(string)
			if !ok {
				return false
			}
			match = match || slices.Contains(want, s)
		}
		return match
	}
	return false
}

type fuzzSeed struct {
	name  string
	token string
	want  jwt.Reason
}

// fuzzVerifySeeds are the committed FuzzVerify corpus (testdata/fuzz/FuzzVerify),
// minted relative to fuzzNow. Rewrite the files after changing them with
//
//	go test ./filter/jwt -run TestFuzzVerifyCorpus -update-fuzz-corpus
func fuzzVerifySeeds() []fuzzSeed {
	now := fuzzNow
	valid := validClaims(now)
	token := hs256(valid)
	h, p, s := strings.Split(token, ".")[0], strings.Split(token, ".")[1], strings.Split(token, ".")[2]
	none := jwttest.Encode(jwttest.Header{"alg": "none"}) + "." + p + "."
	paddedHeader := jwttest.Encode(jwttest.Header{"alg": "HS256", "kid": "k1"}) // 35 characters
	return []fuzzSeed{
		{"valid-no-kid", token, jwt.ReasonNone},
		{"valid-kid-k2", jwttest.Sign(secretK2, jwttest.Header{"alg": "HS256", "kid": "k2"}, with(valid, "email", "a@example.com", "aud", []string{"x", testAudience})), jwt.ReasonNone},
		{"alg-none-unsigned", none, jwt.ReasonUnsupportedAlg},
		{"alg-None-signed", jwttest.Sign(secretK1, jwttest.Header{"alg": "None"}, valid), jwt.ReasonUnsupportedAlg},
		{"alg-HS384-same-secret", jwttest.Sign(secretK1, jwttest.Header{"alg": "HS384"}, valid), jwt.ReasonUnsupportedAlg},
		{"alg-HS512-same-secret", jwttest.Sign(secretK1, jwttest.Header{"alg": "HS512"}, valid), jwt.ReasonUnsupportedAlg},
		{"alg-RS256-key-confusion", jwttest.Sign(secretK1, jwttest.Header{"alg": "RS256"}, valid), jwt.ReasonUnsupportedAlg},
		{"padded-header", signSegments(secretK1, paddedHeader+"=", p), jwt.ReasonMalformed},
		{"padded-signature", token + "=", jwt.ReasonMalformed},
		{"standard-base64-char-in-signature", h + "." + p + "." + s[:42] + "+", jwt.ReasonMalformed},
		{"truncated", token[:len(token)/2], jwt.ReasonMalformed},
		{"two-segments", h + "." + p, jwt.ReasonMalformed},
		{"four-segments", token + "." + s, jwt.ReasonMalformed},
		{"expired", hs256(with(valid, "exp", now.Add(-time.Hour).Unix())), jwt.ReasonExpired},
		{"duplicate-alg", signRaw(`{"alg":"HS256","\u0061lg":"none"}`, `{"sub":"alice"}`), jwt.ReasonMalformed},
		{"crit", jwttest.Sign(secretK1, jwttest.Header{"alg": "HS256", "crit": []string{"b64"}, "b64": false}, valid), jwt.ReasonUnsupportedCrit},
		{"unknown-kid", jwttest.Sign(secretK1, jwttest.Header{"alg": "HS256", "kid": "k9"}, valid), jwt.ReasonUnknownKey},
		{"exp-string", hs256(with(valid, "exp", strconv.FormatInt(now.Add(time.Hour).Unix(), 10))), jwt.ReasonMalformed},
		{"payload-not-json", signRaw(`{"alg":"HS256"}`, `sub=alice`), jwt.ReasonMalformed},
		{"bad-signature", h + "." + p + "." + jwttest.MAC("HS256", secretUnknown, h+"."+p), jwt.ReasonBadSignature},
	}
}

const fuzzCorpusDir = "testdata/fuzz/FuzzVerify"

func corpusFile(token string) []byte {
	return fmt.Appendf(nil, "go test fuzz v1\nstring(%q)\n", token)
}

// TestFuzzVerifyCorpus keeps the committed corpus equal to fuzzVerifySeeds
// and checks that each seed still means what its name says at fuzzNow.
func TestFuzzVerifyCorpus(t *testing.T) {
	v := jwt.NewVerifier(testOptions())
	for _, s := range fuzzVerifySeeds() {
		path := filepath.Join(fuzzCorpusDir, s.name)
		if *updateFuzzCorpus {
			if err := os.MkdirAll(fuzzCorpusDir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, corpusFile(s.token), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		committed, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("seed %s is not committed (run with -update-fuzz-corpus): %v", s.name, err)
			continue
		}
		if !bytes.Equal(committed, corpusFile(s.token)) {
			t.Errorf("committed seed %s differs from fuzzVerifySeeds (run with -update-fuzz-corpus)", s.name)
		}
		_, err = v.Verify(s.token, fuzzNow)
		if r := reasonOf(t, err); r != s.want {
			t.Errorf("seed %s: Verify = %s, want %s", s.name, outcome(r), outcome(s.want))
		}
	}
}

// TestFuzzCheckerCatchesForgery shows the fuzz body's independent checks are
// not vacuous: shown tokens the verifier refuses, they object too.
func TestFuzzCheckerCatchesForgery(t *testing.T) {
	now := fuzzNow
	h, p, _ := parts(t, hs256(validClaims(now)))
	noneHeader := jwttest.Encode(jwttest.Header{"alg": "none"})
	for _, s := range fuzzVerifySeeds() {
		if s.want == jwt.ReasonNone {
			if err := acceptanceProblem(s.token, jwt.Verified{Subject: "alice"}); err != nil {
				t.Errorf("seed %s: the checker objects to a valid token: %v", s.name, err)
			}
		}
	}
	for _, tc := range []struct{ name, token string }{
		{"signature of an unconfigured key", h + "." + p + "." + jwttest.MAC("HS256", secretUnknown, h+"."+p)},
		{"alg none with a valid HMAC", noneHeader + "." + p + "." + jwttest.MAC("HS256", secretK1, noneHeader+"."+p)},
		{"kid naming the other key", jwttest.Sign(secretK1, jwttest.Header{"alg": "HS256", "kid": "k2"}, validClaims(now))},
		{"expired", hs256(with(validClaims(now), "exp", now.Add(-time.Hour).Unix()))},
		{"aud with a number beside a match", hs256(with(validClaims(now), "aud", []any{testAudience, 1}))},
		{"iat a string", hs256(with(validClaims(now), "iat", "now"))},
	} {
		if acceptanceProblem(tc.token, jwt.Verified{Subject: "alice"}) == nil {
			t.Errorf("%s: the checker accepts it", tc.name)
		}
	}
}
