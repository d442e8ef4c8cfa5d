package config

// compileJWTEnforce reads routes[i].enforce.jwt (at field, the rule's path)
// and reports whether the rule's token check runs in shadow mode: a missing
// or invalid token is counted and logged, and the request forwarded without
// identity. A public rule checks no token, so the field is refused there.
func compileJWTEnforce(field string, r RouteFile) (shadow bool, err error) {
	if r.Enforce == nil || r.Enforce.JWT == nil {
		return false, nil
	}
	if r.Public {
		return false, fieldError(field+".enforce.jwt", "a public route verifies no token")
	}
	return !*r.Enforce.JWT, nil
}
