package config

import (
	"strconv"
	"strings"

	"github.com/portcullis/portcullis/filter/jsonread"
)

// The configuration is decoded by hand over filter/jsonread rather than by
// encoding/json: encoding/json and the parts of reflect it needs are a
// fifth of the module's code, and Go on wasm copies every linked package's
// data into each VM (README "Performance", module footprint).
//
// Each File type lists its members next to its fields (its members method):
// adding a configuration field is the field plus its one line there. The
// decoding follows encoding/json's rules, so configurations mean what they
// meant: names match exactly or else case-insensitively, null leaves a field
// as it is (a pointer, slice or map becomes nil), a repeated member decodes
// again over the first, integers have no fraction or exponent. Unlike
// encoding/json, an unknown member is refused (DisallowUnknownFields) and
// every error names the member's whole path, indices and map keys included.

// member is one JSON member of an object type and how its value decodes.
type member struct {
	name   string
	decode decodeFunc
}

// The helpers below are not inlined: each would otherwise copy its closure,
// and the iterator it ranges over, into every members method that calls it
// (about 2 KB of wasm a call site).

// decodeFunc decodes value, found at path, into the field it was made for.
type decodeFunc func(value jsonread.Value, path string) error

// object is a File type: its members, bound to its fields.
type object interface{ members() []member }

// parseDocument checks data as one JSON object and decodes it into f.
func parseDocument(data []byte, f *File) error {
	doc := string(data)
	end, ok := jsonread.Scan(doc)
	switch {
	case !ok && end == len(doc):
		return fieldError("", "not valid JSON (truncated)")
	case !ok:
		return fieldError("", "not valid JSON (at byte "+strconv.Itoa(end)+")")
	case strings.Trim(doc[end:], " \t\r\n") != "":
		return fieldError("", "unexpected data after the configuration object")
	}
	root, _ := jsonread.Parse(doc[:end])
	if k := root.Kind(); k != jsonread.Object && k != jsonread.Null {
		return fieldError("", "the configuration must be a JSON object, not "+k.String())
	}
	return decodeObject(root, "", f)
}

func decodeObject(value jsonread.Value, path string, o object) error {
	if value.Kind() == jsonread.Null {
		return nil
	}
	members := o.members()
	return eachMember(value, path, func(name string, v jsonread.Value, path string) error {
		m := lookup(members, name)
		if m == nil {
			return fieldError(path, "unknown field")
		}
		return m.decode(v, path)
	})
}

// lookup finds a member by its exact name, else case-insensitively.
func lookup(members []member, name string) *member {
	for i := range members {
		if members[i].name == name {
			return &members[i]
		}
	}
	for i := range members {
		if strings.EqualFold(members[i].name, name) {
			return &members[i]
		}
	}
	return nil
}

// typeError is encoding/json's complaint, with the path: "must be an
// integer, not string".
func typeError(value jsonread.Value, path, want string) error {
	return fieldError(path, "must be "+want+", not "+value.Kind().String())
}

// nested decodes an object into the File type *p.
//
//go:noinline
func nested[T any, PT interface {
	*T
	object
}](p *T) decodeFunc {
	return func(value jsonread.Value, path string) error { return decodeObject(value, path, PT(p)) }
}

// optional decodes into *p, allocated on first use; null sets it nil.
//
//go:noinline
func optional[T any](p **T, elem func(*T) decodeFunc) decodeFunc {
	return func(value jsonread.Value, path string) error {
		if value.Kind() == jsonread.Null {
			*p = nil
			return nil
		}
		if *p == nil {
			*p = new(T)
		}
		return elem(*p)(value, path)
	}
}

// list decodes an array, each element by elem.
//
//go:noinline
func list[T any](p *[]T, elem func(*T) decodeFunc) decodeFunc {
	return func(value jsonread.Value, path string) error {
		if value.Kind() == jsonread.Null {
			*p = nil
			return nil
		}
		out := []T{}
		err := eachElement(value, path, func(el jsonread.Value, path string) error {
			var v T
			err := elem(&v)(el, path)
			out = append(out, v)
			return err
		})
		*p = out
		return err
	}
}

// dict decodes an object with any member names, each value by elem.
//
//go:noinline
func dict[T any](p *map[string]T, elem func(*T) decodeFunc) decodeFunc {
	return func(value jsonread.Value, path string) error {
		if value.Kind() == jsonread.Null {
			*p = nil
			return nil
		}
		if *p == nil {
			*p = map[string]T{}
		}
		return eachMember(value, path, func(name string, el jsonread.Value, path string) error {
			var v T
			err := elem(&v)(el, path)
			(*p)[name] = v
			return err
		})
	}
}

// eachElement calls each with every element of an array and its path,
// up to the first error.
func eachElement(value jsonread.Value, path string, each func(el jsonread.Value, path string) error) error {
	if value.Kind() != jsonread.Array {
		return typeError(value, path, "an array")
	}
	i := 0
	for el := range value.Elements() {
		if err := each(el, indexed(path, i)); err != nil {
			return err
		}
		i++
	}
	return nil
}

// eachMember calls each with every member of an object and its path, up to
// the first error.
func eachMember(value jsonread.Value, path string, each func(name string, el jsonread.Value, path string) error) error {
	if value.Kind() != jsonread.Object {
		return typeError(value, path, "an object")
	}
	for name, el := range value.Members() {
		if err := each(name, el, join(path, name)); err != nil {
			return err
		}
	}
	return nil
}

//go:noinline
func str(p *string) decodeFunc {
	return func(value jsonread.Value, path string) error {
		switch value.Kind() {
		case jsonread.Null:
			return nil
		case jsonread.String:
			*p = value.Str()
			return nil
		}
		return typeError(value, path, "a string")
	}
}

//go:noinline
func flag(p *bool) decodeFunc {
	return func(value jsonread.Value, path string) error {
		switch value.Kind() {
		case jsonread.Null:
			return nil
		case jsonread.True, jsonread.False:
			*p = value.Kind() == jsonread.True
			return nil
		}
		return typeError(value, path, "a boolean")
	}
}

//go:noinline
func integer[T int | int64](p *T) decodeFunc {
	return func(value jsonread.Value, path string) error {
		switch value.Kind() {
		case jsonread.Null:
			return nil
		case jsonread.Number:
			if n, ok := value.Int(); ok && int64(T(n)) == n {
				*p = T(n)
				return nil
			}
			return fieldError(path, "must be an integer, not number "+value.Raw)
		}
		return typeError(value, path, "an integer")
	}
}
