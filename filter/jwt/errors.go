package jwt

// Reason classifies why a token was refused. Its String form is the
// client-facing sentence and the metric suffix; neither ever contains the token.
type Reason int

const (
	// ReasonNone means the token was accepted.
	ReasonNone Reason = iota
	ReasonMissing
	ReasonMalformed
	ReasonTooLarge
	ReasonUnsupportedAlg
	ReasonUnsupportedCrit
	ReasonUnknownKey
	ReasonBadSignature
	ReasonExpired
	ReasonNotYetValid
	ReasonMissingExp
	ReasonWrongIssuer
	ReasonWrongAudience
	ReasonMissingKeyClaim
)

var reasonText = [...]struct{ message, metric string }{
	ReasonNone:            {"ok", "ok"},
	ReasonMissing:         {"missing bearer token", "missing"},
	ReasonMalformed:       {"malformed token", "malformed"},
	ReasonTooLarge:        {"token too large", "too_large"},
	ReasonUnsupportedAlg:  {"unsupported token algorithm", "unsupported_alg"},
	ReasonUnsupportedCrit: {"unsupported critical header", "unsupported_crit"},
	ReasonUnknownKey:      {"unknown key id", "unknown_key"},
	ReasonBadSignature:    {"invalid signature", "bad_signature"},
	ReasonExpired:         {"token expired", "expired"},
	ReasonNotYetValid:     {"token not yet valid", "not_yet_valid"},
	ReasonMissingExp:      {"token has no expiry", "missing_exp"},
	ReasonWrongIssuer:     {"invalid issuer", "wrong_issuer"},
	ReasonWrongAudience:   {"invalid audience", "wrong_audience"},
	ReasonMissingKeyClaim: {"token lacks the identity claim", "missing_key_claim"},
}

// Reasons lists every refusal reason, for defining one metric each.
func Reasons() []Reason {
	out := make([]Reason, 0, len(reasonText)-1)
	for r := ReasonMissing; int(r) < len(reasonText); r++ {
		out = append(out, r)
	}
	return out
}

// Message is the sentence sent to the client.
func (r Reason) Message() string { return reasonText[r].message }

// Metric is the snake_case name used in metric names and logs.
func (r Reason) Metric() string { return reasonText[r].metric }

// Error is a verification failure. It deliberately holds no token material.
type Error struct{ Reason Reason }

func (e *Error) Error() string { return "jwt: " + e.Reason.Message() }

// refusals holds one preallocated *Error per reason so that refusing a token
// allocates nothing.
var refusals = func() []*Error {
	out := make([]*Error, len(reasonText))
	for i := range out {
		out[i] = &Error{Reason: Reason(i)}
	}
	return out
}()

func fail(r Reason) *Error { return refusals[r] }
