package cacheserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// The protocol (README "Cache server"):
//
//	GET    /v1/entries/{key}  → 200 with the value (application/octet-stream), or 404
//	PUT    /v1/entries/{key}  → 204; x-cache-ttl: seconds (1–86400) is the TTL hint
//	DELETE /v1/entries/{key}  → 204, also when there was nothing
//	PUT    /v1/tags/{member}  → 204; the body lists tags (64 hex digits a line, 1–64), x-cache-ttl as for entries
//	DELETE /v1/tags/{tag}[?scope=s] → 200, the purged keys one a line (text/plain)
//	GET    /healthz           → 200
//	GET    /v1/stats          → 200 JSON: the store's usage and the request counters
//
// A key is 64 lower-case hex digits (a SHA-256); anything else is 400. A
// value over the server's limit is 413, a malformed TTL 400, another method
// 405, a failing store 503. Errors are JSON {"error", "message"}.

// Options configure a Handler.
type Options struct {
	// MaxEntryBytes is the largest value accepted.
	MaxEntryBytes int64
	// DefaultTTL applies to a PUT without x-cache-ttl.
	DefaultTTL time.Duration
	// Log receives one line per store error (never keys' values); nil logs nowhere.
	Log *log.Logger
}

// Defaults of Options.
const (
	DefaultMaxEntryBytes = 2 << 20 // the plugin stores bodies up to 1 MiB by default, plus headers
	DefaultTTL           = time.Hour
	MaxTTL               = 24 * time.Hour
	// TTLHeader carries a PUT's TTL hint in seconds.
	TTLHeader = "x-cache-ttl"
)

// Handler serves the protocol over a Store.
type Handler struct {
	store Store
	opts  Options
	stats counters
}

// counters are the live counts behind Stats.
type counters struct {
	Hits, Misses, Puts, Deletes, Tagged, Purges, Rejected, Errors atomic.Int64
}

// NewHandler returns the protocol's handler over store.
func NewHandler(store Store, opts Options) *Handler {
	if opts.MaxEntryBytes <= 0 {
		opts.MaxEntryBytes = DefaultMaxEntryBytes
	}
	if opts.DefaultTTL <= 0 {
		opts.DefaultTTL = DefaultTTL
	}
	return &Handler{store: store, opts: opts}
}

const (
	entriesPrefix = "/v1/entries/"
	tagsPrefix    = "/v1/tags/"
)

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch path := r.URL.Path; {
	case path == "/healthz":
		if h.allow(w, r, http.MethodGet) {
			w.WriteHeader(http.StatusOK)
		}
	case path == "/v1/stats":
		if h.allow(w, r, http.MethodGet) {
			h.serveStats(w, r)
		}
	case strings.HasPrefix(path, entriesPrefix):
		h.serveEntry(w, r, strings.TrimPrefix(path, entriesPrefix))
	case strings.HasPrefix(path, tagsPrefix):
		h.serveTag(w, r, strings.TrimPrefix(path, tagsPrefix))
	default:
		h.fail(w, http.StatusNotFound, "not_found", "no such resource")
	}
}

// allow answers 405 unless r's method is one of methods.
func (h *Handler) allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	if slices.Contains(methods, r.Method) {
		return true
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	h.fail(w, http.StatusMethodNotAllowed, "method_not_allowed", "allowed: "+strings.Join(methods, ", "))
	return false
}

func (h *Handler) serveEntry(w http.ResponseWriter, r *http.Request, key string) {
	if !validKey(key) {
		h.fail(w, http.StatusBadRequest, "bad_key", "a key is 64 lower-case hex digits")
		return
	}
	ctx := r.Context()
	switch r.Method {
	case http.MethodGet:
		value, found, err := h.store.Get(ctx, key)
		switch {
		case err != nil:
			h.storeFailed(w, "get", err)
		case !found:
			h.stats.Misses.Add(1)
			h.fail(w, http.StatusNotFound, "not_found", "no entry")
		default:
			h.stats.Hits.Add(1)
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", strconv.Itoa(len(value)))
			_, _ = w.Write(value)
		}
	case http.MethodPut:
		h.put(ctx, w, r, key)
	case http.MethodDelete:
		if err := h.store.Delete(ctx, key); err != nil {
			h.storeFailed(w, "delete", err)
			return
		}
		h.stats.Deletes.Add(1)
		w.WriteHeader(http.StatusNoContent)
	default:
		h.allow(w, r, http.MethodGet, http.MethodPut, http.MethodDelete)
	}
}

