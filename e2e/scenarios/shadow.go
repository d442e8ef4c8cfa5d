package scenarios

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/portcullis/portcullis/e2e/harness"
)

// Shadow-mode and cost scenario parameters: the limit is BurstLimit per
// BurstWindowSeconds, as in the cold burst; a request of the "costly" rule
// counts as RuleCost requests.
const RuleCost = 3

// ShadowCostConfig is RateLimitConfig with four rules in front of /api:
// "shadow" does not enforce its limit (and sends its headers anyway),
// "retry" allows 1 per RetryWindowSeconds,
// "costly" charges RuleCost per request, "metered" charges what its
// response's X-Tokens-Used says, and "trial" does not enforce its token
// check.
func ShadowCostConfig(t *testing.T) string {
	return patchConfig(t, RateLimitConfig(t), func(cfg map[string]any) {
		cfg["rate_limit"].(map[string]any)["shadow_headers"] = true
		rules := []any{
			map[string]any{"name": "shadow", "prefix": "/api/shadow", "enforce": map[string]any{"rate_limit": false}},
			map[string]any{"name": "retry", "prefix": "/api/retry", "rate_limit": []any{map[string]any{"requests": 1, "window_seconds": RetryWindowSeconds}}},
			map[string]any{"name": "costly", "prefix": "/api/costly", "cost": RuleCost},
			map[string]any{"name": "metered", "prefix": "/api/metered", "cost_header": "X-Tokens-Used"},
			map[string]any{"name": "trial", "prefix": "/api/trial", "enforce": map[string]any{"jwt": false}},
		}
		cfg["routes"] = append(rules, cfg["routes"].([]any)...)
	})
}

// shadowForwardsAll: BurstClients parallel requests of one cold key on a
// rule in shadow mode all reach the upstream, and exactly the
// BurstClients − BurstLimit that the limit would have refused are counted
// as shadow_denied (none as denied or rejected). With shadow_headers the
// responses carry the limit's state, but never Retry-After.
func shadowForwardsAll(t *testing.T, gw *harness.Gateway) {
	tok := Token(harness.TestSecret, freshKey("shadow"), nil)
	before := gw.Upstream.Count()
	responses, errs := atOnce(BurstClients, func(int) (Response, error) {
		return Do(gw, Request{Path: "/api/shadow", Header: Bearer(tok)})
	})
	exhausted := 0
	for i, resp := range responses {
		switch {
		case errs[i] != nil:
			t.Errorf("client %d: %v", i, errs[i])
		case resp.Status != http.StatusOK:
			t.Errorf("client %d: want 200 from the upstream in shadow mode, got:\n%s", i, resp)
		case resp.Header.Get("Retry-After") != "":
			t.Errorf("client %d: Retry-After %q on a forwarded request", i, resp.Header.Get("Retry-After"))
		case withoutPK(t, resp.Header.Get("RateLimit-Policy")) != `"default";q=10;w=60`:
			t.Errorf("client %d: RateLimit-Policy %q, want the shadowed limit", i, resp.Header.Get("RateLimit-Policy"))
		case resp.Header.Get("X-RateLimit-Remaining") == "0":
			exhausted++
		}
	}
	// The last admitted request and every would-be refusal see nothing left.
	if want := BurstClients - BurstLimit + 1; exhausted != want {
		t.Errorf("%d responses with X-RateLimit-Remaining 0, want %d", exhausted, want)
	}
	if got := gw.Upstream.Count() - before; got != BurstClients {
		t.Errorf("the upstream received %d requests, want all %d", got, BurstClients)
	}
	expectCounters(t, gw, map[string]int64{
		"portcullis.ratelimit.allowed":       BurstLimit,
		"portcullis.ratelimit.shadow_denied": BurstClients - BurstLimit,
		"portcullis.ratelimit.denied":        0,
		"portcullis.rejected.rate_limited":   0,
	})
}

// costAdmitsNOverCost: a cold key on the "costly" rule gets ⌊N/cost⌋
// requests, then a 429 naming the limit; only the admitted reach the upstream.
func costAdmitsNOverCost(t *testing.T, gw *harness.Gateway) {
	tok := Token(harness.TestSecret, freshKey("cost"), nil)
	before := gw.Upstream.Count()
	admitted := 0
	for range BurstLimit {
		resp := Send(t, gw, Request{Path: "/api/costly", Header: Bearer(tok)})
		if resp.Status == http.StatusOK {
			admitted++
			continue
		}
		checkTooMany(t, gw, resp, BurstLimit, BurstWindowSeconds, RuleCost)
	}
	if want := BurstLimit / RuleCost; admitted != want {
		t.Errorf("%d admitted at cost %d, want ⌊%d/%d⌋ = %d", admitted, RuleCost, BurstLimit, RuleCost, want)
	}
	if got := gw.Upstream.Count() - before; got != BurstLimit/RuleCost {
		t.Errorf("the upstream received %d requests, want %d", got, BurstLimit/RuleCost)
	}
	// The key's budget is shared with the other rules: what is left is
	// BurstLimit mod RuleCost requests of cost 1.
	for i := range BurstLimit % RuleCost {
		if resp := Send(t, gw, Request{Path: "/api/x", Header: Bearer(tok)}); resp.Status != http.StatusOK {
			t.Errorf("cost-1 request %d of the remainder: want 200, got:\n%s", i, resp)
		}
	}
	checkTooMany(t, gw, Send(t, gw, Request{Path: "/api/x", Header: Bearer(tok)}), BurstLimit, BurstWindowSeconds, 1)
}

// MeteredCost is what the upstream reports each "metered" request cost.
const MeteredCost = 5

