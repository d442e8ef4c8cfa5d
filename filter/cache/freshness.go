package cache

import (
	"strings"
	"time"
)

// freshness is how long a response stays fresh once received, in seconds:
// its freshness lifetime (RFC 9111 §4.2.1) less its age on arrival. A shared
// cache takes, in order: s-maxage, max-age, Expires − Date, and otherwise
// the configured heuristic lifetime (§4.2.2). The age on arrival is the
// Age field (§5.1); the apparent age from Date is not used, because the
// upstream's clock is not the proxy's and the gateway talks to the origin
// directly (no response delay worth correcting for, §4.2.3).
func freshness(cc CacheControl, headers [][2]string, received time.Time, heuristic time.Duration) int64 {
	var lifetime int64
	switch {
	case cc.SMaxAge >= 0:
		lifetime = cc.SMaxAge
	case cc.MaxAge >= 0:
		lifetime = cc.MaxAge
	default:
		if expires, ok := singleField(headers, "expires"); ok {
			lifetime = expiresLifetime(expires, headers, received)
		} else {
			lifetime = int64(heuristic / time.Second)
		}
	}
	return lifetime - ageOnArrival(headers)
}

// expiresLifetime is Expires − Date (§4.2.1), with Date the time received
// when it is absent or invalid. An invalid Expires, such as "0", is in the
// past (§5.3).
func expiresLifetime(expires string, headers [][2]string, received time.Time) int64 {
	exp, ok := parseHTTPDate(expires)
	if !ok {
		return 0
	}
	date := received
	if v, ok := singleField(headers, "date"); ok {
		if d, ok := parseHTTPDate(v); ok {
			date = d
		}
	}
	return min(max(int64(exp.Sub(date)/time.Second), 0), MaxDelta)
}

// ageOnArrival is the Age field: its first member when it is a list, and 0
// when that is not a non-negative integer (RFC 9111 §5.1: ignore it).
func ageOnArrival(headers [][2]string) int64 {
	for _, h := range headers {
		if strings.EqualFold(h[0], "age") {
			first, _, _ := strings.Cut(h[1], ",")
			if v, ok := parseDelta(strings.Trim(first, " \t")); ok {
				return v
			}
			return 0
		}
	}
	return 0
}

// singleField is the value of a singleton field; ok is false when it is
// absent. A field sent on several lines is invalid, and reads as "" (which
// no date parse accepts: Expires then means stale, §4.2.1).
func singleField(headers [][2]string, name string) (value string, ok bool) {
	for _, h := range headers {
		if strings.EqualFold(h[0], name) {
			if ok {
				return "", true
			}
			value, ok = strings.Trim(h[1], " \t"), true
		}
	}
	return value, ok
}
