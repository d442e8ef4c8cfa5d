package jwt_test

import (
	"testing"
	"time"

	"github.com/portcullis/portcullis/filter/jwt"
	"github.com/portcullis/portcullis/internal/jwttest"
)

// Benchmarks, not timed assertions: `go test -run '^$' -bench . -benchmem ./filter/jwt`.
// The verifier runs once per request inside a wasm VM whose GC stops the VM,
// so allocs/op matters as much as ns/op.

// benchToken is a realistic token: kid k2 (the second of two keys), iss, aud,
// and a few claims the identity headers forward.
func benchToken(now time.Time) string {
	claims := with(validClaims(now), "email", "alice@example.com", "plan", "pro", "aud", []string{"other", testAudience})
	return jwttest.Sign(secretK2, jwttest.Header{"alg": "HS256", "typ": "JWT", "kid": "k2"}, claims)
}

func BenchmarkVerify(b *testing.B) {
	now := testNow()
	v := jwt.NewVerifier(testOptions())
	token := benchToken(now)
	if _, err := v.Verify(token, now); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(token)))
	for b.Loop() {
		if _, err := v.Verify(token, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyNoKid tries both keys in order, the second one matching.
func BenchmarkVerifyNoKid(b *testing.B) {
	now := testNow()
	v := jwt.NewVerifier(testOptions())
	token := jwttest.Sign(secretK2, hs256Header(), validClaims(now))
	if _, err := v.Verify(token, now); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(token, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyBadSignature(b *testing.B) {
	now := testNow()
	v := jwt.NewVerifier(testOptions())
	h, p, _ := parts(b, benchToken(now))
	token := h + "." + p + "." + jwttest.MAC("HS256", secretUnknown, h+"."+p)
	if _, err := v.Verify(token, now); reasonOf(b, err) != jwt.ReasonBadSignature {
		b.Fatalf("Verify = %v, want bad signature", err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(token, now); err == nil {
			b.Fatal("accepted")
		}
	}
}

func BenchmarkBearerToken(b *testing.B) {
	header := "Bearer " + benchToken(testNow())
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := jwt.BearerToken(header); !ok {
			b.Fatal("no token")
		}
	}
}
