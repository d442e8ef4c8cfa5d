package cache

import "strings"

// CacheControl is what the gateway reads of Cache-Control field lines
// (RFC 9111 §5.2). Every field is the conservative reading of what was sent:
//
//   - Names are compared case-insensitively; unknown directives are ignored
//     (§5.2.3). Arguments may be tokens or quoted strings (§5.2).
//   - A restricting directive (no-store, no-cache, private) counts whatever
//     its argument, with one exception: the qualified forms no-cache="f, g"
//     and private="f, g" (§5.2.2.4, §5.2.2.7), whose argument is a quoted
//     list of field names, only forbid storing (private) or reusing without
//     revalidation (no-cache) those fields: NoCacheFields, PrivateFields. Any
//     other argument reads as the unqualified directive, which forbids more.
//   - A permitting directive (public, must-revalidate, which let a shared
//     cache store an authorized response, §3.5) counts only when it is
//     well-formed and has no argument. What must-revalidate and
//     proxy-revalidate forbid, serving stale, counts whatever their form.
//   - max-age and s-maxage that are malformed (no argument, not 1*DIGIT) or
//     given twice with different values read as 0: stale (§4.2.1 allows
//     treating conflicting values as stale). min-fresh reads as MaxDelta
//     then: no stored response is fresh enough.
//   - A value beyond 2³¹ reads as 2³¹ (§1.2.2).
type CacheControl struct {
	NoStore, NoCache, Private, Public, MustRevalidate bool
	// MustUnderstand (§5.2.2.3): store only a status the cache implements.
	MustUnderstand bool
	// NoCacheFields and PrivateFields are the field names of the qualified
	// forms, as sent (a comma-separated list); "" when absent.
	NoCacheFields, PrivateFields string
	// Delta-seconds; -1 when absent. StaleWhileRevalidate and StaleIfError
	// are RFC 5861's, MaxStale the request's (§5.2.1.2; without a value,
	// MaxDelta: any staleness); a malformed one reads as absent (no stale
	// serving).
	MaxAge, SMaxAge, MinFresh, StaleWhileRevalidate, StaleIfError, MaxStale int64
	// Revalidate: must-revalidate or proxy-revalidate, in any form.
	Revalidate bool
}

// MaxDelta is the largest delta-seconds value the gateway represents
// (RFC 9111 §1.2.2: 2³¹).
const MaxDelta = int64(1) << 31

// ParseCacheControl reads one Cache-Control field value. Several field lines
// read as their comma-joined list (RFC 9110 §5.3).
func ParseCacheControl(value string) CacheControl {
	cc := emptyCacheControl()
	cc.parse(value)
	return cc
}

func emptyCacheControl() CacheControl {
	return CacheControl{MaxAge: -1, SMaxAge: -1, MinFresh: -1, StaleWhileRevalidate: -1, StaleIfError: -1, MaxStale: -1}
}

// parse adds the directives of one field line to cc.
func (cc *CacheControl) parse(s string) {
	for len(s) > 0 {
		var elem string
		elem, s = nextListElement(s)
		elem = strings.Trim(elem, " \t")
		if elem == "" {
			continue
		}
		n := tokenPrefix(elem)
		name, rest := elem[:n], elem[n:]
		arg, hasArg, wellFormed := "", false, true
		switch {
		case rest == "":
		case rest[0] == '=':
			arg, wellFormed = directiveArgument(rest[1:])
			hasArg = true
		default: // "max-age 60", "no-store junk": not a directive's syntax
			wellFormed = false
		}
		cc.apply(name, arg, hasArg, wellFormed)
	}
}

