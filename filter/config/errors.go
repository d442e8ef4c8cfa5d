package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// FieldError is a configuration problem at one field path.
type FieldError struct {
	Field   string // dotted path, e.g. "jwt.secrets[0].env"; empty for the document
	Problem string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Problem
	}
	return e.Field + ": " + e.Problem
}

func fieldErrorf(field, format string, args ...any) error {
	return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

func indexed(field string, i int) string { return field + "[" + strconv.Itoa(i) + "]" }

func join(parent, child string) string {
	if parent == "" {
		return child
	}
	return parent + "." + child
}

// decodeError turns an encoding/json error into a FieldError naming the field.
// json.Decoder returns its errors unwrapped, so type assertions find them;
// errors.As would link reflectlite's assignability code into the module for
// nothing (about 50 KB with the one in compilePolicy; README "Performance").
func decodeError(data []byte, err error) error {
	typeErr, isType := err.(*json.UnmarshalTypeError)
	syntaxErr, isSyntax := err.(*json.SyntaxError)
	switch {
	case isType:
		if typeErr.Field == "" {
			return fieldErrorf("", "the configuration must be a JSON object, not %s", typeErr.Value)
		}
		// typeErr.Field drops array indices and map keys; the offset pins the value.
		field := valuePathAt(gjson.ParseBytes(data), "", int(typeErr.Offset))
		if field == "" {
			field = typeErr.Field
		}
		return fieldErrorf(field, "must be %s, not %s", describeType(typeErr.Type), typeErr.Value)
	case isSyntax:
		return fieldErrorf("", "not valid JSON (at byte %d)", syntaxErr.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fieldErrorf("", "not valid JSON (truncated)")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		if path := unknownField(gjson.ParseBytes(data), reflect.TypeFor[File](), ""); path != "" {
			return fieldErrorf(path, "unknown field")
		}
	}
	return fieldErrorf("", "cannot decode: %v", err)
}

// valuePathAt returns the path of the innermost value of doc that ends at or
// contains byte offset end (encoding/json reports the offset just past the
// value it could not decode).
func valuePathAt(doc gjson.Result, path string, end int) string {
	found := path
	if !doc.IsObject() && !doc.IsArray() {
		return found
	}
	i := 0
	doc.ForEach(func(key, value gjson.Result) bool {
		name := indexed(path, i)
		if doc.IsObject() {
			name = join(path, key.Str)
		}
		i++
		if value.Index < end && end <= value.Index+len(value.Raw) {
			found = valuePathAt(value, name, end)
			return false
		}
		return true
	})
	return found
}

// unknownField walks doc against the struct type t and returns the path of
// the first member that has no matching json tag, because encoding/json's
// unknown-field error names the member but not where it is.
func unknownField(doc gjson.Result, t reflect.Type, path string) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		found := ""
		doc.ForEach(func(key, value gjson.Result) bool {
			f, ok := fieldByTag(t, key.Str)
			if !ok {
				found = join(path, key.Str)
			} else {
				found = unknownField(value, f.Type, join(path, key.Str))
			}
			return found == ""
		})
		return found
	case reflect.Map:
		found := ""
		doc.ForEach(func(key, value gjson.Result) bool {
			found = unknownField(value, t.Elem(), join(path, key.Str))
			return found == ""
		})
		return found
	case reflect.Slice:
		found := ""
		i := 0
		doc.ForEach(func(_, value gjson.Result) bool {
			found = unknownField(value, t.Elem(), indexed(path, i))
			i++
			return found == ""
		})
		return found
	}
	return ""
}

func fieldByTag(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if strings.EqualFold(tag, name) { // encoding/json matches case-insensitively
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func describeType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "an integer"
	case reflect.Slice:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return t.String()
}
