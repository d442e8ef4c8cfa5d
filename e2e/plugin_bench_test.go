package e2e

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/portcullis/portcullis/e2e/harness"
	"github.com/portcullis/portcullis/e2e/scenarios"
	"github.com/portcullis/portcullis/e2e/wasmhost"
	"github.com/portcullis/portcullis/internal/jwttest"
)

// The compiled plugin's cost per request under wazero, with the shipped
// configuration and no network: the host answers 404 where Envoy would
// proxy. Subtract e2e/wasmhost's BenchmarkHostOnly (an empty plugin through
// the same path) to get the plugin's own share.

// benchPluginHost runs the plugin with the shipped configuration without
// caching or rate limiting (each has benchmarks of its own), with patch applied to it when non-nil, and callouts to clusters
// (name → URL).
func benchPluginHost(b *testing.B, patch func(cfg map[string]any), clusters map[string]string) http.Handler {
	return benchHost(b, patch, clusters).Handler()
}

// benchHost is benchPluginHost's host, for benchmarks that count its calls.
func benchHost(b *testing.B, patch func(cfg map[string]any), clusters map[string]string) *wasmhost.Host {
	return benchHostWith(b, patch, wasmhost.Options{Clusters: clusters})
}

// benchHostWith is benchHost with the host's options (one worker, the JWT
// secret and the configuration are set here).
func benchHostWith(b *testing.B, patch func(cfg map[string]any), opts wasmhost.Options) *wasmhost.Host {
	wasm, err := os.ReadFile(harness.WasmPath(b))
	if err != nil {
		b.Fatal(err)
	}
	shipped, err := os.ReadFile(filepath.Join(harness.RepoRoot(b), "envoy.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	config, err := harness.PluginConfigFrom(shipped)
	if err != nil {
		b.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal([]byte(config), &cfg); err != nil {
		b.Fatal(err)
	}
	delete(cfg, "cache")
	delete(cfg, "rate_limit")
	if patch != nil {
		patch(cfg)
	}
	raw, _ := json.Marshal(cfg)
	config = string(raw)
	opts.Workers, opts.PluginConfig, opts.Env = 1, config, map[string]string{harness.SecretEnv: harness.TestSecret}
	h, err := wasmhost.New(context.Background(), wasm, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = h.Close() })
	return h
}

func benchRequests(b *testing.B, handler http.Handler, req *http.Request, want int) {
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, req)
		if w.Code != want {
			b.Fatalf("status %d, want %d: %s", w.Code, want, w.Body)
		}
	}
}

func benchToken(sub string) string {
	claims := jwttest.Valid(sub, time.Now(), time.Hour)
	claims["iss"], claims["aud"], claims["email"] = "portcullis-dev", "portcullis-api", sub+"@example.com"
	return "Bearer " + jwttest.HS256([]byte(harness.TestSecret), claims)
}

// BenchmarkPluginVerifiedRequest: a protected route with a valid token, so
// the plugin verifies HS256, strips and sets identity headers, and continues.
func BenchmarkPluginVerifiedRequest(b *testing.B) {
	handler := benchPluginHost(b, nil, nil)
	req := httptest.NewRequest(http.MethodGet, "/api/orders?page=2", nil)
	req.Header.Set("Authorization", benchToken("alice"))
	benchRequests(b, handler, req, http.StatusNotFound) // the host's "no upstream" 404, after the plugin continued
}

// maxHostCallsLimited bounds the crossings between Envoy and the module (host
// calls and the allocations they make in the module) for a verified,
// rate-limited, forwarded request, from its request headers to its stream's
// end. Each one enters V8 and, for an allocation, the Go runtime: the
// per-request cost is mostly these (README "Performance"). Today 16: the
// request headers in one call (and its allocation), authorization removed,
// the identity headers set (2), the rate-limit record read (and its
// allocation) and written, :status read (and its allocation), five
// rate-limit response headers, the access record published; the counters
// are flushed on the tick, whose rare flush during a run is the one call of
// slack.
const maxHostCallsLimited = 17

// BenchmarkPluginLimitedRequest: a valid token on a protected route under a
// local limit that never refuses: verify, charge, set identity headers,
// forward, add the rate-limit headers to the response. It reports the host
// calls per request and fails past maxHostCallsLimited.
func BenchmarkPluginLimitedRequest(b *testing.B) {
	benchLimitedHostCalls(b, map[string]any{"default": generousLimit})
}

