package route_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/filter/jsonread"

	"github.com/portcullis/portcullis/filter/route"
)

func TestClaimHeaderValue(t *testing.T) {
	long := strings.Repeat("a", 1024)
	for _, tc := range []struct {
		name  string
		claim string // JSON of the claim value; "" = the claim is absent
		value string
		ok    bool
	}{
		{"string", `"alice@example.com"`, "alice@example.com", true},
		{"string with escapes decoded", `"caf\u00e9 \"quoted\""`, `café "quoted"`, true},
		{"empty string", `""`, "", true},
		{"string with a tab", `"a\tb"`, "a\tb", true},
		{"integer", `42`, "42", true},
		{"negative fraction", `-1.5`, "-1.5", true},
		{"exponent kept as written", `1e3`, "1e3", true},
		{"true", `true`, "true", true},
		{"false", `false`, "false", true},
		{"array of strings", `["reader","writer"]`, "reader,writer", true},
		{"array of one string", `["reader"]`, "reader", true},
		{"array of scalars", `["a",1,true]`, "a,1,true", true},
		{"empty array is not forwarded", `[]`, "", false},
		{"nested array", `[["a"]]`, "", false},
		{"array with a nested array", `["a",["b"]]`, "", false},
		{"array with an object", `["a",{"b":1}]`, "", false},
		{"array with null", `["a",null]`, "", false},
		{"object", `{"a":"b"}`, "", false},
		{"empty object", `{}`, "", false},
		{"null", `null`, "", false},
		{"absent", ``, "", false},
		{"newline", `"a\nb"`, "", false},
		{"carriage return", `"a\rb"`, "", false},
		{"CRLF header injection", `"a\r\nx-api-key: admin"`, "", false},
		{"NUL", `"a\u0000b"`, "", false},
		{"DEL", `"a\u007fb"`, "", false},
		{"escape character", `"a\u001bb"`, "", false},
		{"control character in an array element", `["a","b\nc"]`, "", false},
		{"1024 bytes", `"` + long + `"`, long, true},
		{"1025 bytes", `"` + long + `b"`, "", false},
		{"array joined beyond 1024 bytes", `["` + long[:600] + `","` + long[:600] + `"]`, "", false},
		{"non-ASCII", `"José Ñandú"`, "José Ñandú", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := `{"other":"x"}`
			if tc.claim != "" {
				doc = `{"c":` + tc.claim + `}`
			}
			obj, valid := jsonread.Parse(doc)
			if !valid {
				t.Fatalf("test bug: invalid JSON %s", doc)
			}
			value, ok := route.ClaimHeaderValue(obj.Get("c"))
			if ok != tc.ok || (ok && value != tc.value) {
				t.Fatalf("ClaimHeaderValue(%s) = %q, %v; want %q, %v", tc.claim, value, ok, tc.value, tc.ok)
			}
		})
	}
}

func TestSafeHeaderValue(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  bool
	}{
		{"", true},
		{"plain", true},
		{"tab\tinside", true},
		{"ünïcode", true},
		{strings.Repeat("x", 1024), true},
		{strings.Repeat("x", 1025), false},
		{"a\nb", false},
		{"a\rb", false},
		{"a\x00b", false},
		{"a\x1fb", false},
		{"a\x7fb", false},
	} {
		if got := route.SafeHeaderValue(tc.value); got != tc.want {
			t.Errorf("SafeHeaderValue(%q) = %v, want %v", tc.value, got, tc.want)
		}
	}
}

func TestManaged(t *testing.T) {
	for _, tc := range []struct {
		name string
		id   route.Identity
		want []string
	}{
		{"key header only", route.Identity{KeyHeader: "x-api-key"}, []string{"x-api-key"}},
		{"key header and claim headers in order", route.Identity{KeyHeader: "x-api-key", ClaimHeaders: []route.ClaimHeader{
			{Claim: "email", Header: "x-user-email"},
			{Claim: "plan", Header: "x-user-plan"},
		}}, []string{"x-api-key", "x-user-email", "x-user-plan"}},
		{"keep_authorization does not add authorization", route.Identity{KeyHeader: "x-caller", KeepAuthorization: true}, []string{"x-caller"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.id.Managed(); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Managed() = %q, want %q", got, tc.want)
			}
		})
	}
}
