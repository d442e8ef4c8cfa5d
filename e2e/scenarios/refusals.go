package scenarios

// RefusedAuthorizations are Authorization headers the gateway refuses, one
// per refusal class of the token checks, by class name ("" sends none); for
// Envoy-only checks that must see every class, such as the access log's.
func RefusedAuthorizations(secret string) map[string]string {
	out := map[string]string{}
	for _, tc := range tokenCases(secret) {
		out[tc.name] = tc.authorization
	}
	return out
}
