package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/e2e/harness"
	"github.com/portcullis/portcullis/e2e/scenarios"
	"github.com/portcullis/portcullis/internal/jwttest"
	"github.com/portcullis/portcullis/internal/redistest"
)

// BenchmarkCompare (`make bench-compare`) sets the plugin beside Envoy's own
// filters doing the same job: every configuration is derived from the shipped
// envoy.yaml, one Envoy worker each, all in front of one small upstream, all
// driven by Debian's wrk with 256 tokens rotating (one path per token). All
// Envoys run at once and the rounds interleave only the load, so each round
// measures every configuration within seconds of the others and the ratios to
// bare Envoy hold on a noisy machine better than the absolute figures.
//
// Envoy CPU per request comes from /proc/<pid>/stat (utime+stime over the
// measurement): it depends less on what else the machine runs than
// throughput does. Parameters: PORTCULLIS_COMPARE_DURATION (per measurement,
// default 10s), PORTCULLIS_COMPARE_ROUNDS (3), PORTCULLIS_COMPARE_WARMUP (3s
// per configuration, before the first round). It is not in `make bench`: it
// takes minutes, and it is never a timed test — it only reports.
func BenchmarkCompare(b *testing.B) {
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		harness.Unavailable(b, "wrk is not on PATH (Debian: apt-get install wrk)")
	}
	duration := compareEnvDuration(b, "PORTCULLIS_COMPARE_DURATION", 10*time.Second)
	warmup := compareEnvDuration(b, "PORTCULLIS_COMPARE_WARMUP", 3*time.Second)
	rounds := 3
	if v := os.Getenv("PORTCULLIS_COMPARE_ROUNDS"); v != "" {
		if rounds, err = strconv.Atoi(v); err != nil || rounds < 1 {
			b.Fatalf("PORTCULLIS_COMPARE_ROUNDS=%q: want a number ≥ 1", v)
		}
	}

	envoy := harness.NewEnvoy(b)
	upstream := startCompareUpstream(b)
	// The node id names the configuration in the harness's log lines and in
	// the checks' failures.
	start := func(name string, opts harness.Options) *harness.Gateway {
		opts.NodeID = "compare-" + name
		opts.Concurrency = 1
		opts.Upstream = upstream
		return envoy.Start(b, opts)
	}
	native := nativeFilters(b)
	bare := start("bare", harness.Options{EditConfig: func(root map[string]any) error { return harness.ReplacePlugin(root) }})
	noop := start("noop-wasm", harness.Options{Wasm: noopModule(b)})
	noopGo := start("noop-go", harness.Options{Wasm: noopGoModule(b)})
	jwtAuthn := start("jwt_authn", harness.Options{EditConfig: native(compareLimit, false)})
	jwtAuthnCached := start("jwt_authn-cached", harness.Options{EditConfig: native(compareLimit, true)})
	plugin := start("portcullis", harness.Options{PluginConfig: withRateLimit(b, map[string]any{"default": generousLimit}, false)})
	// Fleet mode: one envoyproxy/ratelimit (and its Redis) on this machine
	// for Envoy's ratelimit filter and the plugin alike.
	svc := harness.StartRateLimitService(b, redistest.Start(b).Addr, compareDescriptors(b))
	fleetClusters := map[string]string{harness.RateLimitCluster: harness.H2C(svc.GRPCAddr)}
	nativeFleet := start("jwt_authn-ratelimit", harness.Options{EditConfig: newNatives(b).nativeFleet("portcullis"), Clusters: fleetClusters})
	pluginFleet := start("portcullis-fleet", harness.Options{PluginConfig: withFleet(b, "grpc", false), Clusters: fleetClusters})
	pluginFleetJSON := start("portcullis-fleet-json", harness.Options{PluginConfig: withFleet(b, "json", false),
		Clusters: map[string]string{harness.RateLimitCluster: harness.HTTP1(svc.Addr)}})
	pluginLeased := start("portcullis-leased", harness.Options{PluginConfig: withFleet(b, "grpc", true), Clusters: fleetClusters})
	pluginCached := start("portcullis-cached", harness.Options{PluginConfig: withShippedCache(b, withRateLimit(b, map[string]any{"default": generousLimit}, false))})

	dir := b.TempDir()
	valid, refused := compareRequests(harness.TestSecret), compareRequests("not-the-gateway-secret-"+harness.TestSecret)
	validScript, refusedScript := writeWrkScript(b, dir, "valid.lua", valid), writeWrkScript(b, dir, "refused.lua", refused)
	// One key for every request: the hot key quota leasing is for.
	hotScript := writeWrkScript(b, dir, "hot.lua", valid[3:4])

	// Each configuration does its job before it is measured.
	client := &http.Client{Timeout: 5 * time.Second}
	expect(b, client, bare, valid[0], http.StatusOK, "")
	expect(b, client, noop, valid[0], http.StatusOK, "")
	expect(b, client, noopGo, valid[0], http.StatusOK, "")
	for _, gw := range []*harness.Gateway{jwtAuthn, jwtAuthnCached, plugin, nativeFleet, pluginFleet, pluginFleetJSON, pluginLeased} {
		expect(b, client, gw, valid[0], http.StatusOK, valid[0].sub)
		expect(b, client, gw, refused[0], http.StatusUnauthorized, "")
		expect(b, client, gw, compareRequest{path: valid[0].path}, http.StatusUnauthorized, "")
	}
	for _, gw := range []*harness.Gateway{plugin, pluginFleet, pluginFleetJSON, pluginLeased} {
		if h := expect(b, client, gw, valid[1], http.StatusOK, valid[1].sub); h.Get("X-RateLimit-Limit") == "" {
			b.Fatalf("%s does not rate-limit: no X-RateLimit-Limit", gw.NodeID)
		}
	}
	// Envoy's ratelimit filter sends the plugin's descriptor: in a domain
	// whose limit is 2 per hour, a key's third request is refused.
	tinyFleet := start("jwt_authn-ratelimit-limit-2", harness.Options{EditConfig: newNatives(b).nativeFleet(compareTinyDomain), Clusters: fleetClusters})
	for _, want := range []int{http.StatusOK, http.StatusOK, http.StatusTooManyRequests} {
		expect(b, client, tinyFleet, valid[2], want, "")
	}
	// The native limiter refuses, per key, once a key is over its limit.
	tiny := start("jwt_authn-limit-2", harness.Options{EditConfig: native(2, false)})
	for _, want := range []int{http.StatusOK, http.StatusOK, http.StatusTooManyRequests} {
		expect(b, client, tiny, valid[0], want, "")
	}
	expect(b, client, tiny, valid[1], http.StatusOK, valid[1].sub)
	warmCache(b, client, pluginCached, valid)

	configs := []*compareConfig{
		{name: "bare Envoy: CORS + router (envoy.yaml without the plugin)", gw: bare, script: validScript, status: http.StatusOK},
		{name: "floor: a proxy-wasm module that does nothing (e2e/testdata/noop.wat)", gw: noop, script: validScript, status: http.StatusOK},
		{name: "floor: a Go module that does nothing (same SDK and build, e2e/wasmhost/testdata/empty)", gw: noopGo, script: validScript, status: http.StatusOK},
		{name: "Envoy: jwt_authn + local_ratelimit per key", gw: jwtAuthn, script: validScript, status: http.StatusOK},
		{name: "Envoy: jwt_authn with jwt_cache_config + local_ratelimit per key", gw: jwtAuthnCached, script: validScript, status: http.StatusOK},
		{name: "Portcullis: JWT + local rate limit, no cache", gw: plugin, script: validScript, status: http.StatusOK},
		{name: "Portcullis with its cache, every request a HIT", gw: pluginCached, script: validScript, status: http.StatusOK, hits: true},
		{name: "refused (bad signature): jwt_authn", gw: jwtAuthn, script: refusedScript, status: http.StatusUnauthorized},
		{name: "refused (bad signature): Portcullis", gw: plugin, script: refusedScript, status: http.StatusUnauthorized},
		{name: "fleet: Envoy jwt_authn + ratelimit filter (gRPC to envoyproxy/ratelimit)", gw: nativeFleet, script: validScript, status: http.StatusOK},
		{name: "fleet: Portcullis, a gRPC call per request", gw: pluginFleet, script: validScript, status: http.StatusOK, fleetCalls: true},
		{name: "fleet: Portcullis, an HTTP /json call per request", gw: pluginFleetJSON, script: validScript, status: http.StatusOK, fleetCalls: true},
		{name: "fleet: Portcullis with quota leasing (fleet_lease)", gw: pluginLeased, script: validScript, status: http.StatusOK, fleetCalls: true},
		{name: "fleet: Portcullis with quota leasing, one hot key", gw: pluginLeased, script: hotScript, status: http.StatusOK, fleetCalls: true},
	}
	floor, goFloor, pluginLimited := configs[1], configs[2], configs[5]
	nativeRefused, pluginRefused := configs[7], configs[8]
	nativeFleetRow, pluginFleetRow, pluginFleetJSONRow, pluginLeasedRow, hotLeasedRow := configs[9], configs[10], configs[11], configs[12], configs[13]

	// The machine's load frames the figures: 2 cores shared with other work
	// shift every configuration, the ratios less.
	loadBefore := loadAverage(b)
	for b.Loop() {
		for _, c := range configs {
			c.measure(b, wrk, warmup)
			c.samples = nil
		}
		for r := range rounds {
			// Each round starts one configuration later, so none is always
			// measured right after the same neighbour.
			for i := range configs {
				c := configs[(r+i)%len(configs)]
				s := c.measure(b, wrk, duration)
				c.samples = append(c.samples, s)
				fmt.Printf("round %d/%d  %-66s %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  %6.1f µs CPU/req\n",
					r+1, rounds, c.name, s.rps, s.p50/1000, s.p99/1000, s.cpu)
			}
		}
	}
	fmt.Printf("\n%d round(s) of %v per configuration, wrk -t1 -c%d, %d tokens, Envoy --concurrency 1; "+
		"median over rounds (min–max); × bare = median of the per-round ratios to bare Envoy. "+
		"Load average (1, 5, 15 min) before: %s, after: %s.\n\n",
		rounds, duration, compareConnections, len(valid), loadBefore, loadAverage(b))
	columns := []struct {
		format string
		value  func(compareSample) float64
	}{
		{"%.0f", func(s compareSample) float64 { return s.rps }},
		{"%.2f", func(s compareSample) float64 { return s.p50 / 1000 }},
		{"%.2f", func(s compareSample) float64 { return s.p99 / 1000 }},
		{"%.1f", func(s compareSample) float64 { return s.cpu }},
	}
	fmt.Println("| configuration | requests/s | × bare | p50 ms | × bare | p99 ms | × bare | Envoy CPU µs/request | × bare |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, c := range configs {
		row := "| " + c.name
		for _, col := range columns {
			row += " | " + spread(c.samples, col.value, col.format) + " | " + ratio(c, configs[0], col.value)
		}
		fmt.Println(row + " |")
	}
	fmt.Printf("\nthe wasm filter's floor (a module that does nothing) is %s× bare's Envoy CPU/request and %s× its requests/s; "+
		"a Go module that does nothing %s× and %s×; Portcullis JWT + rate limit is %s× the Go floor's CPU/request and %s× its requests/s\n",
		ratio(floor, configs[0], columns[3].value), ratio(floor, configs[0], columns[0].value),
		ratio(goFloor, configs[0], columns[3].value), ratio(goFloor, configs[0], columns[0].value),
		ratio(pluginLimited, goFloor, columns[3].value), ratio(pluginLimited, goFloor, columns[0].value))
	fmt.Printf("refused, Portcullis vs jwt_authn: requests/s %s×, Envoy CPU/request %s× (medians of per-round ratios; the floor is ≥ 0.9× requests/s)\n",
		ratio(pluginRefused, nativeRefused, columns[0].value), ratio(pluginRefused, nativeRefused, columns[3].value))
	fmt.Printf("fleet, Portcullis vs Envoy's ratelimit filter: requests/s %s×, Envoy CPU/request %s× (floor ≥ 1.0× requests/s); "+
		"over /json %s× and %s×; with quota leasing %s× and %s×\n",
		ratio(pluginFleetRow, nativeFleetRow, columns[0].value), ratio(pluginFleetRow, nativeFleetRow, columns[3].value),
		ratio(pluginFleetJSONRow, nativeFleetRow, columns[0].value), ratio(pluginFleetJSONRow, nativeFleetRow, columns[3].value),
		ratio(pluginLeasedRow, nativeFleetRow, columns[0].value), ratio(pluginLeasedRow, nativeFleetRow, columns[3].value))
	fmt.Printf("quota leasing vs Portcullis local mode: requests/s %s×, Envoy CPU/request %s× (floor ≥ 0.8× requests/s); "+
		"calls to the service per request: %s a call per request, %s with leasing over %d keys, %s for one hot key (floor ≤ 0.05)\n\n",
		ratio(pluginLeasedRow, pluginLimited, columns[0].value), ratio(pluginLeasedRow, pluginLimited, columns[3].value),
		spread(pluginFleetRow.samples, fleetCallsOf, "%.3f"), spread(pluginLeasedRow.samples, fleetCallsOf, "%.4f"),
		len(valid), spread(hotLeasedRow.samples, fleetCallsOf, "%.4f"))
}

