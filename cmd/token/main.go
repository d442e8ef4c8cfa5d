// Command token prints an HS256 JWT for local development, signed with the
// secret in JWT_SECRET (or the documented dev default, with a warning).
//
//	go run ./cmd/token -sub alice -ttl 3600 -claim plan=pro -claim email=alice@example.com
//
// It mints tokens with internal/jwttest, independently of the plugin's verifier.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/portcullis/portcullis/internal/jwttest"
)

// DevSecret is the documented development secret that `make run` and
// envoy.yaml's JWT_SECRET default to. Never use it outside a laptop.
const DevSecret = "portcullis-dev-secret-change-me-0123456789"

type claimFlags []string

func (c *claimFlags) String() string     { return strings.Join(*c, ",") }
func (c *claimFlags) Set(v string) error { *c = append(*c, v); return nil }

func main() {
	if err := run(os.Args[1:], os.Getenv, time.Now(), os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "token:", err)
		os.Exit(2)
	}
}

func run(args []string, getenv func(string) string, now time.Time, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sub := fs.String("sub", "", "subject (becomes X-API-Key upstream); required")
	ttl := fs.Int64("ttl", 3600, "lifetime in seconds (exp = now + ttl)")
	iss := fs.String("iss", "portcullis-dev", `issuer claim ("" to omit)`)
	aud := fs.String("aud", "portcullis-api", `audience claim ("" to omit)`)
	kid := fs.String("kid", "", "key id header (omitted when empty)")
	var extra claimFlags
	fs.Var(&extra, "claim", "extra claim k=v (repeatable; v is parsed as JSON when it is valid JSON, else used as a string)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *sub == "" {
		return fmt.Errorf("-sub is required (make token SUB=alice)")
	}
	if *ttl <= 0 {
		return fmt.Errorf("-ttl must be positive, got %d", *ttl)
	}
	secret := getenv("JWT_SECRET")
	if secret == "" {
		fmt.Fprintln(stderr, "token: warning: JWT_SECRET is not set; signing with the development default secret")
		secret = DevSecret
	}
	if len(secret) < 32 {
		fmt.Fprintf(stderr, "token: warning: JWT_SECRET is %d bytes; the gateway refuses HS256 secrets under 32 bytes\n", len(secret))
	}

	claims := jwttest.Valid(*sub, now, time.Duration(*ttl)*time.Second)
	if *iss != "" {
		claims["iss"] = *iss
	}
	if *aud != "" {
		claims["aud"] = *aud
	}
	for _, kv := range extra {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("-claim %q: want key=value", kv)
		}
		var parsed any
		if err := json.Unmarshal([]byte(v), &parsed); err == nil {
			claims[k] = parsed
		} else {
			claims[k] = v
		}
	}
	header := jwttest.Header{"alg": "HS256", "typ": "JWT"}
	if *kid != "" {
		header["kid"] = *kid
	}
	_, err := fmt.Fprintln(stdout, jwttest.Sign([]byte(secret), header, claims))
	return err
}
