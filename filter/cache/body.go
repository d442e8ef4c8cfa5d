package cache

// bodyBuffer accumulates a response body as the proxy streams it, after a
// prefix (the envelope's head, so the finished entry is never copied), and
// gives up for good once the body passes its limit: its memory never
// exceeds the prefix plus the limit, whatever the upstream sends.
type bodyBuffer struct {
	buf    []byte
	prefix int // bytes before the body
	limit  int // body bytes allowed
	tooBig bool
}

// newBodyBuffer starts a buffer holding prefix, which it takes over (with
// its spare capacity: room reserved for the expected body).
func newBodyBuffer(prefix []byte, limit int) bodyBuffer {
	return bodyBuffer{buf: prefix, prefix: len(prefix), limit: limit}
}

// append adds a chunk and reports whether the body still fits; once it does
// not, the buffer is released and every later call reports false.
func (b *bodyBuffer) append(chunk []byte) bool {
	if b.tooBig {
		return false
	}
	if len(b.buf)-b.prefix+len(chunk) > b.limit {
		b.tooBig, b.buf = true, nil
		return false
	}
	if need := len(b.buf) + len(chunk); need > cap(b.buf) {
		// Grow as append would, but never past the most the body may take.
		grown := make([]byte, len(b.buf), min(max(2*cap(b.buf), need), b.prefix+b.limit))
		copy(grown, b.buf)
		b.buf = grown
	}
	b.buf = append(b.buf, chunk...)
	return true
}

// bytes is the prefix and the body so far; nil once the body was too big.
func (b *bodyBuffer) bytes() []byte { return b.buf }

// bodyLen is the number of body bytes held.
func (b *bodyBuffer) bodyLen() int { return len(b.buf) - b.prefix }
