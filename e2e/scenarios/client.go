package scenarios

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/e2e/harness"
	"github.com/portcullis/portcullis/e2e/upstream"
	"github.com/portcullis/portcullis/internal/jwttest"
)

// Issuer and Audience are what the shipped plugin configuration expects.
const (
	Issuer   = "portcullis-dev"
	Audience = "portcullis-api"
)

var client = &http.Client{
	Timeout: 30 * time.Second,
	// Redirects would hide what the gateway answered.
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// Request is one HTTP request to a gateway.
type Request struct {
	Method string
	Path   string
	// Header values; a name given several values sends the header several times.
	Header map[string][]string
	Body   string
}

// Response is what the gateway answered.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Send sends r to gw and reads the whole answer.
func Send(t testing.TB, gw *harness.Gateway, r Request) Response {
	t.Helper()
	began := time.Now()
	resp, err := Do(gw, r)
	if d := time.Since(began); d > 2*time.Second {
		t.Logf("%s %s took %v", r.Method, r.Path, d.Round(time.Millisecond))
	}
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// Do is Send for other goroutines than the test's: it returns the error
// instead of failing the test.
func Do(gw *harness.Gateway, r Request) (Response, error) {
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	if r.Body != "" {
		body = strings.NewReader(r.Body)
	}
	req, err := http.NewRequest(method, gw.BaseURL+r.Path, body)
	if err != nil {
		return Response{}, fmt.Errorf("%s %s: %w", method, r.Path, err)
	}
	for name, values := range r.Header {
		for _, v := range values {
			req.Header.Add(name, v)
		}
	}
	// net/http sends req.Host, not a Host header: a Host given here is the
	// request's authority (as for gateways that must see one origin).
	if host := req.Header.Get("Host"); host != "" {
		req.Host = host
	}
	resp, err := client.Do(req)
	if err != nil {
		return Response{}, fmt.Errorf("%s %s: %w", method, r.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return Response{}, fmt.Errorf("%s %s: reading the body: %w", method, r.Path, err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// String describes the response for failure messages.
func (r Response) String() string {
	var buf bytes.Buffer
	buf.WriteString("HTTP " + strconv.Itoa(r.Status) + "\n")
	_ = r.Header.Write(&buf)
	body := string(r.Body)
	if len(body) > 2000 {
		body = body[:2000] + "...(truncated)"
	}
	buf.WriteString("\n" + body)
	return buf.String()
}

// ErrorBody is the gateway's JSON error envelope.
type ErrorBody struct {
	Error     string `json:"error"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

// ExpectError checks that resp is a gateway-made JSON error with status and
// code, carrying a request id (the same as the x-request-id response header
// when the host sets one), and returns the envelope. The request id is
// remembered for AssertErrorsLogged.
func ExpectError(t testing.TB, gw *harness.Gateway, resp Response, status int, code string) ErrorBody {
	t.Helper()
	e := ExpectEnvelope(t, resp, status, code)
	if e.RequestID != "" {
		gatewayErrors.add(gw, e.RequestID, status)
	}
	return e
}

// ExpectEnvelope is ExpectError for an answer the host made itself (Envoy's
// local replies), which the plugin neither made nor logged.
func ExpectEnvelope(t testing.TB, resp Response, status int, code string) ErrorBody {
	t.Helper()
	var e ErrorBody
	if resp.Status != status {
		t.Errorf("want %d %s, got:\n%s", status, code, resp)
		return e
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("content-type %q, want application/json; response:\n%s", ct, resp)
	}
	dec := json.NewDecoder(bytes.NewReader(resp.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Errorf("body is not the JSON error envelope (%v):\n%s", err, resp)
		return e
	}
	if e.Error != code {
		t.Errorf("error %q, want %q; response:\n%s", e.Error, code, resp)
	}
	if e.Message == "" {
		t.Errorf("empty message; response:\n%s", resp)
	}
	if e.RequestID == "" {
		t.Errorf("no request_id; response:\n%s", resp)
	}
	if rid := resp.Header.Get("X-Request-Id"); rid != "" && rid != e.RequestID {
		t.Errorf("request_id %q differs from the x-request-id header %q", e.RequestID, rid)
	}
	return e
}

// errorRegistry remembers, per gateway, the gateway-made errors the tests saw.
type errorRegistry struct {
	mu   sync.Mutex
	seen map[*harness.Gateway]map[string]int // request id → status
}

var gatewayErrors = &errorRegistry{seen: map[*harness.Gateway]map[string]int{}}

func (r *errorRegistry) add(gw *harness.Gateway, id string, status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen[gw] == nil {
		r.seen[gw] = map[string]int{}
	}
	r.seen[gw][id] = status
}

func (r *errorRegistry) of(gw *harness.Gateway) map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for k, v := range r.seen[gw] {
		out[k] = v
	}
	return out
}

// AssertErrorsLogged checks that every gateway-made error ExpectError saw on
// gw was logged by the plugin as exactly one structured JSON line carrying
// its request id and status.
func AssertErrorsLogged(t *testing.T, gw *harness.Gateway) {
	t.Helper()
	want := gatewayErrors.of(gw)
	if len(want) == 0 {
		t.Fatal("no gateway errors were recorded")
	}
	var lines map[string][]map[string]any
	complete := eventually(5*time.Second, func() bool {
		lines = jsonLogLines(gw.Logs())
		for id := range want {
			if len(lines[id]) == 0 {
				return false
			}
		}
		return true
	})
	if !complete {
		t.Errorf("some gateway errors have no log line")
	}
	for id, status := range want {
		got := lines[id]
		switch {
		case len(got) == 0:
			t.Errorf("no plugin log line for the %d with request_id %s", status, id)
		case len(got) > 1:
			t.Errorf("%d plugin log lines for request_id %s, want one: %v", len(got), id, got)
		default:
			if s, _ := got[0]["status"].(float64); int(s) != status {
				t.Errorf("log line for request_id %s has status %v, want %d: %v", id, got[0]["status"], status, got[0])
			}
		}
	}
}

// jsonLogLines parses the plugin's log lines whose message is a JSON object
// and indexes them by their request_id.
func jsonLogLines(logs string) map[string][]map[string]any {
	out := map[string][]map[string]any{}
	for _, line := range strings.Split(logs, "\n") {
		i := strings.Index(line, "{")
		if i < 0 {
			continue
		}
		var m map[string]any
		if json.Unmarshal([]byte(line[i:]), &m) != nil {
			continue
		}
		if id, _ := m["request_id"].(string); id != "" {
			out[id] = append(out[id], m)
		}
	}
	return out
}

// Echo decodes the demo upstream's answer; it fails t unless resp is one.
func Echo(t testing.TB, resp Response) upstream.Echo {
	t.Helper()
	var e upstream.Echo
	if err := json.Unmarshal(resp.Body, &e); err != nil || e.Method == "" {
		t.Fatalf("not an answer of the demo upstream (%v):\n%s", err, resp)
	}
	return e
}

// Header returns the single value the upstream saw for name ("" when absent);
// it fails t when the upstream saw the header more than once.
func Header(t testing.TB, e upstream.Echo, name string) string {
	t.Helper()
	switch v := e.Headers[name].(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		t.Errorf("upstream saw %s several times: %v", name, v)
		return ""
	}
}

// Token mints an HS256 token for sub with the shipped issuer and audience,
// valid from now for five minutes, with extra claims merged in (a nil value
// deletes a claim).
func Token(secret, sub string, extra jwttest.Claims) string {
	return jwttest.HS256([]byte(secret), Claims(sub, extra))
}

// Claims returns the claims Token signs.
func Claims(sub string, extra jwttest.Claims) jwttest.Claims {
	c := jwttest.Valid(sub, time.Now(), 5*time.Minute)
	c["iss"] = Issuer
	c["aud"] = Audience
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// Bearer returns the Authorization header for token.
func Bearer(token string) map[string][]string {
	return map[string][]string{"Authorization": {"Bearer " + token}}
}

// With adds name: values to h (a copy).
func With(h map[string][]string, name string, values ...string) map[string][]string {
	out := make(map[string][]string, len(h)+1)
	for k, v := range h {
		out[k] = v
	}
	out[name] = append(out[name], values...)
	return out
}

// eventually polls cond for up to d.
func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}
