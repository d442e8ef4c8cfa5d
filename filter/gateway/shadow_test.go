package gateway_test

import (
	"strings"
	"testing"

	"github.com/portcullis/portcullis/filter/fleet"
	"github.com/portcullis/portcullis/filter/gateway"
	"github.com/portcullis/portcullis/filter/jwt"
	"github.com/portcullis/portcullis/internal/jwttest"
)

// shadowConfig limits /api to 3 per minute; extra is added to rate_limit,
// routes are rules before /api.
func shadowConfig(extra, routes string) string {
	return `{
  "jwt": {"secrets": [{"env": "SECRET"}], "issuer": "test", "audiences": ["api"]},
  "routes": [` + routes + `{"name": "api", "prefix": "/api"}],
  "rate_limit": {"public_key": "header:x-client", "default": [{"requests": 3, "window_seconds": 60}]` + extra + `}
}`
}

// TestShadowRateLimit: a rule in shadow mode forwards every request and
// records exactly the would-be refusals (Rate.ShadowDenied), with the
// rate-limit headers only when shadow_headers asks for them, never
// Retry-After; enforced rules are unaffected.
func TestShadowRateLimit(t *testing.T) {
	for _, tc := range []struct {
		name, extra, routes, path string
		shadow, headers           bool
	}{
		{"global", `, "enforce": false`, ``, "/api/x", true, false},
		{"global, with headers", `, "enforce": false, "shadow_headers": true`, ``, "/api/x", true, true},
		{"rule", ``, `{"name": "try", "prefix": "/try", "enforce": {"rate_limit": false}},`, "/try/x", true, false},
		{"rule enforced under a global shadow", `, "enforce": false`, `{"name": "on", "prefix": "/on", "enforce": {"rate_limit": true}},`, "/on/x", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGateway(t, shadowConfig(tc.extra, tc.routes), "")
			req := get(tc.path, bearer("alice", nil))
			forwarded, shadowDenied := 0, 0
			for i := range 10 {
				d := g.Decide(req, now)
				if d.Rate == nil || d.Rate.Shadow != tc.shadow {
					t.Fatalf("request %d: rate %+v, want charged with shadow %v", i, d.Rate, tc.shadow)
				}
				if d.Kind == gateway.Forward {
					forwarded++
				}
				if d.Rate.ShadowDenied() {
					shadowDenied++
					if d.Reject != nil || d.Tenant != "alice" || header(d.Edits.Set, "x-api-key") != "alice" {
						t.Errorf("shadow denial %d: reject %+v, tenant %q, edits %+v; want forwarded with identity", i, d.Reject, d.Tenant, d.Edits)
					}
					if name := d.Rate.Decision.PolicyName(); name != "default" {
						t.Errorf("shadow denial names policy %q, want default", name)
					}
				}
				if got := header(d.Rate.Headers, "x-ratelimit-limit") != ""; got != tc.headers {
					t.Errorf("request %d: rate-limit headers %v, want %v", i, d.Rate.Headers, tc.headers)
				}
				if tc.shadow && header(d.Rate.Headers, "retry-after") != "" {
					t.Errorf("request %d: Retry-After on a forwarded shadow decision", i)
				}
			}
			want := map[bool][2]int{true: {10, 7}, false: {3, 0}}[tc.shadow]
			if forwarded != want[0] || shadowDenied != want[1] {
				t.Errorf("forwarded %d, shadow-denied %d; want %d and %d", forwarded, shadowDenied, want[0], want[1])
			}
		})
	}
}

// TestShadowJWT: a missing or invalid token on a rule with enforce.jwt
// false is recorded as the 401 it would have been, and the request goes on
// without identity (and, with public_key, is counted by it).
func TestShadowJWT(t *testing.T) {
	g := newGateway(t, shadowConfig(``, `{"name": "try", "prefix": "/try", "enforce": {"jwt": false}},`), "")
	for _, tc := range []struct {
		name, authorization string
		reason              jwt.Reason
	}{
		{"missing", "", jwt.ReasonMissing},
		{"bad signature", "Bearer " + jwttest.HS256([]byte("another-secret-that-is-long-enough-0123"), jwttest.Claims{"sub": "alice", "iss": "test", "aud": "api", "exp": now.Unix() + 60}), jwt.ReasonBadSignature},
		{"malformed", "Bearer not-a-token", jwt.ReasonMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := g.Decide(get("/try/x", tc.authorization, "x-api-key", "mallory", "x-client", "c1"), now)
			if d.Kind != gateway.Forward || d.ShadowJWT == nil || d.ShadowJWT.Reason != gateway.JWTReason(tc.reason) || d.ShadowJWT.Kind.Status != 401 {
				t.Fatalf("kind %d, shadow %+v; want forwarded with the %s refusal recorded", d.Kind, d.ShadowJWT, tc.reason.Metric())
			}
			if d.Tenant != "" || len(d.Edits.Set) != 0 || !strings.Contains(strings.Join(d.Edits.Remove, ","), "x-api-key") {
				t.Errorf("tenant %q, edits %+v; want no identity and the client's x-api-key removed", d.Tenant, d.Edits)
			}
			if d.JWTOutcome() != gateway.JWTReason(tc.reason).Metric() {
				t.Errorf("JWTOutcome %q", d.JWTOutcome())
			}
			if d.Rate == nil || d.Rate.Decision.Limit.Requests != 3 {
				t.Errorf("rate %+v, want counted by the public key", d.Rate)
			}
		})
	}
	// A valid token is verified as usual; an enforcing rule still refuses.
	if d := g.Decide(get("/try/x", bearer("alice", nil)), now); d.ShadowJWT != nil || d.Tenant != "alice" {
		t.Errorf("valid token: shadow %+v tenant %q", d.ShadowJWT, d.Tenant)
	}
	if d := g.Decide(get("/api/x", ""), now); d.Kind != gateway.Reject || d.Reject.Kind.Status != 401 || d.ShadowJWT != nil {
		t.Errorf("enforcing rule without a token: %+v", d)
	}
}

