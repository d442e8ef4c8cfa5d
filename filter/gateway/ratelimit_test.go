package gateway_test

import (
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/filter/fleet"
	"github.com/portcullis/portcullis/filter/gateway"
	"github.com/portcullis/portcullis/internal/jwttest"
)

const limitedConfig = `{
  "jwt": {"secrets": [{"env": "SECRET"}], "issuer": "test", "audiences": ["api"]},
  "routes": [
    {"name": "public", "prefix": "/public", "public": true},
    {"name": "tight", "prefix": "/tight", "rate_limit": [{"requests": 1, "window_seconds": 60}]},
    {"name": "api", "prefix": "/api"}
  ],
  "rate_limit": {
    "public_key": "header:x-client",
    "default": [{"requests": 3, "window_seconds": 60}],
    "plans": {"by_plan": {"pro": [{"requests": 5, "window_seconds": 60}]}}
  }
}`

// admitted sends n requests at now and counts the forwarded ones; every
// decision must be a charged Forward or a 429 from the local limiter.
func admitted(t *testing.T, g *gateway.Gateway, req gateway.Request, n int) int {
	t.Helper()
	count := 0
	for range n {
		d := g.Decide(req, now)
		if d.Rate == nil || d.Rate.Source != gateway.RateLocal {
			t.Fatalf("%s not charged locally: %+v", req.Path, d.Rate)
		}
		switch d.Kind {
		case gateway.Forward:
			count++
		case gateway.Reject:
			if d.Reject.Reason != gateway.ReasonRateLimited || d.Reject.Kind.Status != 429 || d.Reject.RetryAfter < 1 {
				t.Fatalf("refusal %+v, want a 429 with retry_after", d.Reject)
			}
		default:
			t.Fatalf("kind %d", d.Kind)
		}
	}
	return count
}

func TestLocalLimitPolicies(t *testing.T) {
	tests := []struct {
		name string
		req  gateway.Request
		want int
	}{
		{"default", get("/api/x", bearer("alice", nil)), 3},
		{"plan", get("/api/x", bearer("paula", jwttest.Claims{"plan": "pro"})), 5},
		{"unknown plan gets the default", get("/api/x", bearer("uma", jwttest.Claims{"plan": "gold"})), 3},
		{"non-string plan gets the default", get("/api/x", bearer("nina", jwttest.Claims{"plan": 7})), 3},
		{"route override", get("/tight/x", bearer("alice", nil)), 1},
	}
	g := newGateway(t, limitedConfig, "")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := admitted(t, g, tt.req, 10); got != tt.want {
				t.Errorf("admitted %d of 10, want %d", got, tt.want)
			}
		})
	}
}

func TestLocalLimitHeaders(t *testing.T) {
	g := newGateway(t, limitedConfig, "")
	req := get("/api/x", bearer("hedy", nil))
	d := g.Decide(req, now)
	want := map[string]string{
		"x-ratelimit-limit": "3", "x-ratelimit-remaining": "2", "x-ratelimit-reset": "20",
		"ratelimit-policy": `"default";q=3;w=60`, "ratelimit": `"default";r=2;t=20`,
	}
	for name, value := range want {
		if got := header(d.Rate.Headers, name); got != value {
			t.Errorf("%s = %q, want %q", name, got, value)
		}
	}
	if header(d.Rate.Headers, "retry-after") != "" {
		t.Error("an admitted request has retry-after")
	}
	g.Decide(req, now)
	g.Decide(req, now)
	refused := g.Decide(req, now)
	if refused.Kind != gateway.Reject || header(refused.Reject.Headers, "retry-after") != "20" || refused.Reject.RetryAfter != 20 {
		t.Fatalf("fourth request: %+v", refused.Reject)
	}
	// The budget comes back one emission interval (60 s / 3) later.
	if d := g.Decide(req, now.Add(20*time.Second)); d.Kind != gateway.Forward {
		t.Errorf("after retry-after: kind %d", d.Kind)
	}
}

func TestPublicRoutesCountedByTheirKey(t *testing.T) {
	tests := []struct {
		name    string
		key     string
		charged bool
	}{
		{"header", "client-1", true},
		{"missing header: not counted", "", false},
		{"unsafe value: not counted", "a\nb", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGateway(t, limitedConfig, "")
			d := g.Decide(get("/public/x", "", "x-client", tt.key), now)
			if d.Kind != gateway.Forward || (d.Rate != nil) != tt.charged || d.Tenant != "" {
				t.Fatalf("kind %d, rate %+v, tenant %q; want charged=%v", d.Kind, d.Rate, d.Tenant, tt.charged)
			}
		})
	}
	// A header value equal to an API key never spends that key's budget.
	g := newGateway(t, limitedConfig, "")
	if got := admitted(t, g, get("/public/x", "", "x-client", "alice"), 10); got != 3 {
		t.Fatalf("public key admitted %d, want 3", got)
	}
	if got := admitted(t, g, get("/api/x", bearer("alice", nil)), 10); got != 3 {
		t.Errorf("API key alice admitted %d after the header alice spent its budget, want 3", got)
	}
}

