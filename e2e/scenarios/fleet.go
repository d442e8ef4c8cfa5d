package scenarios

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/e2e/harness"
)

// Fleet-mode parameters: FleetClients parallel requests with one key, spread
// over two gateways in front of one ratelimit service whose descriptor
// config allows FleetLimit per hour on the "api" route.
const (
	FleetLimit   = 10
	FleetClients = 40
)

// fleetDescriptors is the test's descriptor config: hours, so a run never
// straddles a window edge unnoticed (see waitAwayFromHourEdge).
const fleetDescriptors = `domain: portcullis
descriptors:
  - key: api_key
    descriptors:
      - key: route
        rate_limit:
          unit: hour
          requests_per_unit: ` + "10" + `
`

// FleetConfig is the shipped plugin configuration in fleet mode with the
// given failure mode, calling the service over protocol (grpc or json).
func FleetConfig(t *testing.T, onFailure, protocol string) string {
	return patchConfig(t, harness.ShippedPluginConfig(t), func(cfg map[string]any) {
		delete(cfg, "cache") // every request must reach the upstream to be counted there
		cfg["rate_limit"] = map[string]any{
			"mode":  "fleet",
			"fleet": map[string]any{"on_failure": onFailure, "timeout_ms": 500, "protocol": protocol},
		}
		cfg["log"] = everyErrorLogged
		costly := map[string]any{"name": "costly", "prefix": "/api/costly", "cost": FleetCost}
		leased := map[string]any{"name": "leased", "prefix": "/api/leased", "fleet_lease": map[string]any{"max_batch": FleetLeaseBatch}}
		cfg["routes"] = append([]any{costly, leased}, cfg["routes"].([]any)...)
	})
}

// FleetLeaseBatch is the largest batch the fleet gateways' "leased" rule
// reserves in one call.
const FleetLeaseBatch = 4

// FleetCost is the cost of a request of the fleet gateways' "costly" rule,
// sent to the service as its hitsAddend.
const FleetCost = 4

// fleetScenarios runs two fail-open gateways (one calling the service over
// gRPC, the other over /json, sharing its limits) and one fail-closed
// gateway in front of one envoyproxy/ratelimit (with its own Redis), a
// hybrid gateway, and two gateways whose gRPC service answers UNAVAILABLE.
func fleetScenarios(t *testing.T, target harness.Target, redisAddr string) {
	if strconv.Itoa(FleetLimit) != "10" {
		t.Fatal("fleetDescriptors hard-codes FleetLimit")
	}
	svc := harness.StartRateLimitService(t, redisAddr, harness.WriteDescriptorConfig(t, fleetDescriptors))
	overGRPC := map[string]string{harness.RateLimitCluster: harness.H2C(svc.GRPCAddr)}
	overJSON := map[string]string{harness.RateLimitCluster: harness.HTTP1(svc.Addr)}
	counted := countCalls(t, svc.GRPCAddr)
	unavailable := map[string]string{harness.RateLimitCluster: harness.H2C(grpcUnavailable(t))}
	starts := []harness.Options{
		{PluginConfig: FleetConfig(t, "allow", "grpc"), Clusters: overGRPC},
		{PluginConfig: FleetConfig(t, "allow", "json"), Clusters: overJSON},
		{PluginConfig: FleetConfig(t, "deny", "grpc"), Clusters: overGRPC},
		{PluginConfig: HybridConfig(t), Clusters: map[string]string{harness.RateLimitCluster: harness.H2C(counted.addr)}},
		{PluginConfig: FleetConfig(t, "allow", "grpc"), Clusters: unavailable},
		{PluginConfig: FleetConfig(t, "deny", "grpc"), Clusters: unavailable},
	}
	gateways := make([]*harness.Gateway, len(starts))
	var wg sync.WaitGroup
	for i, opts := range starts {
		wg.Go(func() { gateways[i] = target.Start(t, opts) })
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	a, b, closed, hybrid := gateways[0], gateways[1], gateways[2], gateways[3]
	t.Run("grpc_error_status_follows_failure_mode", func(t *testing.T) { failureModeApplies(t, gateways[4], gateways[5]) })
	t.Run("hybrid_local_refusals_make_no_call", func(t *testing.T) { hybridLocalFirst(t, hybrid, counted) })
	var key string
	t.Run("two_gateways_share_one_limit", func(t *testing.T) { key = fleetBurst(t, a, b) })
	t.Run("blocked_key_makes_no_call", func(t *testing.T) { blockedKeyNoCall(t, a, key) })
	t.Run("cost_is_the_services_hits_addend", func(t *testing.T) { fleetCost(t, a, b) })
	t.Run("lease_alone_admits_the_limit_with_fewer_calls", func(t *testing.T) { leaseAlone(t, a) })
	t.Run("leases_of_two_gateways_never_exceed_the_limit", func(t *testing.T) { leaseShared(t, a, b) })
	t.Run("live_service_fail_closed_gateway_admits", func(t *testing.T) {
		tok := Token(harness.TestSecret, freshKey("closed"), nil)
		if resp := Send(t, closed, Request{Path: "/api/x", Header: Bearer(tok)}); resp.Status != http.StatusOK {
			t.Fatalf("want 200 while the service runs, got:\n%s", resp)
		}
	})
	svc.Stop()
	t.Run("service_killed_follows_failure_mode", func(t *testing.T) { failureModeApplies(t, a, closed) })
	// gateways[4] only forwarded: it has no error to log.
	for _, gw := range []*harness.Gateway{a, b, closed, hybrid, gateways[5]} {
		t.Run("every_error_logged_once", func(t *testing.T) { AssertErrorsLogged(t, gw) })
	}
}

// HybridLocalLimit is the hybrid gateway's local limit per hour, tighter
// than the service's FleetLimit.
const HybridLocalLimit = 3

// HybridConfig is the shipped plugin configuration in hybrid mode: a local
// limit of HybridLocalLimit per hour in front of the service's.
func HybridConfig(t *testing.T) string {
	return patchConfig(t, harness.ShippedPluginConfig(t), func(cfg map[string]any) {
		delete(cfg, "cache")
		cfg["rate_limit"] = map[string]any{
			"mode":    "hybrid",
			"default": []any{map[string]any{"requests": HybridLocalLimit, "window_seconds": 3600}},
			"fleet":   map[string]any{"on_failure": "deny", "timeout_ms": 500},
		}
		cfg["log"] = everyErrorLogged
	})
}

// callCounter is a gRPC (HTTP/2 without TLS) proxy in front of the
// ratelimit service that counts the calls reaching it.
type callCounter struct {
	addr  string
	calls atomic.Int64
}

func countCalls(t *testing.T, grpcService string) *callCounter {
	c := &callCounter{}
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: grpcService})
	proxy.Transport = &http.Transport{Protocols: h2c()}
	c.addr = serveH2C(t, func(w http.ResponseWriter, r *http.Request) {
		c.calls.Add(1)
		proxy.ServeHTTP(w, r)
	})
	return c
}

