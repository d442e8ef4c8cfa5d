package jwt_test

import (
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/filter/jsonread"
	"github.com/portcullis/portcullis/filter/jwt"
	"github.com/portcullis/portcullis/internal/jwttest"
)

// verifyCase is one row of the verification tables: a token minted at test
// time relative to the injected now, optional changes to testOptions, and the
// exact outcome (ReasonNone: accepted, with Subject sub or "alice").
type verifyCase struct {
	name  string
	token func(t *testing.T, now time.Time) string
	opts  func(o *jwt.Options)
	want  jwt.Reason
	sub   string
}

func runVerifyCases(t *testing.T, cases []verifyCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			now := testNow()
			opts := testOptions()
			if tc.opts != nil {
				tc.opts(&opts)
			}
			token := tc.token(t, now)
			got, err := jwt.NewVerifier(opts).Verify(token, now)
			if r := reasonOf(t, err); r != tc.want {
				t.Fatalf("Verify = %s, want %s", outcome(r), outcome(tc.want))
			}
			if tc.want != jwt.ReasonNone {
				assertErrorHoldsNoToken(t, err, token)
				if got.Subject != "" || got.Claims.Get("sub").Exists() {
					t.Errorf("a refusal returned identity %q", got.Subject)
				}
				return
			}
			wantSub := tc.sub
			if wantSub == "" {
				wantSub = "alice"
			}
			if got.Subject != wantSub {
				t.Errorf("Subject = %q, want %q", got.Subject, wantSub)
			}
		})
	}
}

// claimsToken is a case token: claims built from validClaims, signed by secretK1.
func claimsToken(edit func(c jwttest.Claims) jwttest.Claims) func(*testing.T, time.Time) string {
	return func(_ *testing.T, now time.Time) string { return hs256(edit(validClaims(now))) }
}

// headerToken signs validClaims with secretK1 under header.
func headerToken(h jwttest.Header) func(*testing.T, time.Time) string {
	return func(_ *testing.T, now time.Time) string { return jwttest.Sign(secretK1, h, validClaims(now)) }
}

// rawToken builds a correctly signed token from raw header and payload text.
func rawToken(header string, payload func(t *testing.T, now time.Time) string) func(*testing.T, time.Time) string {
	return func(t *testing.T, now time.Time) string { return signRaw(header, payload(t, now)) }
}

func validPayload(t *testing.T, now time.Time) string { return claimsJSON(t, validClaims(now)) }

// constPayload is raw payload text that does not depend on now.
func constPayload(s string) func(*testing.T, time.Time) string {
	return func(*testing.T, time.Time) string { return s }
}

func constToken(s string) func(*testing.T, time.Time) string {
	return func(*testing.T, time.Time) string { return s }
}

func TestVerifyValidToken(t *testing.T) {
	now := testNow()
	claims := with(validClaims(now),
		"email", "alice@example.com",
		"plan", "pro",
		"roles", []string{"reader", "writer"},
		"a.b", "top-level member with a dot",
		"a", map[string]any{"b": "nested"},
	)
	token := hs256(claims)
	got, err := jwt.NewVerifier(testOptions()).Verify(token, now)
	if err != nil {
		t.Fatalf("Verify refused a valid token: %v", err)
	}
	if got.Subject != "alice" {
		t.Errorf("Subject = %q, want alice", got.Subject)
	}
	for _, tc := range []struct{ claim, want string }{
		{"sub", "alice"},
		{"email", "alice@example.com"},
		{"plan", "pro"},
		{"iss", testIssuer},
		{"roles", `["reader","writer"]`},
		{"a.b", "top-level member with a dot"}, // a name, not a path
		{"exp", itoa(int(now.Add(time.Hour).Unix()))},
	} {
		r := got.Claims.Get(tc.claim)
		if !r.Exists() {
			t.Errorf("Claims.Get(%q) does not exist", tc.claim)
			continue
		}
		s := r.Raw // numbers and arrays as their JSON text
		if r.Kind() == jsonread.String {
			s = r.Str()
		}
		if s != tc.want {
			t.Errorf("Claims.Get(%q) = %q, want %q", tc.claim, s, tc.want)
		}
	}
	for _, absent := range []string{"missing", "a.c", "*", "roles.0", "#"} {
		if r := got.Claims.Get(absent); r.Exists() {
			t.Errorf("Claims.Get(%q) = %q, want no such claim", absent, r.Raw)
		}
	}
}

func TestVerifyMissingAndSize(t *testing.T) {
	bigToken := func(_ *testing.T, now time.Time) string {
		return hs256(with(validClaims(now), "pad", filler(8192)))
	}
	runVerifyCases(t, []verifyCase{
		{name: "empty token is missing", token: constToken(""), want: jwt.ReasonMissing},
		{name: "valid claims but over MaxTokenBytes", token: bigToken, want: jwt.ReasonTooLarge},
		{name: "1 MiB of dots", token: constToken(strings.Repeat(".", 1<<20)), want: jwt.ReasonTooLarge},
		{name: "1 MiB of base64", token: constToken(strings.Repeat("eyJh", 1<<18)), want: jwt.ReasonTooLarge},
		{name: "limit raised above the token", token: bigToken, opts: func(o *jwt.Options) { o.MaxTokenBytes = 64 * 1024 }},
	})
}

func TestVerifyMaxTokenBytesBoundary(t *testing.T) {
	now := testNow()
	token := hs256(validClaims(now))
	for _, tc := range []struct {
		name  string
		limit int
		want  jwt.Reason
	}{
		{"limit equals token length", len(token), jwt.ReasonNone},
		{"limit one byte short", len(token) - 1, jwt.ReasonTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOptions()
			opts.MaxTokenBytes = tc.limit
			_, err := jwt.NewVerifier(opts).Verify(token, now)
			if r := reasonOf(t, err); r != tc.want {
				t.Fatalf("Verify = %s, want %s", outcome(r), outcome(tc.want))
			}
		})
	}
}

