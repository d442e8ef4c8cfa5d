package gateway_test

import (
	"strings"
	"testing"

	"github.com/portcullis/portcullis/filter/fleet"
	"github.com/portcullis/portcullis/filter/gateway"
)

// meteredConfig limits /api to 10 per minute and charges what the
// response's x-tokens-used reports; mode goes into the rate_limit block.
const meteredConfig = `{
  "jwt": {"secrets": [{"env": "SECRET"}], "issuer": "test", "audiences": ["api"]},
  "routes": [{"name": "metered", "prefix": "/api", "cost_header": "x-tokens-used"}, {"name": "plain", "prefix": "/"}],
  "rate_limit": {%s}
}`

func meteredGateway(t *testing.T, mode string) *gateway.Gateway {
	return newGateway(t, strings.Replace(meteredConfig, "%s", mode, 1), "")
}

const meteredLocal = `"default": [{"requests": 10, "window_seconds": 60}]`

// The response's reported cost beyond the request's 1 is a debt the next
// requests pay: at 5 a request, 2 are admitted of 10.
func TestCostHeaderChargesTheDebt(t *testing.T) {
	g := meteredGateway(t, meteredLocal)
	req := get("/api/x", bearer("alice", nil))
	admitted := 0
	for range 10 {
		d := g.Decide(req, now)
		if d.Kind != gateway.Forward {
			continue
		}
		admitted++
		if d.CostReport == nil || d.CostReport.Header != "x-tokens-used" {
			t.Fatalf("no cost report on %+v", d)
		}
		rc := g.ChargeResponse(d.CostReport, "5", now)
		if rc.Invalid || rc.Units != 4 || rc.Local == nil || rc.FleetBody != nil {
			t.Fatalf("charge: %+v, want 4 units charged locally, no fleet call", rc)
		}
	}
	if admitted != 2 {
		t.Fatalf("admitted %d, want 10/5 = 2", admitted)
	}
	// A rule without a cost header has no report; a refused request neither.
	if d := g.Decide(get("/other", bearer("bob", nil)), now); d.CostReport != nil {
		t.Errorf("plain rule: %+v", d.CostReport)
	}
	if d := g.Decide(req, now); d.Kind != gateway.Reject || d.CostReport != nil {
		t.Errorf("refused request: kind %d report %+v", d.Kind, d.CostReport)
	}
}

func TestCostHeaderValues(t *testing.T) {
	for _, tc := range []struct {
		value   string
		invalid bool
		units   int64
	}{
		{"", false, 0}, {"0", false, 0}, {"1", false, 0}, {"3", false, 2}, {"1000000000", false, 999_999_999},
		{"1000000001", true, 0}, {"99999999999", true, 0}, {"-1", true, 0}, {"1.5", true, 0}, {" 3", true, 0},
		{"3 ", true, 0}, {"1,2", true, 0}, {"lots", true, 0}, {"0x10", true, 0}, {"+3", true, 0},
	} {
		g := meteredGateway(t, meteredLocal)
		d := g.Decide(get("/api/x", bearer("alice", nil)), now)
		rc := g.ChargeResponse(d.CostReport, tc.value, now)
		if rc.Invalid != tc.invalid || rc.Units != tc.units || (rc.Local != nil) != (tc.units > 0) {
			t.Errorf("value %q: %+v, want invalid %v units %d", tc.value, rc, tc.invalid, tc.units)
		}
	}
}

// Fleet mode charges the debt as the call's hitsAddend; hybrid mode both.
func TestCostHeaderFleetAndHybrid(t *testing.T) {
	g := meteredGateway(t, `"mode": "fleet", "fleet": {"protocol": "json"}`)
	d := g.Decide(get("/api/x", bearer("alice", nil)), now)
	rc := g.ChargeResponse(d.CostReport, "7", now)
	if rc.Local != nil || !strings.Contains(string(rc.FleetBody), `"hitsAddend":6`) || !strings.Contains(string(rc.FleetBody), `"value":"alice"`) {
		t.Errorf("fleet: local %v body %s, want a call with hitsAddend 6 for alice", rc.Local, rc.FleetBody)
	}
	g = meteredGateway(t, `"mode": "hybrid", "fleet": {"protocol": "json"}, `+meteredLocal)
	d = g.Decide(get("/api/x", bearer("alice", nil)), now)
	rc = g.ChargeResponse(d.CostReport, "7", now)
	if rc.Local == nil || rc.Local.Remaining != 3 || !strings.Contains(string(rc.FleetBody), `"hitsAddend":6`) {
		t.Errorf("hybrid: %+v, want 3 left locally and a call with hitsAddend 6", rc)
	}
	g = meteredGateway(t, `"mode": "fleet", "fleet": {}`)
	d = g.Decide(get("/api/x", bearer("alice", nil)), now)
	rc = g.ChargeResponse(d.CostReport, "7", now)
	if want := fleet.GRPCRequestBody(nil, "portcullis", fleet.KeyEntry, "alice", d.Rule.Name, 6); string(rc.FleetBody) != string(want) {
		t.Errorf("gRPC: debt call % x, want the gRPC request with hits_addend 6 % x", rc.FleetBody, want)
	}
}