// noopModule assembles e2e/testdata/noop.wat with binaryen's wasm-as (the
// build's wasm-opt comes with it) and returns the module's path.
func noopModule(b *testing.B) string {
	wasmAs, err := exec.LookPath("wasm-as")
	if err != nil {
		harness.Unavailable(b, "wasm-as is not on PATH (Debian: apt-get install binaryen)")
	}
	out := filepath.Join(b.TempDir(), "noop.wasm")
	if msg, err := exec.Command(wasmAs, filepath.Join(harness.RepoRoot(b), "e2e", "testdata", "noop.wat"), "-o", out).CombinedOutput(); err != nil {
		b.Fatalf("wasm-as noop.wat: %v: %s", err, msg)
	}
	return out
}

// noopGoModule returns the Go do-nothing module `make bench-compare` builds.
func noopGoModule(b *testing.B) string {
	path := os.Getenv("PORTCULLIS_NOOP_GO_WASM")
	if path == "" {
		harness.Unavailable(b, "PORTCULLIS_NOOP_GO_WASM is not set (make bench-compare builds build/noop-go.wasm and sets it)")
	}
	if _, err := os.Stat(path); err != nil {
		harness.Unavailable(b, "the Go do-nothing module: %v", err)
	}
	return path
}

const (
	compareTokens      = 256
	compareConnections = 16
	// compareLimit is the native limiter's per-key limit per hour: never
	// reached in a benchmark (as generousLimit is the plugin's).
	compareLimit = 1_000_000_000
)

