package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/portcullis/portcullis/e2e/harness"
	"github.com/portcullis/portcullis/e2e/wasmhost"
	"github.com/portcullis/portcullis/internal/jwttest"
)

// The compiled plugin's cost per request under wazero, with the shipped
// configuration and no network: the host answers 404 where Envoy would
// proxy. Subtract e2e/wasmhost's BenchmarkHostOnly (an empty plugin through
// the same path) to get the plugin's own share.

func benchPluginHost(b *testing.B) http.Handler {
	wasm, err := os.ReadFile(harness.WasmPath(b))
	if err != nil {
		b.Fatal(err)
	}
	shipped, err := os.ReadFile(filepath.Join(harness.RepoRoot(b), "envoy.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	config, err := harness.PluginConfigFrom(shipped)
	if err != nil {
		b.Fatal(err)
	}
	h, err := wasmhost.New(context.Background(), wasm, wasmhost.Options{
		Workers: 1, PluginConfig: config, Env: map[string]string{harness.SecretEnv: harness.TestSecret},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = h.Close() })
	return h.Handler()
}

func benchRequests(b *testing.B, handler http.Handler, req *http.Request, want int) {
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, req)
		if w.Code != want {
			b.Fatalf("status %d, want %d: %s", w.Code, want, w.Body)
		}
	}
}

// BenchmarkPluginVerifiedRequest: a protected route with a valid token, so
// the plugin verifies HS256, strips and sets identity headers, and continues.
func BenchmarkPluginVerifiedRequest(b *testing.B) {
	handler := benchPluginHost(b)
	claims := jwttest.Valid("alice", time.Now(), time.Hour)
	claims["iss"], claims["aud"], claims["email"] = "portcullis-dev", "portcullis-api", "alice@example.com"
	req := httptest.NewRequest(http.MethodGet, "/api/orders?page=2", nil)
	req.Header.Set("Authorization", "Bearer "+jwttest.HS256([]byte(harness.TestSecret), claims))
	benchRequests(b, handler, req, http.StatusNotFound) // the host's "no upstream" 404, after the plugin continued
}

// BenchmarkPluginRejectedRequest: no token, so the plugin answers 401 JSON itself.
func BenchmarkPluginRejectedRequest(b *testing.B) {
	handler := benchPluginHost(b)
	benchRequests(b, handler, httptest.NewRequest(http.MethodGet, "/api/orders", nil), http.StatusUnauthorized)
}
