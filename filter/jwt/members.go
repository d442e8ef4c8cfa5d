package jwt

import (
	"strings"

	"github.com/tidwall/gjson"
)

// collectMembers walks the top-level members of doc, a JSON object that
// gjson.Valid has already accepted, and stores the values of those named in
// names into out (same index; absent members stay zero). It reports false when
// a member name repeats.
//
// It is hand-written because it runs on every request inside the wasm VM,
// where gjson's ForEach, which builds a Result for every member, was the
// largest cost after the HMAC. Values are only located here; gjson parses the
// few that are wanted. FuzzCollectMembers checks it against gjson.
func collectMembers(doc string, names []string, out []gjson.Result) bool {
	var seen [16]string
	keys := seen[:0]
	i := skipSpace(doc, 0)
	if i >= len(doc) || doc[i] != '{' {
		return false
	}
	i = skipSpace(doc, i+1)
	for i < len(doc) && doc[i] != '}' {
		keyEnd := stringEnd(doc, i)
		key := doc[i+1 : keyEnd-1]
		if strings.IndexByte(key, '\\') >= 0 {
			key = gjson.Parse(doc[i:keyEnd]).Str
		}
		for _, k := range keys {
			if k == key {
				return false
			}
		}
		keys = append(keys, key)
		i = skipSpace(doc, keyEnd)
		i = skipSpace(doc, i+1) // past ':'
		valueEnd := valueEnd(doc, i)
		for n, name := range names {
			if name == key {
				out[n] = memberValue(doc[i:valueEnd])
			}
		}
		i = skipSpace(doc, valueEnd)
		if i < len(doc) && doc[i] == ',' {
			i = skipSpace(doc, i+1)
		}
	}
	return true
}

// memberValue is gjson.Parse(raw), except that a number keeps only its text:
// NumericDate parses the few it needs, and strconv is slow inside the VM.
func memberValue(raw string) gjson.Result {
	if raw != "" && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') {
		return gjson.Result{Type: gjson.Number, Raw: raw}
	}
	return gjson.Parse(raw)
}

// numericDate returns the value of a JSON number (RFC 7519 §2), with a fast
// path for the usual integral seconds.
func numericDate(number gjson.Result) float64 {
	raw := number.Raw
	if len(raw) > 0 && len(raw) <= 15 {
		var n int64
		integral := true
		for i := 0; i < len(raw) && integral; i++ {
			c := raw[i]
			integral = c >= '0' && c <= '9'
			n = n*10 + int64(c-'0')
		}
		if integral {
			return float64(n)
		}
	}
	return gjson.Parse(raw).Num
}

func skipSpace(doc string, i int) int {
	for i < len(doc) && (doc[i] == ' ' || doc[i] == '\t' || doc[i] == '\n' || doc[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index just past the JSON string starting at doc[i] == '"'.
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

// valueEnd returns the index just past the JSON value starting at doc[i].
func valueEnd(doc string, i int) int {
	if i >= len(doc) {
		return i
	}
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
				depth--
				if depth == 0 {
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