// compareRequest is one (path, token) pair of the rotation.
type compareRequest struct {
	path, sub, token string
}

// compareRequests returns compareTokens requests, one path and one subject
// per token, signed with secret. The tokens outlive any run.
func compareRequests(secret string) []compareRequest {
	out := make([]compareRequest, compareTokens)
	exp := time.Now().Add(24 * time.Hour).Unix()
	for i := range out {
		sub := "cmp-" + strconv.Itoa(i)
		out[i] = compareRequest{path: "/api/cmp/" + strconv.Itoa(i), sub: sub, token: scenarios.Token(secret, sub, jwttest.Claims{"exp": exp})}
	}
	return out
}

// startCompareUpstream serves a fixed small JSON answer on a free loopback
// port: cheaper than the demo upstream, so it takes less of the CPU the
// Envoy under test and wrk share. It echoes the API key header the gateway
// set (so the checks can see identity forwarded) and lets the plugin cache
// the answer for the whole run.
func startCompareUpstream(b *testing.B) string {
	body := []byte(`{"ok":true}` + "\n")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "max-age=86400")
		h.Set("X-Seen-Api-Key", r.Header.Get("X-Api-Key"))
		_, _ = w.Write(body)
	}))
	b.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// natives builds Envoy's own filters doing what the shipped plugin
