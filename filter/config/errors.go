package config

import (
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

func fieldError(field, problem string) error {
	return &FieldError{Field: field, Problem: problem}
}

func indexed(field string, i int) string { return field + "[" + strconv.Itoa(i) + "]" }

func join(parent, child string) string {
	if parent == "" {
		return child
	}
	return parent + "." + child
}
