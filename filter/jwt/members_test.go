package jwt

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/filter/jsonread"
)

// FuzzCollectMembers checks the member collector against encoding/json's
// token stream on every valid JSON object: the same members, the same raw
// values, the same verdict on duplicate names.
func FuzzCollectMembers(f *testing.F) {
	for _, seed := range []string{
		`{}`, ` { "a" : 1 , "b":[1,{"c":"}"}] ,"d":"x\"y"} `, `{"a":1,"a":2}`, `{"\u0061":1,"a":2}`,
		`{"exp":1.5e9,"nbf":-1,"aud":["a","b"],"sub":"alice","x":{"y":[]},"t":true,"n":null}`,
		"{\"a\"\t:\n\"b\\\\\"\r,\"c\":0}", `{"k":"\"}"}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		obj, ok := jsonread.Parse(doc)
		if !ok || obj.Kind() != jsonread.Object {
			return
		}
		names, want := membersByEncodingJSON(t, doc)
		unique := true
		for i, n := range names {
			for _, earlier := range names[:i] {
				unique = unique && n != earlier
			}
		}
		got := make([]jsonread.Value, len(names))
		if ok := collectMembers(obj, names, got); ok != unique {
			t.Fatalf("collectMembers(%q) unique = %v, encoding/json says %v", doc, ok, unique)
		}
		if !unique {
			return
		}
		for i := range names {
			if got[i].Raw != want[i] {
				t.Fatalf("collectMembers(%q)[%q] = %q, encoding/json %q", doc, names[i], got[i].Raw, want[i])
			}
			if got[i].Kind() == jsonread.Number {
				if f, _ := strconv.ParseFloat(want[i], 64); numericDate(got[i]) != f {
					t.Fatalf("numericDate(%q) = %v, strconv %v", got[i].Raw, numericDate(got[i]), f)
				}
			}
		}
	})
}

// membersByEncodingJSON lists the top-level member names of the object doc
// and their raw values, duplicates included.
func membersByEncodingJSON(t *testing.T, doc string) (names, values []string) {
	dec := json.NewDecoder(strings.NewReader(doc))
	if _, err := dec.Token(); err != nil {
		t.Fatalf("encoding/json refuses %q: %v", doc, err)
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			t.Fatalf("encoding/json on %q: %v", doc, err)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			t.Fatalf("encoding/json on %q: %v", doc, err)
		}
		names = append(names, key.(string))
		values = append(values, string(raw))
	}
	return names, values
}
