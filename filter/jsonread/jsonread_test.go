package jsonread

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

var seeds = []string{
	`{}`, `[]`, `""`, `0`, `-0`, `1.5e-3`, `true`, `false`, `null`, ` {"a" : [1, {"b":null}] } `,
	`{"a":1,"a":2}`, `"\u00e9\ud83d\ude00\ud800x\udc00\\\/\b\f\n\r\t\""`, `{"k\u0065y":"v"}`,
	`[1,]`, `{"a"}`, `{"a":}`, `01`, `1.`, `1e`, `-`, `"\x"`, "\"\x01\"", "\"\xff\"", `tru`, `nul`, `{"a":1 "b":2}`,
	`[[[[[]]]]]`, `{"exp":1700000000,"sub":"alice","aud":["a","b"]}`, `123456789012345678901234567890`, `1e400`,
	`"\ud83d"`, `"\udc00\ud83d"`, `[1 2]`, "\t[\r\n]\n", `{"a":[}`,
}

// FuzzScan: jsonread accepts exactly what encoding/json accepts, less invalid UTF-8.
func FuzzScan(f *testing.F) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		want := json.Valid([]byte(doc)) && utf8.ValidString(doc)
		if got := Valid(doc); got != want {
			t.Fatalf("Valid(%q) = %v, encoding/json says %v", doc, got, want)
		}
		end, ok := Scan(doc)
		if end < 0 || end > len(doc) {
			t.Fatalf("Scan(%q) = %d: out of range", doc, end)
		}
		if ok != json.Valid([]byte(doc[:end])) && utf8.ValidString(doc[:end]) {
			t.Fatalf("Scan(%q) = %d, %v, but encoding/json on %q says %v", doc, end, ok, doc[:end], !ok)
		}
		if !ok && want {
			t.Fatalf("Scan(%q) refused a valid document", doc)
		}
	})
}

// FuzzValue: every value read from a valid document equals what
// encoding/json decodes from it.
func FuzzValue(f *testing.F) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		v, ok := Parse(doc)
		if !ok {
			return
		}
		dec := json.NewDecoder(strings.NewReader(doc))
		dec.UseNumber()
		var want any
		if err := dec.Decode(&want); err != nil {
			t.Fatalf("encoding/json refuses %q: %v", doc, err)
		}
		if got := tree(t, v); !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: jsonread reads %#v, encoding/json %#v", doc, got, want)
		}
	})
}

// tree decodes v as encoding/json decodes into an any with UseNumber,
// checking the number readers against strconv on the way.
func tree(t *testing.T, v Value) any {
	switch v.Kind() {
	case Null:
		return nil
	case False, True:
		return v.Kind() == True
	case String:
		return v.Str()
	case Number:
		n, intOK := v.Int()
		wantN, err := strconv.ParseInt(v.Raw, 10, 64)
		if intOK != (err == nil) || n != wantN {
			t.Fatalf("Int(%s) = %d, %v; strconv says %d, %v", v.Raw, n, intOK, wantN, err)
		}
		fl, floatOK := v.Float()
		wantF, _ := strconv.ParseFloat(v.Raw, 64)
		if !floatOK || fl != wantF && !(math.IsNaN(fl) && math.IsNaN(wantF)) {
			t.Fatalf("Float(%s) = %v, %v; strconv says %v", v.Raw, fl, floatOK, wantF)
		}
		return json.Number(v.Raw)
	case Array:
		out := []any{}
		for el := range v.Elements() {
			out = append(out, tree(t, el))
		}
		return out
	case Object:
		out := map[string]any{}
		first := map[string]Value{}
		for key, value := range v.Members() {
			out[key] = tree(t, value) // the last one wins, as in encoding/json
			if _, seen := first[key]; !seen {
				first[key] = value
			}
		}
		for key, value := range first {
			if got := v.Get(key); got != value {
				t.Fatalf("Get(%q) = %q, want the first member %q", key, got.Raw, value.Raw)
			}
		}
		return out
	}
	t.Fatalf("kind %v of %q", v.Kind(), v.Raw)
	return nil
}