func (h *Handler) put(ctx context.Context, w http.ResponseWriter, r *http.Request, key string) {
	ttl, value, ok := h.readPut(w, r, h.opts.MaxEntryBytes)
	if !ok {
		return
	}
	h.wrote(w, "put", h.store.Put(ctx, key, value, ttl), "the value is over the store's budget", &h.stats.Puts)
}

// wrote answers a write op's outcome: 204 (counted in done), 413 with
// tooLarge for ErrTooLarge, 503 for any other error.
func (h *Handler) wrote(w http.ResponseWriter, op string, err error, tooLarge string, done *atomic.Int64) {
	switch {
	case errors.Is(err, ErrTooLarge):
		h.fail(w, http.StatusRequestEntityTooLarge, "too_large", tooLarge)
	case err != nil:
		h.storeFailed(w, op, err)
	default:
		done.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}
}

// readPut reads a PUT's TTL hint and body (at most limit bytes); on a
// refusal it has answered, and ok is false.
func (h *Handler) readPut(w http.ResponseWriter, r *http.Request, limit int64) (ttl time.Duration, value []byte, ok bool) {
	ttl, ok = h.ttl(r.Header.Values(TTLHeader))
	if !ok {
		h.fail(w, http.StatusBadRequest, "bad_ttl", TTLHeader+" must be one whole number of seconds from 1 to 86400")
		return 0, nil, false
	}
	if r.ContentLength > limit {
		h.fail(w, http.StatusRequestEntityTooLarge, "too_large", "the value is over the server's limit")
		return 0, nil, false
	}
	value, err := readValue(w, r, limit)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		h.fail(w, http.StatusRequestEntityTooLarge, "too_large", "the value is over the server's limit")
		return 0, nil, false
	case err != nil:
		h.fail(w, http.StatusBadRequest, "bad_body", "cannot read the value")
		return 0, nil, false
	}
	return ttl, value, true
}

// serveTag files a member under tags (PUT) or purges a tag (DELETE).
func (h *Handler) serveTag(w http.ResponseWriter, r *http.Request, name string) {
	ctx := r.Context()
	switch r.Method {
	case http.MethodPut:
		if !validMember(name) {
			h.fail(w, http.StatusBadRequest, "bad_key", "a tag member is 64 lower-case hex digits, '-' and 16 more")
			return
		}
		ttl, body, ok := h.readPut(w, r, MaxTagsPerPut*(KeyLen+2))
		if !ok {
			return
		}
		tags, ok := tagLines(body)
		if !ok {
			h.fail(w, http.StatusBadRequest, "bad_body", fmt.Sprintf("the body lists 1 to %d tags, 64 lower-case hex digits a line", MaxTagsPerPut))
			return
		}
		h.wrote(w, "tag", h.store.AddToTags(ctx, name, tags, ttl), "a tag set is full", &h.stats.Tagged)
	case http.MethodDelete:
		scope := r.URL.Query().Get("scope")
		if !validKey(name) || r.URL.RawQuery != "" && (len(scope) != ScopeLen || !isLowerHex(scope) || r.URL.RawQuery != "scope="+scope) {
			h.fail(w, http.StatusBadRequest, "bad_key", "a tag is 64 lower-case hex digits; scope, if given, 16")
			return
		}
		keys, err := h.store.PurgeTag(ctx, name, scope)
		if err != nil {
			h.storeFailed(w, "purge", err)
			return
		}
		h.stats.Purges.Add(1)
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
		for _, k := range keys {
			_, _ = io.WriteString(w, k+"\n")
		}
	default:
		h.allow(w, r, http.MethodPut, http.MethodDelete)
	}
}

// tagLines reads a tag PUT's body: 1 to MaxTagsPerPut keys, one a line.
func tagLines(body []byte) ([]string, bool) {
	var tags []string
	for line := range strings.Lines(string(body)) {
		line = strings.TrimSuffix(line, "\n")
		if !validKey(line) || len(tags) == MaxTagsPerPut {
			return nil, false
		}
		tags = append(tags, line)
	}
	return tags, len(tags) > 0
}