// configuration does (see nativeFilters).
type natives struct {
	// jwtAuthn verifies what the plugin verifies: HS256 with the same
	// secret as an inline oct JWKS, issuer, audiences, the key claim copied
	// into the key header, the token not forwarded; cache adds
	// jwt_cache_config.
	jwtAuthn func(cache bool) map[string]any
	// localRateLimit is a token bucket of limit per hour per value of the
	// key header (a dynamic descriptor).
	localRateLimit func(limit int) map[string]any
	keyHeader      string
}

// nativeFilters returns, for a per-key limit and with or without the JWT
// cache, an Options.EditConfig that puts jwt_authn and local_ratelimit where
// the plugin is.
func nativeFilters(b *testing.B) func(limit int, cache bool) func(map[string]any) error {
	n := newNatives(b)
	return func(limit int, cache bool) func(map[string]any) error {
		return func(root map[string]any) error {
			return harness.ReplacePlugin(root, n.jwtAuthn(cache), n.localRateLimit(limit))
		}
	}
}

func newNatives(b *testing.B) natives {
	var shipped struct {
		JWT struct {
			Issuer    string   `json:"issuer"`
			Audiences []string `json:"audiences"`
		} `json:"jwt"`
		Identity struct {
			KeyClaim  string `json:"key_claim"`
			KeyHeader string `json:"key_header"`
		} `json:"identity"`
	}
	if err := json.Unmarshal([]byte(harness.ShippedPluginConfig(b)), &shipped); err != nil {
		b.Fatalf("shipped plugin configuration: %v", err)
	}
	jwks, err := json.Marshal(map[string]any{"keys": []any{map[string]any{
		"kty": "oct", "alg": "HS256", "k": jwttest.EncodeRaw([]byte(harness.TestSecret)),
	}}})
	if err != nil {
		b.Fatal(err)
	}
	bucket := func(tokens int) map[string]any {
		return map[string]any{"max_tokens": tokens, "tokens_per_fill": tokens, "fill_interval": "3600s"}
	}
	always := map[string]any{"default_value": map[string]any{"numerator": 100, "denominator": "HUNDRED"}}
	jwtAuthn := func(cache bool) map[string]any {
		provider := map[string]any{
			"issuer":           shipped.JWT.Issuer,
			"audiences":        shipped.JWT.Audiences,
			"local_jwks":       map[string]any{"inline_string": string(jwks)},
			"from_headers":     []any{map[string]any{"name": "Authorization", "value_prefix": "Bearer "}},
			"forward":          false,
			"claim_to_headers": []any{map[string]any{"header_name": shipped.Identity.KeyHeader, "claim_name": shipped.Identity.KeyClaim}},
		}
		if cache {
			// Larger than the rotation, so every token stays cached.
			provider["jwt_cache_config"] = map[string]any{"jwt_cache_size": 4 * compareTokens}
		}
		return map[string]any{
			"name": "envoy.filters.http.jwt_authn",
			"typed_config": map[string]any{
				"@type":     "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
				"providers": map[string]any{"portcullis": provider},
				"rules": []any{map[string]any{
					"match":    map[string]any{"prefix": "/api"},
					"requires": map[string]any{"provider_name": "portcullis"},
				}},
			},
		}
	}
	localRateLimit := func(limit int) map[string]any {
		return map[string]any{
			"name": "envoy.filters.http.local_ratelimit",
			"typed_config": map[string]any{
				"@type":       "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
				"stat_prefix": "per_key",
				// Required; never consumed: every request here has a key.
				"token_bucket":                        bucket(compareLimit),
				"filter_enabled":                      always,
				"filter_enforced":                     always,
				"always_consume_default_token_bucket": false,
				"rate_limits": []any{map[string]any{"actions": []any{map[string]any{"request_headers": map[string]any{
					"header_name": shipped.Identity.KeyHeader, "descriptor_key": "api_key",
				}}}}},
				// An empty value is a wildcard: one bucket per distinct key,
				// up to max_dynamic_descriptors (then least recently used go).
				"descriptors": []any{map[string]any{
					"entries":      []any{map[string]any{"key": "api_key", "value": ""}},
					"token_bucket": bucket(limit),
				}},
				"max_dynamic_descriptors": 4 * compareTokens,
			},
		}
	}
	return natives{jwtAuthn: jwtAuthn, localRateLimit: localRateLimit, keyHeader: shipped.Identity.KeyHeader}
}