// TestVerifyBearerHeader runs Authorization header values through
// BearerToken and Verify the way the plugin does: no Bearer token is "missing".
func TestVerifyBearerHeader(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header func(token string) string
		want   jwt.Reason
	}{
		{"Bearer", func(tok string) string { return "Bearer " + tok }, jwt.ReasonNone},
		{"lower-case bearer", func(tok string) string { return "bearer " + tok }, jwt.ReasonNone},
		{"upper-case BEARER", func(tok string) string { return "BEARER " + tok }, jwt.ReasonNone},
		{"mixed-case bEaReR", func(tok string) string { return "bEaReR " + tok }, jwt.ReasonNone},
		{"tab after scheme", func(tok string) string { return "Bearer\t" + tok }, jwt.ReasonNone},
		{"several spaces and tabs", func(tok string) string { return "Bearer  \t  " + tok }, jwt.ReasonNone},
		{"surrounding whitespace", func(tok string) string { return "  Bearer " + tok + " \t" }, jwt.ReasonNone},
		{"Basic scheme", func(tok string) string { return "Basic " + tok }, jwt.ReasonMissing},
		{"Token scheme", func(tok string) string { return "Token " + tok }, jwt.ReasonMissing},
		{"no scheme", func(tok string) string { return tok }, jwt.ReasonMissing},
		{"scheme glued to token", func(tok string) string { return "Bearer" + tok }, jwt.ReasonMissing},
		{"empty header", func(string) string { return "" }, jwt.ReasonMissing},
		{"Bearer alone", func(string) string { return "Bearer" }, jwt.ReasonMissing},
		{"Bearer and spaces", func(string) string { return "Bearer   \t " }, jwt.ReasonMissing},
		{"two tokens", func(tok string) string { return "Bearer " + tok + " " + tok }, jwt.ReasonMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := testNow()
			token := hs256(validClaims(now))
			got := jwt.ReasonMissing
			var err error
			if tok, ok := jwt.BearerToken(tc.header(token)); ok {
				_, err = jwt.NewVerifier(testOptions()).Verify(tok, now)
				got = reasonOf(t, err)
			}
			if got != tc.want {
				t.Fatalf("outcome = %s, want %s", outcome(got), outcome(tc.want))
			}
			if err != nil {
				assertErrorHoldsNoToken(t, err, token)
			}
		})
	}
}

func TestVerifyAlgorithm(t *testing.T) {
	var cases []verifyCase
	for _, none := range []string{"none", "None", "NONE", "nOnE"} {
		h := jwttest.Header{"alg": none, "typ": "JWT"}
		unsigned := func(_ *testing.T, now time.Time) string {
			return jwttest.Encode(h) + "." + jwttest.Encode(validClaims(now)) + "."
		}
		cases = append(cases,
			verifyCase{name: "alg " + none + " with empty signature", token: unsigned, want: jwt.ReasonUnsupportedAlg},
			verifyCase{name: "alg " + none + " without signature segment", token: func(t *testing.T, now time.Time) string {
				return strings.TrimSuffix(unsigned(t, now), ".")
			}, want: jwt.ReasonMalformed},
			verifyCase{name: "alg " + none + " with an HS256 signature", token: headerToken(h), want: jwt.ReasonUnsupportedAlg},
		)
	}
	cases = append(cases, []verifyCase{
		{name: "HS256 is accepted", token: headerToken(hs256Header())},
		{name: "HS256 without typ", token: headerToken(jwttest.Header{"alg": "HS256"})},
		{name: "HS256 with another typ", token: headerToken(jwttest.Header{"alg": "HS256", "typ": "at+jwt"})},
		{name: "HS384 signed with the same secret", token: headerToken(jwttest.Header{"alg": "HS384"}), want: jwt.ReasonUnsupportedAlg},
		{name: "HS512 signed with the same secret", token: headerToken(jwttest.Header{"alg": "HS512"}), want: jwt.ReasonUnsupportedAlg},
		{name: "HS384 header over a valid HS256 signature", token: func(_ *testing.T, now time.Time) string {
			input := jwttest.Encode(jwttest.Header{"alg": "HS384"}) + "." + jwttest.Encode(validClaims(now))
			return input + "." + jwttest.MAC("HS256", secretK1, input)
		}, want: jwt.ReasonUnsupportedAlg},
		// Key confusion: jwttest signs any non-HS alg with HMAC-SHA256 and the secret.
		{name: "RS256 header with HMAC-SHA256 signature", token: headerToken(jwttest.Header{"alg": "RS256"}), want: jwt.ReasonUnsupportedAlg},
		{name: "ES256 header with HMAC-SHA256 signature", token: headerToken(jwttest.Header{"alg": "ES256"}), want: jwt.ReasonUnsupportedAlg},
		{name: "PS256 header with HMAC-SHA256 signature", token: headerToken(jwttest.Header{"alg": "PS256"}), want: jwt.ReasonUnsupportedAlg},
		{name: "EdDSA header with HMAC-SHA256 signature", token: headerToken(jwttest.Header{"alg": "EdDSA"}), want: jwt.ReasonUnsupportedAlg},
		{name: "alg missing", token: headerToken(jwttest.Header{"typ": "JWT"}), want: jwt.ReasonUnsupportedAlg},
		{name: "alg lower case hs256", token: headerToken(jwttest.Header{"alg": "hs256"}), want: jwt.ReasonUnsupportedAlg},
		{name: "alg Hs256", token: headerToken(jwttest.Header{"alg": "Hs256"}), want: jwt.ReasonUnsupportedAlg},
		{name: "alg with trailing space", token: headerToken(jwttest.Header{"alg": "HS256 "}), want: jwt.ReasonUnsupportedAlg},
		{name: "alg with trailing NUL", token: headerToken(jwttest.Header{"alg": "HS256\x00"}), want: jwt.ReasonUnsupportedAlg},
		{name: "alg empty string", token: headerToken(jwttest.Header{"alg": ""}), want: jwt.ReasonUnsupportedAlg},
		{name: "alg a number", token: headerToken(jwttest.Header{"alg": 256}), want: jwt.ReasonUnsupportedAlg},
		{name: "alg an array", token: headerToken(jwttest.Header{"alg": []string{"HS256"}}), want: jwt.ReasonUnsupportedAlg},
		{name: "alg an object", token: headerToken(jwttest.Header{"alg": map[string]string{"name": "HS256"}}), want: jwt.ReasonUnsupportedAlg},
		{name: "alg null", token: headerToken(jwttest.Header{"alg": nil}), want: jwt.ReasonUnsupportedAlg},
		{name: "alg true", token: headerToken(jwttest.Header{"alg": true}), want: jwt.ReasonUnsupportedAlg},
		{name: "alg escaped in JSON still reads HS256", token: rawToken(`{"\u0061lg":"HS\u0032\u0035\u0036"}`, validPayload)},
	}...)
	runVerifyCases(t, cases)
}

