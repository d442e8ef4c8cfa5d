package gateway

import (
	"github.com/portcullis/portcullis/filter/httperr"
	"github.com/portcullis/portcullis/filter/ratelimit"
	"github.com/portcullis/portcullis/filter/route"
)

// Request is what the gateway decides on: the request's headers as plain values.
type Request struct {
	Method        string
	Path          string // :path, query included
	Authorization string
	ContentType   string
	HasBody       bool // the request headers did not end the stream
}

// Kind is what a Decision tells the plugin to do.
type Kind uint8

const (
	// Forward: edit the request headers (Decision.Edits), then go on to
	// the cache and the upstream with Decision.Rate's response headers.
	Forward Kind = iota
	// Reject: answer with Decision.Reject, the JSON error envelope.
	Reject
	// Health: answer the health endpoint.
	Health
	// AskFleet: edit the request headers, then make Decision.Fleet's call to
	// the ratelimit service; Gateway.FleetAnswer decides on its answer.
	AskFleet
)

// Decision is what to do with a request; Kind says which fields mean
// something.
type Decision struct {
	Kind Kind
	// Rule is the matched route rule; nil when none was reached (bad path,
	// no rule, health) and in decisions on a fleet answer.
	Rule *route.Rule
	// Reject is the local reply, for Kind Reject.
	Reject *Rejection
	// Edits are the request header changes, for Forward and AskFleet.
	Edits Edits
	// Fleet is the call to make, for AskFleet.
	Fleet *FleetCall
	// Rate is the rate-limit outcome when the request was charged (whether
	// it is forwarded or refused); nil when no limit applies or the fleet
	// is still to be asked.
	Rate *RateOutcome
	// Tenant is the verified key of a protected route's caller, "" on a
	// public route: whose cache entries the request may use. It is set
	// exactly when a token was verified.
	Tenant string
}

// Rejection is a local reply the gateway makes instead of forwarding.
type Rejection struct {
	Kind    httperr.Kind
	Message string
	Reason  Reason
	Headers [][2]string
	// RetryAfter is the body's retry_after (seconds) for TooManyRequests.
	RetryAfter int64
}

// Edits are the header changes for a request that goes upstream.
type Edits struct {
	Remove []string    // applied first; shared with the config, read only
	Set    [][2]string // then these
}

// FleetCall is one ShouldRateLimit call to make before forwarding.
type FleetCall struct {
	Body       []byte
	Key, Route string // the blocklist's pair
}

// RateSource is who decided a rate-limit outcome.
type RateSource uint8

const (
	// RateLocal: this Envoy's shared-data limiter.
	RateLocal RateSource = iota
	// RateFleet: the ratelimit service's answer.
	RateFleet
	// RateBlocklist: a refusal remembered from an earlier fleet answer,
	// made without a call.
	RateBlocklist
	// RateFleetUnavailable: the service did not answer usefully, and the
	// configured failure mode decided.
	RateFleetUnavailable
)

// RateOutcome is one rate-limit decision and the response headers it gives.
type RateOutcome struct {
	Decision ratelimit.Decision
	Source   RateSource
	// Headers go on the response, forwarded or refused (a refusal's are
	// also in its Rejection).
	Headers [][2]string
}
