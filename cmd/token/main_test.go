package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	jwtlib "github.com/golang-jwt/jwt/v5"
)

func TestTokenVerifiesWithAnIndependentLibrary(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef-test"
	now := time.Now()
	var out, errOut bytes.Buffer
	env := func(k string) string {
		if k == "JWT_SECRET" {
			return secret
		}
		return ""
	}
	args := []string{"-sub", "alice", "-ttl", "120", "-kid", "k1", "-claim", "plan=pro", "-claim", "n=3"}
	if err := run(args, env, now, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if errOut.Len() != 0 {
		t.Errorf("unexpected warning: %s", errOut.String())
	}
	raw := strings.TrimSpace(out.String())
	tok, err := jwtlib.Parse(raw, func(*jwtlib.Token) (any, error) { return []byte(secret), nil },
		jwtlib.WithValidMethods([]string{"HS256"}), jwtlib.WithIssuer("portcullis-dev"),
		jwtlib.WithAudience("portcullis-api"), jwtlib.WithExpirationRequired())
	if err != nil {
		t.Fatalf("token does not verify: %v", err)
	}
	claims := tok.Claims.(jwtlib.MapClaims)
	if claims["sub"] != "alice" || claims["plan"] != "pro" || claims["n"] != float64(3) || tok.Header["kid"] != "k1" {
		t.Errorf("claims %v header %v", claims, tok.Header)
	}
	if exp, _ := claims.GetExpirationTime(); exp.Unix() != now.Unix()+120 {
		t.Errorf("exp = %v, want now+120s", exp)
	}
}

func TestDevDefaultWarns(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run([]string{"-sub", "bob"}, func(string) string { return "" }, time.Now(), &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut.String(), "JWT_SECRET is not set") {
		t.Errorf("no warning on stderr: %q", errOut.String())
	}
	if _, err := jwtlib.Parse(strings.TrimSpace(out.String()), func(*jwtlib.Token) (any, error) { return []byte(DevSecret), nil }); err != nil {
		t.Errorf("dev token does not verify with the dev secret: %v", err)
	}
}

func TestRejectsBadInput(t *testing.T) {
	for _, args := range [][]string{{}, {"-sub", "a", "-ttl", "0"}, {"-sub", "a", "-claim", "novalue"}} {
		var out, errOut bytes.Buffer
		if err := run(args, func(string) string { return "" }, time.Now(), &out, &errOut); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
