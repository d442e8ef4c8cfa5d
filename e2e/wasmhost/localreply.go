package wasmhost

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// maxRequestHeaderBytes is Envoy's default max_request_headers_kb (60 KiB),
// which envoy.yaml keeps: larger request headers get 431.
const maxRequestHeaderBytes = 60 << 10

// localReplyKinds are the "error" codes and messages envoy.yaml's
// local_reply_config gives the answers Envoy makes itself, by status.
var localReplyKinds = map[int]struct{ code, message string }{
	http.StatusBadRequest:                  {"bad_request", "malformed request"},
	http.StatusNotFound:                    {"not_found", "no route for this path"},
	http.StatusRequestTimeout:              {"request_timeout", "request timed out"},
	http.StatusRequestEntityTooLarge:       {"payload_too_large", "request body too large"},
	http.StatusRequestHeaderFieldsTooLarge: {"request_header_fields_too_large", "request headers too large"},
	http.StatusServiceUnavailable:          {"service_unavailable", "service unavailable"},
}

// localReplyBody is the JSON envelope envoy.yaml's local_reply_config makes
// of an answer Envoy makes itself with status and response code details.
// Its members come in the order Envoy's json_format writes them (sorted).
func localReplyBody(status int, details, requestID string) []byte {
	kind, ok := localReplyKinds[status]
	if !ok {
		kind.code, kind.message = "gateway_error", "request refused by the proxy"
	}
	b, _ := json.Marshal(struct {
		Error     string `json:"error"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	}{kind.code, kind.message + " (" + details + ")", requestID})
	return b
}

// writeLocalReply answers a request the host refuses before any plugin
// callback, as Envoy's local reply mapper would; requestID is "" when Envoy
// would not have read the headers yet (a fresh id then goes in the body only).
func writeLocalReply(w http.ResponseWriter, status int, details, requestID string) {
	id := requestID
	if id == "" {
		id = newRequestID()
	} else {
		w.Header().Set("X-Request-Id", id)
	}
	body := localReplyBody(status, details, id)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// requestHeaderBytes counts request headers as Envoy's limit does: names
// and values of the header map, pseudo-headers included.
func requestHeaderBytes(r *http.Request) int {
	n := len(":method") + len(r.Method) + len(":path") + len(r.RequestURI) + len(":authority") + len(r.Host)
	for name, values := range r.Header {
		for _, v := range values {
			n += len(name) + len(v)
		}
	}
	return n
}

// envoyError is a response Envoy makes itself, in the envelope envoy.yaml's
// local_reply_config gives it; it passes through the plugin's response
// callbacks with its code details.
func envoyError(status int, details, requestID string, flags uint64) *response {
	body := localReplyBody(status, details, requestID)
	hdr := headers{
		{":status", strconv.Itoa(status)},
		{"content-length", strconv.Itoa(len(body))},
		{"content-type", "application/json"},
		{"cache-control", "no-store"},
	}
	return &response{
		status: status, headers: hdr, body: io.NopCloser(strings.NewReader(string(body))),
		length: int64(len(body)), details: details, flags: flags,
	}
}

// goErrorHeaders follow the status line of the answers net/http writes
// itself, before any handler, to a request it cannot parse (net/http
// server.go, conn.serve). Responses written through a handler never carry
// them in this order (their headers are sorted).
const goErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// codecListener makes the answers net/http gives unparsable requests what
// Envoy's codec and local_reply_config give them: the envelope, with a fresh
// request id (no headers were read).
type codecListener struct{ net.Listener }

func (l codecListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return codecConn{c}, nil
}

type codecConn struct{ net.Conn }

func (c codecConn) Write(b []byte) (int, error) {
	status, ok := goParseError(b)
	if !ok {
		return c.Conn.Write(b)
	}
	body := localReplyBody(status, "http1.codec_error", newRequestID())
	head := fmt.Sprintf("HTTP/1.1 %d %s\r\nCache-Control: no-store\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
		status, http.StatusText(status), len(body))
	if _, err := c.Conn.Write(append([]byte(head), body...)); err != nil {
		return 0, err
	}
	return len(b), nil
}

// goParseError reports whether b is net/http's own answer to an unparsable
// request, and its status.
func goParseError(b []byte) (int, bool) {
	const prefix = "HTTP/1.1 4"
	line, _, ok := bytes.Cut(b, []byte("\r\n"))
	if !ok || len(line) < len("HTTP/1.1 400") || !bytes.HasPrefix(line, []byte(prefix)) ||
		!bytes.HasPrefix(b[len(line):], []byte(goErrorHeaders)) {
		return 0, false
	}
	status, err := strconv.Atoi(string(line[len("HTTP/1.1 "):len("HTTP/1.1 400")]))
	return status, err == nil
}