func TestScanOffsets(t *testing.T) {
	for _, c := range []struct {
		doc string
		end int
		ok  bool
	}{
		{`{"a":1} x`, 7, true},
		{` [1,2]{}`, 6, true},
		{`{"routes":[`, 11, false},
		{`{"a":tru}`, 8, false},
		{`{"a" 1}`, 5, false},
		{`[01]`, 2, false},
		{"\"a\xffb\"", 2, false},
		{`"abc`, 4, false},
		{``, 0, false},
	} {
		if end, ok := Scan(c.doc); end != c.end || ok != c.ok {
			t.Errorf("Scan(%q) = %d, %v; want %d, %v", c.doc, end, ok, c.end, c.ok)
		}
	}
}

func TestDepthBound(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	if !Valid(deep(MaxDepth)) {
		t.Errorf("nesting %d refused", MaxDepth)
	}
	if Valid(deep(MaxDepth + 1)) {
		t.Errorf("nesting %d accepted", MaxDepth+1)
	}
	if json.Valid([]byte(deep(MaxDepth + 1))) {
		t.Errorf("encoding/json's bound changed: update MaxDepth")
	}
}

func TestReaders(t *testing.T) {
	v, ok := Parse(` {"sub":"al\u0069ce","n":-12,"big":12345678901234567890,"f":1.25,"arr":[1,"x"],"sub":"second"} `)
	if !ok {
		t.Fatal("refused")
	}
	if got := v.Get("sub").Str(); got != "alice" {
		t.Errorf(`Get("sub") = %q, want the first member "alice"`, got)
	}
	if n, ok := v.Get("n").Int(); !ok || n != -12 {
		t.Errorf("n = %d, %v", n, ok)
	}
	if _, ok := v.Get("big").Int(); ok {
		t.Error("an integer beyond int64 read as one")
	}
	if _, ok := v.Get("f").Int(); ok {
		t.Error("1.25 read as an integer")
	}
	if f, ok := v.Get("f").Float(); !ok || f != 1.25 {
		t.Errorf("f = %v, %v", f, ok)
	}
	if got := v.Get("missing"); got.Exists() || got.Kind() != Absent {
		t.Errorf("missing member = %q", got.Raw)
	}
	if got := v.Get("arr").Get("x"); got.Exists() {
		t.Errorf("Get on an array = %q", got.Raw)
	}
	if got := v.Get("n").Str(); got != "" {
		t.Errorf("Str of a number = %q", got)
	}
	var kinds []Kind
	for el := range v.Get("arr").Elements() {
		kinds = append(kinds, el.Kind())
	}
	if !reflect.DeepEqual(kinds, []Kind{Number, String}) {
		t.Errorf("elements = %v", kinds)
	}
}

func TestNoAllocations(t *testing.T) {
	doc := `{"exp":1700000000,"nbf":1600000000,"sub":"alice","aud":["a","b"],"plan":"gold"}`
	v, _ := Parse(doc)
	allocs := testing.AllocsPerRun(100, func() {
		if !Valid(doc) {
			t.Fatal("refused")
		}
		if v.Get("plan").Str() != "gold" {
			t.Fatal("plan")
		}
		for el := range v.Get("aud").Elements() {
			_ = el.Str()
		}
		if n, _ := v.Get("exp").Int(); n == 0 {
			t.Fatal("exp")
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per read, want 0", allocs)
	}
}

func BenchmarkClaims(b *testing.B) {
	doc := []byte(`{"iss":"https://issuer.example","sub":"user-12345","aud":["api","web"],"exp":1700000000,"iat":1690000000,"plan":"gold","email":"user@example.com"}`)
	s := string(bytes.Clone(doc))
	for b.Loop() {
		v, _ := Parse(s)
		_ = v.Get("plan").Str()
		_ = v.Get("email").Str()
	}
}
