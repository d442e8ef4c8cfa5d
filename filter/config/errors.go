package config

import (
	"fmt"
	"strconv"
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
