// Package netaddr parses and compares the IP addresses and CIDR prefixes the
// gateway needs: client addresses from Envoy's source.address and the health
// endpoint's allowlist.
//
// It stands in for net/netip, which links unique and its concurrent hash map
// and costs the module about 190 KB (README "Performance", module
// footprint). It accepts exactly what net/netip accepts and prints what it
// prints; FuzzParseAddr, FuzzParseAddrPort and FuzzPrefix check that
// against net/netip.
package netaddr

import (
	"strconv"
	"strings"
)

// Addr is an IPv4 or IPv6 address, with an optional IPv6 zone. The zero Addr
// is not valid.
type Addr struct {
	ip   [16]byte // IPv4 in the last four bytes
	kind uint8    // kindInvalid, kind4 or kind6
	zone string
}

const (
	kindInvalid = iota
	kind4
	kind6
)

var v4InV6Prefix = [12]byte{10: 0xff, 11: 0xff}

// ParseAddr parses "192.0.2.1", "2001:db8::1" or "fe80::1%eth0".
func ParseAddr(s string) (Addr, bool) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '.':
			return parseIPv4(s)
		case ':':
			return parseIPv6(s)
		case '%':
			return Addr{}, false // a zone without an address
		}
	}
	return Addr{}, false
}

// ParseAddrPort parses "192.0.2.1:80" or "[2001:db8::1]:80" and returns the
// address; brackets are required around IPv6 and refused around IPv4.
func ParseAddrPort(s string) (Addr, bool) {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 || i == len(s)-1 {
		return Addr{}, false
	}
	host, port := s[:i], s[i+1:]
	bracketed := host[0] == '['
	if bracketed {
		if len(host) < 2 || host[len(host)-1] != ']' {
			return Addr{}, false
		}
		host = host[1 : len(host)-1]
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return Addr{}, false
	}
	a, ok := ParseAddr(host)
	if !ok || bracketed != (a.kind == kind6) {
		return Addr{}, false
	}
	return a, true
}

func parseIPv4(s string) (Addr, bool) {
	a := Addr{kind: kind4}
	copy(a.ip[:], v4InV6Prefix[:])
	if !parseIPv4Fields(s, a.ip[12:]) {
		return Addr{}, false
	}
	return a, true
}

// parseIPv4Fields reads four dotted decimal octets without leading zeros.
func parseIPv4Fields(s string, out []byte) bool {
	field, val, digits := 0, 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			if digits == 1 && val == 0 {
				return false // leading zero
			}
			if val = val*10 + int(c-'0'); val > 255 {
				return false
			}
			digits++
		case c == '.':
			if digits == 0 || i == len(s)-1 || field == 3 {
				return false
			}
			out[field] = byte(val)
			field, val, digits = field+1, 0, 0
		default:
			return false
		}
	}
	if field != 3 || digits == 0 {
		return false
	}
	out[3] = byte(val)
	return true
}

func parseIPv6(s string) (Addr, bool) {
	a := Addr{kind: kind6}
	if i := strings.IndexByte(s, '%'); i >= 0 {
		s, a.zone = s[:i], s[i+1:]
		if a.zone == "" {
			return Addr{}, false
		}
	}
	ellipsis := -1 // where "::" stands, in bytes of the address
	if len(s) >= 2 && s[0] == ':' && s[1] == ':' {
		ellipsis, s = 0, s[2:]
		if s == "" {
			return a, true
		}
	}
	n := 0 // bytes of the address read
	for n < 16 {
		group, digits := 0, 0
		for digits < len(s) && digits <= 4 {
			v, ok := hexValue(s[digits])
			if !ok {
				break
			}
			group = group<<4 | v
			digits++
		}
		if digits == 0 || digits > 4 {
			return Addr{}, false
		}
		if digits < len(s) && s[digits] == '.' { // the last 32 bits, dotted
			if ellipsis < 0 && n != 12 || n+4 > 16 || !parseIPv4Fields(s, a.ip[n:n+4]) {
				return Addr{}, false
			}
			n, s = n+4, ""
			break
		}
		a.ip[n], a.ip[n+1] = byte(group>>8), byte(group)
		n += 2
		if s = s[digits:]; s == "" {
			break
		}
		if s[0] != ':' || len(s) == 1 {
			return Addr{}, false
		}
		if s = s[1:]; s[0] == ':' {
			if ellipsis >= 0 {
				return Addr{}, false // a second "::"
			}
			if ellipsis, s = n, s[1:]; s == "" {
				break
			}
		}
	}
	switch {
	case s != "":
		return Addr{}, false
	case n < 16 && ellipsis < 0:
		return Addr{}, false // too short
	case n == 16 && ellipsis >= 0:
		return Addr{}, false // "::" standing for nothing
	case n < 16:
		gap := 16 - n
		copy(a.ip[ellipsis+gap:], a.ip[ellipsis:n])
		clear(a.ip[ellipsis : ellipsis+gap])
	}
	return a, true
}

func hexValue(c byte) (int, bool) {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0'), true
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10, true
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10, true
	}
	return 0, false
}

// IsValid reports whether a is an address (the zero Addr is not).
func (a Addr) IsValid() bool { return a.kind != kindInvalid }

