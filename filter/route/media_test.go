package route_test

import (
	"testing"

	"github.com/portcullis/portcullis/filter/route"
)

func TestMediaTypeAllowed(t *testing.T) {
	jsonOnly := []string{"application/json"}
	several := []string{"application/json", "multipart/form-data", "text/plain"}
	for _, tc := range []struct {
		contentType string
		allowed     []string
		want        bool
	}{
		{"application/json", jsonOnly, true},
		{"application/json; charset=utf-8", jsonOnly, true},
		{"application/json;charset=UTF-8", jsonOnly, true},
		{"Application/JSON", jsonOnly, true},
		{"APPLICATION/JSON; CHARSET=UTF-8", jsonOnly, true},
		{"  application/json  ", jsonOnly, true},
		{"application/json ; charset=utf-8", jsonOnly, true},
		{"text/plain", jsonOnly, false},
		{"application/jsonx", jsonOnly, false},
		{"application/json-patch+json", jsonOnly, false},
		{"application/vnd.api+json", jsonOnly, false},
		{"application/*", jsonOnly, false},
		{"*/*", jsonOnly, false},
		{"application", jsonOnly, false},
		{"", jsonOnly, false},
		{";application/json", jsonOnly, false},
		{"application/json", nil, false},
		{"multipart/form-data; boundary=----x", several, true},
		{"Text/Plain", several, true},
		{"text/html", several, false},
	} {
		t.Run(tc.contentType, func(t *testing.T) {
			if got := route.MediaTypeAllowed(tc.contentType, tc.allowed); got != tc.want {
				t.Fatalf("MediaTypeAllowed(%q, %q) = %v, want %v", tc.contentType, tc.allowed, got, tc.want)
			}
		})
	}
}

func TestHasBody(t *testing.T) {
	for method, want := range map[string]bool{
		"POST": true, "PUT": true, "PATCH": true,
		"GET": false, "HEAD": false, "DELETE": false, "OPTIONS": false, "TRACE": false, "CONNECT": false,
		"post": false, // methods are case-sensitive; Envoy passes them as sent
		"":     false,
	} {
		if got := route.HasBody(method); got != want {
			t.Errorf("HasBody(%q) = %v, want %v", method, got, want)
		}
	}
}
