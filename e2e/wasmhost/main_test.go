package wasmhost_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/e2e/wasmhost"
)

// plugins are the compiled test plugins (testdata/<name>), by name.
var plugins = map[string][]byte{}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wasmhost-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	err = buildPlugins(dir, "basic", "missing", "empty")
	if err != nil {
		os.RemoveAll(dir)
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	precompile()
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildPlugins compiles testdata/<name> for every name, concurrently.
func buildPlugins(dir string, names ...string) error {
	var wg sync.WaitGroup
	errs := make([]error, len(names))
	outs := make([]string, len(names))
	for i, name := range names {
		outs[i] = filepath.Join(dir, name+".wasm")
		wg.Go(func() {
			cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", outs[i], "./testdata/"+name)
			cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("building testdata/%s: %v\n%s", name, err, out)
			}
		})
	}
	wg.Wait()
	for i, name := range names {
		if errs[i] != nil {
			return errs[i]
		}
		b, err := os.ReadFile(outs[i])
		if err != nil {
			return err
		}
		plugins[name] = b
	}
	return nil
}

// precompile compiles every plugin into the process's compilation cache,
// concurrently, so that the tests (which compile them one after another) find
// them compiled: wazero's compiler is the slowest part of the suite, above
// all under -race.
func precompile() {
	var wg sync.WaitGroup
	for _, wasm := range plugins {
		wg.Go(func() {
			// "missing" fails after compiling, which is all this is for.
			if h, err := wasmhost.New(context.Background(), wasm, wasmhost.Options{}); err == nil {
				h.Close()
			}
		})
	}
	wg.Wait()
}

// start runs plugin in a host with opts, serving on a free port, until t ends.
func start(t testing.TB, plugin string, opts wasmhost.Options) (*wasmhost.Host, string) {
	t.Helper()
	h, err := wasmhost.New(context.Background(), plugins[plugin], opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv, err := h.Start("127.0.0.1:0")
	if err != nil {
		h.Close()
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		srv.Close()
		h.Close()
		if t.Failed() {
			t.Logf("host logs:\n%s", h.HostLogs())
		}
	})
	return h, srv.URL
}

// echo is what the echo upstream saw.
type echo struct {
	Method   string            `json:"method"`
	Path     string            `json:"path"`
	Host     string            `json:"host"`
	Headers  map[string]string `json:"headers"`
	Body     string            `json:"body"`
	Trailers map[string]string `json:"trailers,omitempty"`
}

// startEcho starts an upstream that answers JSON describing the request.
// A path starting with /slow sleeps for the duration in its query (?d=200ms);
// one starting with /trailers answers with the trailers X-Up-Trailer: up and
// X-Drop-Trailer: drop, undeclared (no Trailer header), as Go permits; one
// starting with /add-trailers answers chunked, without trailers.
func startEcho(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/slow") {
			d, _ := time.ParseDuration(r.URL.Query().Get("d"))
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		body, _ := io.ReadAll(r.Body)
		e := echo{Method: r.Method, Path: r.URL.RequestURI(), Host: r.Host, Headers: map[string]string{}, Body: string(body)}
		for k := range r.Header {
			e.Headers[strings.ToLower(k)] = r.Header.Get(k)
		}
		for k := range r.Trailer { // complete now that the body was read
			if e.Trailers == nil {
				e.Trailers = map[string]string{}
			}
			e.Trailers[strings.ToLower(k)] = r.Trailer.Get(k)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Upstream", "echo")
		if strings.HasPrefix(r.URL.Path, "/add-trailers") {
			w.(http.Flusher).Flush() // no Content-Length: a chunked answer, which can end in trailers
		}
		_ = json.NewEncoder(w).Encode(e)
		if strings.HasPrefix(r.URL.Path, "/trailers") {
			w.(http.Flusher).Flush() // the header is out: these can only be trailers
			w.Header().Set(http.TrailerPrefix+"X-Up-Trailer", "up")
			w.Header().Set(http.TrailerPrefix+"X-Drop-Trailer", "drop")
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// closedURL is a loopback URL nobody listens on.
func closedURL(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// testClient bounds every test request, so a host that leaves a request
// hanging fails the test instead of stalling it until go test's timeout.
var testClient = &http.Client{Timeout: 20 * time.Second}

type result struct {
	status int
	header http.Header
	body   string
}

func do(t testing.TB, method, url, body string, hdr ...string) result {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return result{resp.StatusCode, resp.Header, string(b)}
}

func get(t testing.TB, url string, hdr ...string) result {
	return do(t, http.MethodGet, url, "", hdr...)
}

func decodeEcho(t testing.TB, r result) echo {
	t.Helper()
	var e echo
	if err := json.Unmarshal([]byte(r.body), &e); err != nil {
		t.Fatalf("upstream answer %d %q: %v", r.status, r.body, err)
	}
	return e
}

// eventually polls cond for up to two seconds.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