func TestPublicRoutesCountedByClientAddress(t *testing.T) {
	cfg := strings.Replace(limitedConfig, `"header:x-client"`, `"client_address"`, 1)
	if got := admitted(t, newGateway(t, cfg, "192.0.2.7"), get("/public/x", ""), 10); got != 3 {
		t.Errorf("a client address admitted %d, want the default 3", got)
	}
	if d := newGateway(t, cfg, "").Decide(get("/public/x", ""), now); d.Rate != nil {
		t.Errorf("an unknown client address was charged: %+v", d.Rate)
	}
}

const fleetConfig = `{
  "jwt": {"secrets": [{"env": "SECRET"}], "issuer": "test", "audiences": ["api"]},
  "routes": [{"name": "api", "prefix": "/api"}],
  "rate_limit": {"mode": "fleet", "fleet": {"on_failure": "%s", "protocol": "json"}}
}`

func fleetGateway(t *testing.T, onFailure string) *gateway.Gateway {
	return newGateway(t, strings.Replace(fleetConfig, "%s", onFailure, 1), "")
}

func TestFleetCallDescribesTheKeyAndRoute(t *testing.T) {
	d := fleetGateway(t, "allow").Decide(get("/api/x", bearer("alice", nil)), now)
	if d.Kind != gateway.AskFleet || d.Fleet == nil || d.Rate != nil || d.Tenant != "alice" {
		t.Fatalf("got %+v", d)
	}
	if d.Fleet.Key != "alice" || d.Fleet.Route != "api" || header(d.Edits.Set, "x-api-key") != "alice" {
		t.Errorf("call %+v, edits %+v", d.Fleet, d.Edits)
	}
	body := string(d.Fleet.Body)
	for _, part := range []string{`"domain":"portcullis"`, `"key":"api_key","value":"alice"`, `"key":"route","value":"api"`} {
		if !strings.Contains(body, part) {
			t.Errorf("body %s lacks %s", body, part)
		}
	}
}

func TestFleetAnswers(t *testing.T) {
	const (
		ok   = `{"overallCode":"OK","statuses":[{"code":"OK","currentLimit":{"requestsPerUnit":3,"unit":"MINUTE"},"limitRemaining":2,"durationUntilReset":"14s"}]}`
		over = `{"overallCode":"OVER_LIMIT","statuses":[{"code":"OVER_LIMIT","currentLimit":{"requestsPerUnit":3,"unit":"MINUTE"},"durationUntilReset":"14s"}]}`
	)
	tests := []struct {
		name      string
		onFailure string
		status    int
		body      string
		kind      gateway.Kind
		source    gateway.RateSource
		reason    gateway.Reason
		remaining string // x-ratelimit-remaining, "" when none
	}{
		{"under the limit", "allow", 200, ok, gateway.Forward, gateway.RateFleet, 0, "2"},
		{"over the limit", "allow", 429, over, gateway.Reject, gateway.RateFleet, gateway.ReasonRateLimited, "0"},
		{"no answer, allow", "allow", 0, "", gateway.Forward, gateway.RateFleetUnavailable, 0, ""},
		{"no answer, deny", "deny", 0, "", gateway.Reject, gateway.RateFleetUnavailable, gateway.ReasonRateLimitUnavailable, ""},
		{"garbage, deny", "deny", 200, "<html>", gateway.Reject, gateway.RateFleetUnavailable, gateway.ReasonRateLimitUnavailable, ""},
		{"service error, allow", "allow", 500, `{"overallCode":"UNKNOWN"}`, gateway.Forward, gateway.RateFleetUnavailable, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := fleetGateway(t, tt.onFailure)
			ask := g.Decide(get("/api/x", bearer("alice", nil)), now)
			d := g.FleetAnswer(ask.Fleet, fleet.Reply{Status: tt.status, Body: []byte(tt.body)}, now)
			if d.Kind != tt.kind || d.Rate == nil || d.Rate.Source != tt.source {
				t.Fatalf("kind %d rate %+v, want kind %d from source %d", d.Kind, d.Rate, tt.kind, tt.source)
			}
			if len(d.Edits.Set) != 0 || len(d.Edits.Remove) != 0 {
				t.Errorf("an answer repeats the header edits: %+v", d.Edits)
			}
			if got := header(d.Rate.Headers, "x-ratelimit-remaining"); got != tt.remaining {
				t.Errorf("remaining %q, want %q", got, tt.remaining)
			}
			if tt.kind == gateway.Reject && (d.Reject.Reason != tt.reason || d.Reject.Kind.Status != 429 || d.Reject.RetryAfter < 1) {
				t.Errorf("refusal %+v, want a 429 for %s", d.Reject, tt.reason.Metric())
			}
		})
	}
}

