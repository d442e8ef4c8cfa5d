// Package jsonobj builds small flat JSON objects without reflection.
package jsonobj

import (
	"strconv"
	"unicode/utf8"
)

// Object builds a flat JSON object of string, integer and boolean members. The
// gateway's error bodies, log lines and health answers are such objects, and
// building them by hand costs a tenth of encoding/json's reflection inside
// the wasm VM. Strings are escaped as encoding/json does (invalid UTF-8
// becomes U+FFFD); FuzzObject checks the result against encoding/json.
type Object struct{ buf []byte }

// String adds the member key: value.
func (o *Object) String(key, value string) *Object {
	o.key(key)
	o.buf = AppendString(o.buf, value)
	return o
}

// Int adds the member key: n.
func (o *Object) Int(key string, n int) *Object {
	o.key(key)
	o.buf = strconv.AppendInt(o.buf, int64(n), 10)
	return o
}

// Bool adds the member key: b.
func (o *Object) Bool(key string, b bool) *Object {
	o.key(key)
	o.buf = strconv.AppendBool(o.buf, b)
	return o
}

// Bytes closes the object and returns it.
func (o *Object) Bytes() []byte {
	if len(o.buf) == 0 {
		return []byte("{}")
	}
	return append(o.buf, '}')
}

// Reuse returns an empty Object that builds in buf's memory: a caller that
// builds one object at a time (the access record, once per request) keeps
// one buffer instead of allocating one per object. The previous result
// built in buf is overwritten.
func Reuse(buf []byte) Object { return Object{buf: buf[:0]} }

func (o *Object) key(key string) {
	if len(o.buf) == 0 {
		if cap(o.buf) == 0 {
			o.buf = make([]byte, 0, 128)
		}
		o.buf = append(o.buf, '{')
	} else {
		o.buf = append(o.buf, ',')
	}
	o.buf = AppendString(o.buf, key)
	o.buf = append(o.buf, ':')
}

const hexDigits = "0123456789abcdef"

// plainASCII marks the ASCII bytes a JSON string carries as they are.
// AppendString copies runs of them with one append: inside the wasm VM the
// access record's strings are the plugin's hottest code, and appending byte
// by byte cost most of it.
var plainASCII = func() (t [utf8.RuneSelf]bool) {
	for c := byte(0x20); c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// AppendString appends s to dst as a JSON string, escaped like the
// members of an Object; for callers that build other JSON shapes.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	plain := 0 // s[plain:i] is still to be copied as it is
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf && plainASCII[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = appendEscapedASCII(append(dst, s[plain:i]...), c)
			i++
			plain = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(append(dst, s[plain:i]...), `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(append(dst, s[plain:i]...), '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size // valid UTF-8 is carried as it is
			continue
		}
		i += size
		plain = i
	}
	dst = append(dst, s[plain:]...)
	return append(dst, '"')
}

// appendEscapedASCII appends the escape of an ASCII byte that plainASCII
// does not carry as it is.
func appendEscapedASCII(dst []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(dst, '\\', c)
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	case '\b':
		return append(dst, '\\', 'b')
	case '\f':
		return append(dst, '\\', 'f')
	}
	return append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
}