// validMember reports whether m is a key, the separator and a scope id.
func validMember(m string) bool {
	return len(m) == MemberLen && validKey(m[:KeyLen]) && m[KeyLen] == memberSeparator && isLowerHex(m[KeyLen+1:])
}

// readValue reads a PUT's body, never more than limit bytes (a
// *http.MaxBytesError past it). A body of declared length, no more than limit
// (the caller checked), goes into one buffer of that size; only a chunked
// body grows one as it comes.
func readValue(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body := http.MaxBytesReader(w, r.Body, limit)
	if r.ContentLength < 0 {
		return io.ReadAll(body)
	}
	value := make([]byte, r.ContentLength)
	if _, err := io.ReadFull(body, value); err != nil {
		return nil, fmt.Errorf("read %d bytes: %w", r.ContentLength, err)
	}
	return value, nil
}

// ttl returns the TTL a PUT asks for with its TTLHeader values: the default
// without one; ok is false for anything but one decimal number of seconds in
// [1, MaxTTL], written with digits only (strconv.Atoi alone would take "+60").
func (h *Handler) ttl(values []string) (ttl time.Duration, ok bool) {
	switch len(values) {
	case 0:
		return h.opts.DefaultTTL, true
	case 1:
	default:
		return 0, false // two hints: which one did the client mean?
	}
	v := values[0]
	if v == "" || len(v) > 5 || strings.Trim(v, "0123456789") != "" {
		return 0, false
	}
	n, _ := strconv.Atoi(v) // at most five digits: cannot fail
	ttl = time.Duration(n) * time.Second
	return ttl, n >= 1 && ttl <= MaxTTL
}

// Stats is what GET /v1/stats answers: the store's usage and the handler's
// counters since it was made.
type Stats struct {
	Usage
	Hits     int64 `json:"hits"`     // GETs answered 200
	Misses   int64 `json:"misses"`   // GETs answered 404
	Puts     int64 `json:"puts"`     // PUTs stored
	Deletes  int64 `json:"deletes"`  // DELETEs done
	Tagged   int64 `json:"tagged"`   // tag PUTs done
	Purges   int64 `json:"purges"`   // tag DELETEs (purges) done
	Rejected int64 `json:"rejected"` // 4xx answers other than 404
	Errors   int64 `json:"errors"`   // 503s: the store failed
}

// Stats returns the store's usage and the handler's counters.
func (h *Handler) Stats(ctx context.Context) (Stats, error) {
	u, err := h.store.Usage(ctx)
	if err != nil {
		return Stats{}, fmt.Errorf("usage: %w", err)
	}
	return Stats{
		Usage: u, Hits: h.stats.Hits.Load(), Misses: h.stats.Misses.Load(), Puts: h.stats.Puts.Load(),
		Deletes: h.stats.Deletes.Load(), Tagged: h.stats.Tagged.Load(), Purges: h.stats.Purges.Load(), Rejected: h.stats.Rejected.Load(), Errors: h.stats.Errors.Load(),
	}, nil
}

func (h *Handler) serveStats(w http.ResponseWriter, r *http.Request) {
	s, err := h.Stats(r.Context())
	if err != nil {
		h.storeFailed(w, "stats", err)
		return
	}
	writeJSON(w, http.StatusOK, s)
}

func (h *Handler) storeFailed(w http.ResponseWriter, op string, err error) {
	h.stats.Errors.Add(1)
	if h.opts.Log != nil {
		h.opts.Log.Printf("%s: %v", op, err)
	}
	h.fail(w, http.StatusServiceUnavailable, "store_unavailable", "the store failed")
}

func (h *Handler) fail(w http.ResponseWriter, status int, code, message string) {
	if status >= 400 && status < 500 && status != http.StatusNotFound {
		h.stats.Rejected.Add(1)
	}
	writeJSON(w, status, map[string]string{"error": code, "message": message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// KeyLen is the length of a key: a SHA-256 in lower-case hex.
const KeyLen = 64

// validKey reports whether key is KeyLen lower-case hex digits.
func validKey(key string) bool { return len(key) == KeyLen && isLowerHex(key) }

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
