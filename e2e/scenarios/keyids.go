package scenarios

import (
	"net/http"
	"testing"

	"github.com/portcullis/portcullis/e2e/harness"
	"github.com/portcullis/portcullis/internal/jwttest"
)

// Key-id scenarios: which configured secret may verify a token, by the kid
// in its header (google/jwt_verify_lib's selection, as Envoy's jwt_authn).
// A secret without kid verifies a token whatever its kid; a secret with one
// only tokens naming it or naming none; "unknown key id" only when every
// secret has a kid and none is the token's.

// secondSecretEnv holds the second secret of the key-id gateways.
const secondSecretEnv = "JWT_SECRET_2"

// secondSecret is the value of secondSecretEnv.
var secondSecret = "e2e-second-" + freshKey("secret") + "-0123456789abcdef"

// noKid is the kid of a token whose header has none.
var noKid any

// kidToken signs the shipped claims for sub with secret under a header
// naming kid (none for noKid).
func kidToken(secret, sub string, kid any) string {
	h := jwttest.Header{"alg": "HS256", "typ": "JWT"}
	if kid != noKid {
		h["kid"] = kid
	}
	return jwttest.Sign([]byte(secret), h, Claims(sub, nil))
}

// kidCase is one token sent to a key-id gateway: signed with secret, naming
// kid; want is "" when it must be forwarded, else the 401's message.
type kidCase struct {
	name, secret string
	kid          any
	want         string
}

const (
	msgUnknownKey   = "unknown key id"
	msgBadSignature = "invalid signature"
)

// unnamedSecretCases run on the shipped configuration, whose only secret
// (JWT_SECRET) has no kid: the common single-secret set-up.
func unnamedSecretCases() []kidCase {
	return []kidCase{
		{"kid_verified_by_the_unnamed_secret", harness.TestSecret, "2026-01", ""},
		{"empty_kid", harness.TestSecret, "", ""},
		{"no_kid", harness.TestSecret, noKid, ""},
		{"kid_signed_by_another_secret", secondSecret, "2026-01", msgBadSignature},
	}
}

// keyIDConfigs are the secret set-ups beyond the shipped one, with their cases.
func keyIDConfigs() []struct {
	name    string
	secrets []any
	cases   []kidCase
} {
	k1, k2 := harness.TestSecret, secondSecret
	return []struct {
		name    string
		secrets []any
		cases   []kidCase
	}{
		{"every_secret_named", []any{
			map[string]any{"kid": "k1", "env": harness.SecretEnv},
			map[string]any{"kid": "k2", "env": secondSecretEnv},
		}, []kidCase{
			{"kid_k1", k1, "k1", ""},
			{"kid_k2", k2, "k2", ""},
			{"no_kid_tries_both", k2, noKid, ""},
			{"kid_k1_signed_by_k2", k2, "k1", msgBadSignature},
			{"unknown_kid", k1, "k9", msgUnknownKey},
		}},
		{"named_then_unnamed", []any{
			map[string]any{"kid": "k1", "env": harness.SecretEnv},
			map[string]any{"env": secondSecretEnv},
		}, []kidCase{
			{"kid_k1_named_secret", k1, "k1", ""},
			{"kid_k1_unnamed_secret", k2, "k1", ""},
			{"other_kid_unnamed_secret", k2, "k9", ""},
			{"other_kid_skips_the_named_secret", k1, "k9", msgBadSignature},
			{"no_kid_named_secret", k1, noKid, ""},
		}},
	}
}

// keyIDs runs cases against gw: forwarded tokens reach the upstream as sub,
// refused ones get the 401 envelope with the expected message.
func keyIDs(t *testing.T, gw *harness.Gateway, s *seen, cases []kidCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sub := freshKey("kid")
			tok := kidToken(tc.secret, sub, tc.kid)
			if s != nil {
				s.add(tok)
			}
			resp := Send(t, gw, Request{Path: "/api/things", Header: Bearer(tok)})
			if tc.want == "" {
				if resp.Status != http.StatusOK {
					t.Fatalf("want 200 from the upstream, got:\n%s", resp)
				}
				if got := Header(t, Echo(t, resp), "x-api-key"); got != sub {
					t.Errorf("upstream x-api-key %q, want %q", got, sub)
				}
				return
			}
			if e := ExpectError(t, gw, resp, http.StatusUnauthorized, "unauthorized"); e.Message != tc.want {
				t.Errorf("message %q, want %q", e.Message, tc.want)
			}
		})
	}
}

// keyIDScenarios starts one gateway per secret set-up of keyIDConfigs.
func keyIDScenarios(t *testing.T, target harness.Target) {
	for _, c := range keyIDConfigs() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cfg := patchConfig(t, harness.ShippedPluginConfig(t), func(cfg map[string]any) {
				cfg["jwt"].(map[string]any)["secrets"] = c.secrets
			})
			gw := target.Start(t, harness.Options{
				PluginConfig: cfg,
				Env:          map[string]string{harness.SecretEnv: harness.TestSecret, secondSecretEnv: secondSecret},
			})
			keyIDs(t, gw, nil, c.cases)
			t.Run("every_error_logged_once", func(t *testing.T) { AssertErrorsLogged(t, gw) })
		})
	}
}
