package cache

import (
	"encoding/binary"
	"errors"
	"github.com/portcullis/portcullis/filter/wrap"
)

// ErrCorrupt is wrapped by every decoding error: the stored value is not a
// record this version wrote, whatever happened to it.
var ErrCorrupt = errors.New("cache: corrupt record")

func corrupt(detail string) error { return wrap.Detail(ErrCorrupt, detail) }

// reader reads little-endian fixed-width fields and length-prefixed strings
// from a string, failing (ok false, for good) instead of reading past its
// end. Substrings share the string's memory, so a whole record's strings
// cost one conversion.
type reader struct {
	s   string
	off int
	ok  bool
}

func newReader(s string) reader { return reader{s: s, ok: true} }

func (r *reader) take(n int) string {
	if !r.ok || n < 0 || n > len(r.s)-r.off {
		r.ok = false
		return ""
	}
	v := r.s[r.off : r.off+n]
	r.off += n
	return v
}

func (r *reader) u8() int {
	b := r.take(1)
	if b == "" {
		return 0
	}
	return int(b[0])
}

func (r *reader) u16() int {
	b := r.take(2)
	if len(b) < 2 {
		return 0
	}
	return int(b[0]) | int(b[1])<<8
}

// str8 and str16 read a string after its 1- or 2-byte length.
func (r *reader) str8() string  { return r.take(r.u8()) }
func (r *reader) str16() string { return r.take(r.u16()) }

// rest is how many bytes are left.
func (r *reader) rest() int { return len(r.s) - r.off }

// Writing: the same fields, appended.

func appendStr8(b []byte, s string) []byte { return append(append(b, byte(len(s))), s...) }
func appendStr16(b []byte, s string) []byte {
	return append(binary.LittleEndian.AppendUint16(b, uint16(len(s))), s...)
}
