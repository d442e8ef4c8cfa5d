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
// mode needs, in a fresh in-memory store; clientAddress is the client's
// address ("" when unknown).
func newGateway(t *testing.T, cfg string, clientAddress string) *gateway.Gateway {
	t.Helper()
	return newGatewayWith(t, cfg, env, clientAddress)
}

// newGatewayEnv is newGateway with the VM environment vars.
func newGatewayEnv(t *testing.T, cfg string, vars map[string]string) *gateway.Gateway {
	t.Helper()
	return newGatewayWith(t, cfg, func(name string) (string, bool) { v, ok := vars[name]; return v, ok }, "")
}

func newGatewayWith(t *testing.T, cfg string, env config.Env, clientAddress string) *gateway.Gateway {
	t.Helper()
	c, err := config.Parse([]byte(cfg), env)
	if err != nil {
		t.Fatal(err)
	}
	store := sharedtest.New()
	tables := gateway.Tables{}
	if rl := c.RateLimit; rl != nil {
		if rl.PublicKey.Kind == config.KeyClientAddress {
			tables.ClientAddress = func() string { return clientAddress }
		}
		if rl.Fleet != nil {
			tables.Blocklist = fleet.NewBlocklist(store, rl.Fleet.BlockSlots)
			if rl.Fleet.Leasing {
				tables.Leases = fleet.NewLeases(store, rl.Fleet.LeaseSlots)
			}
		}
		if rl.Local() {
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

// get is a GET of path with the authorization header (none when "") and
// the extra headers (name, value, name, value...).
func get(path, authorization string, extra ...string) gateway.Request {
	return request("GET", path, authorization, extra...)
}

func request(method, path, authorization string, extra ...string) gateway.Request {
	headers := [][2]string{{":method", method}, {":path", path}, {":authority", "api.example.com"}, {"x-request-id", "r1"}}
	if authorization != "" {
		headers = append(headers, [2]string{"authorization", authorization})
	}
	for i := 0; i+1 < len(extra); i += 2 {
		headers = append(headers, [2]string{extra[i], extra[i+1]})
	}
	return gateway.NewRequest(headers, true)
}

func header(headers [][2]string, name string) string {
	for _, kv := range headers {
		if kv[0] == name {
			return kv[1]
		}
	}
	return ""
}
