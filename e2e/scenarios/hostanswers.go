package scenarios

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/e2e/harness"
	"github.com/portcullis/portcullis/e2e/upstream"
)

// Answers the host makes itself, before or instead of the plugin (Envoy's
// local replies, mapped by envoy.yaml's local_reply_config), carry the
// plugin's JSON envelope too; the plugin's own answers and the upstream's
// pass through untouched.

// UnroutedPrefix is a path prefix the host-answers gateway's plugin forwards
// (a public rule) but no route of envoy.yaml matches.
const UnroutedPrefix = "/unrouted"

// MaxRequestBodyBytes is envoy.yaml's request body limit (its buffer filter).
const MaxRequestBodyBytes = 1 << 20

// HostAnswersConfig is the shipped plugin configuration with a public rule
// for UnroutedPrefix.
func HostAnswersConfig(t *testing.T) string {
	return patchConfig(t, harness.ShippedPluginConfig(t), func(cfg map[string]any) {
		rule := map[string]any{"name": "unrouted", "prefix": UnroutedPrefix, "public": true}
		cfg["routes"] = append([]any{rule}, cfg["routes"].([]any)...)
	})
}

// hostAnswers runs the checks every host shares on gw (HostAnswersConfig).
func hostAnswers(t *testing.T, gw *harness.Gateway) {
	for _, s := range []struct {
		name string
		run  func(*testing.T, *harness.Gateway)
	}{
		{"codec_errors_400", codecErrors},
		{"no_route_404", noRoute},
		{"body_too_large_413", bodyTooLarge},
		{"headers_too_large_431", headersTooLarge},
		{"plugin_replies_byte_identical", pluginRepliesUntouched},
		{"upstream_plain_text_untouched", upstreamPlainUntouched},
	} {
		t.Run(s.name, func(t *testing.T) { s.run(t, gw) })
	}
}

// ExpectHostAnswer checks that resp is a host-made answer in the envelope:
// status, code, JSON, not to be stored by any cache.
func ExpectHostAnswer(t testing.TB, resp Response, status int, code string) ErrorBody {
	t.Helper()
	e := ExpectEnvelope(t, resp, status, code)
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("cache-control %q, want no-store; response:\n%s", cc, resp)
	}
	return e
}

// codecErrors: requests the host's HTTP/1 codec refuses before any plugin
// callback (a NUL or another control character in the path, a malformed
// request line) get the envelope, the codec's reason in the message.
func codecErrors(t *testing.T, gw *harness.Gateway) {
	for _, target := range []string{"/api/a\x00b", "/api/a\x7fb", "/api/a b"} {
		resp := RawExchange(t, gw, []byte("GET "+target+" HTTP/1.1\r\nHost: gateway\r\n\r\n"), 0)
		if e := ExpectHostAnswer(t, resp, http.StatusBadRequest, "bad_request"); !strings.Contains(e.Message, "http1.") {
			t.Errorf("%q: message %q, want the codec's reason", target, e.Message)
		}
	}
}

func noRoute(t *testing.T, gw *harness.Gateway) {
	before := gw.Upstream.Count()
	resp := Send(t, gw, Request{Path: UnroutedPrefix + "/x"})
	ExpectHostAnswer(t, resp, http.StatusNotFound, "not_found")
	if gw.Upstream.Count() != before {
		t.Errorf("a request no route matches reached the upstream")
	}
}

func bodyTooLarge(t *testing.T, gw *harness.Gateway) {
	tok := Token(harness.TestSecret, freshKey("big"), nil)
	body := `{"pad":"` + strings.Repeat("x", MaxRequestBodyBytes) + `"}`
	req := "POST /api/items HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer " + tok +
		"\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	before := gw.Upstream.Count()
	ExpectHostAnswer(t, RawExchange(t, gw, []byte(req), 0), http.StatusRequestEntityTooLarge, "payload_too_large")
	if gw.Upstream.Count() != before {
		t.Errorf("a body over the limit reached the upstream")
	}
	// At the limit, it is forwarded whole.
	ok := Send(t, gw, Request{Method: "POST", Path: "/api/items", Body: strings.Repeat("x", MaxRequestBodyBytes-8),
		Header: With(Bearer(tok), "Content-Type", "application/json")})
	if ok.Status != http.StatusOK || Echo(t, ok).BodyBytes != MaxRequestBodyBytes-8 {
		t.Errorf("a body under the limit: want it forwarded whole, got:\n%s", ok)
	}
}

func headersTooLarge(t *testing.T, gw *harness.Gateway) {
	req := "GET /api/public/x HTTP/1.1\r\nHost: gateway\r\nX-Big: " + strings.Repeat("a", 70*1024) + "\r\n\r\n"
	ExpectHostAnswer(t, RawExchange(t, gw, []byte(req), 0), http.StatusRequestHeaderFieldsTooLarge, "request_header_fields_too_large")
}

// pluginRepliesUntouched: the plugin's JSON errors reach the client exactly
// as the plugin wrote them (the host's mapping leaves them alone).
func pluginRepliesUntouched(t *testing.T, gw *harness.Gateway) {
	for _, tc := range []struct {
		path, code, message string
		status              int
	}{
		{"/api/things", "unauthorized", "missing bearer token", http.StatusUnauthorized},
		{"/nope", "not_found", "Route GET /nope not found", http.StatusNotFound},
	} {
		resp := Send(t, gw, Request{Path: tc.path})
		id := resp.Header.Get("X-Request-Id")
		want := `{"error":"` + tc.code + `","message":"` + tc.message + `","request_id":"` + id + `"}`
		if resp.Status != tc.status || string(resp.Body) != want {
			t.Errorf("GET %s: want %d with exactly\n%s\ngot:\n%s", tc.path, tc.status, want, resp)
		}
		if id != "" {
			gatewayErrors.add(gw, id, tc.status)
		}
	}
}

// upstreamPlainUntouched: an upstream's own plain-text 503 is its answer,
// not the host's: neither rewritten nor marked no-store.
func upstreamPlainUntouched(t *testing.T, gw *harness.Gateway) {
	tok := Token(harness.TestSecret, freshKey("plain"), nil)
	resp := Send(t, gw, Request{Path: "/api/plain/503", Header: Bearer(tok)})
	if resp.Status != http.StatusServiceUnavailable || string(resp.Body) != upstream.PlainBody(503) ||
		resp.Header.Get("Content-Type") != "text/plain" || resp.Header.Get("Cache-Control") != "" {
		t.Errorf("the upstream's text/plain 503 must pass untouched, got:\n%s", resp)
	}
}

// RawExchange writes req to a fresh connection to gw as it is — bytes a Go
// client would refuse to send — waits wait, and reads one response.
func RawExchange(t testing.TB, gw *harness.Gateway, req []byte, wait time.Duration) Response {
	t.Helper()
	u, err := url.Parse(gw.BaseURL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(wait + 20*time.Second))
	// Written from another goroutine: the host may answer before it has read
	// everything (a body or headers over a limit).
	go func() { _, _ = conn.Write(req) }()
	time.Sleep(wait)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer to %.60q: %v", req, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the body of the answer to %.60q: %v", req, err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
}