// TestCostAndRefusingPolicy: a rule of cost c admits ⌊N/c⌋ of a cold key,
// shares the key's budget with the other rules, and its 429 names the
// limit that refused.
func TestCostAndRefusingPolicy(t *testing.T) {
	g := newGateway(t, shadowConfig(``, `{"name": "heavy", "prefix": "/heavy", "cost": 2},`), "")
	heavy := get("/heavy/x", bearer("alice", nil))
	if got := admitted(t, g, heavy, 10); got != 1 {
		t.Fatalf("cost 2 of 3: admitted %d, want ⌊3/2⌋ = 1", got)
	}
	if got := admitted(t, g, get("/api/x", bearer("alice", nil)), 10); got != 1 {
		t.Errorf("the remaining unit: admitted %d of cost 1, want 1", got)
	}
	d := g.Decide(heavy, now)
	if d.Kind != gateway.Reject || d.Reject.Policy != "default" || !strings.HasPrefix(header(d.Reject.Headers, "ratelimit"), `"default";r=0;`) {
		t.Errorf("refusal %+v, want the 429 naming policy default", d.Reject)
	}
}

// TestFleetShadowAndCost: in fleet mode the cost is the call's hitsAddend,
// and a shadowed rule forwards the service's refusal, also when it comes
// from the blocklist.
func TestFleetShadowAndCost(t *testing.T) {
	g := newGateway(t, `{
  "jwt": {"secrets": [{"env": "SECRET"}], "issuer": "test", "audiences": ["api"]},
  "routes": [{"name": "api", "prefix": "/api", "cost": 4, "enforce": {"rate_limit": false}}],
  "rate_limit": {"mode": "fleet", "fleet": {"protocol": "json"}}
}`, "")
	req := get("/api/x", bearer("alice", nil))
	ask := g.Decide(req, now)
	if ask.Kind != gateway.AskFleet || !strings.Contains(string(ask.Fleet.Body), `"hitsAddend":4`) {
		t.Fatalf("call %+v, want one with hitsAddend 4", ask.Fleet)
	}
	over := `{"overallCode":"OVER_LIMIT","statuses":[{"code":"OVER_LIMIT","currentLimit":{"requestsPerUnit":3,"unit":"MINUTE"},"durationUntilReset":"14s"}]}`
	d := g.FleetAnswer(ask.Fleet, fleet.Reply{Status: 429, Body: []byte(over)}, now)
	if d.Kind != gateway.Forward || d.Rate == nil || !d.Rate.ShadowDenied() || len(d.Rate.Headers) != 0 {
		t.Fatalf("shadow refusal from the service: kind %d rate %+v, want forwarded, shadow-denied, no headers", d.Kind, d.Rate)
	}
	d = g.Decide(req, now)
	if d.Kind != gateway.Forward || d.Rate == nil || d.Rate.Source != gateway.RateBlocklist || !d.Rate.ShadowDenied() {
		t.Fatalf("blocked key in shadow mode: kind %d rate %+v, want forwarded from the blocklist, shadow-denied", d.Kind, d.Rate)
	}
}

// TestShadowAccessRecord: the access log says which limit would have
// refused (ratelimit shadow_denied and its policy) and that a token was
// refused in shadow mode.
func TestShadowAccessRecord(t *testing.T) {
	g := newGateway(t, shadowConfig(`, "enforce": false`, `{"name": "try", "prefix": "/try", "enforce": {"jwt": false}},`), "")
	req := get("/api/x", bearer("alice", nil))
	var d gateway.Decision
	for range 4 {
		d = g.Decide(req, now)
	}
	a := gateway.Access{Route: "api", Key: d.Tenant, JWT: d.JWTOutcome(), Rate: d.Rate}
	if got, want := string(a.AppendJSON(nil)), `{"route":"api","key":"alice","jwt":"cached","ratelimit":"shadow_denied","ratelimit_source":"local","ratelimit_policy":"default","ratelimit_remaining":0}`; got != want {
		t.Errorf("access record\n got %s\nwant %s", got, want)
	}
	d = g.Decide(get("/try/x", ""), now)
	a = gateway.Access{Route: "try", JWT: d.JWTOutcome(), JWTShadow: d.ShadowJWT != nil, Rate: d.Rate}
	if got, want := string(a.AppendJSON(nil)), `{"route":"try","jwt":"jwt_missing","jwt_shadow":true}`; got != want {
		t.Errorf("access record\n got %s\nwant %s", got, want)
	}
}