func TestFleetRefusalIsRememberedUntilTheReset(t *testing.T) {
	g := fleetGateway(t, "allow")
	req := get("/api/x", bearer("alice", nil))
	ask := g.Decide(req, now)
	over := `{"overallCode":"OVER_LIMIT","statuses":[{"code":"OVER_LIMIT","currentLimit":{"requestsPerUnit":3,"unit":"MINUTE"},"durationUntilReset":"14s"}]}`
	g.FleetAnswer(ask.Fleet, fleet.Reply{Status: 429, Body: []byte(over)}, now)

	d := g.Decide(req, now.Add(time.Second))
	if d.Kind != gateway.Reject || d.Fleet != nil || d.Rate.Source != gateway.RateBlocklist {
		t.Fatalf("within the reset: kind %d, fleet %v, rate %+v; want a refusal from the blocklist, no call", d.Kind, d.Fleet, d.Rate)
	}
	if got := header(d.Reject.Headers, "ratelimit-policy"); got != `"fleet";q=3;w=60` {
		t.Errorf("policy %q, want the service's limit", got)
	}
	if other := g.Decide(get("/api/x", bearer("bob", nil)), now.Add(time.Second)); other.Kind != gateway.AskFleet {
		t.Errorf("another key: kind %d, want a call", other.Kind)
	}
	if after := g.Decide(req, now.Add(15*time.Second)); after.Kind != gateway.AskFleet {
		t.Errorf("after the reset: kind %d, want a call", after.Kind)
	}
}

// maxDecideAllocations bounds the allocations of deciding a request with a
// cached token under a local limit, headers included: inside the wasm VM
// an allocation costs about as much as a host call (README "Performance").
// Today: the rate outcome (its header pairs inside it), the header values
// (one string), the managed headers found (authorization), and the
// record's read and write in the shared-data store (copies, as the host's
// are).
const maxDecideAllocations = 5

func TestDecideAllocations(t *testing.T) {
	g := newGateway(t, strings.Replace(limitedConfig, `"requests": 3,`, `"requests": 1000000,`, 1), "")
	req := get("/api/x", bearer("alice", nil))
	if d := g.Decide(req, now); d.Kind != gateway.Forward || len(d.Rate.Headers) == 0 {
		t.Fatalf("decision %+v, want a forward with rate-limit headers", d)
	}
	if n := testing.AllocsPerRun(200, func() { g.Decide(req, now) }); n > maxDecideAllocations {
		t.Errorf("Decide: %v allocations per request, want at most %d", n, maxDecideAllocations)
	} else {
		t.Logf("Decide: %v allocations per request", n)
	}
}

// grpcAnswerOK is the service's gRPC answer for 3 per minute, 2 remaining,
// reset in 14 s: a frame (flag 0, length 18) around the RateLimitResponse.
var grpcAnswerOK = []byte{0, 0, 0, 0, 18,
	0x08, 0x01, // overall_code OK
	0x12, 14, // statuses[0]
	0x08, 0x01, // code OK
	0x12, 4, 0x08, 3, 0x10, 2, // current_limit: 3 per MINUTE
	0x18, 2, // limit_remaining
	0x22, 2, 0x08, 14, // duration_until_reset: 14 s
}

// By default the call is gRPC: a framed RateLimitRequest, and an answer is
// understood only with grpc-status 0.
func TestFleetOverGRPC(t *testing.T) {
	for _, tt := range []struct {
		name, onFailure string
		reply           fleet.Reply
		kind            gateway.Kind
		source          gateway.RateSource
		remaining       string
	}{
		{"under the limit", "deny", fleet.Reply{Status: 200, GRPCStatus: "0", Body: grpcAnswerOK}, gateway.Forward, gateway.RateFleet, "2"},
		{"unavailable, deny", "deny", fleet.Reply{Status: 200, GRPCStatus: "14"}, gateway.Reject, gateway.RateFleetUnavailable, ""},
		{"unavailable, allow", "allow", fleet.Reply{Status: 200, GRPCStatus: "14"}, gateway.Forward, gateway.RateFleetUnavailable, ""},
		{"a JSON answer, deny", "deny", fleet.Reply{Status: 200, Body: []byte(`{"overallCode":"OK"}`)}, gateway.Reject, gateway.RateFleetUnavailable, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := newGateway(t, strings.NewReplacer("%s", tt.onFailure, `"json"`, `"grpc"`).Replace(fleetConfig), "")
			ask := g.Decide(get("/api/x", bearer("alice", nil)), now)
			if want := fleet.GRPCRequestBody(nil, "portcullis", fleet.KeyEntry, "alice", "api", 1); string(ask.Fleet.Body) != string(want) {
				t.Fatalf("call body % x, want the gRPC request % x", ask.Fleet.Body, want)
			}
			d := g.FleetAnswer(ask.Fleet, tt.reply, now)
			if d.Kind != tt.kind || d.Rate == nil || d.Rate.Source != tt.source {
				t.Fatalf("kind %d rate %+v, want kind %d from source %d", d.Kind, d.Rate, tt.kind, tt.source)
			}
			if got := header(d.Rate.Headers, "x-ratelimit-remaining"); got != tt.remaining {
				t.Errorf("remaining %q, want %q", got, tt.remaining)
			}
		})
	}
}