// BenchmarkPluginShadowDeniedRequest: as BenchmarkPluginLimitedRequest, but
// every request after the first is over a limit of 1 per day that is not
// enforced (rate_limit.enforce false, with shadow_headers): the would-be
// refusal is counted and the request forwarded, within the same budget of
// host calls as an admission.
func BenchmarkPluginShadowDeniedRequest(b *testing.B) {
	benchLimitedHostCalls(b, map[string]any{
		"default": []any{map[string]any{"requests": 1, "window_seconds": 86400}},
		"enforce": false, "shadow_headers": true,
	})
}

// benchLimitedHostCalls runs a verified request under the rate_limit block
// rateLimit, reports its host calls and fails past maxHostCallsLimited.
func benchLimitedHostCalls(b *testing.B, rateLimit map[string]any) {
	h := benchHost(b, func(cfg map[string]any) { cfg["rate_limit"] = rateLimit }, nil)
	handler := h.Handler()
	req := httptest.NewRequest(http.MethodGet, "/api/orders?page=2", nil)
	req.Header.Set("Authorization", benchToken("alice"))
	before := h.HostCalls()
	benchRequests(b, handler, req, http.StatusNotFound)
	perRequest := reportHostCalls(b, before, h.HostCalls())
	if perRequest > maxHostCallsLimited {
		b.Fatalf("%.1f host calls per request, more than the budget of %d", perRequest, maxHostCallsLimited)
	}
}

// reportHostCalls reports the host calls per request between the counts
// before and after, logs the calls made about once a request or more, and
// returns the first figure.
func reportHostCalls(b *testing.B, before, after wasmhost.CallCounts) float64 {
	perRequest := float64(after.Total()-before.Total()) / float64(b.N)
	b.ReportMetric(perRequest, "hostcalls/op")
	for name, n := range after {
		if d := float64(n-before[name]) / float64(b.N); d >= 0.5 {
			b.Logf("%-36s %.2f/op", name, d)
		}
	}
	return perRequest
}

// BenchmarkPluginRejectedRequest: no token, so the plugin answers 401 JSON
// itself. It reports the host calls per request.
func BenchmarkPluginRejectedRequest(b *testing.B) {
	h := benchHost(b, nil, nil)
	before := h.HostCalls()
	benchRequests(b, h.Handler(), httptest.NewRequest(http.MethodGet, "/api/orders", nil), http.StatusUnauthorized)
	reportHostCalls(b, before, h.HostCalls())
}

// BenchmarkPluginRefusedSignature: a token with a bad signature, as an
// attacker sprays them: refused from the refused-token cache after the
// first. It reports the host calls per request.
func BenchmarkPluginRefusedSignature(b *testing.B) {
	h := benchHost(b, nil, nil)
	req := httptest.NewRequest(http.MethodGet, "/api/orders", nil)
	req.Header.Set("Authorization", "Bearer "+scenarios.Token("not-the-gateway-secret-"+harness.TestSecret, "mallory", nil))
	before := h.HostCalls()
	benchRequests(b, h.Handler(), req, http.StatusUnauthorized)
	reportHostCalls(b, before, h.HostCalls())
}

// fakeRateLimitService answers every /json call with answer (status and
// body, as envoyproxy/ratelimit would) and counts the calls.
func fakeRateLimitService(b *testing.B, status int, answer string) (url string, calls *atomic.Int64) {
	calls = &atomic.Int64{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("content-type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, answer)
	}))
	b.Cleanup(srv.Close)
	return srv.URL, calls
}

// fleetMode calls the service's /json endpoint: the fake services here
// answer JSON.
func fleetMode(cfg map[string]any) {
	cfg["rate_limit"] = map[string]any{"mode": "fleet", "fleet": map[string]any{"protocol": "json"}}
}

// fakeGRPCRateLimitService answers every ShouldRateLimit call (HTTP/2
// without TLS) with the gRPC frame answer and grpc-status 0 in the
// trailers, as envoyproxy/ratelimit does, counting the calls and the bytes
// of their requests.
func fakeGRPCRateLimitService(b *testing.B, answer []byte) (url string, calls, requestBytes *atomic.Int64) {
	calls, requestBytes = &atomic.Int64{}, &atomic.Int64{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		n, _ := io.Copy(io.Discard, r.Body)
		requestBytes.Add(n)
		w.Header().Set("content-type", "application/grpc")
		w.Header().Set("trailer", "grpc-status")
		_, _ = w.Write(answer)
		w.Header().Set("grpc-status", "0")
	}))
	var h2c http.Protocols
	h2c.SetUnencryptedHTTP2(true)
	srv.Config.Protocols = &h2c
	srv.Start()
	b.Cleanup(srv.Close)
	return "h2c://" + srv.Listener.Addr().String(), calls, requestBytes
}

