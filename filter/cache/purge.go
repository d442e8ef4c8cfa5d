package cache

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/portcullis/portcullis/filter/wrap"
)

// Purge: surrogate keys and the purge endpoint (doc.go, "Purge").
//
// A fill files its index key under tag sets in the cache cluster: the
// path's (host, path), and one per surrogate key of the response (host,
// key). The member is the index key with its scope's id, so a purge can
// take one tenant's members and leave the others'. A purge deletes a tag
// set's members (one scope's, or all) in the store, which answers their
// index keys; the plugin tombstones those on this Envoy at once, exactly as
// an unsafe method's invalidation does.

// PurgeConfig is the compiled cache.purge block.
type PurgeConfig struct {
	// Path is the purge endpoint's path on the gateway.
	Path string
	// TagHeader is the response field carrying surrogate keys, lower case.
	TagHeader string
	// secret is the SHA-256 of the admin secret: compared in constant time
	// with the SHA-256 of what a caller presents, so neither its bytes nor
	// its length leak through timing.
	secret digest
}

// NewPurgeConfig returns the purge configuration for the admin secret.
func NewPurgeConfig(path, tagHeader string, secret []byte) *PurgeConfig {
	return &PurgeConfig{Path: path, TagHeader: strings.ToLower(tagHeader), secret: sha256.Sum256(secret)}
}

// Limits on surrogate keys: a response with more keys, or a longer one, is
// not stored (ReasonSurrogateKeys), since it could not be purged by them.
const (
	MaxSurrogateKeys     = 32
	MaxSurrogateKeyBytes = 256
)

// PurgeAuth is what Authorize found.
type PurgeAuth uint8

const (
	PurgeAllowed      PurgeAuth = iota
	PurgeNoCredential           // no Authorization: Bearer: 401
	PurgeWrongSecret            // a bearer token that is not the admin secret: 403
)

// Authorize checks a purge request's Authorization field: "Bearer" and the
// admin secret. A tenant's JWT is not the secret: it is refused like any
// other wrong token.
func (p *PurgeConfig) Authorize(authorization string) PurgeAuth {
	scheme, token, ok := strings.Cut(strings.TrimSpace(authorization), " ")
	token = strings.TrimLeft(token, " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || token == "" {
		return PurgeNoCredential
	}
	presented := sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare(presented[:], p.secret[:]) != 1 {
		return PurgeWrongSecret
	}
	return PurgeAllowed
}

// PurgeRequest is a parsed purge: which tag set to ask the store for, for
// which scope, and the index key it names directly, if any.
type PurgeRequest struct {
	// By is "path" or "tag"; Host, Path and Tag what it names; AllTenants
	// is set for every tenant's entries and the shared ones, else one
	// tenant's.
	By, Host, Path, Tag string
	AllTenants          bool
	// TagKey is the tag set to purge in the store, Scope the scope id of
	// its members to take ("" for all).
	TagKey, Scope string
	// Direct are index keys the request names without the store (one
	// tenant's path): purged even when no fill filed them.
	Direct []string
}

// ErrBadPurge wraps every refusal of ParsePurge: a 400.
var ErrBadPurge = errors.New("bad purge request")

// ParsePurge reads a purge request's target (:path with its query):
//
//	?path=/api/orders&tenant=alice      one tenant's variants of a path
//	?path=/api/orders&all=true          every tenant's, and the shared ones
//	?tag=product-42&tenant=alice        one tenant's entries with a surrogate key
//	?tag=product-42&all=true            every entry with it
//
// host= names the origin (default: the purge request's own :authority,
// read as the cache keys read it). Exactly one of path and tag, and one of
// tenant and all=true; nothing else.
func (p *PurgeConfig) ParsePurge(scheme, authority, target string) (*PurgeRequest, error) {
	_, rawQuery := splitTarget(target)
	q, ok := parseQuery(rawQuery)
	if !ok {
		return nil, wrap.Detail(ErrBadPurge, "the query does not parse")
	}
	one := func(name string) (string, bool, error) {
		v, ok := q[name]
		switch {
		case !ok:
			return "", false, nil
		case len(v) != 1:
			return "", false, wrap.Detail(ErrBadPurge, name+" given "+strconv.Itoa(len(v))+" times")
		}
		return v[0], true, nil
	}
	for name := range q {
		switch name {
		case "path", "tag", "tenant", "all", "host":
		default:
			return nil, wrap.Detail(ErrBadPurge, "unknown parameter "+strconv.Quote(name)+" (want path or tag, tenant or all=true, and host)")
		}
	}
	r := &PurgeRequest{}
	path, hasPath, err1 := one("path")
	tag, hasTag, err2 := one("tag")
	tenant, hasTenant, err3 := one("tenant")
	all, hasAll, err4 := one("all")
	host, hasHost, err5 := one("host")
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		return nil, err
	}
	switch {
	case hasPath == hasTag:
		return nil, wrap.Detail(ErrBadPurge, "give exactly one of path and tag")
	case hasTenant == hasAll:
		return nil, wrap.Detail(ErrBadPurge, "give exactly one of tenant and all=true")
	case hasAll && all != "true":
		return nil, wrap.Detail(ErrBadPurge, "all must be true")
	case hasTenant && !visibleASCII(tenant, 1024):
		return nil, wrap.Detail(ErrBadPurge, "tenant must be 1 to 1024 visible ASCII characters")
	case hasHost && (!visibleASCII(host, 255) || strings.ContainsAny(host, "/?#@")):
		return nil, wrap.Detail(ErrBadPurge, "host must be a host[:port]")
	}
	r.AllTenants = hasAll
	if !hasHost {
		host = authority
	}
	r.Host = canonicalHost(scheme, host)
	if r.Host == "" {
		return nil, wrap.Detail(ErrBadPurge, "no host: give host=")
	}
	if hasTenant {
		r.Scope = scopeID(tenant, false)
	}
	if hasPath {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, "?#") || !visibleASCII(path, 4096) {
			return nil, wrap.Detail(ErrBadPurge, "path must start with / and hold no query (visible ASCII, at most 4096)")
		}
		r.By, r.Path = "path", path
		r.TagKey = hexKey(pathTagDigest(r.Host, path))
		if hasTenant {
			r.Direct = []string{hexKey(indexDigest(r.Host, path, tenant, false))}
		}
		return r, nil
	}
	if !validSurrogateKey(tag) {
		return nil, wrap.Detail(ErrBadPurge, "a tag is 1 to "+strconv.Itoa(MaxSurrogateKeyBytes)+" visible characters, without spaces or commas")
	}
	r.By, r.Tag = "tag", tag
	r.TagKey = hexKey(surrogateTagDigest(r.Host, tag))
	return r, nil
}

