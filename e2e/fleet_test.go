package e2e

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"testing"

	"github.com/portcullis/portcullis/e2e/harness"
	"github.com/portcullis/portcullis/filter/fleet"
	"github.com/portcullis/portcullis/internal/redistest"
)

// TestShippedDescriptorConfig starts envoyproxy/ratelimit on the descriptor
// config shipped in ratelimit/config and checks the limits it gives the
// descriptors the plugin sends.
func TestShippedDescriptorConfig(t *testing.T) {
	t.Parallel()
	svc := harness.StartRateLimitService(t, redistest.Start(t).Addr, harness.RepoRoot(t))
	for _, tc := range []struct {
		entry string
		limit int64
		cost  int64 // sent as hitsAddend: the service must charge that many
	}{
		{fleet.KeyEntry, 100, 1},
		{fleet.ClientAddressEntry, 60, 1},
		{fleet.HeaderEntry, 60, 7},
	} {
		for _, p := range []struct {
			protocol fleet.Protocol
			call     func(body []byte) fleet.Reply
		}{
			{fleet.JSON, func(body []byte) fleet.Reply { return postJSON(t, svc.Addr, body) }},
			{fleet.GRPC, func(body []byte) fleet.Reply { return callGRPC(t, svc.GRPCAddr, body) }},
		} {
			// A fresh key per protocol: each call is the key's first.
			key := "someone-" + strconv.Itoa(int(p.protocol))
			a, err := p.protocol.ParseAnswer(p.call(p.protocol.RequestBody(nil, "portcullis", tc.entry, key, "api", tc.cost)))
			if err != nil {
				t.Fatalf("%s, protocol %d: %v", tc.entry, p.protocol, err)
			}
			if !a.Limited || a.Over || a.Limit != tc.limit || a.Window.Seconds() != 60 || a.Remaining != tc.limit-tc.cost {
				t.Errorf("%s, protocol %d: answer %+v, want %d per minute with %d remaining", tc.entry, p.protocol, a, tc.limit, tc.limit-tc.cost)
			}
		}
	}
}

// postJSON makes a call to the service's /json endpoint.
func postJSON(t *testing.T, addr string, body []byte) fleet.Reply {
	resp, err := http.Post("http://"+addr+"/json", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return fleet.Reply{Status: resp.StatusCode, Body: raw}
}

// callGRPC makes a ShouldRateLimit call to the service's gRPC port, as the
// plugin does through an HTTP/2 cluster.
func callGRPC(t *testing.T, addr string, body []byte) fleet.Reply {
	var h2c http.Protocols
	h2c.SetUnencryptedHTTP2(true)
	client := &http.Client{Transport: &http.Transport{Protocols: &h2c}}
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+fleet.GRPCPath, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("content-type", "application/grpc")
	req.Header.Set("te", "trailers")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return fleet.Reply{Status: resp.StatusCode, GRPCStatus: resp.Trailer.Get("grpc-status"), Body: raw}
}
