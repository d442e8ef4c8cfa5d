package gateway_test

import (
	"testing"
	"time"

	"github.com/portcullis/portcullis/filter/config"
	"github.com/portcullis/portcullis/filter/fleet"
	"github.com/portcullis/portcullis/filter/gateway"
	"github.com/portcullis/portcullis/filter/ratelimit"
	"github.com/portcullis/portcullis/filter/shared/sharedtest"
	"github.com/portcullis/portcullis/internal/jwttest"
)

const secret = "gateway-test-secret-0123456789abcdef"

// now is the clock of every decision: tokens are minted against it.
var now = time.Unix(1_900_000_000, 0)

func env(name string) (string, bool) {
	if name == "SECRET" {
		return secret, true
	}
	return "", false
}

// newGateway compiles cfg and gives the gateway the tables its rate-limit
// mode needs, in a fresh in-memory store; publicKey is what public routes
// are counted by ("" when the request has none).
func newGateway(t *testing.T, cfg string, publicKey string) *gateway.Gateway {
	t.Helper()
	c, err := config.Parse([]byte(cfg), env)
	if err != nil {
		t.Fatal(err)
	}
	store := sharedtest.New()
	tables := gateway.Tables{}
	if rl := c.RateLimit; rl != nil {
		if rl.PublicKey.Kind != config.KeyNone {
			tables.PublicKey = func() string { return publicKey }
		}
		if rl.Fleet != nil {
			tables.Blocklist = fleet.NewBlocklist(store, rl.Fleet.BlockSlots)
		} else {
			opts := rl.Options
			opts.Store = store
			if tables.Limiter, err = ratelimit.New(opts); err != nil {
				t.Fatal(err)
			}
		}
	}
	return gateway.New(c, tables)
}

// bearer mints a valid token for sub with the extra claims.
func bearer(sub string, extra jwttest.Claims) string {
	c := jwttest.Claims{"sub": sub, "iss": "test", "aud": "api", "exp": now.Add(time.Hour).Unix()}
	for k, v := range extra {
		c[k] = v
	}
	return "Bearer " + jwttest.HS256([]byte(secret), c)
}

func get(path, authorization string) gateway.Request {
	return gateway.Request{Method: "GET", Path: path, Authorization: authorization}
}

func header(headers [][2]string, name string) string {
	for _, kv := range headers {
		if kv[0] == name {
			return kv[1]
		}
	}
	return ""
}
