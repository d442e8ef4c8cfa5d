package cache

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"strings"
)

// The canonical key strings and their digests; doc.go gives the format.

// keyMagic starts every canonical key string: a new format gets new keys.
const keyMagic = "portcullis-cache/1 "

// digest is the SHA-256 of a canonical key string; the store sees its hex.
type digest = [sha256.Size]byte

// hexKey is not inlined: a SHA-256 costs far more than the call, and each
// inlined copy of the hex loop is about 300 bytes of module.
//
//go:noinline
func hexKey(d digest) string {
	var buf [2 * sha256.Size]byte
	hex.Encode(buf[:], d[:])
	return string(buf[:])
}

// parseHexKey is hexKey's inverse (either case, as encoding/hex reads). It
// is not hex.Decode: hex.InvalidByteError formats itself with fmt, which
// would link fmt into the module for this one error (README "Performance").
func parseHexKey(key string) (d digest, ok bool) {
	if len(key) != 2*len(d) {
		return d, false
	}
	for i := range d {
		hi, okHi := hexNibble(key[2*i])
		lo, okLo := hexNibble(key[2*i+1])
		if !okHi || !okLo {
			return d, false
		}
		d[i] = hi<<4 | lo
	}
	return d, true
}

func hexNibble(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Canonical key strings are built with these appenders into a buffer on
// the caller's stack (a method on a struct holding the slice would make the
// buffer escape to the heap). Values are length-prefixed, so no value,
// whatever bytes it holds, can be read as another field.

func appendKind(b []byte, kind string) []byte {
	return append(append(append(b, keyMagic...), kind...), '\n')
}

// appendField appends "label <len>:<value>\n".
func appendField(b []byte, label, value string) []byte {
	b = append(append(b, label...), ' ')
	b = appendLengthPrefixed(b, value)
	return append(b, '\n')
}

func appendLengthPrefixed(b []byte, value string) []byte {
	b = strconv.AppendInt(b, int64(len(value)), 10)
	return append(append(b, ':'), value...)
}

// appendWord appends "label word\n", for values of a fixed form.
func appendWord(b []byte, label, word string) []byte {
	return append(append(append(append(b, label...), ' '), word...), '\n')
}

// appendHex appends "label <hex of v>\n".
func appendHex(b []byte, label string, v []byte) []byte {
	return append(hex.AppendEncode(append(append(b, label...), ' '), v), '\n')
}

// indexDigest is K0: the path of one host, in one scope (a tenant, or the
// entries shared by every caller). Everything the index record leads to
// hangs below it, so a key of one scope never reaches another's entries.
func indexDigest(host, path, tenant string, shared bool) digest {
	var scratch [256]byte
	b := appendKind(scratch[:0], "index")
	b = appendField(b, "host", host)
	b = appendField(b, "path", path)
	if shared {
		b = appendWord(b, "scope", "shared")
	} else {
		b = appendField(b, "tenant", tenant)
	}
	return sha256.Sum256(b)
}

// variantDigest is K1 (kind "entry", with the index's epoch) or the fill-lock
// key (kind "fill", without, so that concurrent misses agree on it before
// any index exists): below index k0, the GET of canonical query q whose
// request had headers, varied on names (sorted).
func variantDigest(kind string, k0 digest, epoch *uint64, q string, names []string, headers [][2]string) digest {
	var scratch [512]byte
	b := appendKind(scratch[:0], kind)
	b = appendHex(b, "index", k0[:])
	if epoch != nil {
		var e [8]byte
		binary.BigEndian.PutUint64(e[:], *epoch)
		b = appendHex(b, "epoch", e[:])
	}
	b = appendWord(b, "method", "GET") // HEAD reads the GET entry; nothing else is stored
	b = appendField(b, "query", q)
	for _, name := range names {
		b = appendLengthPrefixed(append(b, "vary "...), name)
		if value, present := fieldValue(headers, name); present {
			b = appendLengthPrefixed(append(b, ' '), value)
		} else {
			b = append(b, " -"...)
		}
		b = append(b, '\n')
	}
	return sha256.Sum256(b)
}

// canonicalHost is :authority in lower case without the scheme's default
// port (":80" for http, ":443" for https, either when the scheme is unknown)
// or an empty port, so that "API.example.com:443" and "api.example.com"
// are one origin.
func canonicalHost(scheme, authority string) string {
	host := authority
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		switch port := host[i+1:]; {
		case port == "",
			port == "80" && scheme != "https",
			port == "443" && scheme != "http":
			host = host[:i]
		}
	}
	return lowerASCII(host)
}

// lowerASCII lower-cases ASCII letters, allocating only when there are any.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// splitTarget splits a :path into path and query (without "?"); a fragment,
// which a request target should not carry, is dropped.
func splitTarget(target string) (path, query string) {
	target, _, _ = strings.Cut(target, "#")
	path, query, _ = strings.Cut(target, "?")
	return path, query
}