// visibleASCII reports whether s is 1 to max bytes of printable ASCII
// (no space, no control characters).
func visibleASCII(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

func validSurrogateKey(k string) bool {
	return visibleASCII(k, MaxSurrogateKeyBytes) && !strings.ContainsRune(k, ',')
}

// SurrogateKeys reads a response's surrogate keys from its field value:
// Fastly's Surrogate-Key separates them with spaces, Cloudflare's Cache-Tag
// with commas; either is read, and duplicates count once. ok is false when
// there are too many or one is invalid.
func SurrogateKeys(value string) (keys []string, ok bool) {
	for k := range strings.FieldsFuncSeq(value, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' }) {
		if !validSurrogateKey(k) {
			return nil, false
		}
		if !slices.Contains(keys, k) {
			if len(keys) == MaxSurrogateKeys {
				return nil, false
			}
			keys = append(keys, k)
		}
	}
	return keys, true
}

// pathTagDigest names the tag set of every scope's index key of a path;
// surrogateTagDigest that of a surrogate key on one host.
func pathTagDigest(host, path string) digest { return tagDigest("purge-path", host, "path", path) }

func surrogateTagDigest(host, key string) digest { return tagDigest("purge-tag", host, "tag", key) }

func tagDigest(kind, host, label, value string) digest {
	var scratch [256]byte
	b := appendKind(scratch[:0], kind)
	b = appendField(b, "host", host)
	b = appendField(b, label, value)
	return sha256.Sum256(b)
}

// scopeID is 16 hex digits naming a scope (a tenant, or the shared
// entries) among a tag set's members: a purge for one tenant takes only its
// members. The store sees this id, never the tenant.
func scopeID(tenant string, shared bool) string {
	var scratch [256]byte
	b := appendKind(scratch[:0], "scope")
	if shared {
		b = appendWord(b, "scope", "shared")
	} else {
		b = appendField(b, "tenant", tenant)
	}
	d := sha256.Sum256(b)
	return hex.EncodeToString(d[:8])
}

// MaxTagMembers bounds a tag set in the store (its server refuses more):
// the purge answer the plugin reads is bounded by it.
const MaxTagMembers = 65536

// TagMemberSeparator joins an index key and its scope id in a tag member.
const TagMemberSeparator = "-"

// ParsePurgedKeys reads the store's answer to a purge: one index key per
// line. Anything that is not an index key is an error (the purge's local
// tombstones would be wrong).
func ParsePurgedKeys(body []byte) ([]string, error) {
	var keys []string
	for line := range strings.Lines(string(body)) {
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			continue
		}
		if !isHexKey(line) {
			return nil, errors.New("cache: the store's purge answer holds " + strconv.Quote(truncate(line, 80)) + ", not an index key")
		}
		keys = append(keys, line)
	}
	return keys, nil
}

func isHexKey(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// parseQuery reads a query string as url.ParseQuery does (pairs split on
// "&", a ";" refused, "+" and %XX unescaped), and reports false where it
// would return an error. It is not url.ParseQuery: that one builds its
// errors with fmt, which would link fmt into the module for this one
// endpoint (README "Performance"); FuzzParseQuery checks the two agree.
func parseQuery(raw string) (map[string][]string, bool) {
	out := map[string][]string{}
	ok := true
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if strings.Contains(pair, ";") {
			ok = false
			continue
		}
		if pair == "" {
			continue
		}
		key, value, _ := strings.Cut(pair, "=")
		k, okKey := unescapeQuery(key)
		v, okValue := unescapeQuery(value)
		if !okKey || !okValue {
			ok = false
			continue
		}
		out[k] = append(out[k], v)
	}
	return out, ok
}

// unescapeQuery is url.QueryUnescape: "+" is a space, %XX a byte.
func unescapeQuery(s string) (string, bool) {
	if !strings.ContainsAny(s, "%+") {
		return s, true
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '+':
			b = append(b, ' ')
		case '%':
			if i+2 >= len(s) {
				return "", false
			}
			hi, okHi := hexNibble(s[i+1])
			lo, okLo := hexNibble(s[i+2])
			if !okHi || !okLo {
				return "", false
			}
			b = append(b, hi<<4|lo)
			i += 2
		default:
			b = append(b, c)
		}
	}
	return string(b), true
}
