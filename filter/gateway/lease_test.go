package gateway_test

import (
	"testing"
	"time"

	"github.com/portcullis/portcullis/filter/fleet"
	"github.com/portcullis/portcullis/filter/gateway"
)

const leaseConfig = `{
  "jwt": {"secrets": [{"env": "SECRET"}], "issuer": "test", "audiences": ["api"]},
  "routes": [{"name": "api", "prefix": "/api", "fleet_lease": {"max_batch": 8}}, {"name": "plain", "prefix": "/plain"}],
  "rate_limit": {"mode": "fleet", "fleet": {"protocol": "json"}}
}`

// A leasing rule's first call learns the limit; the next reserves a batch,
// whose hits the following requests spend with no call, reporting the
// service's count plus what is left of the lease; a rule without
// fleet_lease calls every time.
func TestLeasedHitsAreSpentWithoutACall(t *testing.T) {
	g := newGateway(t, leaseConfig, "")
	req := get("/api/x", bearer("alice", nil))
	ask := g.Decide(req, now)
	if ask.Kind != gateway.AskFleet || ask.Fleet.Lease != 1 {
		t.Fatalf("first request: kind %d, lease %d; want a call reserving 1 (the cost)", ask.Kind, ask.Fleet.Lease)
	}
	g.FleetAnswer(ask.Fleet, fleet.Reply{Status: 200, Body: fleetOK("99")}, now)
	at := now.Add(100 * time.Millisecond)
	ask = g.Decide(req, at)
	if ask.Kind != gateway.AskFleet || ask.Fleet.Lease != 4 {
		t.Fatalf("second request: kind %d, lease %d; want a call reserving 4 (the batch grows at most 4×)", ask.Kind, ask.Fleet.Lease)
	}
	d := g.FleetAnswer(ask.Fleet, fleet.Reply{Status: 200, Body: fleetOK("95")}, at)
	if got := header(d.Rate.Headers, "x-ratelimit-remaining"); d.Kind != gateway.Forward || got != "98" {
		t.Fatalf("the batch's answer: kind %d, remaining %q; want forwarded with 95 + 3 left", d.Kind, got)
	}
	d = g.Decide(req, at)
	if d.Kind != gateway.Forward || d.Fleet != nil || d.Rate.Source != gateway.RateLease || header(d.Rate.Headers, "x-ratelimit-remaining") != "97" {
		t.Fatalf("leased request: kind %d, call %v, rate %+v; want forwarded from the lease, 95 + 2 left", d.Kind, d.Fleet, d.Rate)
	}
	// Down to 1 of 4: the request is admitted from the lease and asks for
	// the next batch (8: the rate wants more, max_batch caps it) in the
	// same call; the answer does not change its admission.
	renew := g.Decide(req, at)
	if renew.Kind != gateway.AskFleet || renew.Fleet.Lease != 8 {
		t.Fatalf("renewing request: kind %d, call %+v; want a call reserving 8", renew.Kind, renew.Fleet)
	}
	if d = g.Decide(req, at); d.Kind != gateway.Forward || d.Rate.Source != gateway.RateLease {
		t.Fatalf("while the renewal is in flight: kind %d, rate %+v; want forwarded from what is left", d.Kind, d.Rate)
	}
	d = g.FleetAnswer(renew.Fleet, fleet.Reply{Status: 200, Body: fleetOK("80")}, at)
	if d.Kind != gateway.Forward || d.Rate.Source != gateway.RateLease || header(d.Rate.Headers, "x-ratelimit-remaining") != "96" {
		t.Fatalf("the renewal's answer: kind %d, rate %+v; want the admission from the lease, unchanged", d.Kind, d.Rate)
	}
	for i := range 8 {
		if d = g.Decide(req, at); d.Kind != gateway.Forward && d.Fleet.Lease == 0 {
			t.Fatalf("request %d of the renewed lease: kind %d, call %+v", i, d.Kind, d.Fleet)
		}
	}
	if d = g.Decide(get("/plain/x", bearer("alice", nil)), at); d.Kind != gateway.AskFleet || d.Fleet.Lease != 0 {
		t.Fatalf("a rule without fleet_lease: kind %d, lease %d; want a plain call", d.Kind, d.Fleet.Lease)
	}
}

// While one request's lease call is in flight, the others make plain calls;
// a refused or failed lease call releases the pair at once.
func TestLeaseCallInFlight(t *testing.T) {
	g := newGateway(t, leaseConfig, "")
	req := get("/api/x", bearer("bob", nil))
	first := g.Decide(req, now)
	second := g.Decide(req, now)
	if first.Fleet.Lease == 0 || second.Kind != gateway.AskFleet || second.Fleet.Lease != 0 {
		t.Fatalf("leases %d then %d; want the second call plain while the first is in flight", first.Fleet.Lease, second.Fleet.Lease)
	}
	if d := g.FleetAnswer(first.Fleet, fleet.Reply{}, now); d.Rate.Source != gateway.RateFleetUnavailable {
		t.Fatalf("failed call: %+v", d.Rate)
	}
	if d := g.Decide(req, now); d.Fleet == nil || d.Fleet.Lease == 0 {
		t.Fatalf("after a failed lease call: %+v; want the next request to ask for a lease again", d.Fleet)
	}
}

// A pair the service refused is blocklisted, but hits already leased are
// still spent (the service counted them); then the blocklist refuses.
func TestLeaseIsSpentBeforeTheBlocklist(t *testing.T) {
	g := newGateway(t, leaseConfig, "")
	req := get("/api/x", bearer("carol", nil))
	ask := g.Decide(req, now)
	g.FleetAnswer(ask.Fleet, fleet.Reply{Status: 200, Body: fleetOK("50")}, now)
	at := now.Add(100 * time.Millisecond)
	leasing := g.Decide(req, at)
	plain := g.Decide(req, at)
	if leasing.Fleet.Lease != 4 || plain.Fleet.Lease != 0 {
		t.Fatalf("leases %d and %d, want 4 and a plain call", leasing.Fleet.Lease, plain.Fleet.Lease)
	}
	if d := g.FleetAnswer(plain.Fleet, fleet.Reply{Status: 429, Body: []byte(fleetOver)}, at); d.Kind != gateway.Reject {
		t.Fatalf("refused call: kind %d", d.Kind)
	}
	g.FleetAnswer(leasing.Fleet, fleet.Reply{Status: 200, Body: fleetOK("0")}, at) // granted before the refusal was counted: 3 left
	for i := range 3 {
		if d := g.Decide(req, at); d.Kind != gateway.Forward || d.Rate.Source != gateway.RateLease {
			t.Fatalf("request %d: kind %d, rate %+v; want forwarded from the lease", i, d.Kind, d.Rate)
		}
	}
	if d := g.Decide(req, at); d.Kind != gateway.Reject || d.Fleet != nil || d.Rate.Source != gateway.RateBlocklist {
		t.Fatalf("lease spent: kind %d, call %v, rate %+v; want the blocklist's refusal", d.Kind, d.Fleet, d.Rate)
	}
}
