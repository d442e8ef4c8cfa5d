package jwt_test

import (
	"regexp"
	"testing"

	"github.com/portcullis/portcullis/filter/jwt"
)

func TestReasons(t *testing.T) {
	all := jwt.Reasons()
	if len(all) != int(jwt.ReasonMissingKeyClaim) {
		t.Fatalf("Reasons() has %d entries, want %d (every reason but ReasonNone)", len(all), jwt.ReasonMissingKeyClaim)
	}
	snake := regexp.MustCompile(`^[a-z]+(_[a-z]+)*$`)
	metrics := map[string]bool{}
	messages := map[string]bool{}
	for i, r := range all {
		if r != jwt.Reason(i+1) {
			t.Errorf("Reasons()[%d] = %d, want %d", i, r, i+1)
		}
		if r == jwt.ReasonNone {
			t.Errorf("Reasons() lists ReasonNone")
		}
		if !snake.MatchString(r.Metric()) {
			t.Errorf("reason %d metric %q is not snake_case", r, r.Metric())
		}
		if r.Message() == "" {
			t.Errorf("reason %d has no message", r)
		}
		if metrics[r.Metric()] || messages[r.Message()] {
			t.Errorf("reason %d repeats metric %q or message %q", r, r.Metric(), r.Message())
		}
		metrics[r.Metric()], messages[r.Message()] = true, true
		if got, want := (&jwt.Error{Reason: r}).Error(), "jwt: "+r.Message(); got != want {
			t.Errorf("Error() = %q, want %q", got, want)
		}
	}
}

// TestReasonMessages pins the client-facing sentences the contract names.
func TestReasonMessages(t *testing.T) {
	for r, want := range map[jwt.Reason]string{
		jwt.ReasonMissing:       "missing bearer token",
		jwt.ReasonMalformed:     "malformed token",
		jwt.ReasonBadSignature:  "invalid signature",
		jwt.ReasonExpired:       "token expired",
		jwt.ReasonNotYetValid:   "token not yet valid",
		jwt.ReasonWrongIssuer:   "invalid issuer",
		jwt.ReasonWrongAudience: "invalid audience",
	} {
		if got := r.Message(); got != want {
			t.Errorf("%s.Message() = %q, want %q", r.Metric(), got, want)
		}
	}
}