func TestVerifySegments(t *testing.T) {
	valid := func(_ *testing.T, now time.Time) string { return hs256(validClaims(now)) }
	edit := func(f func(h, p, s string) string) func(*testing.T, time.Time) string {
		return func(t *testing.T, now time.Time) string { return f(parts(t, valid(t, now))) }
	}
	runVerifyCases(t, []verifyCase{
		{name: "one segment", token: edit(func(h, _, _ string) string { return h }), want: jwt.ReasonMalformed},
		{name: "one short segment", token: constToken("abc"), want: jwt.ReasonMalformed},
		{name: "two segments", token: edit(func(h, p, _ string) string { return h + "." + p }), want: jwt.ReasonMalformed},
		{name: "four segments", token: edit(func(h, p, s string) string { return h + "." + p + "." + s + "." + s }), want: jwt.ReasonMalformed},
		{name: "four segments, extra one in the middle", token: edit(func(h, p, s string) string { return h + "." + p + "." + p + "." + s }), want: jwt.ReasonMalformed},
		{name: "five segments", token: edit(func(h, p, s string) string { return h + "." + p + "." + s + "." + h + "." + p }), want: jwt.ReasonMalformed},
		{name: "trailing dot after the signature", token: edit(func(h, p, s string) string { return h + "." + p + "." + s + "." }), want: jwt.ReasonMalformed},
		{name: "leading dot", token: edit(func(h, p, s string) string { return "." + h + "." + p + "." + s }), want: jwt.ReasonMalformed},
		{name: "empty header", token: edit(func(_, p, s string) string { return "." + p + "." + s }), want: jwt.ReasonMalformed},
		{name: "empty payload", token: edit(func(h, _, s string) string { return h + ".." + s }), want: jwt.ReasonMalformed},
		{name: "empty payload, correctly signed", token: edit(func(h, _, _ string) string {
			return h + ".." + jwttest.MAC("HS256", secretK1, h+".")
		}), want: jwt.ReasonMalformed},
		{name: "empty signature", token: edit(func(h, p, _ string) string { return h + "." + p + "." }), want: jwt.ReasonMalformed},
		{name: "only dots", token: constToken(".."), want: jwt.ReasonMalformed},
		{name: "three dots", token: constToken("..."), want: jwt.ReasonMalformed},
		{name: "one dot", token: constToken("."), want: jwt.ReasonMalformed},
		{name: "three garbage segments", token: constToken("a.b.c"), want: jwt.ReasonMalformed},
	})
}

func TestVerifyEncoding(t *testing.T) {
	hs := func() string { return jwttest.EncodeRaw([]byte(withTrailingBits(`{"alg":"HS256","typ":"JWT"}`))) }
	ps := func(t *testing.T, now time.Time) string {
		return jwttest.EncodeRaw([]byte(withTrailingBits(claimsJSON(t, validClaims(now)))))
	}
	// A header, and claims, whose base64url text holds '-' or '_'.
	urlHeader := func(t *testing.T) string {
		return search(t, func(i int) string {
			return jwttest.Encode(jwttest.Header{"alg": "HS256", "x": strings.Repeat("?", i%5) + itoa(i)})
		}, hasURLOnlyChars)
	}
	urlPayload := func(t *testing.T, now time.Time) string {
		return search(t, func(i int) string {
			return jwttest.Encode(with(validClaims(now), "x", strings.Repeat("?", i%5)+itoa(i)))
		}, hasURLOnlyChars)
	}
	sigWithURLChars := func(t *testing.T, now time.Time) string {
		return search(t, func(i int) string {
			return hs256(with(validClaims(now), "n", i))
		}, func(tok string) bool { _, _, s := parts(t, tok); return hasURLOnlyChars(s) })
	}
	insert := func(s string, at int, what string) string { return s[:at] + what + s[at:] }
	runVerifyCases(t, []verifyCase{
		{name: "canonical segments with trailing bits are accepted", token: func(t *testing.T, now time.Time) string {
			return signSegments(secretK1, hs(), ps(t, now))
		}},
		{name: "padding on the header", token: func(t *testing.T, now time.Time) string {
			return signSegments(secretK1, padded(t, hs()), ps(t, now))
		}, want: jwt.ReasonMalformed},
		{name: "padding on the payload", token: func(t *testing.T, now time.Time) string {
			return signSegments(secretK1, hs(), padded(t, ps(t, now)))
		}, want: jwt.ReasonMalformed},
		{name: "padding on the signature", token: func(t *testing.T, now time.Time) string {
			tok := signSegments(secretK1, hs(), ps(t, now))
			_, _, s := parts(t, tok)
			return tok + strings.Repeat("=", 4-len(s)%4)
		}, want: jwt.ReasonMalformed},
		{name: "padding on every segment", token: func(t *testing.T, now time.Time) string {
			h, p := padded(t, hs()), padded(t, ps(t, now))
			tok := signSegments(secretK1, h, p)
			_, _, s := parts(t, tok)
			return tok + strings.Repeat("=", 4-len(s)%4)
		}, want: jwt.ReasonMalformed},
		{name: "standard base64 in the header", token: func(t *testing.T, now time.Time) string {
			return signSegments(secretK1, toStdBase64(urlHeader(t)), jwttest.Encode(validClaims(now)))
		}, want: jwt.ReasonMalformed},
		{name: "standard base64 in the payload", token: func(t *testing.T, now time.Time) string {
			return signSegments(secretK1, jwttest.Encode(hs256Header()), toStdBase64(urlPayload(t, now)))
		}, want: jwt.ReasonMalformed},
		{name: "standard base64 in the signature", token: func(t *testing.T, now time.Time) string {
			h, p, s := parts(t, sigWithURLChars(t, now))
			return h + "." + p + "." + toStdBase64(s)
		}, want: jwt.ReasonMalformed},
		{name: "non-canonical header (trailing bits set)", token: func(t *testing.T, now time.Time) string {
			return signSegments(secretK1, nonCanonical(t, hs()), ps(t, now))
		}, want: jwt.ReasonMalformed},
		{name: "non-canonical payload (trailing bits set)", token: func(t *testing.T, now time.Time) string {
			return signSegments(secretK1, hs(), nonCanonical(t, ps(t, now)))
		}, want: jwt.ReasonMalformed},
		{name: "non-canonical signature (trailing bits set)", token: func(t *testing.T, now time.Time) string {
			h, p, s := parts(t, hs256(validClaims(now)))
			return h + "." + p + "." + nonCanonical(t, s)
		}, want: jwt.ReasonMalformed},
		{name: "space inside the header", token: func(t *testing.T, now time.Time) string {
			return signSegments(secretK1, insert(hs(), 4, " "), ps(t, now))
		}, want: jwt.ReasonMalformed},
		// RFC 7515 §2: base64url "without the inclusion of any line breaks".
		// encoding/base64 skips CR and LF even in Strict mode.
		{name: "line feed inside the header", token: func(t *testing.T, now time.Time) string {
			return signSegments(secretK1, insert(hs(), 4, "\n"), ps(t, now))
		}, want: jwt.ReasonMalformed},
		{name: "CR LF inside the payload", token: func(t *testing.T, now time.Time) string {
			return signSegments(secretK1, hs(), insert(ps(t, now), 8, "\r\n"))
		}, want: jwt.ReasonMalformed},
		{name: "line feed inside the signature", token: func(t *testing.T, now time.Time) string {
			h, p, s := parts(t, hs256(validClaims(now)))
			return h + "." + p + "." + insert(s, 10, "\n")
		}, want: jwt.ReasonMalformed},
		{name: "NUL byte inside the header", token: func(t *testing.T, now time.Time) string {
			return signSegments(secretK1, insert(hs(), 4, "\x00"), ps(t, now))
		}, want: jwt.ReasonMalformed},
		{name: "non-ASCII inside the payload", token: func(t *testing.T, now time.Time) string {
			return signSegments(secretK1, hs(), insert(ps(t, now), 4, "é"))
		}, want: jwt.ReasonMalformed},
		{name: "illegal character in the signature", token: func(t *testing.T, now time.Time) string {
			h, p, s := parts(t, hs256(validClaims(now)))
			return h + "." + p + "." + s[:20] + "*" + s[21:]
		}, want: jwt.ReasonMalformed},
	})
}

