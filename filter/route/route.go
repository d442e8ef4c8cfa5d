// Package route matches a request to the first plugin rule that covers it.
package route

import (
	"strings"

	"github.com/portcullis/portcullis/filter/cache"
	"github.com/portcullis/portcullis/filter/ratelimit"
)

// Rule is one entry of the ordered route table.
type Rule struct {
	Name string
	// Index is the rule's position in its table (set by NewTable): per-rule
	// state elsewhere, such as the per-route counters, is a slice indexed by it.
	Index   int
	Prefix  string
	Methods []string // upper case; empty means every method
	Public  bool     // no token required
	// RateLimit overrides the configured rate-limit policy for this rule; nil
	// means the default (or plan) policy applies.
	RateLimit *ratelimit.Policy
	// Cost is how many requests each request of the rule is charged as
	// (locally, or as the fleet service's hits_addend); 0 counts as 1.
	Cost int64
	// CostHeader (lower case) is a response header the upstream sets to
	// what the request really cost (e.g. tokens used); "" when the rule has
	// none. What it says beyond Cost is charged after the response.
	CostHeader string
	// FleetLease is the largest batch of the rule's fleet budget one call
	// reserves for this Envoy to spend with no call; 0 leaves leasing off.
	FleetLease int64
	// ShadowRateLimit: the rule's rate limit is not enforced; a request over
	// it is counted and forwarded (rate_limit.enforce,
	// routes[].enforce.rate_limit).
	ShadowRateLimit bool
	// ShadowJWT: a missing or invalid token is counted and logged, and the
	// request forwarded without identity (routes[].enforce.jwt).
	ShadowJWT bool
	// Cache is the rule's cache policy; nil means its responses are never
	// cached (no top-level cache block, or the rule disables it).
	Cache *cache.RoutePolicy
}

// Table is an ordered list of rules; the first match wins.
type Table struct{ rules []Rule }

// NewTable returns a table over rules, which the caller must not modify
// afterwards; it numbers them (Rule.Index).
func NewTable(rules []Rule) Table {
	for i := range rules {
		rules[i].Index = i
	}
	return Table{rules: rules}
}

// Rules returns the table's rules in order; the caller must not modify them.
func (t Table) Rules() []Rule { return t.rules }

// Match returns the first rule covering method and path (a path without query).
func (t Table) Match(method, path string) (*Rule, bool) {
	for i := range t.rules {
		r := &t.rules[i]
		if hasSegmentPrefix(path, r.Prefix) && r.allows(method) {
			return r, true
		}
	}
	return nil, false
}

func (r *Rule) allows(method string) bool {
	if len(r.Methods) == 0 {
		return true
	}
	for _, m := range r.Methods {
		if m == method {
			return true
		}
	}
	return false
}

// hasSegmentPrefix reports whether prefix covers path on a segment boundary:
// "/api" covers "/api" and "/api/x" but not "/apix". A prefix ending in "/"
// is a plain string prefix.
func hasSegmentPrefix(path, prefix string) bool {
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	if len(path) == len(prefix) || strings.HasSuffix(prefix, "/") {
		return true
	}
	return path[len(prefix)] == '/'
}

// SplitPath returns the path of an HTTP :path value, without query or fragment.
// ok is false when the path could mean different resources to the gateway and
// to the upstream: dot segments (also "..;x", which servlet containers read as
// ".."), backslashes, or percent-encoded dots and slashes. Envoy's normalize_path removes most of these before the plugin runs;
// refusing what is left keeps a public-looking path from reaching a protected one.
func SplitPath(rawPath string) (path string, ok bool) {
	path = rawPath
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	if path == "" || path[0] != '/' || strings.IndexByte(path, '\\') >= 0 {
		return path, false
	}
	if strings.IndexByte(path, '%') >= 0 && hasEncodedSeparator(path) {
		return path, false
	}
	for seg := range strings.SplitSeq(path[1:], "/") {
		// Servlet containers drop ";params" from a segment, so "..;x" is ".." to them.
		seg, _, _ = strings.Cut(seg, ";")
		if seg == "." || seg == ".." {
			return path, false
		}
	}
	return path, true
}

func hasEncodedSeparator(path string) bool {
	lower := strings.ToLower(path)
	return strings.Contains(lower, "%2e") || strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c")
}
