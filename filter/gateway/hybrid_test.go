package gateway_test

import (
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/filter/fleet"
	"github.com/portcullis/portcullis/filter/gateway"
	"github.com/portcullis/portcullis/filter/ratelimit"
)

// hybridConfig puts a local limit of 2 per minute (per Envoy, no call) in
// front of the fleet's quota; extra goes into the rate_limit block.
const hybridConfig = `{
  "jwt": {"secrets": [{"env": "SECRET"}], "issuer": "test", "audiences": ["api"]},
  "routes": [{"name": "api", "prefix": "/api"}],
  "rate_limit": {"mode": "hybrid", "default": [{"requests": 2, "window_seconds": 60}], "fleet": {"on_failure": "%s", "protocol": "json"}%x}
}`

func hybridGateway(t *testing.T, onFailure, extra string) *gateway.Gateway {
	return newGateway(t, strings.NewReplacer("%s", onFailure, "%x", extra).Replace(hybridConfig), "")
}

// fleetOK is the service admitting with remaining left of 100 per hour.
func fleetOK(remaining string) []byte {
	return []byte(`{"overallCode":"OK","statuses":[{"code":"OK","currentLimit":{"requestsPerUnit":100,"unit":"HOUR"},"limitRemaining":` + remaining + `,"durationUntilReset":"600s"}]}`)
}

const fleetOver = `{"overallCode":"OVER_LIMIT","statuses":[{"code":"OVER_LIMIT","currentLimit":{"requestsPerUnit":100,"unit":"HOUR"},"durationUntilReset":"600s"}]}`

// The local limit decides first: what it admits goes to the fleet, what it
// refuses is refused here with no call; the response reports the tighter
// limit, and each request counts one outcome.
func TestHybridLocalFirstThenFleet(t *testing.T) {
	g := hybridGateway(t, "allow", "")
	req := get("/api/x", bearer("alice", nil))
	ask := g.Decide(req, now)
	if ask.Kind != gateway.AskFleet || ask.Fleet == nil || ask.Rate != nil {
		t.Fatalf("first request: kind %d, call %v, rate %+v; want a call and no outcome yet", ask.Kind, ask.Fleet, ask.Rate)
	}
	// The fleet has plenty left: the local limit (1 left) is the tighter.
	d := g.FleetAnswer(ask.Fleet, fleet.Reply{Status: 200, Body: fleetOK("90")}, now)
	if d.Kind != gateway.Forward || d.Rate == nil || d.Rate.Source != gateway.RateFleet || d.Rate.Decision.Limit.Name != "default" {
		t.Fatalf("answer: kind %d rate %+v; want forwarded, reporting the local limit (source fleet)", d.Kind, d.Rate)
	}
	if got := header(d.Rate.Headers, "x-ratelimit-remaining"); got != "1" {
		t.Errorf("remaining %q, want the local limit's 1", got)
	}
	// The fleet is the tighter now: its numbers are reported.
	ask = g.Decide(req, now)
	d = g.FleetAnswer(ask.Fleet, fleet.Reply{Status: 200, Body: fleetOK("0")}, now)
	if d.Rate.Decision.Limit.Name != "fleet" || header(d.Rate.Headers, "x-ratelimit-remaining") != "0" {
		t.Errorf("answer: %+v, want the fleet's limit with 0 left", d.Rate)
	}
	// The local limit is spent: refused here, no call.
	d = g.Decide(req, now)
	if d.Kind != gateway.Reject || d.Fleet != nil || d.Rate.Source != gateway.RateLocal || d.Reject.Policy != "default" {
		t.Fatalf("third request: kind %d, call %v, rate %+v; want a local refusal without a call", d.Kind, d.Fleet, d.Rate)
	}
}