func (cc *CacheControl) apply(name, arg string, hasArg, wellFormed bool) {
	flag := wellFormed && !hasArg
	switch {
	case strings.EqualFold(name, "no-store"):
		cc.NoStore = true
	case strings.EqualFold(name, "no-cache"):
		if hasArg && wellFormed && fieldNameList(arg) {
			cc.NoCacheFields = joinList(cc.NoCacheFields, arg)
		} else {
			cc.NoCache = true
		}
	case strings.EqualFold(name, "private"):
		if hasArg && wellFormed && fieldNameList(arg) {
			cc.PrivateFields = joinList(cc.PrivateFields, arg)
		} else {
			cc.Private = true
		}
	case strings.EqualFold(name, "public"):
		cc.Public = cc.Public || flag
	case strings.EqualFold(name, "must-revalidate"):
		cc.MustRevalidate = cc.MustRevalidate || flag
		cc.Revalidate = true
	case strings.EqualFold(name, "proxy-revalidate"):
		cc.Revalidate = true
	case strings.EqualFold(name, "must-understand"):
		cc.MustUnderstand = cc.MustUnderstand || flag
	case strings.EqualFold(name, "max-stale"):
		if !hasArg && wellFormed {
			cc.MaxStale = MaxDelta
		} else {
			cc.MaxStale = mergeDelta(cc.MaxStale, arg, wellFormed, -1)
		}
	case strings.EqualFold(name, "stale-while-revalidate"):
		cc.StaleWhileRevalidate = mergeDelta(cc.StaleWhileRevalidate, arg, wellFormed && hasArg, -1)
	case strings.EqualFold(name, "stale-if-error"):
		cc.StaleIfError = mergeDelta(cc.StaleIfError, arg, wellFormed && hasArg, -1)
	case strings.EqualFold(name, "max-age"):
		cc.MaxAge = mergeDelta(cc.MaxAge, arg, wellFormed && hasArg, 0)
	case strings.EqualFold(name, "s-maxage"):
		cc.SMaxAge = mergeDelta(cc.SMaxAge, arg, wellFormed && hasArg, 0)
	case strings.EqualFold(name, "min-fresh"):
		cc.MinFresh = mergeDelta(cc.MinFresh, arg, wellFormed && hasArg, MaxDelta)
	}
}

// fieldNameList reports whether arg is a comma-separated list of field names
// (tokens), the argument of qualified no-cache and private.
func fieldNameList(arg string) bool {
	seen := false
	for arg != "" {
		var elem string
		elem, arg, _ = strings.Cut(arg, ",")
		elem = strings.Trim(elem, " \t")
		if elem == "" {
			continue
		}
		if !isToken(elem) {
			return false
		}
		seen = true
	}
	return seen
}

func joinList(list, more string) string {
	if list == "" {
		return more
	}
	return list + ", " + more
}

// NeverStale reports whether a stored response must never be served stale
// (RFC 9111 §4.2.4): must-revalidate, proxy-revalidate and s-maxage (§5.2.2.10
// implies proxy-revalidate for a shared cache) forbid it, and no-cache
// forbids any reuse without revalidation.
func (cc *CacheControl) NeverStale() bool {
	return cc.Revalidate || cc.SMaxAge >= 0 || cc.NoCache
}

// mergeDelta combines a directive's earlier value (-1: none yet) with a new
// occurrence; a malformed or conflicting one gives conservative.
func mergeDelta(prev int64, arg string, ok bool, conservative int64) int64 {
	v, valid := parseDelta(arg)
	switch {
	case !ok || !valid:
		return conservative
	case prev >= 0 && prev != v:
		return conservative
	}
	return v
}

// parseDelta reads delta-seconds (1*DIGIT), saturating at MaxDelta.
func parseDelta(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var v int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if v < MaxDelta {
			v = v*10 + int64(c-'0')
		}
	}
	return min(v, MaxDelta), true
}

// nextListElement splits s at its first comma outside a quoted string.
func nextListElement(s string) (elem, rest string) {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++ // the escaped octet, whatever it is
		case c == '"':
			quoted = !quoted
		case c == ',' && !quoted:
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}

// directiveArgument reads a directive's argument: a token or a whole quoted
// string (the quotes removed; a value with escapes is returned as written,
// which no delta-seconds parse accepts). ok is false for anything else.
func directiveArgument(s string) (arg string, ok bool) {
	if s != "" && s[0] == '"' {
		for i := 1; i < len(s); i++ {
			switch s[i] {
			case '\\':
				i++
			case '"':
				return s[1:i], i == len(s)-1
			}
		}
		return "", false // unterminated
	}
	n := tokenPrefix(s)
	return s, n == len(s) && n > 0
}

// tokenPrefix is the length of the RFC 9110 token that starts s.
func tokenPrefix(s string) int {
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return i
		}
	}
	return len(s)
}

func isTokenChar(c byte) bool { return tokenChars[c] }

// tokenChars marks the RFC 9110 tchar octets: a table, because stored
// header names are checked octet by octet on every hit.
var tokenChars = func() (t [256]bool) {
	for c := range t {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", byte(c)) >= 0
	}
	return t
}()

// isToken reports whether s is a non-empty token.
func isToken(s string) bool { return s != "" && tokenPrefix(s) == len(s) }
