//go:build !wasip1

package plugin

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/portcullis/portcullis/filter/fleet"
)

// grpcFleetConfig is fleetConfig calling the service's gRPC method.
func grpcFleetConfig(onFailure string) string {
	return strings.Replace(fleetConfig(onFailure), `"protocol": "json"`, `"protocol": "grpc"`, 1)
}

// grpcAnswer frames the service's RateLimitResponse for one descriptor
// limited to 3 per minute.
func grpcAnswer(t *testing.T, code rlsv3.RateLimitResponse_Code, remaining uint32) []byte {
	raw, err := proto.Marshal(&rlsv3.RateLimitResponse{OverallCode: code, Statuses: []*rlsv3.RateLimitResponse_DescriptorStatus{{
		Code:               code,
		CurrentLimit:       &rlsv3.RateLimitResponse_RateLimit{RequestsPerUnit: 3, Unit: rlsv3.RateLimitResponse_RateLimit_MINUTE},
		LimitRemaining:     remaining,
		DurationUntilReset: durationpb.New(14 * time.Second),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	return append(binary.BigEndian.AppendUint32([]byte{0}, uint32(len(raw))), raw...)
}

func TestFleetOverGRPC(t *testing.T) {
	t.Setenv(testSecretEnv, testSecret)
	host := mustStart(t, runners[0], grpcFleetConfig("deny"))
	alice := [][2]string{{"authorization", rateToken(t, "alice", nil)}}
	id, action, call := fleetRequest(t, host, request{method: "GET", path: "/api/items", headers: alice})
	if action != types.ActionPause || call == nil {
		t.Fatalf("action %v, callout %v: want the request paused on a callout", action, call)
	}
	for name, want := range map[string]string{":method": "POST", ":path": fleet.GRPCPath, ":authority": "ratelimit.test", "content-type": "application/grpc", "te": "trailers"} {
		if got, _ := headerValue(call.Headers, name); got != want {
			t.Errorf("callout %s = %q, want %q", name, got, want)
		}
	}
	if want := fleet.GRPCRequestBody(nil, "gw", fleet.KeyEntry, "alice", "api", 1); string(call.Body) != string(want) {
		t.Errorf("callout body % x, want % x", call.Body, want)
	}
	host.CallOnHttpCallResponse(call.CalloutID, [][2]string{{":status", "200"}, {"content-type", "application/grpc"}},
		[][2]string{{"grpc-status", "0"}}, grpcAnswer(t, rlsv3.RateLimitResponse_OK, 2))
	if resp := host.GetSentLocalResponse(id); resp != nil {
		t.Fatalf("local reply %d %s, want forwarded", resp.StatusCode, resp.Data)
	}
	host.CallOnResponseHeaders(id, [][2]string{{":status", "200"}}, true)
	if rem, _ := headerValue(host.GetCurrentResponseHeaders(id), "x-ratelimit-remaining"); rem != "2" {
		t.Errorf("X-RateLimit-Remaining = %q, want the service's 2", rem)
	}

	// Over the limit: refused, and remembered as the JSON answer is.
	id, _, call = fleetRequest(t, host, request{method: "GET", path: "/api/items", headers: [][2]string{{"authorization", rateToken(t, "bob", nil)}}})
	host.CallOnHttpCallResponse(call.CalloutID, [][2]string{{":status", "200"}}, [][2]string{{"grpc-status", "0"}}, grpcAnswer(t, rlsv3.RateLimitResponse_OVER_LIMIT, 0))
	if resp := host.GetSentLocalResponse(id); resp == nil || resp.StatusCode != 429 {
		t.Fatalf("over the limit: reply %+v, want 429", resp)
	}
	if ra, _ := headerValue(host.GetSentLocalResponse(id).Headers, "retry-after"); ra != "14" {
		t.Errorf("Retry-After = %q, want 14", ra)
	}
}

// Anything but grpc-status 0 with one well-formed message is the failure
// mode, as an answer not understood.
func TestFleetGRPCFailures(t *testing.T) {
	t.Setenv(testSecretEnv, testSecret)
	ok := grpcAnswer(t, rlsv3.RateLimitResponse_OK, 2)
	failures := map[string]struct {
		headers, trailers [][2]string
		body              []byte
	}{
		"trailers-only unavailable": {[][2]string{{":status", "200"}, {"grpc-status", "14"}, {"grpc-message", "no healthy upstream"}}, nil, nil},
		"error in the trailers":     {[][2]string{{":status", "200"}}, [][2]string{{"grpc-status", "13"}}, ok},
		"no grpc-status":            {[][2]string{{":status", "200"}}, nil, ok},
		"HTTP 503":                  {[][2]string{{":status", "503"}}, nil, []byte("upstream connect error")},
		"cut short":                 {[][2]string{{":status", "200"}}, [][2]string{{"grpc-status", "0"}}, ok[:len(ok)-2]},
	}
	for name, f := range failures {
		t.Run(name, func(t *testing.T) {
			for _, mode := range []string{"allow", "deny"} {
				t.Run(mode, func(t *testing.T) { grpcFailure(t, mode, f.headers, f.trailers, f.body) })
			}
		})
	}
}

func grpcFailure(t *testing.T, mode string, headers, trailers [][2]string, body []byte) {
	host := mustStart(t, runners[0], grpcFleetConfig(mode))
	id, _, call := fleetRequest(t, host, request{method: "GET", path: "/api/items", headers: [][2]string{{"authorization", rateToken(t, "alice", nil)}}})
	host.CallOnHttpCallResponse(call.CalloutID, headers, trailers, body)
	resp := host.GetSentLocalResponse(id)
	switch {
	case mode == "allow" && (resp != nil || host.GetCurrentHttpStreamAction(id) != types.ActionContinue):
		t.Errorf("allow: reply %+v, want forwarded", resp)
	case mode == "deny" && (resp == nil || resp.StatusCode != 429 || !strings.Contains(string(resp.Data), "rate limit service unavailable")):
		t.Errorf("deny: reply %+v, want 429 rate limit service unavailable", resp)
	}
	if n := counterValue(t, host, "ratelimit.fleet.unavailable"); n != 1 {
		t.Errorf("%s: fleet.unavailable = %d, want 1", mode, n)
	}
}
