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

func (o *Object) key(key string) {
	if len(o.buf) == 0 {
		o.buf = append(make([]byte, 0, 128), '{')
	} else {
		o.buf = append(o.buf, ',')
	}
	o.buf = AppendString(o.buf, key)
	o.buf = append(o.buf, ':')
}

const hexDigits = "0123456789abcdef"

// AppendString appends s to dst as a JSON string, escaped like the
// members of an Object; for callers that build other JSON shapes.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c == '\b':
				dst = append(dst, '\\', 'b')
			case c == '\f':
				dst = append(dst, '\\', 'f')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}
