//go:build !wasip1

package plugin

import (
	"strings"
	"testing"
)

// shadowConfig is rateLimitConfig in shadow mode, with the "try" rule
// also shadowing its token check.
var shadowConfig = strings.Replace(strings.Replace(rateLimitConfig,
	`"rate_limit": {`, `"rate_limit": {"enforce": false, `, 1),
	`{"name": "api", "prefix": "/api"}`, `{"name": "try", "prefix": "/api/try", "enforce": {"jwt": false}}, {"name": "api", "prefix": "/api"}`, 1)

// TestShadowModeForwardsAndCounts: every request is forwarded, the would-be
// refusals are counted (ratelimit.shadow_denied, jwt.shadow_refused) and
// none as a refusal; the responses carry no rate-limit headers (no
// shadow_headers); a refused token is logged with the shadow marker and
// the request goes upstream without identity.
func TestShadowModeForwardsAndCounts(t *testing.T) {
	t.Setenv(testSecretEnv, testSecret)
	host := mustStart(t, runners[0], shadowConfig)
	alice := rateToken(t, "alice", nil)
	for i := range 5 {
		id, resp := sendLimited(host, "/api/items", alice)
		if resp != nil {
			t.Fatalf("request %d: local reply %d %s, want forwarded", i+1, resp.StatusCode, resp.Data)
		}
		host.CallOnResponseHeaders(id, [][2]string{{":status", "200"}}, true)
		for _, name := range []string{"x-ratelimit-limit", "ratelimit", "ratelimit-policy", "retry-after"} {
			if v, ok := headerValue(host.GetCurrentResponseHeaders(id), name); ok {
				t.Errorf("request %d: %s %q on a shadow response without shadow_headers", i+1, name, v)
			}
		}
	}
	id, _ := request{method: "GET", path: "/api/try/x", headers: [][2]string{{"x-api-key", "mallory"}}}.send(host)
	if resp := host.GetSentLocalResponse(id); resp != nil {
		t.Fatalf("token missing on the shadow rule: reply %d, want forwarded", resp.StatusCode)
	}
	if v, ok := headerValue(host.GetCurrentRequestHeaders(id), "x-api-key"); ok {
		t.Errorf("forwarded with x-api-key %q, want no identity", v)
	}
	for name, want := range map[string]uint64{
		"ratelimit.allowed": 3, "ratelimit.shadow_denied": 2, "ratelimit.denied": 0,
		"rejected.rate_limited": 0, "jwt.shadow_refused": 1, "rejected.jwt_missing": 0, "forwarded": 6,
	} {
		if got := counterValue(t, host, name); got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
	assertLogged(t, host, `"status":401`, `"reason":"jwt_missing"`, `"route":"try"`, `"shadow":true`)
}