func TestVerifyJSON(t *testing.T) {
	hdr := `{"alg":"HS256","typ":"JWT"}`
	many := func(_ *testing.T, now time.Time) string {
		var b strings.Builder
		b.WriteString(`{"sub":"alice","exp":` + itoa(int(now.Add(time.Hour).Unix())) + `,"iss":"` + testIssuer + `","aud":"` + testAudience + `"`)
		for i := range 20 {
			b.WriteString(`,"m` + itoa(i) + `":` + itoa(i))
		}
		b.WriteString(`,"m3":"again"}`)
		return b.String()
	}
	payloadWith := func(extra string) func(*testing.T, time.Time) string {
		return func(t *testing.T, now time.Time) string {
			p := validPayload(t, now)
			return p[:len(p)-1] + "," + extra + "}"
		}
	}
	runVerifyCases(t, []verifyCase{
		{name: "insignificant whitespace is fine", token: func(t *testing.T, now time.Time) string {
			return signRaw(" {\n\t\"alg\" : \"HS256\" } ", " "+validPayload(t, now)+"\n")
		}},
		{name: "header not JSON", token: rawToken("not json", validPayload), want: jwt.ReasonMalformed},
		{name: "payload not JSON", token: rawToken(hdr, constPayload("not json")), want: jwt.ReasonMalformed},
		{name: "header truncated JSON", token: rawToken(`{"alg":"HS256"`, validPayload), want: jwt.ReasonMalformed},
		{name: "payload truncated JSON", token: rawToken(hdr, func(t *testing.T, now time.Time) string {
			p := validPayload(t, now)
			return p[:len(p)-1]
		}), want: jwt.ReasonMalformed},
		{name: "payload with trailing garbage", token: rawToken(hdr, func(t *testing.T, now time.Time) string {
			return validPayload(t, now) + "x"
		}), want: jwt.ReasonMalformed},
		{name: "payload of two objects", token: rawToken(hdr, func(t *testing.T, now time.Time) string {
			return validPayload(t, now) + "{}"
		}), want: jwt.ReasonMalformed},
		{name: "header with byte order mark", token: rawToken("\ufeff"+hdr, validPayload), want: jwt.ReasonMalformed},
		{name: "header is a JSON array", token: rawToken(`["alg","HS256"]`, validPayload), want: jwt.ReasonMalformed},
		{name: "header is a JSON string", token: rawToken(`"HS256"`, validPayload), want: jwt.ReasonMalformed},
		{name: "header is a JSON number", token: rawToken(`256`, validPayload), want: jwt.ReasonMalformed},
		{name: "header is null", token: rawToken(`null`, validPayload), want: jwt.ReasonMalformed},
		{name: "payload is a JSON array", token: rawToken(hdr, func(t *testing.T, now time.Time) string {
			return "[" + validPayload(t, now) + "]"
		}), want: jwt.ReasonMalformed},
		{name: "payload is a JSON string", token: rawToken(hdr, constPayload(`"alice"`)), want: jwt.ReasonMalformed},
		{name: "payload is true", token: rawToken(hdr, constPayload(`true`)), want: jwt.ReasonMalformed},
		{name: "payload is an empty object", token: rawToken(hdr, constPayload(`{}`)), want: jwt.ReasonMissingExp},
		{name: "raw control character in a payload string", token: rawToken(hdr, payloadWith("\"note\":\"a\x01b\"")), want: jwt.ReasonMalformed},
		{name: "header duplicate alg", token: rawToken(`{"alg":"HS256","alg":"HS256"}`, validPayload), want: jwt.ReasonMalformed},
		{name: "header duplicate alg none then HS256", token: rawToken(`{"alg":"none","alg":"HS256"}`, validPayload), want: jwt.ReasonMalformed},
		{name: "header duplicate alg HS256 then none", token: rawToken(`{"alg":"HS256","alg":"none"}`, validPayload), want: jwt.ReasonMalformed},
		{name: "header duplicate alg, escaped name", token: rawToken(`{"alg":"HS256","\u0061lg":"none"}`, validPayload), want: jwt.ReasonMalformed},
		{name: "header duplicate kid", token: rawToken(`{"alg":"HS256","kid":"k1","kid":"k2"}`, validPayload), want: jwt.ReasonMalformed},
		{name: "payload duplicate sub", token: rawToken(hdr, payloadWith(`"sub":"admin"`)), want: jwt.ReasonMalformed},
		{name: "payload duplicate sub, escaped name", token: rawToken(hdr, payloadWith(`"\u0073ub":"admin"`)), want: jwt.ReasonMalformed},
		{name: "payload duplicate exp", token: rawToken(hdr, payloadWith(`"exp":9999999999`)), want: jwt.ReasonMalformed},
		{name: "payload duplicate after more than 16 members", token: rawToken(hdr, many), want: jwt.ReasonMalformed},
	})
}

