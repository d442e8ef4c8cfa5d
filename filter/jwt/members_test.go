package jwt

import (
	"testing"

	"github.com/tidwall/gjson"
)

// FuzzCollectMembers checks the hand-written member scanner against gjson on
// every valid JSON object: the same members, the same raw values, the same
// verdict on duplicate names.
func FuzzCollectMembers(f *testing.F) {
	for _, seed := range []string{
		`{}`, ` { "a" : 1 , "b":[1,{"c":"}"}] ,"d":"x\"y"} `, `{"a":1,"a":2}`, `{"\u0061":1,"a":2}`,
		`{"exp":1.5e9,"nbf":-1,"aud":["a","b"],"sub":"alice","x":{"y":[]},"t":true,"n":null}`,
		"{\"a\"\t:\n\"b\\\\\"\r,\"c\":0}", `{"k":"\"}"}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		if !gjson.Valid(doc) || !gjson.Parse(doc).IsObject() {
			return
		}
		var names []string
		var want []gjson.Result
		unique := true
		gjson.Parse(doc).ForEach(func(key, value gjson.Result) bool {
			for _, n := range names {
				if n == key.Str {
					unique = false
				}
			}
			names = append(names, key.Str)
			want = append(want, value)
			return true
		})
		got := make([]gjson.Result, len(names))
		if ok := collectMembers(doc, names, got); ok != unique {
			t.Fatalf("collectMembers(%q) unique = %v, gjson says %v", doc, ok, unique)
		}
		if !unique {
			return
		}
		for i := range names {
			if got[i].Raw != want[i].Raw || got[i].Type != want[i].Type {
				t.Fatalf("collectMembers(%q)[%q] = %v %q, gjson %v %q", doc, names[i], got[i].Type, got[i].Raw, want[i].Type, want[i].Raw)
			}
			if want[i].Type == gjson.Number && numericDate(got[i]) != want[i].Num {
				t.Fatalf("numericDate(%q) = %v, gjson %v", got[i].Raw, numericDate(got[i]), want[i].Num)
			}
		}
	})
}
