// Package wrap makes wrapped errors without fmt: fmt, with the reflect and
// strconv code it brings, is about a tenth of the plugin's module, and Go on
// wasm copies every linked package's data into each VM (README
// "Performance", module footprint). deps_test.go keeps fmt out.
package wrap

// Error is an error with a fixed text that wraps errs: errors.Is and
// errors.As look through each of them.
type Error struct {
	text string
	errs []error
}

func (e *Error) Error() string { return e.text }

// Unwrap returns the wrapped errors.
func (e *Error) Unwrap() []error { return e.errs }

// New, With and Detail are not inlined: errors are made off the hot path,
// and an inlined copy at each of their call sites costs the module more
// than the call.

// New returns an error reading text that wraps errs.
//
//go:noinline
func New(text string, errs ...error) error { return &Error{text: text, errs: errs} }

// With is fmt.Errorf(context+": %w", err).
//
//go:noinline
func With(context string, err error) error { return New(context+": "+err.Error(), err) }

// Detail is fmt.Errorf("%w: "+detail, sentinel).
//
//go:noinline
func Detail(sentinel error, detail string) error {
	return New(sentinel.Error()+": "+detail, sentinel)
}