func TestVerifyTimeClaims(t *testing.T) {
	at := func(name string, offset time.Duration) func(*testing.T, time.Time) string {
		return func(_ *testing.T, now time.Time) string {
			return hs256(with(validClaims(now), name, now.Add(offset).Unix()))
		}
	}
	atFraction := func(name string, offset time.Duration) func(*testing.T, time.Time) string {
		return func(_ *testing.T, now time.Time) string {
			return hs256(with(validClaims(now), name, unix(now.Add(offset))))
		}
	}
	set := func(name string, value any) func(*testing.T, time.Time) string {
		return claimsToken(func(c jwttest.Claims) jwttest.Claims { return with(c, name, value) })
	}
	noExp := claimsToken(func(c jwttest.Claims) jwttest.Claims { return without(c, "exp") })
	noLeeway := func(o *jwt.Options) { o.Leeway = 0 }
	runVerifyCases(t, []verifyCase{
		{name: "exp in an hour", token: at("exp", time.Hour)},
		{name: "exp as a string", token: func(_ *testing.T, now time.Time) string {
			return hs256(with(validClaims(now), "exp", itoa(int(now.Add(time.Hour).Unix()))))
		}, want: jwt.ReasonMalformed},
		{name: "exp as an RFC 3339 string", token: func(_ *testing.T, now time.Time) string {
			return hs256(with(validClaims(now), "exp", now.Add(time.Hour).Format(time.RFC3339)))
		}, want: jwt.ReasonMalformed},
		{name: "exp null", token: set("exp", nil), want: jwt.ReasonMalformed},
		{name: "exp true", token: set("exp", true), want: jwt.ReasonMalformed},
		{name: "exp an array", token: set("exp", []int{1}), want: jwt.ReasonMalformed},
		{name: "exp missing, required", token: noExp, want: jwt.ReasonMissingExp},
		{name: "exp missing, not required", token: noExp, opts: func(o *jwt.Options) { o.RequireExp = false }},
		{name: "exp past beyond leeway", token: at("exp", -testLeeway-time.Second), want: jwt.ReasonExpired},
		{name: "exp exactly leeway ago", token: at("exp", -testLeeway), want: jwt.ReasonExpired},
		{name: "exp past within leeway", token: at("exp", -testLeeway+time.Second)},
		{name: "exp now, within leeway", token: at("exp", 0)},
		{name: "exp now, no leeway", token: at("exp", 0), opts: noLeeway, want: jwt.ReasonExpired},
		{name: "exp in a second, no leeway", token: at("exp", time.Second), opts: noLeeway},
		{name: "exp an hour ago, max leeway", token: at("exp", -time.Hour), opts: func(o *jwt.Options) { o.Leeway = 300 * time.Second }, want: jwt.ReasonExpired},
		{name: "exp at the epoch", token: set("exp", 0), want: jwt.ReasonExpired},
		{name: "exp negative", token: set("exp", -1), want: jwt.ReasonExpired},
		{name: "fractional exp half a second ahead, no leeway", token: atFraction("exp", 500*time.Millisecond), opts: noLeeway},
		{name: "fractional exp half a second ago, no leeway", token: atFraction("exp", -500*time.Millisecond), opts: noLeeway, want: jwt.ReasonExpired},
		{name: "fractional exp in an hour", token: atFraction("exp", time.Hour+250*time.Millisecond)},
		{name: "nbf in the past", token: at("nbf", -time.Hour)},
		{name: "nbf now", token: at("nbf", 0)},
		{name: "nbf future within leeway", token: at("nbf", testLeeway-time.Second)},
		{name: "nbf exactly leeway ahead", token: at("nbf", testLeeway)},
		{name: "nbf future beyond leeway", token: at("nbf", testLeeway+time.Second), want: jwt.ReasonNotYetValid},
		{name: "nbf in a second, no leeway", token: at("nbf", time.Second), opts: noLeeway, want: jwt.ReasonNotYetValid},
		{name: "fractional nbf half a second ahead, no leeway", token: atFraction("nbf", 500*time.Millisecond), opts: noLeeway, want: jwt.ReasonNotYetValid},
		{name: "fractional nbf half a second ago, no leeway", token: atFraction("nbf", -500*time.Millisecond), opts: noLeeway},
		{name: "nbf as a string", token: func(_ *testing.T, now time.Time) string {
			return hs256(with(validClaims(now), "nbf", itoa(int(now.Unix()))))
		}, want: jwt.ReasonMalformed},
		{name: "iat as a string", token: func(_ *testing.T, now time.Time) string {
			return hs256(with(validClaims(now), "iat", itoa(int(now.Unix()))))
		}, want: jwt.ReasonMalformed},
		{name: "iat null", token: set("iat", nil), want: jwt.ReasonMalformed},
		{name: "iat missing", token: claimsToken(func(c jwttest.Claims) jwttest.Claims { return without(c, "iat") })},
		{name: "iat in the future is only type-checked", token: at("iat", time.Hour)},
	})
}