// nativeFleet returns an Options.EditConfig that puts jwt_authn and Envoy's
// ratelimit filter where the plugin is: a gRPC ShouldRateLimit call per
// request through the shipped ratelimit cluster (HTTP/2, as the plugin's
// calls go), in domain, with the descriptor the plugin sends
// ([api_key=<key header>, route=api]).
func (n natives) nativeFleet(domain string) func(map[string]any) error {
	rateLimit := map[string]any{
		"name": "envoy.filters.http.ratelimit",
		"typed_config": map[string]any{
			"@type":  "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit",
			"domain": domain,
			// The plugin's fleet timeout (rate_limit.fleet.timeout_ms).
			"timeout": "0.100s",
			"rate_limit_service": map[string]any{
				"transport_api_version": "V3",
				"grpc_service":          map[string]any{"envoy_grpc": map[string]any{"cluster_name": harness.RateLimitCluster}},
			},
		},
	}
	actions := []any{map[string]any{"actions": []any{
		map[string]any{"request_headers": map[string]any{"header_name": n.keyHeader, "descriptor_key": "api_key"}},
		map[string]any{"generic_key": map[string]any{"descriptor_key": "route", "descriptor_value": "api"}},
	}}}
	return func(root map[string]any) error {
		if err := harness.ReplacePlugin(root, n.jwtAuthn(false), rateLimit); err != nil {
			return err
		}
		hosts, err := harness.VirtualHosts(root)
		if err != nil {
			return err
		}
		for _, vh := range hosts {
			vh["rate_limits"] = actions
		}
		return nil
	}
}

