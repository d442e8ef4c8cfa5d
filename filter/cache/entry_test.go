package cache_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/filter/cache"
)

func sampleEntry() cache.Entry {
	e := cache.Entry{
		Status: 200, StoredAt: t0.UnixMilli(), ExpiresAt: t0.UnixMilli() + 60_000, InitialAge: 3,
		Headers: [][2]string{h("content-type", "application/json"), h("etag", `"v1"`), h("x-empty", "")},
		Vary:    []cache.VaryValue{{Name: "accept", Value: "text/csv", Present: true}, {Name: "accept-language"}},
		Body:    []byte(`{"ok":true}`),
	}
	copy(e.Key[:], bytes.Repeat([]byte{0xab}, 32))
	return e
}

func mustAppend(t testing.TB, e cache.Entry) []byte {
	t.Helper()
	b, err := e.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEntryRoundTrip(t *testing.T) {
	for name, e := range map[string]cache.Entry{
		"sample":       sampleEntry(),
		"minimal":      {Status: 100, Headers: [][2]string{}, Body: []byte{}},
		"max":          {Status: 599, StoredAt: 1 << 62, ExpiresAt: 1<<63 - 1, InitialAge: 1<<32 - 1, Headers: [][2]string{h("x", "v")}, Body: []byte{}},
		"largest head": {Status: 200, Headers: [][2]string{h("x", strings.Repeat("v", cache.MaxHeadBytes-70))}, Body: []byte("b")},
	} {
		t.Run(name, func(t *testing.T) {
			b := mustAppend(t, e)
			got, err := cache.DecodeEntry(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, e) {
				t.Fatalf("decoded %+v, want %+v", got, e)
			}
			// Appending to a buffer that holds something keeps it.
			b2, err := e.Append([]byte("prefix"))
			if err != nil || string(b2[:6]) != "prefix" || !bytes.Equal(b2[6:], b) {
				t.Fatalf("Append after a prefix: %v", err)
			}
		})
	}
}

func TestEntryAppendRefusesWhatCannotDecode(t *testing.T) {
	for name, edit := range map[string]func(*cache.Entry){
		"status 99":                   func(e *cache.Entry) { e.Status = 99 },
		"status 600":                  func(e *cache.Entry) { e.Status = 600 },
		"expires before stored":       func(e *cache.Entry) { e.ExpiresAt = e.StoredAt - 1 },
		"negative stored-at":          func(e *cache.Entry) { e.StoredAt = -1 },
		"negative initial age":        func(e *cache.Entry) { e.InitialAge = -1 },
		"initial age over 32 bits":    func(e *cache.Entry) { e.InitialAge = 1 << 32 },
		"upper-case header name":      func(e *cache.Entry) { e.Headers[0][0] = "Content-Type" },
		"pseudo-header":               func(e *cache.Entry) { e.Headers[0][0] = ":status" },
		"newline in a value":          func(e *cache.Entry) { e.Headers[0][1] = "a\r\nx-evil: 1" },
		"value of 64 KiB":             func(e *cache.Entry) { e.Headers[0][1] = strings.Repeat("a", 1<<16) },
		"head over MaxHeadBytes":      func(e *cache.Entry) { e.Headers = [][2]string{h("a", strings.Repeat("a", 1<<16-1)), h("b", "c")} },
		"too many headers":            func(e *cache.Entry) { e.Headers = make([][2]string, cache.MaxHeaders+1) },
		"too many varied fields":      func(e *cache.Entry) { e.Vary = make([]cache.VaryValue, cache.MaxVary+1) },
		"absent varied field's value": func(e *cache.Entry) { e.Vary[1].Value = "x" },
		"varied name of 256 bytes":    func(e *cache.Entry) { e.Vary[0].Name = strings.Repeat("a", 256) },
	} {
		e := sampleEntry()
		edit(&e)
		if b, err := e.Append([]byte("kept")); !errors.Is(err, cache.ErrCorrupt) || string(b) != "kept" {
			t.Errorf("%s: Append = %q, %v; want ErrCorrupt and dst unchanged", name, b, err)
		}
	}
}

func TestDecodeEntryRefusesGarbage(t *testing.T) {
	good := mustAppend(t, sampleEntry())
	// Every strict prefix, and every value with a byte added, is refused.
	for n := range len(good) {
		if _, err := cache.DecodeEntry(good[:n]); !errors.Is(err, cache.ErrCorrupt) {
			t.Fatalf("the first %d bytes decoded: %v", n, err)
		}
	}
	edited := func(edit func(b []byte) []byte) []byte { return edit(bytes.Clone(good)) }
	put16 := func(off int, v uint16) []byte {
		return edited(func(b []byte) []byte { binary.LittleEndian.PutUint16(b[off:], v); return b })
	}
	put32 := func(off int, v uint32) []byte {
		return edited(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[off:], v); return b })
	}
	varyCount := 62 + 2 + 4 + len("content-type") + len("application/json") + 4 + len("etag") + len(`"v1"`) + 4 + len("x-empty")
	for name, b := range map[string][]byte{
		"nil":                       nil,
		"another magic":             edited(func(b []byte) []byte { b[0] = 'X'; return b }),
		"version 2":                 edited(func(b []byte) []byte { b[3] = 2; return b }),
		"version 0":                 edited(func(b []byte) []byte { b[3] = 0; return b }),
		"status 0":                  put16(36, 0),
		"status 65535":              put16(36, 65535),
		"expires before stored":     put32(46, 0),
		"body length past the end":  put32(58, uint32(len(good))),
		"body length 4 GiB":         put32(58, 1<<32-1),
		"body length one short":     put32(58, uint32(len(sampleEntry().Body)-1)),
		"body length one long":      put32(58, uint32(len(sampleEntry().Body)+1)),
		"header count 65535":        put16(62, 65535),
		"header count one more":     put16(62, 4),
		"header count one less":     put16(62, 2),
		"header name length absurd": put16(64, 60000),
		"header name upper case":    edited(func(b []byte) []byte { b[66] = 'C'; return b }),
		"vary count 17":             edited(func(b []byte) []byte { b[varyCount] = 17; return b }),
		"vary count 255":            edited(func(b []byte) []byte { b[varyCount] = 255; return b }),
		"vary present 2":            edited(func(b []byte) []byte { b[varyCount+1+1+len("accept")] = 2; return b }),
		"a byte added":              append(bytes.Clone(good), 0),
	} {
		if _, err := cache.DecodeEntry(b); !errors.Is(err, cache.ErrCorrupt) {
			t.Errorf("%s: decoded (%v)", name, err)
		}
	}
}