func TestVerifyIssuerAndAudience(t *testing.T) {
	set := func(name string, value any) func(*testing.T, time.Time) string {
		return claimsToken(func(c jwttest.Claims) jwttest.Claims { return with(c, name, value) })
	}
	drop := func(name string) func(*testing.T, time.Time) string {
		return claimsToken(func(c jwttest.Claims) jwttest.Claims { return without(c, name) })
	}
	noIssuer := func(o *jwt.Options) { o.Issuer = "" }
	noAudiences := func(o *jwt.Options) { o.Audiences = nil }
	runVerifyCases(t, []verifyCase{
		{name: "iss correct", token: set("iss", testIssuer)},
		{name: "iss wrong", token: set("iss", "someone-else"), want: jwt.ReasonWrongIssuer},
		{name: "iss differs in case", token: set("iss", strings.ToUpper(testIssuer)), want: jwt.ReasonWrongIssuer},
		{name: "iss with a trailing space", token: set("iss", testIssuer+" "), want: jwt.ReasonWrongIssuer},
		{name: "iss missing", token: drop("iss"), want: jwt.ReasonWrongIssuer},
		{name: "iss empty", token: set("iss", ""), want: jwt.ReasonWrongIssuer},
		{name: "iss a number", token: set("iss", 7), want: jwt.ReasonWrongIssuer},
		{name: "iss an array holding the issuer", token: set("iss", []string{testIssuer}), want: jwt.ReasonWrongIssuer},
		{name: "iss wrong but not configured", token: set("iss", "someone-else"), opts: noIssuer},
		{name: "iss missing and not configured", token: drop("iss"), opts: noIssuer},
		{name: "aud string, first audience", token: set("aud", testAudience)},
		{name: "aud string, second audience", token: set("aud", otherAudience)},
		{name: "aud array with a match", token: set("aud", []string{testAudience})},
		{name: "aud array with a later match", token: set("aud", []string{"x", "y", otherAudience})},
		{name: "aud array without a match", token: set("aud", []string{"x", "y"}), want: jwt.ReasonWrongAudience},
		{name: "aud string without a match", token: set("aud", "x"), want: jwt.ReasonWrongAudience},
		{name: "aud differs in case", token: set("aud", strings.ToUpper(testAudience)), want: jwt.ReasonWrongAudience},
		{name: "aud missing", token: drop("aud"), want: jwt.ReasonWrongAudience},
		{name: "aud empty string", token: set("aud", ""), want: jwt.ReasonWrongAudience},
		{name: "aud empty array", token: set("aud", []string{}), want: jwt.ReasonWrongAudience},
		{name: "aud null", token: set("aud", nil), want: jwt.ReasonWrongAudience},
		{name: "aud a number", token: set("aud", 1), want: jwt.ReasonWrongAudience},
		{name: "aud an object", token: set("aud", map[string]string{"aud": testAudience}), want: jwt.ReasonWrongAudience},
		{name: "aud nested array", token: set("aud", [][]string{{testAudience}}), want: jwt.ReasonWrongAudience},
		{name: "aud array of non-strings", token: set("aud", []any{1, true, nil}), want: jwt.ReasonWrongAudience},
		// RFC 7519 §4.1.3: aud is a string or an array of strings; an array
		// holding anything else is not a valid aud, even beside a match.
		{name: "aud array with a match and then a number", token: set("aud", []any{testAudience, 7}), want: jwt.ReasonWrongAudience},
		{name: "aud array with a number and then a match", token: set("aud", []any{7, testAudience}), want: jwt.ReasonWrongAudience},
		{name: "aud anything when not configured", token: set("aud", 1), opts: noAudiences},
		{name: "aud missing when not configured", token: drop("aud"), opts: noAudiences},
	})
}

func TestVerifyCrit(t *testing.T) {
	crit := func(value any) func(*testing.T, time.Time) string {
		return headerToken(jwttest.Header{"alg": "HS256", "crit": value})
	}
	runVerifyCases(t, []verifyCase{
		{name: "crit naming a registered claim", token: crit([]string{"exp"}), want: jwt.ReasonUnsupportedCrit},
		{name: "crit naming an extension", token: headerToken(jwttest.Header{"alg": "HS256", "crit": []string{"b64"}, "b64": false}), want: jwt.ReasonUnsupportedCrit},
		{name: "crit empty array", token: crit([]string{}), want: jwt.ReasonUnsupportedCrit},
		{name: "crit a string", token: crit("exp"), want: jwt.ReasonUnsupportedCrit},
		{name: "crit null", token: crit(nil), want: jwt.ReasonUnsupportedCrit},
		{name: "crit false", token: crit(false), want: jwt.ReasonUnsupportedCrit},
		{name: "crit escaped in JSON", token: rawToken(`{"alg":"HS256","\u0063rit":["x"]}`, validPayload), want: jwt.ReasonUnsupportedCrit},
		{name: "crit in the payload is just a claim", token: claimsToken(func(c jwttest.Claims) jwttest.Claims { return with(c, "crit", []string{"exp"}) })},
	})
}

