package cache

import (
	"math"
	"strconv"
)

// Append appends e's envelope to dst, for tests that need stored entries
// (the plugin streams its envelopes through Fill). It fails (ErrCorrupt)
// when e breaks the format's limits.
func (e *Entry) Append(dst []byte) ([]byte, error) {
	b, err := e.appendHead(dst)
	if err != nil {
		return dst, err
	}
	if len(e.Body) > math.MaxUint32 {
		return dst, corrupt("body of " + strconv.Itoa(len(e.Body)) + " bytes")
	}
	b = append(b, e.Body...)
	setBodyLength(b[len(dst):], len(e.Body))
	return b, nil
}

// ParseQuery is parseQuery, for FuzzParseQuery.
var ParseQuery = parseQuery
