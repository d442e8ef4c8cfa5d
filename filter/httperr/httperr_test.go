package httperr_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/portcullis/portcullis/filter/httperr"
)

func TestKinds(t *testing.T) {
	for _, tc := range []struct {
		kind   httperr.Kind
		status int
		code   string
	}{
		{httperr.BadRequest, 400, "bad_request"},
		{httperr.Unauthorized, 401, "unauthorized"},
		{httperr.Forbidden, 403, "forbidden"},
		{httperr.NotFound, 404, "not_found"},
		{httperr.UnsupportedMediaType, 415, "unsupported_media_type"},
		{httperr.TooManyRequests, 429, "rate_limit_exceeded"},
		{httperr.Internal, 500, "internal_error"},
		{httperr.BadGateway, 502, "upstream_error"},
		{httperr.GatewayTimeout, 504, "upstream_error"},
	} {
		if tc.kind.Status != tc.status || tc.kind.Code != tc.code {
			t.Errorf("kind %+v, want %d %q", tc.kind, tc.status, tc.code)
		}
	}
	if httperr.ContentType != "application/json" {
		t.Errorf("ContentType = %q", httperr.ContentType)
	}
}

func TestBody(t *testing.T) {
	for _, tc := range []struct {
		name      string
		kind      httperr.Kind
		message   string
		requestID string
	}{
		{"not found", httperr.NotFound, "Route GET /x not found", "0f1e2d3c-aaaa-bbbb-cccc-000000000001"},
		{"empty message and request id", httperr.Internal, "", ""},
		{"quotes and braces", httperr.BadRequest, `bad "x"}, "error":"ok`, `id"},{"`},
		{"backslashes", httperr.BadRequest, `C:\path\"`, `\`},
		{"control characters", httperr.BadRequest, "line1\nline2\r\x00\x1b[31m", "id\t1"},
		{"HTML", httperr.NotFound, "Route GET /</script><script>alert(1)</script> not found", "<id>"},
		{"invalid UTF-8", httperr.NotFound, "Route GET /\xff\xfe not found", "\xc3"},
		{"line and paragraph separators", httperr.NotFound, "a\u2028b\u2029c", "r"},
		{"non-ASCII", httperr.Unauthorized, "Jeton expiré — réessayez", "ид"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := httperr.Body(tc.kind, tc.message, tc.requestID)
			if !json.Valid(body) {
				t.Fatalf("Body is not valid JSON: %s", body)
			}
			var fields map[string]any
			dec := json.NewDecoder(bytes.NewReader(body))
			if err := dec.Decode(&fields); err != nil {
				t.Fatalf("Body %s: %v", body, err)
			}
			if dec.More() {
				t.Fatalf("Body %s holds more than one value", body)
			}
			if len(fields) != 3 {
				t.Errorf("Body %s has %d fields, want error, message, request_id", body, len(fields))
			}
			if fields["error"] != tc.kind.Code {
				t.Errorf("error = %#v, want %q", fields["error"], tc.kind.Code)
			}
			// encoding/json writes invalid UTF-8 as U+FFFD; every other
			// message must come back exactly.
			if utf8.ValidString(tc.message + tc.requestID) {
				if fields["message"] != tc.message || fields["request_id"] != tc.requestID {
					t.Errorf("message, request_id = %#v, %#v; want %q, %q", fields["message"], fields["request_id"], tc.message, tc.requestID)
				}
			}
			if bytes.ContainsAny(body, "\n\r\x00<>") {
				t.Errorf("Body %q holds raw control or HTML characters", body)
			}
		})
	}
}

func TestBodyRetryAfter(t *testing.T) {
	for _, tc := range []struct{ policy, want string }{
		{"plan-pro-1s", `{"error":"rate_limit_exceeded","message":"rate limit exceeded","retry_after":17,"policy":"plan-pro-1s","request_id":"req-9"}`},
		{"", `{"error":"rate_limit_exceeded","message":"rate limit exceeded","retry_after":17,"request_id":"req-9"}`}, // no known limit
	} {
		if got := string(httperr.BodyRetryAfter(httperr.TooManyRequests, "rate limit exceeded", 17, tc.policy, "req-9")); got != tc.want {
			t.Errorf("policy %q: body = %s, want %s", tc.policy, got, tc.want)
		}
	}
}