func TestVerifyKeys(t *testing.T) {
	signed := func(secret []byte, h jwttest.Header) func(*testing.T, time.Time) string {
		return func(_ *testing.T, now time.Time) string { return jwttest.Sign(secret, h, validClaims(now)) }
	}
	kid := func(id any) jwttest.Header { return jwttest.Header{"alg": "HS256", "kid": id} }
	unnamedKeys := func(o *jwt.Options) { o.Keys = []jwt.Key{{Secret: secretK1}, {Secret: secretK2}} }
	oneUnnamedKey := func(o *jwt.Options) { o.Keys = []jwt.Key{{Secret: secretK1}} }
	oneNamedKey := func(o *jwt.Options) { o.Keys = []jwt.Key{{ID: "k1", Secret: secretK1}} }
	namedThenUnnamed := func(o *jwt.Options) { o.Keys = []jwt.Key{{ID: "k1", Secret: secretK1}, {Secret: secretK2}} }
	runVerifyCases(t, []verifyCase{
		{name: "kid k1 signed by k1", token: signed(secretK1, kid("k1"))},
		{name: "kid k2 signed by k2", token: signed(secretK2, kid("k2"))},
		{name: "kid k2 selects only k2", token: signed(secretK1, kid("k2")), want: jwt.ReasonBadSignature},
		{name: "kid k1 selects only k1", token: signed(secretK2, kid("k1")), want: jwt.ReasonBadSignature},
		{name: "kid unknown", token: signed(secretK1, kid("k9")), want: jwt.ReasonUnknownKey},
		{name: "kid differs in case", token: signed(secretK1, kid("K1")), want: jwt.ReasonUnknownKey},
		{name: "kid empty string names no key: every key is tried", token: signed(secretK2, kid(""))},
		{name: "kid a number", token: signed(secretK1, kid(1)), want: jwt.ReasonMalformed},
		{name: "kid null", token: signed(secretK1, kid(nil)), want: jwt.ReasonMalformed},
		{name: "kid an array", token: signed(secretK1, kid([]string{"k1"})), want: jwt.ReasonMalformed},
		{name: "no kid, signed by the first key", token: signed(secretK1, hs256Header())},
		{name: "no kid, signed by the second key", token: signed(secretK2, hs256Header())},
		{name: "no kid, signed by an unconfigured key", token: signed(secretUnknown, hs256Header()), want: jwt.ReasonBadSignature},
		{name: "kid known, signed by an unconfigured key", token: signed(secretUnknown, kid("k1")), want: jwt.ReasonBadSignature},
		{name: "unnamed keys, no kid, second key", token: signed(secretK2, hs256Header()), opts: unnamedKeys},
		// A key configured without kid verifies a token whatever its kid
		// (google/jwt_verify_lib): the common single-secret set-up with an
		// issuer that names its key.
		{name: "unnamed keys, any kid, first key", token: signed(secretK1, kid("issuer-key-7")), opts: unnamedKeys},
		{name: "unnamed keys, any kid, second key", token: signed(secretK2, kid("k1")), opts: unnamedKeys},
		{name: "unnamed keys, empty kid", token: signed(secretK1, kid("")), opts: unnamedKeys},
		{name: "unnamed keys, any kid, unconfigured key", token: signed(secretUnknown, kid("k1")), opts: unnamedKeys, want: jwt.ReasonBadSignature},
		{name: "one unnamed key, a kid", token: signed(secretK1, kid("2026-01")), opts: oneUnnamedKey},
		{name: "one unnamed key, no kid", token: signed(secretK1, hs256Header()), opts: oneUnnamedKey},
		{name: "one unnamed key, a kid, signed by another", token: signed(secretK2, kid("2026-01")), opts: oneUnnamedKey, want: jwt.ReasonBadSignature},
		{name: "one named key, its kid", token: signed(secretK1, kid("k1")), opts: oneNamedKey},
		{name: "one named key, no kid", token: signed(secretK1, hs256Header()), opts: oneNamedKey},
		{name: "one named key, another kid", token: signed(secretK1, kid("k2")), opts: oneNamedKey, want: jwt.ReasonUnknownKey},
		// Named k1 first, then an unnamed key: a kid other than k1 skips k1
		// and reaches the unnamed key; kid k1 tries k1, then the unnamed key.
		{name: "named and unnamed keys, kid k1, named key signed", token: signed(secretK1, kid("k1")), opts: namedThenUnnamed},
		{name: "named and unnamed keys, kid k1, unnamed key signed", token: signed(secretK2, kid("k1")), opts: namedThenUnnamed},
		{name: "named and unnamed keys, other kid, unnamed key signed", token: signed(secretK2, kid("k9")), opts: namedThenUnnamed},
		{name: "named and unnamed keys, other kid skips the named key", token: signed(secretK1, kid("k9")), opts: namedThenUnnamed, want: jwt.ReasonBadSignature},
		{name: "named and unnamed keys, no kid, named key signed", token: signed(secretK1, hs256Header()), opts: namedThenUnnamed},
		{name: "named and unnamed keys, no kid, unnamed one signed", token: signed(secretK2, hs256Header()), opts: namedThenUnnamed},
		{name: "three keys, no kid, third key signed", token: signed(secretUnknown, hs256Header()), opts: func(o *jwt.Options) {
			o.Keys = append(o.Keys, jwt.Key{ID: "k3", Secret: secretUnknown})
		}},
	})
}

func TestVerifyKeyClaim(t *testing.T) {
	set := func(name string, value any) func(*testing.T, time.Time) string {
		return claimsToken(func(c jwttest.Claims) jwttest.Claims { return with(c, name, value) })
	}
	keyClaim := func(name string) func(o *jwt.Options) { return func(o *jwt.Options) { o.KeyClaim = name } }
	runVerifyCases(t, []verifyCase{
		{name: "sub missing", token: claimsToken(func(c jwttest.Claims) jwttest.Claims { return without(c, "sub") }), want: jwt.ReasonMissingKeyClaim},
		{name: "sub empty", token: set("sub", ""), want: jwt.ReasonMissingKeyClaim},
		{name: "sub a number", token: set("sub", 42), want: jwt.ReasonMissingKeyClaim},
		{name: "sub null", token: set("sub", nil), want: jwt.ReasonMissingKeyClaim},
		{name: "sub true", token: set("sub", true), want: jwt.ReasonMissingKeyClaim},
		{name: "sub an array", token: set("sub", []string{"alice"}), want: jwt.ReasonMissingKeyClaim},
		{name: "sub an object", token: set("sub", map[string]string{"id": "alice"}), want: jwt.ReasonMissingKeyClaim},
		{name: "custom key claim present", token: set("uid", "u-123"), opts: keyClaim("uid"), sub: "u-123"},
		{name: "custom key claim missing, sub present", token: set("other", "x"), opts: keyClaim("uid"), want: jwt.ReasonMissingKeyClaim},
		{name: "custom key claim a number", token: set("uid", 123), opts: keyClaim("uid"), want: jwt.ReasonMissingKeyClaim},
		{name: "dotted key claim is a member name", token: set("user.id", "u-7"), opts: keyClaim("user.id"), sub: "u-7"},
		{name: "dotted key claim is not a path", token: set("user", map[string]string{"id": "u-7"}), opts: keyClaim("user.id"), want: jwt.ReasonMissingKeyClaim},
		{name: "URL key claim", token: set("https://example.com/uid", "u-8"), opts: keyClaim("https://example.com/uid"), sub: "u-8"},
		{name: "wildcard key claim matches nothing else", token: set("uid", "u-9"), opts: keyClaim("u*"), want: jwt.ReasonMissingKeyClaim},
	})
}