// compareTinyDomain is the descriptor domain whose limit (2 per hour) shows
// that Envoy's ratelimit filter sends the plugin's descriptor.
const compareTinyDomain = "compare-tiny"

// compareDescriptors writes the service's descriptor configs: in domain
// portcullis a limit per key and route never reached in a run (as
// generousLimit is the local limiter's), in compareTinyDomain 2 per hour.
func compareDescriptors(b *testing.B) string {
	limit := func(domain string, n int) string {
		return "domain: " + domain + "\ndescriptors:\n  - key: api_key\n    descriptors:\n      - key: route\n" +
			"        rate_limit:\n          unit: hour\n          requests_per_unit: " + strconv.Itoa(n) + "\n"
	}
	root := harness.WriteDescriptorConfig(b, limit("portcullis", compareLimit))
	if err := os.WriteFile(filepath.Join(root, "ratelimit", "config", "tiny.yaml"), []byte(limit(compareTinyDomain, 2)), 0o644); err != nil {
		b.Fatal(err)
	}
	return root
}

// withFleet returns the shipped plugin configuration in fleet mode without
// its cache, calling the service over protocol, the protected rule leasing
// its budget when lease is set.
func withFleet(b *testing.B, protocol string, lease bool) string {
	cfg := shippedWithout(b, "rate_limit", "cache")
	cfg["rate_limit"] = map[string]any{"mode": "fleet", "fleet": map[string]any{"timeout_ms": 100, "protocol": protocol}}
	if lease {
		for _, r := range cfg["routes"].([]any) {
			if rule := r.(map[string]any); rule["public"] != true {
				rule["fleet_lease"] = map[string]any{}
			}
		}
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return string(raw)
}

// withShippedCache returns the plugin configuration cfg with the shipped
// configuration's cache block, its lookup timeout raised to a second: a
// lookup that the starved 2-core machine answers later than the shipped
// 50 ms falls back upstream, and this configuration measures HITs only.
func withShippedCache(b *testing.B, cfg string) string {
	var shipped, out map[string]any
	if err := json.Unmarshal([]byte(harness.ShippedPluginConfig(b)), &shipped); err != nil {
		b.Fatal(err)
	}
	cache, _ := shipped["cache"].(map[string]any)
	if cache == nil {
		b.Fatal("the shipped plugin configuration has no cache block to measure")
	}
	cache["timeout_ms"] = 1000
	if err := json.Unmarshal([]byte(cfg), &out); err != nil {
		b.Fatal(err)
	}
	out["cache"] = cache
	raw, err := json.Marshal(out)
	if err != nil {
		b.Fatal(err)
	}
	return string(raw)
}

// expect sends r to gw and fails b unless the status is status and, when
// sub is not "", the upstream saw sub as the API key. It returns the
// answer's headers.
func expect(b *testing.B, client *http.Client, gw *harness.Gateway, r compareRequest, status int, sub string) http.Header {
	b.Helper()
	req, err := http.NewRequest(http.MethodGet, gw.BaseURL+r.path, nil)
	if err != nil {
		b.Fatal(err)
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	resp, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != status {
		b.Fatalf("%s %s: status %d, want %d", gw.NodeID, r.path, resp.StatusCode, status)
	}
	if got := resp.Header.Get("X-Seen-Api-Key"); sub != "" && got != sub {
		b.Fatalf("%s %s: the upstream saw API key %q, want %q", gw.NodeID, r.path, got, sub)
	}
	return resp.Header
}

// warmCache fills the cache with every request of the rotation and waits
// until each is a HIT (fills are written after the answer is sent).
func warmCache(b *testing.B, client *http.Client, gw *harness.Gateway, reqs []compareRequest) {
	deadline := time.Now().Add(30 * time.Second)
	for _, r := range reqs {
		for xcache(b, client, gw.BaseURL+r.path, "Bearer "+r.token) != "HIT" {
			if time.Now().After(deadline) {
				b.Fatalf("%s never became a cache HIT", r.path)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// writeWrkScript writes a wrk script that sends reqs in rotation (formatted
// once per thread) and prints its summary as one line parseWrk reads, in
// microseconds instead of wrk's rounded, unit-varying text.
func writeWrkScript(b *testing.B, dir, name string, reqs []compareRequest) string {
	var s strings.Builder
	s.WriteString("local list = {\n")
	for _, r := range reqs {
		// Paths and tokens are plain ASCII without quotes or backslashes, so
		// Go's quoting is Lua's.
		fmt.Fprintf(&s, "  {%q, %q},\n", r.path, "Bearer "+r.token)
	}
	s.WriteString(`}
local formatted, n = {}, 0
function init(args)
  for i, r in ipairs(list) do
    formatted[i] = wrk.format("GET", r[1], {Authorization = r[2]})
  end
end
function request()
  n = n % #formatted + 1
  return formatted[n]
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("portcullis-wrk %.0f %.0f %.0f %.0f %.0f %.0f\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.status, e.connect + e.read + e.write + e.timeout))
end
`)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(s.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	return path
}

// compareConfig is one row of the comparison.
type compareConfig struct {
	name   string
	gw     *harness.Gateway
	script string
	status int  // the status of every answer
	hits   bool // every answer must be a cache HIT
	// fleetCalls: count the plugin's calls to the ratelimit service.
	fleetCalls bool
	samples    []compareSample
}

// compareSample is one measurement: requests/s, p50 and p99 in µs, Envoy
// CPU µs per request, and (for fleetCalls) the plugin's calls to the
// ratelimit service per request.
type compareSample struct {
	rps, p50, p99, cpu, calls float64
}

// measure runs wrk against c for d and fails b unless every answer was what
// c expects.
func (c *compareConfig) measure(b *testing.B, wrk string, d time.Duration) compareSample {
	var cacheBefore map[string]int64
	if c.hits {
		cacheBefore = cacheCounters(b, c.gw)
	}
	var callsBefore int64
	if c.fleetCalls {
		callsBefore = fleetCallCount(b, c.gw)
	}
	cpuBefore := cpuTicks(b, c.gw.PID)
	out, err := exec.Command(wrk, "-t1", "-c"+strconv.Itoa(compareConnections), "-d"+strconv.Itoa(int(d.Seconds()))+"s", "-s", c.script, c.gw.BaseURL).CombinedOutput()
	cpu := cpuTicks(b, c.gw.PID) - cpuBefore
	if err != nil {
		b.Fatalf("wrk: %v\n%s", err, out)
	}
	var requests, micros, p50, p99, status, socket float64
	var found bool
	for line := range strings.Lines(string(out)) {
		if rest, ok := strings.CutPrefix(line, "portcullis-wrk "); ok {
			_, err = fmt.Sscan(rest, &requests, &micros, &p50, &p99, &status, &socket)
			found = err == nil
		}
	}
	switch {
	case !found || requests == 0:
		b.Fatalf("%s: no requests measured:\n%s", c.name, out)
	case socket > 0:
		b.Fatalf("%s: %.0f socket errors:\n%s", c.name, socket, out)
	case c.status < 400 && status > 0, c.status >= 400 && status != requests:
		b.Fatalf("%s: %.0f of %.0f answers had an error status (want every one %d):\n%s", c.name, status, requests, c.status, out)
	}
	if c.hits {
		after := cacheCounters(b, c.gw)
		for name := range after {
			after[name] -= cacheBefore[name]
		}
		if float64(after["hit"]) < requests || after["miss"]+after["bypass"]+after["unavailable"] > 0 {
			b.Fatalf("%s: not every request was a HIT: %.0f requests, cache counters %v", c.name, requests, after)
		}
	}
	var calls float64
	if c.fleetCalls {
		calls = float64(fleetCallCount(b, c.gw)-callsBefore) / requests
	}
	return compareSample{
		rps: requests / (micros / 1e6), p50: p50, p99: p99, calls: calls,
		// /proc counts in USER_HZ: 100 per second on Linux, 10 ms a tick.
		cpu: float64(cpu) * 10_000 / requests,
	}
}

func fleetCallsOf(s compareSample) float64 { return s.calls }

// fleetCallCount returns the plugin's count of calls to the ratelimit service.
func fleetCallCount(b *testing.B, gw *harness.Gateway) int64 {
	n, ok := gw.Counter("portcullis.ratelimit.fleet.calls")
	if !ok {
		b.Fatalf("%s: no plugin counter portcullis.ratelimit.fleet.calls", gw.NodeID)
	}
	return n
}

// cacheCounters returns the plugin's counters of cache lookups by outcome.
func cacheCounters(b *testing.B, gw *harness.Gateway) map[string]int64 {
	out := map[string]int64{}
	for _, name := range []string{"hit", "miss", "bypass", "unavailable"} {
		v, ok := gw.Counter("portcullis.cache." + name)
		if !ok {
			b.Fatalf("%s: no plugin counter portcullis.cache.%s", gw.NodeID, name)
		}
		out[name] = v
	}
	return out
}

// cpuTicks returns a process's user + system CPU time (/proc/<pid>/stat
// fields 14 and 15, every thread) in clock ticks.
func cpuTicks(b *testing.B, pid int) int64 {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		b.Fatalf("cpu: %v", err)
	}
	// Field 2, the command, is parenthesised and may hold spaces; fields
	// from 3 on follow the last ')'.
	_, rest, ok := strings.Cut(string(raw[strings.LastIndexByte(string(raw), ')')+1:]), " ")
	fields := strings.Fields(rest)
	if !ok || len(fields) < 13 {
		b.Fatalf("cpu: cannot parse /proc/%d/stat: %q", pid, raw)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			b.Fatalf("cpu: /proc/%d/stat: %v", pid, err)
		}
		ticks += n
	}
	return ticks
}

// loadAverage returns the first three fields of /proc/loadavg.
func loadAverage(b *testing.B) string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		b.Fatalf("load average: %v", err)
	}
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		b.Fatalf("load average: cannot parse %q", raw)
	}
	return strings.Join(f[:3], " ")
}

func compareEnvDuration(b *testing.B, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Second {
		b.Fatalf("%s=%q: want a duration of at least 1s", name, v)
	}
	return d
}

// spread formats the median of f over samples and, with several, their range.
func spread(samples []compareSample, f func(compareSample) float64, format string) string {
	vals := make([]float64, len(samples))
	for i, s := range samples {
		vals[i] = f(s)
	}
	m := fmt.Sprintf(format, median(vals))
	if len(vals) == 1 {
		return m
	}
	return m + " (" + fmt.Sprintf(format, slices.Min(vals)) + "–" + fmt.Sprintf(format, slices.Max(vals)) + ")"
}

// ratio formats the median over rounds of f(c) / f(base) within each round.
func ratio(c, base *compareConfig, f func(compareSample) float64) string {
	vals := make([]float64, len(c.samples))
	for i := range c.samples {
		vals[i] = f(c.samples[i]) / f(base.samples[i])
	}
	return fmt.Sprintf("%.2f", median(vals))
}

func median(vals []float64) float64 {
	s := slices.Sorted(slices.Values(vals))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
