package cache

import "strings"

// CacheControl is what the gateway reads of Cache-Control field lines
// (RFC 9111 §5.2). Every field is the conservative reading of what was sent:
//
//   - Names are compared case-insensitively; unknown directives are ignored
//     (§5.2.3). Arguments may be tokens or quoted strings (§5.2).
//   - A restricting directive (no-store, no-cache, private) counts whatever
//     its argument: the qualified forms no-cache="f" and private="f" are read
//     as the unqualified ones, which forbid more.
//   - A permitting directive (public, must-revalidate, which lets a shared
//     cache store an authorized response, §3.5) counts only when it is
//     well-formed and has no argument.
//   - max-age and s-maxage that are malformed (no argument, not 1*DIGIT) or
//     given twice with different values read as 0: stale (§4.2.1 allows
//     treating conflicting values as stale). min-fresh reads as MaxDelta
//     then: no stored response is fresh enough.
//   - A value beyond 2³¹ reads as 2³¹ (§1.2.2).
type CacheControl struct {
	NoStore, NoCache, Private, Public, MustRevalidate bool
	// Delta-seconds; -1 when absent.
	MaxAge, SMaxAge, MinFresh int64
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
	return CacheControl{MaxAge: -1, SMaxAge: -1, MinFresh: -1}
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
		cc.NoCache = true
	case strings.EqualFold(name, "private"):
		cc.Private = true
	case strings.EqualFold(name, "public"):
		cc.Public = cc.Public || flag
	case strings.EqualFold(name, "must-revalidate"):
		cc.MustRevalidate = cc.MustRevalidate || flag
	case strings.EqualFold(name, "max-age"):
		cc.MaxAge = mergeDelta(cc.MaxAge, arg, wellFormed && hasArg, 0)
	case strings.EqualFold(name, "s-maxage"):
		cc.SMaxAge = mergeDelta(cc.SMaxAge, arg, wellFormed && hasArg, 0)
	case strings.EqualFold(name, "min-fresh"):
		cc.MinFresh = mergeDelta(cc.MinFresh, arg, wellFormed && hasArg, MaxDelta)
	}
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
