package jsonobj

import (
	"encoding/json"
	"testing"
)

// FuzzObject checks the hand-built JSON against encoding/json: the same bytes
// for the same members.
func FuzzObject(f *testing.F) {
	for _, s := range []string{"", "plain", `q"uote\back`, "ctl\x00\x1f\n\r\t", "<&>", "ünï", "\xff\xfe", "\u2028\u2029", "🦀"} {
		f.Add(s, s, 42)
	}
	f.Fuzz(func(t *testing.T, key, value string, n int) {
		var o Object
		got := o.String("k", key).String(value, value).Int("n", n).Bytes()
		want, err := json.Marshal(struct {
			K string `json:"k"`
		}{key})
		if err != nil {
			t.Fatal(err)
		}
		valueJSON, _ := json.Marshal(value)
		nJSON, _ := json.Marshal(n)
		wantAll := string(want[:len(want)-1]) + "," + string(valueJSON) + ":" + string(valueJSON) + `,"n":` + string(nJSON) + "}"
		if string(got) != wantAll {
			t.Fatalf("Object = %s, encoding/json = %s", got, wantAll)
		}
	})
}

func TestBool(t *testing.T) {
	var o Object
	if got, want := string(o.Bool("shadow", true).Bool("off", false).Bytes()), `{"shadow":true,"off":false}`; got != want {
		t.Errorf("Bool members = %s, want %s", got, want)
	}
}

func TestEmptyObject(t *testing.T) {
	var o Object
	if got := string(o.Bytes()); got != "{}" {
		t.Errorf("empty object = %s", got)
	}
}

// BenchmarkAccessRecord builds an object like the access record of a
// verified, rate-limited request: short ASCII strings, the common case.
func BenchmarkAccessRecord(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		var o Object
		o.String("route", "api").String("key", "user-1234").String("jwt", "cached").
			String("ratelimit", "allowed").String("ratelimit_source", "local").
			String("ratelimit_policy", "default").Int("ratelimit_remaining", 99)
		_ = o.Bytes()
	}
}