// BenchmarkPluginFleetAllowed: fleet mode, the service admits: one callout
// per request (over loopback HTTP, which dominates the figure), over gRPC
// (HTTP/2) and over /json (HTTP/1.1). It reports the host calls, callouts
// and bytes (call body, answer body) per request.
func BenchmarkPluginFleetAllowed(b *testing.B) {
	const answerJSON = `{"overallCode":"OK","statuses":[{"code":"OK","currentLimit":{"requestsPerUnit":100,"unit":"MINUTE"},"limitRemaining":99,"durationUntilReset":"30s"}]}`
	answerGRPC := grpcAnswer(b, &rlsv3.RateLimitResponse{OverallCode: rlsv3.RateLimitResponse_OK, Statuses: []*rlsv3.RateLimitResponse_DescriptorStatus{{
		Code:               rlsv3.RateLimitResponse_OK,
		CurrentLimit:       &rlsv3.RateLimitResponse_RateLimit{RequestsPerUnit: 100, Unit: rlsv3.RateLimitResponse_RateLimit_MINUTE},
		LimitRemaining:     99,
		DurationUntilReset: durationpb.New(30 * time.Second),
	}}})
	b.Run("grpc", func(b *testing.B) {
		url, calls, sent := fakeGRPCRateLimitService(b, answerGRPC)
		benchFleetAllowed(b, "grpc", url, calls, sent, len(answerGRPC))
	})
	b.Run("json", func(b *testing.B) {
		sent := &atomic.Int64{}
		calls := &atomic.Int64{}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			n, _ := io.Copy(io.Discard, r.Body)
			sent.Add(n)
			w.Header().Set("content-type", "application/json")
			_, _ = io.WriteString(w, answerJSON)
		}))
		b.Cleanup(srv.Close)
		benchFleetAllowed(b, "json", srv.URL, calls, sent, len(answerJSON))
	})
}

// benchFleetAllowed runs BenchmarkPluginFleetAllowed over protocol against
// the service at url, which counts the calls and the bytes sent to it.
func benchFleetAllowed(b *testing.B, protocol, url string, calls, sent *atomic.Int64, answerBytes int) {
	h := benchHost(b, func(cfg map[string]any) {
		cfg["rate_limit"] = map[string]any{"mode": "fleet", "fleet": map[string]any{"protocol": protocol}}
	}, map[string]string{harness.RateLimitCluster: url})
	req := httptest.NewRequest(http.MethodGet, "/api/orders", nil)
	req.Header.Set("Authorization", benchToken("alice"))
	before := h.HostCalls()
	calls.Store(0)
	sent.Store(0)
	benchRequests(b, h.Handler(), req, http.StatusNotFound)
	reportHostCalls(b, before, h.HostCalls())
	b.ReportMetric(float64(calls.Load())/float64(b.N), "callouts/op")
	b.ReportMetric(float64(sent.Load())/float64(calls.Load()), "call-B")
	b.ReportMetric(float64(answerBytes), "answer-B")
}

// grpcAnswer frames a RateLimitResponse as the service sends it.
func grpcAnswer(b *testing.B, resp *rlsv3.RateLimitResponse) []byte {
	raw, err := proto.Marshal(resp)
	if err != nil {
		b.Fatal(err)
	}
	return append(binary.BigEndian.AppendUint32([]byte{0}, uint32(len(raw))), raw...)
}

// maxLeaseCalloutsPerRequest is the most callouts per request a hot key on
// a leasing rule may make (README "Quota leasing").
const maxLeaseCalloutsPerRequest = 0.05

