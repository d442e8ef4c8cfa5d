package gateway

import (
	"strings"

	"github.com/portcullis/portcullis/filter/httperr"
)

// UpstreamFailure is a kind of response Envoy made itself because the
// upstream failed; the plugin rewrites it into the JSON envelope.
type UpstreamFailure uint8

const (
	// NotUpstreamFailure: the response is the upstream's own (or a
	// success); it passes through untouched.
	NotUpstreamFailure UpstreamFailure = iota
	UpstreamUnreachable
	UpstreamTimeout
)

// UpstreamFailures lists the failures, for defining one counter each.
func UpstreamFailures() []UpstreamFailure {
	return []UpstreamFailure{UpstreamUnreachable, UpstreamTimeout}
}

// ClassifyUpstream tells an Envoy-made failure from anything else by the
// status and Envoy's response code details, which say "via_upstream" for
// anything the upstream sent.
func ClassifyUpstream(status int, codeDetails string) UpstreamFailure {
	switch {
	case status < 500 || codeDetails == "" || codeDetails == "via_upstream":
		return NotUpstreamFailure
	case strings.Contains(codeDetails, "timeout"):
		return UpstreamTimeout
	case strings.HasPrefix(codeDetails, "upstream_") || strings.Contains(codeDetails, "no_healthy_upstream") ||
		strings.Contains(codeDetails, "connection_failure"):
		return UpstreamUnreachable
	}
	return NotUpstreamFailure
}

// Kind is the error the failure is answered with.
func (f UpstreamFailure) Kind() httperr.Kind {
	if f == UpstreamTimeout {
		return httperr.GatewayTimeout
	}
	return httperr.BadGateway
}

// Message is the body's message.
func (f UpstreamFailure) Message() string {
	if f == UpstreamTimeout {
		return "upstream timed out"
	}
	return "upstream unreachable"
}

// Metric names f in metrics (upstream_error.<metric>) and, prefixed with
// "upstream_", in the log line's reason.
func (f UpstreamFailure) Metric() string {
	switch f {
	case UpstreamUnreachable:
		return "unreachable"
	case UpstreamTimeout:
		return "timeout"
	}
	return "none"
}