// A fleet refusal is reported as the fleet's, and remembered: the blocklist
// refuses the pair without a call (after the local limit admitted it).
func TestHybridFleetRefusal(t *testing.T) {
	g := hybridGateway(t, "allow", "")
	req := get("/api/x", bearer("bob", nil))
	ask := g.Decide(req, now)
	d := g.FleetAnswer(ask.Fleet, fleet.Reply{Status: 429, Body: []byte(fleetOver)}, now)
	if d.Kind != gateway.Reject || d.Reject.Policy != "fleet" || header(d.Reject.Headers, "ratelimit-policy") != `"fleet";q=100;w=3600` {
		t.Fatalf("refusal %+v, want the fleet's", d.Reject)
	}
	d = g.Decide(req, now.Add(time.Second))
	if d.Kind != gateway.Reject || d.Fleet != nil || d.Rate.Source != gateway.RateBlocklist {
		t.Fatalf("blocked: kind %d call %v rate %+v; want the blocklist's refusal, no call", d.Kind, d.Fleet, d.Rate)
	}
}

// Each side keeps its own failure mode: the service failing follows
// fleet.on_failure, reporting the local limit's numbers when it admits.
func TestHybridFailureModes(t *testing.T) {
	g := hybridGateway(t, "allow", "")
	ask := g.Decide(get("/api/x", bearer("carol", nil)), now)
	d := g.FleetAnswer(ask.Fleet, fleet.Reply{}, now)
	if d.Kind != gateway.Forward || d.Rate.Source != gateway.RateFleetUnavailable || header(d.Rate.Headers, "x-ratelimit-remaining") != "1" {
		t.Fatalf("service down, allow: kind %d rate %+v; want forwarded with the local limit's headers", d.Kind, d.Rate)
	}
	g = hybridGateway(t, "deny", "")
	ask = g.Decide(get("/api/x", bearer("carol", nil)), now)
	d = g.FleetAnswer(ask.Fleet, fleet.Reply{}, now)
	if d.Kind != gateway.Reject || d.Reject.Reason != gateway.ReasonRateLimitUnavailable {
		t.Fatalf("service down, deny: %+v, want 429 rate limit service unavailable", d.Reject)
	}
	// The service has no limit for the descriptor: the local limit's outcome.
	g = hybridGateway(t, "allow", "")
	ask = g.Decide(get("/api/x", bearer("dave", nil)), now)
	d = g.FleetAnswer(ask.Fleet, fleet.Reply{Status: 200, Body: []byte(`{"overallCode":"OK","statuses":[{"code":"OK"}]}`)}, now)
	if d.Rate == nil || d.Rate.Source != gateway.RateLocal || header(d.Rate.Headers, "x-ratelimit-limit") != "2" {
		t.Fatalf("no fleet limit: %+v, want the local outcome", d.Rate)
	}
}

// In shadow mode a local would-be refusal is forwarded, still without a
// call, as it would make none when enforced.
func TestHybridShadowLocalRefusalMakesNoCall(t *testing.T) {
	g := hybridGateway(t, "allow", `, "enforce": false`)
	req := get("/api/x", bearer("erin", nil))
	for range 2 {
		ask := g.Decide(req, now)
		g.FleetAnswer(ask.Fleet, fleet.Reply{Status: 200, Body: fleetOK("50")}, now)
	}
	d := g.Decide(req, now)
	if d.Kind != gateway.Forward || d.Fleet != nil || !d.Rate.ShadowDenied() {
		t.Fatalf("kind %d call %v rate %+v; want forwarded, shadow-denied locally, no call", d.Kind, d.Fleet, d.Rate)
	}
}

// A local fault is counted even when the fleet's decision is reported.
func TestHybridKeepsLocalFaults(t *testing.T) {
	g := hybridGateway(t, "allow", `, "slots": 4`)
	for _, key := range []string{"k1", "k2", "k3", "k4"} {
		ask := g.Decide(get("/api/x", bearer(key, nil)), now)
		g.FleetAnswer(ask.Fleet, fleet.Reply{Status: 200, Body: fleetOK("99")}, now)
	}
	ask := g.Decide(get("/api/x", bearer("k5", nil)), now)
	if ask.Kind != gateway.AskFleet {
		t.Fatalf("k5: kind %d, want a call (it shares an entry with one admission of 2)", ask.Kind)
	}
	d := g.FleetAnswer(ask.Fleet, fleet.Reply{Status: 200, Body: fleetOK("0")}, now)
	if d.Rate.Decision.Limit.Name != "fleet" || !d.Rate.LocalFaults.Has(ratelimit.FaultShared) {
		t.Fatalf("rate %+v, want the fleet's decision with the local FaultShared kept", d.Rate)
	}
}
