package cache

import (
	"bytes"
	"testing"
)

func TestBodyBufferStaysWithinItsLimit(t *testing.T) {
	const limit = 1000
	b := newBodyBuffer([]byte("head"), limit)
	var want []byte
	for i := range 999 {
		chunk := []byte{byte(i)}
		if !b.append(chunk) {
			t.Fatalf("refused byte %d", i)
		}
		want = append(want, chunk...)
		if cap(b.buf) > len("head")+limit {
			t.Fatalf("capacity %d past the limit", cap(b.buf))
		}
	}
	if !b.append([]byte{1}) || b.append([]byte{2}) || b.bytes() != nil {
		t.Fatal("the byte past the limit was kept")
	}
	if b.append(nil) {
		t.Fatal("a buffer that gave up took more")
	}
	b = newBodyBuffer([]byte("head"), limit)
	b.append(want)
	if got := b.bytes(); !bytes.Equal(got, append([]byte("head"), want...)) || b.bodyLen() != len(want) {
		t.Fatalf("holds %q", got)
	}
}