func TestDecodeEntryRefusesAHeadOverMaxHeadBytes(t *testing.T) {
	largest := mustAppend(t, cache.Entry{Status: 200, Headers: [][2]string{h("x", strings.Repeat("v", cache.MaxHeadBytes-70))}})
	if _, err := cache.DecodeEntry(largest); err != nil {
		t.Fatalf("the largest head: %v", err)
	}
	// One more byte in the value (and in its length): 64 KiB + 1.
	const valueAt = 62 + 2 + 2 + 1 + 2 // fixed fields, count, name length, "x", value length
	over := append(append(bytes.Clone(largest[:valueAt]), 'v'), largest[valueAt:]...)
	binary.LittleEndian.PutUint16(over[valueAt-2:], uint16(cache.MaxHeadBytes-70+1))
	if _, err := cache.DecodeEntry(over); !errors.Is(err, cache.ErrCorrupt) || !strings.Contains(err.Error(), "bytes of header fields") {
		t.Fatalf("a head of %d bytes decoded: %v", len(over), err)
	}
}

// FuzzDecodeEntry checks that decoding never panics and that whatever
// decodes is exactly what Append writes for it: the format has one encoding
// per entry, so nothing the decoder accepts escapes the encoder's checks.
func FuzzDecodeEntry(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := cache.DecodeEntry(data)
		if err != nil {
			if !errors.Is(err, cache.ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		again, err := e.Append(nil)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("decoded %+v; re-encoded %x, %v", e, again, err)
		}
	})
}
