package wasmhost_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/portcullis/portcullis/e2e/wasmhost"
)

// BenchmarkHostOnly is the host's own cost per request with a plugin that
// does nothing and no upstream: context create, request headers, the 404
// route_not_found through the response callbacks, on_log and on_delete,
// without a network round trip.
func BenchmarkHostOnly(b *testing.B) {
	h, err := wasmhost.New(context.Background(), plugins["empty"], wasmhost.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	handler := h.Handler()
	req := httptest.NewRequest(http.MethodGet, "/bench", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, req)
		if w.Code != http.StatusNotFound {
			b.Fatalf("status %d", w.Code)
		}
	}
}

// BenchmarkHostProxy and BenchmarkDirectUpstream together separate the
// host's overhead from the HTTP round trip: the same request through the
// host with an empty plugin, and straight to the upstream.
func BenchmarkHostProxy(b *testing.B) {
	up := okUpstream(b)
	h, err := wasmhost.New(context.Background(), plugins["empty"], wasmhost.Options{Workers: 2, Upstream: up})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	srv, err := h.Start("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	benchGet(b, srv.URL+"/bench")
}

func BenchmarkDirectUpstream(b *testing.B) { benchGet(b, okUpstream(b)+"/bench") }

func okUpstream(b *testing.B) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	b.Cleanup(srv.Close)
	return srv.URL
}

func benchGet(b *testing.B, url string) {
	b.ReportAllocs()
	for b.Loop() {
		resp, err := http.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}
