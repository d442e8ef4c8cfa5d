package plugin

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/portcullis/portcullis/filter/config"
	"github.com/portcullis/portcullis/filter/fleet"
	"github.com/portcullis/portcullis/filter/gateway"
)

// maxFleetAnswerBytes bounds what is read of the service's answer (one
// descriptor's answer is about 200 bytes).
const maxFleetAnswerBytes = 16 << 10

// fleetCallHeaders are the headers of a call to the ratelimit service for
// the request requestID: its gRPC method ShouldRateLimit (te: trailers, as
// gRPC requires of a client), or its /json endpoint.
func fleetCallHeaders(fl *config.Fleet, requestID string) [][2]string {
	if fl.Protocol == fleet.JSON {
		return [][2]string{
			{":method", "POST"}, {":path", "/json"}, {":authority", fl.Authority},
			{"content-type", "application/json"}, {"x-request-id", requestID},
		}
	}
	return [][2]string{
		{":method", "POST"}, {":path", fleet.GRPCPath}, {":authority", fl.Authority},
		{"content-type", "application/grpc"}, {"te", "trailers"}, {"x-request-id", requestID},
	}
}

// fleetReply is what the service answered, as the protocol reads it.
func fleetReply(fl *config.Fleet, a answer) fleet.Reply {
	r := fleet.Reply{Status: a.status, Body: a.body}
	if fl.Protocol == fleet.GRPC && a.status != 0 {
		r.GRPCStatus = a.grpcStatus()
	}
	return r
}

// callFleet asks the ratelimit service about the request and pauses it until
// the answer (or the timeout) arrives.
func (h *httpContext) callFleet(call *gateway.FleetCall) types.Action {
	p := h.plugin
	fl := p.cfg.RateLimit.Fleet
	p.metrics.fleetCalls.Inc()
	if call.Lease > 0 {
		p.metrics.fleetLeaseCalls.Inc()
		p.metrics.fleetLeaseHits.Add(call.Lease)
	}
	h.access.FleetCall = true
	return h.call("ratelimit service", fl.Cluster, fleetCallHeaders(fl, h.requestID), call.Body, fl.Timeout, maxFleetAnswerBytes, func(a answer) types.Action {
		if a.status == 0 {
			p.metrics.fleetNoAnswer.Inc() // a timeout, a reset or a missing cluster: the host does not say which
		}
		return h.apply(p.gw.FleetAnswer(call, fleetReply(fl, a), clockNow()))
	})
}
