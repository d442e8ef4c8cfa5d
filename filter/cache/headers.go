package cache

import (
	"slices"
	"strings"
)

// Headers are a message's header field lines as the proxy hands them over
// (proxywasm.GetHttpRequestHeaders): name and value pairs, names in lower
// case, a name repeated for each of its lines.

// fieldValue is the value of the field lines named name (lower case), joined
// with ", " as RFC 9110 §5.3 combines them, each trimmed of surrounding
// whitespace; present is false when there is none. One line costs nothing.
func fieldValue(headers [][2]string, name string) (value string, present bool) {
	var joined []byte
	for _, h := range headers {
		if !strings.EqualFold(h[0], name) {
			continue
		}
		v := strings.Trim(h[1], " \t")
		switch {
		case !present:
			value, present = v, true
		case joined == nil:
			joined = append(append(append(joined, value...), ", "...), v...)
		default:
			joined = append(append(joined, ", "...), v...)
		}
	}
	if joined != nil {
		value = string(joined)
	}
	return value, present
}

// replayed reports whether a response header field belongs in a stored
// entry. Left out: hop-by-hop fields (RFC 9110 §7.6.1, and RFC 9111 §3.1:
// a cache does not store them), fields that describe one response rather
// than the resource (age and x-cache are the cache's own, rate-limit and
// request-id fields belong to the request that got them, content-length is
// set by the proxy for the replayed body), Envoy's per-response fields,
// pseudo-headers, and Set-Cookie, which is never replayed (a response that
// sets a cookie is not stored at all; this is the second line of defence).
// Set-Cookie2 is an obsolete field (RFC 6265 §9.4) no client acts on: like
// any other unknown field it is stored, as RFC 9111 §3.1 asks.
func replayed(name string) bool {
	switch name {
	case "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "proxy-authentication-info",
		"te", "trailer", "transfer-encoding", "upgrade",
		"set-cookie",
		"age", "x-cache", "ratelimit", "ratelimit-policy", "retry-after", "x-request-id",
		"content-length":
		return false
	}
	return !strings.HasPrefix(name, ":") && !strings.HasPrefix(name, "x-ratelimit-") &&
		!strings.HasPrefix(name, "x-envoy-")
}

// replayHeaders returns the response header lines worth storing, names in
// lower case: those replayed() keeps, less any named in Connection, the
// surrogate keys field (Config.Purge), and any named in omit (a list of
// field names: those of qualified no-cache and private, RFC 9111 §5.2.2.4,
// §5.2.2.7).
func (c *Config) replayHeaders(headers [][2]string, omit string) [][2]string {
	connection, _ := fieldValue(headers, "connection")
	var tagHeader string
	if c.Purge != nil {
		tagHeader = c.Purge.TagHeader // the surrogate keys are for the gateway, never the client
	}
	out := make([][2]string, 0, len(headers)+hitHeaderCount)
	for _, h := range headers {
		name := strings.ToLower(h[0])
		if replayed(name) && !listContains(connection, name) && !listContains(omit, name) && name != tagHeader {
			out = append(out, [2]string{name, h[1]})
		}
	}
	return out
}

// listContains reports whether the comma-separated list holds item,
// compared case-insensitively.
func listContains(list, item string) bool {
	for list != "" {
		var elem string
		elem, list, _ = strings.Cut(list, ",")
		if strings.EqualFold(strings.Trim(elem, " \t"), item) {
			return true
		}
	}
	return false
}

// varyNames reads a response's Vary field (RFC 9110 §12.5.5) into sorted,
// unique, lower-case field names; reason is not "" when the response cannot
// be stored for it: Vary "*" (RFC 9111 §4.1: it never matches), a member
// that is not a field name, or more than MaxVary names.
func varyNames(vary string) (names []string, reason string) {
	for vary != "" {
		var elem string
		elem, vary, _ = strings.Cut(vary, ",")
		elem = strings.Trim(elem, " \t")
		switch {
		case elem == "":
			continue
		case elem == "*":
			return nil, ReasonVaryStar
		case !isToken(elem) || len(elem) > maxNameBytes:
			return nil, ReasonVaryInvalid
		}
		name := strings.ToLower(elem)
		if i, found := slices.BinarySearch(names, name); !found {
			names = slices.Insert(names, i, name)
		}
		if len(names) > MaxVary {
			return nil, ReasonVaryTooMany
		}
	}
	return names, ""
}

// unionNames merges two sorted, unique name lists.
func unionNames(a, b []string) []string {
	out := slices.Clone(a)
	for _, n := range b {
		if i, found := slices.BinarySearch(out, n); !found {
			out = slices.Insert(out, i, n)
		}
	}
	return out
}

// safeValue reports whether v can be replayed as a header value: no control
// characters but tab, which a header injection would need.
func safeValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// lowerToken reports whether name is a token without upper-case letters:
// how names are stored.
func lowerToken(name string) bool {
	for i := 0; i < len(name); i++ {
		if c := name[i]; !tokenChars[c] || 'A' <= c && c <= 'Z' {
			return false
		}
	}
	return name != ""
}
