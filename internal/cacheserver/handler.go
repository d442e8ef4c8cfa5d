package cacheserver

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
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

type counters struct {
	Hits     atomic.Int64
	Misses   atomic.Int64
	Puts     atomic.Int64
	Deletes  atomic.Int64
	Rejected atomic.Int64 // 4xx answers
	Errors   atomic.Int64 // store failures (503)
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

const entriesPrefix = "/v1/entries/"

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch path := r.URL.Path; {
	case path == "/healthz":
		w.WriteHeader(http.StatusOK)
	case path == "/v1/stats":
		h.serveStats(w, r)
	case strings.HasPrefix(path, entriesPrefix):
		h.serveEntry(w, r, strings.TrimPrefix(path, entriesPrefix))
	default:
		h.fail(w, http.StatusNotFound, "not_found", "no such resource")
	}
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
		w.Header().Set("Allow", "GET, PUT, DELETE")
		h.fail(w, http.StatusMethodNotAllowed, "method_not_allowed", "use GET, PUT or DELETE")
	}
}

func (h *Handler) put(ctx context.Context, w http.ResponseWriter, r *http.Request, key string) {
	ttl := h.opts.DefaultTTL
	if v := r.Header.Get(TTLHeader); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || time.Duration(n)*time.Second > MaxTTL {
			h.fail(w, http.StatusBadRequest, "bad_ttl", TTLHeader+" must be whole seconds between 1 and 86400")
			return
		}
		ttl = time.Duration(n) * time.Second
	}
	if r.ContentLength > h.opts.MaxEntryBytes {
		h.fail(w, http.StatusRequestEntityTooLarge, "too_large", "the value is over the server's limit")
		return
	}
	value, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxEntryBytes))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		h.fail(w, http.StatusRequestEntityTooLarge, "too_large", "the value is over the server's limit")
		return
	case err != nil:
		h.fail(w, http.StatusBadRequest, "bad_body", "cannot read the value")
		return
	}
	switch err := h.store.Put(ctx, key, value, ttl); {
	case errors.Is(err, ErrTooLarge):
		h.fail(w, http.StatusRequestEntityTooLarge, "too_large", "the value is over the store's budget")
	case err != nil:
		h.storeFailed(w, "put", err)
	default:
		h.stats.Puts.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}
}

func (h *Handler) serveStats(w http.ResponseWriter, r *http.Request) {
	if m, ok := h.store.(*Memory); ok {
		m.settle()
	}
	u, err := h.store.Usage(r.Context())
	if err != nil {
		h.storeFailed(w, "stats", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int64{
		"entries": u.Entries, "bytes": u.Bytes, "budget_bytes": u.BudgetBytes,
		"hits": h.stats.Hits.Load(), "misses": h.stats.Misses.Load(), "puts": h.stats.Puts.Load(),
		"deletes": h.stats.Deletes.Load(), "rejected": h.stats.Rejected.Load(), "errors": h.stats.Errors.Load(),
	})
}

func (h *Handler) storeFailed(w http.ResponseWriter, op string, err error) {
	h.stats.Errors.Add(1)
	if h.opts.Log != nil {
		h.opts.Log.Printf("cacheserver: %s: %v", op, err)
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

// validKey reports whether key is 64 lower-case hex digits.
func validKey(key string) bool {
	if len(key) != 64 {
		return false
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