func TestVerifySignature(t *testing.T) {
	valid := func(_ *testing.T, now time.Time) string { return hs256(validClaims(now)) }
	editSig := func(f func(s string) string) func(*testing.T, time.Time) string {
		return func(t *testing.T, now time.Time) string {
			h, p, s := parts(t, valid(t, now))
			return h + "." + p + "." + f(s)
		}
	}
	flip := func(s string, i int) string {
		c := byte('A')
		if s[i] == 'A' {
			c = 'B'
		}
		return s[:i] + string(c) + s[i+1:]
	}
	runVerifyCases(t, []verifyCase{
		{name: "first signature character changed", token: editSig(func(s string) string { return flip(s, 0) }), want: jwt.ReasonBadSignature},
		{name: "middle signature character changed", token: editSig(func(s string) string { return flip(s, 21) }), want: jwt.ReasonBadSignature},
		{name: "all-zero signature", token: editSig(func(string) string { return strings.Repeat("A", 43) }), want: jwt.ReasonBadSignature},
		{name: "signed with an unconfigured secret", token: func(_ *testing.T, now time.Time) string {
			return jwttest.HS256(secretUnknown, validClaims(now))
		}, want: jwt.ReasonBadSignature},
		{name: "signature of another payload", token: func(t *testing.T, now time.Time) string {
			h, p, _ := parts(t, valid(t, now))
			_, _, s := parts(t, hs256(with(validClaims(now), "sub", "admin")))
			return h + "." + p + "." + s
		}, want: jwt.ReasonBadSignature},
		{name: "payload changed under the signature", token: func(t *testing.T, now time.Time) string {
			h, _, s := parts(t, valid(t, now))
			return h + "." + jwttest.Encode(with(validClaims(now), "sub", "admin")) + "." + s
		}, want: jwt.ReasonBadSignature},
		{name: "header changed under the signature", token: func(t *testing.T, now time.Time) string {
			_, p, s := parts(t, valid(t, now))
			return jwttest.Encode(jwttest.Header{"alg": "HS256", "typ": "JOSE"}) + "." + p + "." + s
		}, want: jwt.ReasonBadSignature},
		{name: "signature one character short", token: editSig(func(s string) string { return s[:len(s)-1] }), want: jwt.ReasonMalformed},
		{name: "signature one character long", token: editSig(func(s string) string { return s + "A" }), want: jwt.ReasonMalformed},
		{name: "signature doubled", token: editSig(func(s string) string { return s + s }), want: jwt.ReasonMalformed},
		{name: "HS512 signature under an HS256 header", token: func(_ *testing.T, now time.Time) string {
			input := jwttest.Encode(hs256Header()) + "." + jwttest.Encode(validClaims(now))
			return input + "." + jwttest.MAC("HS512", secretK1, input)
		}, want: jwt.ReasonMalformed},
	})
}

// TestVerifierIsReusable interleaves tokens on one Verifier, which keeps
// scratch buffers between calls, to show no state leaks from one to the next.
func TestVerifierIsReusable(t *testing.T) {
	now := testNow()
	v := jwt.NewVerifier(testOptions())
	good1 := hs256(validClaims(now))
	good2 := jwttest.Sign(secretK2, jwttest.Header{"alg": "HS256", "kid": "k2"}, with(validClaims(now), "sub", "bob"))
	h, _, s := parts(t, good1)
	forged := h + "." + jwttest.Encode(with(validClaims(now), "sub", "admin")) + "." + s
	for i, tc := range []struct {
		token string
		want  jwt.Reason
		sub   string
	}{
		{good1, jwt.ReasonNone, "alice"},
		{forged, jwt.ReasonBadSignature, ""},
		{good2, jwt.ReasonNone, "bob"},
		{forged, jwt.ReasonBadSignature, ""},
		{good1, jwt.ReasonNone, "alice"},
		{"garbage", jwt.ReasonMalformed, ""},
		{good2, jwt.ReasonNone, "bob"},
	} {
		got, err := v.Verify(tc.token, now)
		if r := reasonOf(t, err); r != tc.want || got.Subject != tc.sub {
			t.Errorf("call %d: Verify = %s %q, want %s %q", i, outcome(r), got.Subject, outcome(tc.want), tc.sub)
		}
	}
}

func TestBearerToken(t *testing.T) {
	for _, tc := range []struct {
		header string
		token  string
		ok     bool
	}{
		{"Bearer abc.def.ghi", "abc.def.ghi", true},
		{"bearer abc", "abc", true},
		{"BEARER abc", "abc", true},
		{"BeArEr abc", "abc", true},
		{"Bearer\tabc", "abc", true},
		{"Bearer    abc", "abc", true},
		{"Bearer \t \tabc", "abc", true},
		{"  Bearer abc  ", "abc", true},
		{"\tBearer abc\t", "abc", true},
		{"Bearer a b", "a b", true}, // whitespace inside is Verify's to refuse
		{"Basic dXNlcjpwYXNz", "", false},
		{"Digest username=x", "", false},
		{"Token abc", "", false},
		{"NotBearer abc", "", false},
		{"Bearerabc", "", false},
		{"Bearer,abc", "", false},
		{"Bearer:abc", "", false},
		{"Bearer", "", false},
		{"bearer", "", false},
		{"Bearer ", "", false},
		{"Bearer \t  ", "", false},
		{"Bear abc", "", false},
		{"B", "", false},
		{"", "", false},
		{"   ", "", false},
		{"abc.def.ghi", "", false},
	} {
		t.Run(tc.header, func(t *testing.T) {
			token, ok := jwt.BearerToken(tc.header)
			if token != tc.token || ok != tc.ok {
				t.Fatalf("BearerToken(%q) = %q, %v; want %q, %v", tc.header, token, ok, tc.token, tc.ok)
			}
		})
	}
}
