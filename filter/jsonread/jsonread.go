// Package jsonread reads JSON documents in place, without reflection and
// without allocating, except to unescape a string that holds escapes.
//
// It replaces gjson in the plugin: gjson's init links encoding/json, reflect
// and fmt into the module, and Go on wasm copies every linked package's data
// into each VM's linear memory (README "Performance", module footprint).
// Scan validates exactly what encoding/json.Valid accepts, and additionally
// refuses invalid UTF-8 (RFC 8259 §8.1); a Value is then read by slicing the
// validated text. Strings decode as encoding/json decodes them (a lone
// surrogate escape becomes U+FFFD). FuzzScan and FuzzValue check both claims
// against encoding/json.
package jsonread

import (
	"iter"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxDepth bounds the nesting of arrays and objects, as encoding/json does.
const MaxDepth = 10000

// Kind is the JSON type of a Value.
type Kind uint8

// The kinds, in the order of RFC 8259 §3; Absent is the zero Value's kind.
const (
	Absent Kind = iota
	Null
	False
	True
	Number
	String
	Object
	Array
)

// kindNames are the names encoding/json's UnmarshalTypeError uses.
var kindNames = [...]string{Absent: "nothing", Null: "null", False: "bool", True: "bool", Number: "number", String: "string", Object: "object", Array: "array"}

func (k Kind) String() string { return kindNames[k] }

// Value is one value of a document Scan accepted: its text, without the
// surrounding whitespace. The zero Value is Absent (a member that is not there).
type Value struct{ Raw string }

// Parse returns the value doc holds, or false when doc is not exactly one
// valid JSON value with optional whitespace around it.
func Parse(doc string) (Value, bool) {
	start := skipSpace(doc, 0)
	end, ok := Scan(doc)
	if !ok || skipSpace(doc, end) != len(doc) {
		return Value{}, false
	}
	return Value{Raw: doc[start:end]}, true
}

// Valid reports whether doc is exactly one valid JSON value.
func Valid(doc string) bool {
	_, ok := Parse(doc)
	return ok
}

// Kind is v's JSON type.
func (v Value) Kind() Kind {
	if v.Raw == "" {
		return Absent
	}
	switch v.Raw[0] {
	case 'n':
		return Null
	case 'f':
		return False
	case 't':
		return True
	case '"':
		return String
	case '{':
		return Object
	case '[':
		return Array
	}
	return Number
}

// Exists reports whether v is a value (Absent is not).
func (v Value) Exists() bool { return v.Raw != "" }

// Str is the decoded text of a string value, "" for any other kind. It
// allocates only when the string holds escapes.
func (v Value) Str() string {
	if v.Kind() != String {
		return ""
	}
	return unquote(v.Raw)
}

// Int is an integer written without fraction or exponent, when it fits in an
// int64 (encoding/json's rule for integer fields).
func (v Value) Int() (int64, bool) {
	if v.Kind() != Number {
		return 0, false
	}
	raw := v.Raw
	if len(raw) <= 18 { // fast path: fits without overflow checks
		n, neg := int64(0), raw[0] == '-'
		digits := raw
		if neg {
			digits = raw[1:]
		}
		for i := 0; i < len(digits); i++ {
			c := digits[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int64(c-'0')
		}
		if neg {
			n = -n
		}
		return n, true
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	return n, err == nil
}

// Float is the value of a number, the nearest float64 (±Inf beyond range).
func (v Value) Float() (float64, bool) {
	if v.Kind() != Number {
		return 0, false
	}
	if n, ok := v.Int(); ok && n > -1<<53 && n < 1<<53 {
		return float64(n), true
	}
	f, err := strconv.ParseFloat(v.Raw, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); !ok || ne.Err != strconv.ErrRange {
			return 0, false
		}
	}
	return f, true
}

// Get is the member of an object named name (the first, when names repeat,
// as gjson answers); Absent when v is not an object or has no such member.
func (v Value) Get(name string) Value {
	for key, value := range v.Members() {
		if key == name {
			return value
		}
	}
	return Value{}
}

// Members yields an object's members in document order, names decoded;
// nothing when v is not an object.
func (v Value) Members() iter.Seq2[string, Value] {
	return func(yield func(string, Value) bool) {
		if v.Kind() != Object {
			return
		}
		doc := v.Raw
		for i := skipSpace(doc, 1); i < len(doc) && doc[i] == '"'; {
			keyEnd := stringEnd(doc, i)
			key := unquote(doc[i:keyEnd])
			start := skipSpace(doc, skipSpace(doc, keyEnd)+1) // past ':'
			end := valueEnd(doc, start)
			if !yield(key, Value{Raw: doc[start:end]}) {
				return
			}
			i = skipSpace(doc, end)
			if doc[i] == ',' {
				i = skipSpace(doc, i+1)
			}
		}
	}
}

// Elements yields an array's elements in order; nothing when v is not an array.
func (v Value) Elements() iter.Seq[Value] {
	return func(yield func(Value) bool) {
		if v.Kind() != Array {
			return
		}
		doc := v.Raw
		for i := skipSpace(doc, 1); i < len(doc) && doc[i] != ']'; {
			end := valueEnd(doc, i)
			if !yield(Value{Raw: doc[i:end]}) {
				return
			}
			i = skipSpace(doc, end)
			if doc[i] == ',' {
				i = skipSpace(doc, i+1)
			}
		}
	}
}

// Scan checks the JSON value at the start of doc (after whitespace) and
// returns the index just past it. When it is not valid, ok is false and end
// is the offset of the first byte that cannot belong to it, len(doc) when the
// document ends too soon.
func Scan(doc string) (end int, ok bool) {
	return scanValue(doc, skipSpace(doc, 0), 0)
}

func scanValue(doc string, i, depth int) (int, bool) {
	if i >= len(doc) {
		return i, false
	}
	switch c := doc[i]; {
	case c == '"':
		return scanString(doc, i)
	case c == '{':
		return scanObject(doc, i, depth+1)
	case c == '[':
		return scanArray(doc, i, depth+1)
	case c == 't':
		return scanLiteral(doc, i, "true")
	case c == 'f':
		return scanLiteral(doc, i, "false")
	case c == 'n':
		return scanLiteral(doc, i, "null")
	case c == '-' || c >= '0' && c <= '9':
		return scanNumber(doc, i)
	}
	return i, false
}

func scanObject(doc string, i, depth int) (int, bool) {
	if depth > MaxDepth {
		return i, false
	}
	i = skipSpace(doc, i+1)
	if i < len(doc) && doc[i] == '}' {
		return i + 1, true
	}
	for {
		if i >= len(doc) || doc[i] != '"' {
			return i, false
		}
		var ok bool
		if i, ok = scanString(doc, i); !ok {
			return i, false
		}
		if i = skipSpace(doc, i); i >= len(doc) || doc[i] != ':' {
			return i, false
		}
		if i, ok = scanValue(doc, skipSpace(doc, i+1), depth); !ok {
			return i, false
		}
		if i = skipSpace(doc, i); i >= len(doc) {
			return i, false
		}
		switch doc[i] {
		case '}':
			return i + 1, true
		case ',':
			i = skipSpace(doc, i+1)
		default:
			return i, false
		}
	}
}

func scanArray(doc string, i, depth int) (int, bool) {
	if depth > MaxDepth {
		return i, false
	}
	i = skipSpace(doc, i+1)
	if i < len(doc) && doc[i] == ']' {
		return i + 1, true
	}
	for {
		var ok bool
		if i, ok = scanValue(doc, i, depth); !ok {
			return i, false
		}
		if i = skipSpace(doc, i); i >= len(doc) {
			return i, false
		}
		switch doc[i] {
		case ']':
			return i + 1, true
		case ',':
			i = skipSpace(doc, i+1)
		default:
			return i, false
		}
	}
}

func scanLiteral(doc string, i int, lit string) (int, bool) {
	for j := 0; j < len(lit); j++ {
		if i+j >= len(doc) || doc[i+j] != lit[j] {
			return i + j, false
		}
	}
	return i + len(lit), true
}

// scanNumber follows RFC 8259 §6: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
func scanNumber(doc string, i int) (int, bool) {
	if doc[i] == '-' {
		i++
	}
	switch {
	case i < len(doc) && doc[i] == '0':
		i++
	case i < len(doc) && doc[i] >= '1' && doc[i] <= '9':
		i = skipDigits(doc, i)
	default:
		return i, false
	}
	if i < len(doc) && doc[i] == '.' {
		if i++; i >= len(doc) || !isDigit(doc[i]) {
			return i, false
		}
		i = skipDigits(doc, i)
	}
	if i < len(doc) && (doc[i] == 'e' || doc[i] == 'E') {
		if i++; i < len(doc) && (doc[i] == '+' || doc[i] == '-') {
			i++
		}
		if i >= len(doc) || !isDigit(doc[i]) {
			return i, false
		}
		i = skipDigits(doc, i)
	}
	return i, true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func skipDigits(doc string, i int) int {
	for i < len(doc) && isDigit(doc[i]) {
		i++
	}
	return i
}

// scanString checks the string starting at doc[i] == '"': no control
// characters, valid escapes, valid UTF-8.
func scanString(doc string, i int) (int, bool) {
	for i++; i < len(doc); {
		c := doc[i]
		switch {
		case c == '"':
			return i + 1, true
		case c < 0x20:
			return i, false
		case c == '\\':
			if i+1 >= len(doc) {
				return len(doc), false
			}
			switch doc[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for j := i + 2; j < i+6; j++ {
					if j >= len(doc) {
						return j, false
					}
					if !isHex(doc[j]) {
						return j, false
					}
				}
				i += 6
			default:
				return i + 1, false
			}
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRuneInString(doc[i:])
			if r == utf8.RuneError && size == 1 {
				return i, false
			}
			i += size
		}
	}
	return len(doc), false
}

func isHex(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func skipSpace(doc string, i int) int {
	for i < len(doc) && (doc[i] == ' ' || doc[i] == '\t' || doc[i] == '\n' || doc[i] == '\r') {
		i++
	}
	return i
}

// The readers below run on text Scan accepted, so they only find ends.

// stringEnd returns the index just past the string starting at doc[i] == '"'.
func stringEnd(doc string, i int) int {
	for i++; i < len(doc); i++ {
		switch doc[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(doc)
}

// valueEnd returns the index just past the value starting at doc[i].
func valueEnd(doc string, i int) int {
	switch doc[i] {
	case '"':
		return stringEnd(doc, i)
	case '{', '[':
		depth := 0
		for i < len(doc) {
			switch doc[i] {
			case '"':
				i = stringEnd(doc, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for i < len(doc) && doc[i] != ',' && doc[i] != '}' && doc[i] != ']' && doc[i] != ' ' && doc[i] != '\t' && doc[i] != '\n' && doc[i] != '\r' {
		i++
	}
	return i
}

// unquote decodes a valid JSON string literal, quotes included.
func unquote(lit string) string {
	body := lit[1 : len(lit)-1]
	escape := -1
	for i := 0; i < len(body); i++ {
		if body[i] == '\\' {
			escape = i
			break
		}
	}
	if escape < 0 {
		return body
	}
	out := make([]byte, escape, len(body))
	copy(out, body)
	for i := escape; i < len(body); {
		if body[i] != '\\' {
			out = append(out, body[i])
			i++
			continue
		}
		switch e := body[i+1]; e {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := hex4(body[i+2 : i+6])
			i += 6
			if utf16.IsSurrogate(r) {
				if i+6 <= len(body) && body[i] == '\\' && body[i+1] == 'u' {
					if pair := utf16.DecodeRune(r, hex4(body[i+2:i+6])); pair != utf8.RuneError {
						out = utf8.AppendRune(out, pair)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			out = utf8.AppendRune(out, r)
			continue
		default: // '"', '\\', '/'
			out = append(out, e)
		}
		i += 2
	}
	return string(out)
}

func hex4(h string) rune {
	var r rune
	for i := 0; i < 4; i++ {
		c := h[i]
		switch {
		case c >= 'a':
			c -= 'a' - 10
		case c >= 'A':
			c -= 'A' - 10
		default:
			c -= '0'
		}
		r = r<<4 | rune(c)
	}
	return r
}