// BenchmarkPluginFleetLeased: fleet mode, a hot key on a rule with
// fleet_lease: after the batch has grown, requests are admitted from the
// lease in shared data. It fails past maxLeaseCalloutsPerRequest callouts or
// local mode's host-call budget per request.
func BenchmarkPluginFleetLeased(b *testing.B) {
	url, calls := fakeRateLimitService(b, http.StatusOK,
		`{"overallCode":"OK","statuses":[{"code":"OK","currentLimit":{"requestsPerUnit":1000000,"unit":"HOUR"},"limitRemaining":999000,"durationUntilReset":"3599s"}]}`)
	h := benchHost(b, func(cfg map[string]any) {
		fleetMode(cfg)
		for _, r := range cfg["routes"].([]any) {
			if rule := r.(map[string]any); rule["public"] != true {
				rule["fleet_lease"] = map[string]any{}
			}
		}
	}, map[string]string{harness.RateLimitCluster: url})
	handler := h.Handler()
	req := firstCall(b, handler, calls, http.StatusNotFound)
	before := h.HostCalls()
	benchRequests(b, handler, req, http.StatusNotFound)
	perRequest := reportHostCalls(b, before, h.HostCalls())
	callouts := float64(calls.Load()) / float64(b.N)
	b.ReportMetric(callouts, "callouts/op")
	if callouts > maxLeaseCalloutsPerRequest || perRequest > maxHostCallsLimited {
		b.Fatalf("%.3f callouts and %.1f host calls per request, want ≤ %.2f and ≤ %d", callouts, perRequest, maxLeaseCalloutsPerRequest, maxHostCallsLimited)
	}
}

// BenchmarkPluginHybridLocallyRefused: hybrid mode, a key over its local
// limit of 1 per hour (the fleet admits everything): every request is
// refused by the local limit with no callout (the benchmark fails if one
// is made), and within the local mode's host-call budget.
func BenchmarkPluginHybridLocallyRefused(b *testing.B) {
	url, calls := fakeRateLimitService(b, http.StatusOK,
		`{"overallCode":"OK","statuses":[{"code":"OK","currentLimit":{"requestsPerUnit":100,"unit":"HOUR"},"limitRemaining":99,"durationUntilReset":"3599s"}]}`)
	h := benchHost(b, func(cfg map[string]any) {
		cfg["rate_limit"] = map[string]any{"mode": "hybrid", "fleet": map[string]any{"protocol": "json"},
			"default": []any{map[string]any{"requests": 1, "window_seconds": 3600}}}
	}, map[string]string{harness.RateLimitCluster: url})
	handler := h.Handler()
	req := firstCall(b, handler, calls, http.StatusNotFound) // forwarded: the host answers 404
	before := h.HostCalls()
	benchRequests(b, handler, req, http.StatusTooManyRequests)
	perRequest := reportHostCalls(b, before, h.HostCalls())
	noCallouts(b, calls, "locally refused requests")
	if perRequest > maxHostCallsLimited {
		b.Fatalf("%.1f host calls per request, more than the budget of %d", perRequest, maxHostCallsLimited)
	}
}

// BenchmarkPluginFleetBlocked: fleet mode, a key the service refused once:
// every later request is refused from the shared-data blocklist with no
// callout (the benchmark fails if one is made).
func BenchmarkPluginFleetBlocked(b *testing.B) {
	url, calls := fakeRateLimitService(b, http.StatusTooManyRequests,
		`{"overallCode":"OVER_LIMIT","statuses":[{"code":"OVER_LIMIT","currentLimit":{"requestsPerUnit":100,"unit":"HOUR"},"durationUntilReset":"3599s"}]}`)
	handler := benchPluginHost(b, fleetMode, map[string]string{harness.RateLimitCluster: url})
	req := firstCall(b, handler, calls, http.StatusTooManyRequests)
	benchRequests(b, handler, req, http.StatusTooManyRequests)
	noCallouts(b, calls, "a blocked key")
}

// firstCall sends alice's first request, which must answer status after
// exactly one callout, resets the count of calls and returns the request
// for the benchmark to repeat.
func firstCall(b *testing.B, handler http.Handler, calls *atomic.Int64, status int) *http.Request {
	req := httptest.NewRequest(http.MethodGet, "/api/orders", nil)
	req.Header.Set("Authorization", benchToken("alice"))
	first := httptest.NewRecorder()
	handler.ServeHTTP(first, req)
	if first.Code != status || calls.Load() != 1 {
		b.Fatalf("first request: status %d after %d calls, want %d after 1", first.Code, calls.Load(), status)
	}
	calls.Store(0)
	return req
}

// noCallouts reports the callouts per request since firstCall and fails if
// there was one.
func noCallouts(b *testing.B, calls *atomic.Int64, what string) {
	b.ReportMetric(float64(calls.Load())/float64(b.N), "callouts/op")
	if n := calls.Load(); n != 0 {
		b.Fatalf("%d callouts for %s, want 0", n, what)
	}
}