// Is4In6 reports whether a is an IPv4-mapped IPv6 address (::ffff:a.b.c.d).
func (a Addr) Is4In6() bool {
	return a.kind == kind6 && [12]byte(a.ip[:12]) == v4InV6Prefix
}

// Unmap turns an IPv4-mapped IPv6 address into IPv4 (its zone dropped).
func (a Addr) Unmap() Addr {
	if a.Is4In6() {
		a.kind, a.zone = kind4, ""
	}
	return a
}

// bitLen is 32 for IPv4, 128 for IPv6, 0 for the zero Addr.
func (a Addr) bitLen() int {
	switch a.kind {
	case kind4:
		return 32
	case kind6:
		return 128
	}
	return 0
}

// String is net/netip's text: dotted IPv4, RFC 5952 IPv6 ("::ffff:a.b.c.d"
// for IPv4-mapped), zone after "%".
func (a Addr) String() string {
	switch {
	case a.kind == kind4:
		return string(appendIPv4(nil, a.ip[12:]))
	case a.kind == kindInvalid:
		return "invalid IP"
	}
	var b []byte
	if a.Is4In6() {
		b = appendIPv4(append(b, "::ffff:"...), a.ip[12:])
	} else {
		b = a.appendIPv6(b)
	}
	if a.zone != "" {
		b = append(append(b, '%'), a.zone...)
	}
	return string(b)
}

func appendIPv4(b []byte, ip []byte) []byte {
	for i, octet := range ip[:4] {
		if i > 0 {
			b = append(b, '.')
		}
		b = strconv.AppendUint(b, uint64(octet), 10)
	}
	return b
}

// appendIPv6 writes the eight groups in hex, the first longest run of at
// least two zero groups as "::" (RFC 5952 §4.2).
func (a Addr) appendIPv6(b []byte) []byte {
	group := func(i int) uint64 { return uint64(a.ip[2*i])<<8 | uint64(a.ip[2*i+1]) }
	runStart, runLen := -1, 1
	for i := 0; i < 8; i++ {
		j := i
		for j < 8 && group(j) == 0 {
			j++
		}
		if j-i > runLen {
			runStart, runLen = i, j-i
		}
	}
	for i := 0; i < 8; i++ {
		if i == runStart {
			b = append(b, "::"...)
			if i += runLen; i >= 8 {
				break
			}
		} else if i > 0 {
			b = append(b, ':')
		}
		b = strconv.AppendUint(b, group(i), 16)
	}
	return b
}

// Prefix is an address and a number of leading bits.
type Prefix struct {
	addr Addr
	bits int
}

// ParsePrefix parses "10.0.0.0/8" or "2001:db8::/32": no zone, bits in
// decimal without sign or leading zero, within the address's length.
func ParsePrefix(s string) (Prefix, bool) {
	i := strings.LastIndexByte(s, '/')
	if i < 0 {
		return Prefix{}, false
	}
	a, ok := ParseAddr(s[:i])
	if !ok || a.zone != "" {
		return Prefix{}, false
	}
	bitsText := s[i+1:]
	if len(bitsText) > 1 && (bitsText[0] < '1' || bitsText[0] > '9') {
		return Prefix{}, false
	}
	bits, err := strconv.Atoi(bitsText)
	if err != nil || bits < 0 || bits > a.bitLen() {
		return Prefix{}, false
	}
	return Prefix{addr: a, bits: bits}, true
}

// MustParsePrefix is ParsePrefix for literals in tests; it panics on a bad one.
func MustParsePrefix(s string) Prefix {
	p, ok := ParsePrefix(s)
	if !ok {
		panic("netaddr: not a prefix: " + strconv.Quote(s))
	}
	return p
}

// PrefixFrom is the prefix of a's first bits bits (a zero Prefix when bits is
// out of range).
func PrefixFrom(a Addr, bits int) Prefix {
	if bits < 0 || bits > a.bitLen() {
		return Prefix{}
	}
	a.zone = ""
	return Prefix{addr: a, bits: bits}
}

// Addr is the prefix's address; Bits its length.
func (p Prefix) Addr() Addr { return p.addr }

// Bits is the prefix length.
func (p Prefix) Bits() int { return p.bits }

// Masked is p with the address bits past its length cleared.
func (p Prefix) Masked() Prefix {
	first := 16 - p.addr.bitLen()/8 // IPv4 lives in the last four bytes
	for i := first; i < 16; i++ {
		keep := min(max(p.bits-8*(i-first), 0), 8)
		p.addr.ip[i] &= byte(0xff << (8 - keep))
	}
	return p
}

// Contains reports whether a is in p: same family, no zone, the leading bits
// equal.
func (p Prefix) Contains(a Addr) bool {
	if !p.addr.IsValid() || a.zone != "" || a.kind != p.addr.kind {
		return false
	}
	first := 16 - a.bitLen()/8
	for i := first; i < 16; i++ {
		keep := min(max(p.bits-8*(i-first), 0), 8)
		if (a.ip[i]^p.addr.ip[i])&byte(0xff<<(8-keep)) != 0 {
			return false
		}
	}
	return true
}

// String is "addr/bits".
func (p Prefix) String() string {
	if !p.addr.IsValid() {
		return "invalid Prefix"
	}
	return p.addr.String() + "/" + strconv.Itoa(p.bits)
}