// costFromResponseHeader: a cold key on the "metered" rule, whose upstream
// reports each request cost MeteredCost tokens, is admitted N/MeteredCost
// requests: each pays 1 when admitted and the rest after its response, a
// debt the next requests find. A value that is not a number is ignored and
// counted, and the request is answered as usual.
func costFromResponseHeader(t *testing.T, gw *harness.Gateway) {
	if BurstLimit%MeteredCost != 0 {
		t.Fatal("the scenario needs a cost dividing the limit (else ⌈N/cost⌉ are admitted, the last one overspending)")
	}
	tok := Token(harness.TestSecret, freshKey("metered"), nil)
	header := With(Bearer(tok), "X-Upstream-Tokens-Used", strconv.Itoa(MeteredCost))
	before := gw.Upstream.Count()
	admitted := 0
	for range BurstLimit {
		resp := Send(t, gw, Request{Path: "/api/metered", Header: header})
		if resp.Status == http.StatusOK {
			admitted++
			if got := resp.Header.Get("X-Tokens-Used"); got != strconv.Itoa(MeteredCost) {
				t.Errorf("the upstream's X-Tokens-Used %q did not reach the client", got)
			}
			continue
		}
		checkTooMany(t, gw, resp, BurstLimit, BurstWindowSeconds, 1)
	}
	if want := BurstLimit / MeteredCost; admitted != want || gw.Upstream.Count()-before != int64(want) {
		t.Errorf("%d admitted (upstream saw %d), want N/cost = %d/%d = %d", admitted, gw.Upstream.Count()-before, BurstLimit, MeteredCost, want)
	}
	bad := With(Bearer(Token(harness.TestSecret, freshKey("metered"), nil)), "X-Upstream-Tokens-Used", "lots")
	for i := range 2 {
		if resp := Send(t, gw, Request{Path: "/api/metered", Header: bad}); resp.Status != http.StatusOK {
			t.Errorf("request %d with an unreadable cost: want 200, got:\n%s", i+1, resp)
		}
	}
	expectCounters(t, gw, map[string]int64{
		"portcullis.ratelimit.charged":                   int64(admitted),
		"portcullis.ratelimit.fault.cost_header_invalid": 2,
	})
}

// RetryWindowSeconds is the window of the "retry" rule's one request.
const RetryWindowSeconds = 3

// retryAfterIsEnough: a client that waits exactly Retry-After after a 429
// is admitted: the wait is rounded up, never down. The refusal comes
// milliseconds after the admission, so the exact wait is just under
// RetryWindowSeconds: rounded down it would be a second short.
func retryAfterIsEnough(t *testing.T, gw *harness.Gateway) {
	tok := Token(harness.TestSecret, freshKey("retry"), nil)
	for round := range 2 {
		var resp Response
		for range 2 {
			if resp = Send(t, gw, Request{Path: "/api/retry", Header: Bearer(tok)}); resp.Status != http.StatusOK {
				break
			}
		}
		checkTooMany(t, gw, resp, 1, RetryWindowSeconds, 1)
		if got := resp.Header.Get("Retry-After"); got != strconv.Itoa(RetryWindowSeconds) {
			t.Errorf("round %d: Retry-After %q, want %d (just under it, rounded up)", round, got, RetryWindowSeconds)
		}
		wait, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		if err != nil {
			t.Fatalf("round %d: Retry-After %q", round, resp.Header.Get("Retry-After"))
		}
		time.Sleep(time.Duration(wait) * time.Second)
		if again := Send(t, gw, Request{Path: "/api/retry", Header: Bearer(tok)}); again.Status != http.StatusOK {
			t.Fatalf("round %d: after waiting Retry-After %d s: want 200, got:\n%s", round, wait, again)
		}
	}
}

// jwtShadowForwardsAnonymously: on the "trial" rule a request without a
// valid token reaches the upstream without identity headers (the client's
// are removed), and is counted as jwt.shadow_refused.
func jwtShadowForwardsAnonymously(t *testing.T, gw *harness.Gateway) {
	for _, h := range []map[string][]string{
		{"X-Api-Key": {"mallory"}},
		With(Bearer("not-a-token"), "X-Api-Key", "mallory"),
	} {
		resp := Send(t, gw, Request{Path: "/api/trial/x", Header: h})
		if resp.Status != http.StatusOK {
			t.Fatalf("want 200 from the upstream, got:\n%s", resp)
		}
		e := Echo(t, resp)
		for _, name := range []string{"x-api-key", "authorization"} {
			if v, ok := e.Headers[name]; ok {
				t.Errorf("the upstream saw %s %v, want it removed", name, v)
			}
		}
	}
	// A valid token there is verified and forwarded as usual.
	tok := Token(harness.TestSecret, freshKey("trial"), nil)
	if e := Echo(t, Send(t, gw, Request{Path: "/api/trial/x", Header: Bearer(tok)})); Header(t, e, "x-api-key") == "" {
		t.Errorf("a valid token on the trial rule was forwarded without x-api-key")
	}
	expectCounters(t, gw, map[string]int64{"portcullis.jwt.shadow_refused": 2, "portcullis.rejected.jwt_missing": 0, "portcullis.rejected.jwt_malformed": 0})
}

// expectCounters waits until every counter has its value (counts reach the
// proxy on the plugin's tick) and reports those that never get there.
func expectCounters(t *testing.T, gw *harness.Gateway, want map[string]int64) {
	t.Helper()
	ok := eventually(5*time.Second, func() bool {
		for name, n := range want {
			if got, _ := gw.Counter(name); got != n {
				return false
			}
		}
		return true
	})
	if !ok {
		for name, n := range want {
			got, exists := gw.Counter(name)
			t.Errorf("counter %s = %d (exists %v), want %d", name, got, exists, n)
		}
	}
}
