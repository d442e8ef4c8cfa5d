// Package upstream is the demo upstream service: it answers every request with
// JSON describing what it received, so forwarding, header stripping and
// cache hits are visible to a person with curl and to the e2e tests.
//
//	GET /anything       → 200 {"method","path","query","headers","body_bytes","count"}
//	GET /slow?ms=N      → the same, after sleeping N milliseconds (at most 60 s)
//	ANY /status/{code}  → that status code (200-599; anything else answers 400), JSON body
//	ANY /plain/{code}   → that status code with the text/plain body PlainBody(code),
//	                      as a service that does not speak JSON answers
//
// The answer carries no caching headers unless the request asks for them,
// so the cache tests can choose per request what the "origin" says:
//
//	x-upstream-cache-control: V → Cache-Control: V
//	x-upstream-vary: V          → Vary: V
//	x-upstream-set-cookie: V    → Set-Cookie: V
//	x-upstream-surrogate-key: V → Surrogate-Key: V
//	x-upstream-etag: V          → ETag: V, and 304 without a body when the
//	                              request's If-None-Match names V
//	x-upstream-status: N        → status N (200-599) instead of 200
//
// and the rate-limit tests what the request cost (a rule's cost_header):
//
//	x-upstream-tokens-used: V   → X-Tokens-Used: V
package upstream

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// MaxSlow bounds /slow so a typo cannot park a connection for ever.
const MaxSlow = 60 * time.Second

// Echo is the JSON body the upstream answers with.
type Echo struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	Query  string `json:"query"`
	// Headers maps each lower-case header name to its value: a string when the
	// header came once, an array of strings when it came several times.
	Headers   map[string]any `json:"headers"`
	BodyBytes int64          `json:"body_bytes"`
	// Count is this process's request counter, including this request.
	Count  int64 `json:"count"`
	Status int   `json:"status,omitempty"`
}

// PlainBody is the text body of /plain/{code}.
func PlainBody(code int) string { return "upstream says " + strconv.Itoa(code) + "\n" }

// Handler is the demo upstream. The zero value is ready to use.
type Handler struct {
	count, notModified atomic.Int64
}

// New returns a Handler.
func New() *Handler { return &Handler{} }

// Count is how many requests the handler has received.
func (h *Handler) Count() int64 { return h.count.Load() }

// NotModified is how many of them it answered 304 (x-upstream-etag).
func (h *Handler) NotModified() int64 { return h.notModified.Load() }

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := h.count.Add(1)
	bodyBytes, _ := io.Copy(io.Discard, io.LimitReader(r.Body, 64<<20))
	echo := Echo{
		Method:    r.Method,
		Path:      r.URL.EscapedPath(),
		Query:     r.URL.RawQuery,
		Headers:   headers(r),
		BodyBytes: bodyBytes,
		Count:     n,
	}
	status := http.StatusOK
	switch {
	case r.URL.Path == "/slow":
		ms, err := strconv.Atoi(r.URL.Query().Get("ms"))
		if err != nil || ms < 0 {
			ms = 1000
		}
		d := min(time.Duration(ms)*time.Millisecond, MaxSlow)
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return // the client (Envoy) gave up; nobody reads the answer
		}
	case strings.HasPrefix(r.URL.Path, "/plain/"):
		code, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/plain/"))
		if err != nil || code < 200 || code > 599 {
			code = http.StatusBadRequest
		}
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, PlainBody(code))
		return
	case strings.HasPrefix(r.URL.Path, "/status/"):
		code, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/status/"))
		if err != nil || code < 200 || code > 599 {
			status = http.StatusBadRequest
		} else {
			status = code
		}
		echo.Status = status
	}
	w.Header().Set("Content-Type", "application/json")
	for _, h := range [...]struct{ request, response string }{
		{"X-Upstream-Cache-Control", "Cache-Control"}, {"X-Upstream-Vary", "Vary"}, {"X-Upstream-Set-Cookie", "Set-Cookie"},
		{"X-Upstream-Surrogate-Key", "Surrogate-Key"},
		{"X-Upstream-Tokens-Used", "X-Tokens-Used"},
		{"X-Upstream-Etag", "ETag"},
	} {
		if v := r.Header.Get(h.request); v != "" {
			w.Header().Set(h.response, v)
		}
	}
	if code, err := strconv.Atoi(r.Header.Get("X-Upstream-Status")); err == nil && code >= 200 && code <= 599 {
		status = code
	}
	if etag := r.Header.Get("X-Upstream-Etag"); etag != "" && strings.Contains(r.Header.Get("If-None-Match"), etag) {
		h.notModified.Add(1)
		status = http.StatusNotModified
	}
	w.WriteHeader(status)
	if r.Method == http.MethodHead || status == http.StatusNoContent || status == http.StatusNotModified {
		return
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(echo)
}

func headers(r *http.Request) map[string]any {
	out := make(map[string]any, len(r.Header)+1)
	for name, values := range r.Header {
		key := strings.ToLower(name)
		if len(values) == 1 {
			out[key] = values[0]
		} else {
			out[key] = append([]string(nil), values...)
		}
	}
	if r.Host != "" {
		out["host"] = r.Host
	}
	return out
}
