package cache_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/filter/cache"
)

func sampleIndex() cache.Index {
	x := cache.Index{Epoch: 0x1c0ffee5badc0de5, Vary: []string{"accept", "accept-encoding"}}
	copy(x.Key[:], bytes.Repeat([]byte{0xcd}, 32))
	return x
}

func TestIndexRoundTrip(t *testing.T) {
	many := make([]string, cache.MaxVary)
	for i := range many {
		many[i] = "x-" + string(rune('a'+i))
	}
	for name, x := range map[string]cache.Index{
		"sample":        sampleIndex(),
		"no names":      {Epoch: 7},
		"MaxVary names": {Vary: many},
		"a long name":   {Vary: []string{strings.Repeat("n", 255)}},
	} {
		b, err := x.Append(nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := cache.DecodeIndex(b)
		if err != nil || !reflect.DeepEqual(got, x) {
			t.Fatalf("%s: decoded %+v, %v; want %+v", name, got, err, x)
		}
	}
}

func TestIndexRefusesGarbage(t *testing.T) {
	for name, names := range map[string][]string{
		"unsorted":   {"b", "a"},
		"duplicate":  {"a", "a"},
		"upper case": {"Accept"},
		"empty":      {""},
		"not a name": {"a b"},
		"too long":   {strings.Repeat("n", 256)},
		"too many":   make([]string, cache.MaxVary+1),
	} {
		x := cache.Index{Vary: names}
		if _, err := x.Append(nil); !errors.Is(err, cache.ErrCorrupt) {
			t.Errorf("Append with names %s: %v", name, err)
		}
	}
	x := sampleIndex()
	good, err := x.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(good) {
		if _, err := cache.DecodeIndex(good[:n]); !errors.Is(err, cache.ErrCorrupt) {
			t.Fatalf("the first %d bytes decoded: %v", n, err)
		}
	}
	edited := func(edit func(b []byte)) []byte { b := bytes.Clone(good); edit(b); return b }
	noNames, _ := (&cache.Index{}).Append(nil)
	for name, b := range map[string][]byte{
		"another magic":        edited(func(b []byte) { b[1] = 'X' }),
		"version 2":            edited(func(b []byte) { b[3] = 2 }),
		"count 17":             edited(func(b []byte) { b[44] = 17 }),
		"count one more":       edited(func(b []byte) { b[44] = 3 }),
		"count one less":       edited(func(b []byte) { b[44] = 1 }),
		"name length past end": edited(func(b []byte) { b[45] = 200 }),
		"names out of order":   edited(func(b []byte) { b[46] = 'z' }),
		"a byte added":         append(bytes.Clone(good), 'x'),
		"no names, a byte":     append(noNames, 0),
		"an entry envelope":    mustAppend(t, sampleEntry()),
	} {
		if _, err := cache.DecodeIndex(b); !errors.Is(err, cache.ErrCorrupt) {
			t.Errorf("%s: decoded (%v)", name, err)
		}
	}
}

// FuzzDecodeIndex checks that decoding never panics and that whatever
// decodes re-encodes to the same bytes.
func FuzzDecodeIndex(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		x, err := cache.DecodeIndex(data)
		if err != nil {
			if !errors.Is(err, cache.ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		again, err := x.Append(nil)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("decoded %+v; re-encoded %x, %v", x, again, err)
		}
	})
}