// grpcUnavailable starts an HTTP/2 server (no TLS) that answers every call
// as a gRPC server with no backend would: trailers-only, grpc-status 14
// UNAVAILABLE. It returns its address.
func grpcUnavailable(t *testing.T) string {
	return serveH2C(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("content-type", "application/grpc")
		w.Header().Set("grpc-status", "14")
		w.Header().Set("grpc-message", "no healthy upstream")
		w.WriteHeader(http.StatusOK)
	})
}

// serveH2C serves handler over HTTP/2 without TLS until t ends.
func serveH2C(t *testing.T, handler http.HandlerFunc) string {
	srv := httptest.NewUnstartedServer(handler)
	srv.Config.Protocols = h2c()
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// h2c is HTTP/2 with prior knowledge, without TLS: how gRPC is spoken to
// a plain-text port.
func h2c() *http.Protocols {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &p
}

// hybridLocalFirst: a fresh key on the hybrid gateway is admitted
// HybridLocalLimit times, each after one call to the service, with the
// local limit reported (it is the tighter); then refused by the local
// limit, and the service sees no call for those.
func hybridLocalFirst(t *testing.T, gw *harness.Gateway, service *callCounter) {
	waitAwayFromHourEdge(30 * time.Second)
	tok := Token(harness.TestSecret, freshKey("hybrid"), nil)
	before, upstream := service.calls.Load(), gw.Upstream.Count()
	for i := range HybridLocalLimit + 5 {
		resp := Send(t, gw, Request{Path: "/api/hybrid", Header: Bearer(tok)})
		if i >= HybridLocalLimit {
			checkTooMany(t, gw, resp, HybridLocalLimit, 3600, 1)
			continue
		}
		if resp.Status != http.StatusOK {
			t.Fatalf("request %d: want 200, got:\n%s", i+1, resp)
		}
		if got := withoutPK(t, resp.Header.Get("RateLimit-Policy")); got != `"default";q=3;w=3600` {
			t.Errorf("request %d: RateLimit-Policy %q, want the local limit (the tighter)", i+1, got)
		}
	}
	if got := service.calls.Load() - before; got != HybridLocalLimit {
		t.Errorf("the service saw %d calls, want %d: one per locally admitted request, none for the %d refused locally", got, HybridLocalLimit, 5)
	}
	if got := gw.Upstream.Count() - upstream; got != HybridLocalLimit {
		t.Errorf("the upstream received %d requests, want %d", got, HybridLocalLimit)
	}
}

// freshKey is a key (or path segment) no earlier request used.
func freshKey(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// waitAwayFromHourEdge sleeps past the next hour boundary when it is less
// than margin away: the service counts in fixed hourly windows, and a burst
// split by an edge would rightly admit more than one window's limit.
func waitAwayFromHourEdge(margin time.Duration) {
	now := time.Now()
	if next := now.Truncate(time.Hour).Add(time.Hour); next.Sub(now) < margin {
		time.Sleep(next.Sub(now) + time.Second)
	}
}

// fleetBurst sends FleetClients parallel requests with one fresh key,
// alternating between the gateways: exactly FleetLimit are admitted in all,
// the rest are 429 JSON, and only the admitted reach an upstream.
func fleetBurst(t *testing.T, a, b *harness.Gateway) string {
	waitAwayFromHourEdge(30 * time.Second)
	key := freshKey("fleet")
	tok := Token(harness.TestSecret, key, nil)
	before := a.Upstream.Count() + b.Upstream.Count()
	responses, errs := atOnce(FleetClients, func(i int) (Response, error) {
		return Do([]*harness.Gateway{a, b}[i%2], Request{Path: "/api/fleet", Header: Bearer(tok)})
	})
	admitted := 0
	for i, resp := range responses {
		gw := a
		if i%2 == 1 {
			gw = b
		}
		switch {
		case errs[i] != nil:
			t.Errorf("client %d: %v", i, errs[i])
		case resp.Status == http.StatusOK:
			admitted++
			if got := resp.Header.Get("X-RateLimit-Limit"); got != strconv.Itoa(FleetLimit) {
				t.Errorf("200: X-RateLimit-Limit %q, want %d", got, FleetLimit)
			}
			if got := withoutPK(t, resp.Header.Get("RateLimit-Policy")); got != `"fleet";q=10;w=3600` {
				t.Errorf("200: RateLimit-Policy %q", got)
			}
		default:
			checkTooMany(t, gw, resp, FleetLimit, 3600, 1)
		}
	}
	if admitted != FleetLimit {
		t.Errorf("%d of %d admitted across both gateways; want exactly %d", admitted, FleetClients, FleetLimit)
	}
	if got := a.Upstream.Count() + b.Upstream.Count() - before; got != FleetLimit {
		t.Errorf("the upstreams received %d requests, want exactly %d", got, FleetLimit)
	}
	return key
}

// fleetCost: a fresh key on the "costly" rule, alternating between the
// gateways, gets ⌊FleetLimit/FleetCost⌋ requests in all: the service
// charges each FleetCost hits.
func fleetCost(t *testing.T, a, b *harness.Gateway) {
	waitAwayFromHourEdge(30 * time.Second)
	tok := Token(harness.TestSecret, freshKey("fleet-cost"), nil)
	admitted := 0
	for i := range FleetLimit {
		gw := []*harness.Gateway{a, b}[i%2]
		resp := Send(t, gw, Request{Path: "/api/costly", Header: Bearer(tok)})
		if resp.Status == http.StatusOK {
			admitted++
			continue
		}
		checkTooMany(t, gw, resp, FleetLimit, 3600, FleetCost)
	}
	if want := FleetLimit / FleetCost; admitted != want {
		t.Errorf("%d admitted at cost %d, want ⌊%d/%d⌋ = %d", admitted, FleetCost, FleetLimit, FleetCost, want)
	}
}

// leaseAlone: a fresh key on the "leased" rule of one gateway is admitted
// exactly FleetLimit times — a batch is never more than half of what the
// service has left, so one Envoy loses none of the limit — in fewer calls
// than admissions, the rest spent from its leases; then refused.
func leaseAlone(t *testing.T, gw *harness.Gateway) {
	waitAwayFromHourEdge(30 * time.Second)
	tok := Token(harness.TestSecret, freshKey("leased"), nil)
	calls0, _ := gw.Counter("portcullis.ratelimit.fleet.calls")
	spent0, _ := gw.Counter("portcullis.ratelimit.fleet.lease_spent")
	upstream := gw.Upstream.Count()
	admitted := 0
	for range FleetLimit + 4 {
		resp := Send(t, gw, Request{Path: "/api/leased", Header: Bearer(tok)})
		if resp.Status == http.StatusOK {
			admitted++
			continue
		}
		checkTooMany(t, gw, resp, FleetLimit, 3600, 1)
	}
	if admitted != FleetLimit || gw.Upstream.Count()-upstream != FleetLimit {
		t.Errorf("admitted %d (the upstream saw %d), want exactly %d", admitted, gw.Upstream.Count()-upstream, FleetLimit)
	}
	calls, _ := gw.Counter("portcullis.ratelimit.fleet.calls")
	spent, _ := gw.Counter("portcullis.ratelimit.fleet.lease_spent")
	t.Logf("%d requests: %d admitted, %d calls, %d spent from leases", FleetLimit+4, admitted, calls-calls0, spent-spent0)
	if spent-spent0 < FleetLeaseBatch-1 || calls-calls0 >= FleetLimit {
		t.Errorf("%d calls and %d requests spent from leases for %d requests; want ≥ %d from a lease and fewer calls than admissions",
			calls-calls0, spent-spent0, FleetLimit+4, FleetLeaseBatch-1)
	}
}

// leaseShared: a fresh key on the "leased" rule of two gateways, each
// leasing from the service: together they never admit more than
// FleetLimit, and at worst two batches each fewer (the rest of one and its
// renewal left unspent).
func leaseShared(t *testing.T, a, b *harness.Gateway) {
	waitAwayFromHourEdge(30 * time.Second)
	tok := Token(harness.TestSecret, freshKey("leased-2"), nil)
	admitted := 0
	for i := range 3 * FleetLimit {
		gw := []*harness.Gateway{a, b}[i%2]
		if resp := Send(t, gw, Request{Path: "/api/leased", Header: Bearer(tok)}); resp.Status == http.StatusOK {
			admitted++
		} else {
			checkTooMany(t, gw, resp, FleetLimit, 3600, 1)
		}
	}
	t.Logf("two leasing gateways: %d of %d requests admitted", admitted, 3*FleetLimit)
	if least := max(FleetLimit-2*2*FleetLeaseBatch, 1); admitted > FleetLimit || admitted < least {
		t.Errorf("two leasing gateways admitted %d, want at most %d and at least %d", admitted, FleetLimit, least)
	}
}

// blockedKeyNoCall: once a gateway has seen the key refused, it refuses the
// key from its blocklist without calling the service.
func blockedKeyNoCall(t *testing.T, gw *harness.Gateway, key string) {
	if key == "" {
		t.Skip("the burst did not run")
	}
	calls := func() int64 { n, _ := gw.Counter("portcullis.ratelimit.fleet.calls"); return n }
	cached := func() int64 { n, _ := gw.Counter("portcullis.ratelimit.fleet.blocklisted"); return n }
	// Metrics reach Envoy's /stats with a delay: wait until they settle.
	settled := func() (int64, int64) {
		var c, b int64
		eventually(3*time.Second, func() bool {
			c1, b1 := calls(), cached()
			time.Sleep(200 * time.Millisecond)
			c, b = calls(), cached()
			return c == c1 && b == b1
		})
		return c, b
	}
	calls0, cached0 := settled()
	tok := Token(harness.TestSecret, key, nil)
	const n = 5
	for range n {
		checkTooMany(t, gw, Send(t, gw, Request{Path: "/api/fleet", Header: Bearer(tok)}), FleetLimit, 3600, 1)
	}
	ok := eventually(5*time.Second, func() bool { return cached() == cached0+n })
	if c := calls(); !ok || c != calls0 {
		t.Errorf("after %d requests of a blocked key: calls %d → %d (want unchanged), blocklisted %d → %d (want +%d)",
			n, calls0, c, cached0, cached(), n)
	}
}

// failureModeApplies: with the service gone or failing, the fail-open
// gateway forwards and the fail-closed one refuses with 429 JSON; neither
// answers a 5xx.
func failureModeApplies(t *testing.T, open, closed *harness.Gateway) {
	tok := Token(harness.TestSecret, freshKey("killed"), nil)
	for i := range 5 {
		if resp := Send(t, open, Request{Path: "/api/x", Header: Bearer(tok)}); resp.Status != http.StatusOK {
			t.Errorf("fail-open request %d: want 200 from the upstream, got:\n%s", i, resp)
		}
		resp := Send(t, closed, Request{Path: "/api/x", Header: Bearer(tok)})
		if resp.Status != http.StatusTooManyRequests {
			t.Errorf("fail-closed request %d: want 429, got:\n%s", i, resp)
			continue
		}
		var e rateLimitBody
		if err := json.Unmarshal(resp.Body, &e); err != nil || e.Error != "rate_limit_exceeded" ||
			e.Message != "rate limit service unavailable" || e.RetryAfter != 1 || resp.Header.Get("Retry-After") != "1" || e.RequestID == "" {
			t.Errorf("fail-closed 429: want the envelope with retry_after 1 = Retry-After, got:\n%s", resp)
			continue
		}
		gatewayErrors.add(closed, e.RequestID, http.StatusTooManyRequests)
	}
	for _, gw := range []*harness.Gateway{open, closed} {
		if !eventually(5*time.Second, func() bool { n, _ := gw.Counter("portcullis.ratelimit.fleet.unavailable"); return n >= 5 }) {
			n, _ := gw.Counter("portcullis.ratelimit.fleet.unavailable")
			t.Errorf("fleet.unavailable = %d, want ≥ 5", n)
		}
	}
}
