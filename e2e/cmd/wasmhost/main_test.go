package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// uleb is v as an unsigned LEB128.
func uleb(v uint32) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// vec is a wasm vector: the count, then the items.
func vec(items ...[]byte) []byte {
	b := uleb(uint32(len(items)))
	for _, it := range items {
		b = append(b, it...)
	}
	return b
}

func section(id byte, content []byte) []byte {
	return append(append([]byte{id}, uleb(uint32(len(content)))...), content...)
}

func wasmName(s string) []byte { return append(uleb(uint32(len(s))), s...) }

// minimalPlugin is the smallest module the host accepts, hand-assembled so
// that this test needs no Go-to-wasm build: it exports memory,
// proxy_abi_version_0_2_1, proxy_on_memory_allocate (always address 1024; the
// host never needs it, as the module calls no host function) and
// proxy_on_context_create, and no other callback, so the host treats every
// callback as Continue and every request goes on to routing.
func minimalPlugin() []byte {
	const i32, funcType, exportFunc, exportMemory, end = 0x7f, 0x60, 0x00, 0x02, 0x0b
	m := []byte("\x00asm\x01\x00\x00\x00")
	m = append(m, section(1, vec( // types
		[]byte{funcType, 0, 0},           // 0: () -> ()
		[]byte{funcType, 1, i32, 1, i32}, // 1: (i32) -> i32
		[]byte{funcType, 2, i32, i32, 0}, // 2: (i32, i32) -> ()
	))...)
	// The functions' types, then one memory of one page (no maximum).
	m = append(m, section(3, vec([]byte{0}, []byte{1}, []byte{2}))...)
	m = append(m, section(5, vec([]byte{0x00, 1}))...)
	m = append(m, section(7, vec( // exports
		append(wasmName("memory"), exportMemory, 0),
		append(wasmName("proxy_abi_version_0_2_1"), exportFunc, 0),
		append(wasmName("proxy_on_memory_allocate"), exportFunc, 1),
		append(wasmName("proxy_on_context_create"), exportFunc, 2),
	))...)
	body := func(code ...byte) []byte {
		b := append([]byte{0}, code...) // no locals
		return append(uleb(uint32(len(b))), b...)
	}
	m = append(m, section(10, vec( // code
		body(end),
		body(append([]byte{0x41}, append(uleb(1024), end)...)...), // i32.const 1024
		body(end),
	))...)
	return m
}

// runCommand runs the command in process with args plus -wasm (the minimal
// plugin) and -quiet until the test ends, and returns the gateway's and the
// admin listener's addresses.
func runCommand(t *testing.T, args ...string) (gateway, admin string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "minimal.wasm")
	if err := os.WriteFile(path, minimalPlugin(), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	type addrs struct{ gateway, admin string }
	up := make(chan addrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"-wasm", path, "-quiet", "-listen", "127.0.0.1:0", "-env", "JWT_SECRET=unused"}, args...),
			func(g, a string) { up <- addrs{g, a} })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("run did not return after its context ended")
		}
	})
	select {
	case a := <-up:
		return a.gateway, a.admin
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("the command did not come up")
	}
	return "", ""
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestCommandServesGatewayAndAdmin runs the command as `make run` does
// (cluster, /api strip, the default admin flag replaced by a free port) and
// reads the gateway and the admin listener.
func TestCommandServesGatewayAndAdmin(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"path": r.URL.RequestURI()})
	}))
	t.Cleanup(upstream.Close)
	gateway, admin := runCommand(t, "-cluster", "upstream="+upstream.URL, "-strip-prefix", "/api", "-admin", "127.0.0.1:0")
	if admin == "" {
		t.Fatal("no admin listener")
	}

	if code, body := httpGet(t, "http://"+gateway+"/api/hello?x=1"); code != http.StatusOK || body != `{"path":"/hello?x=1"}`+"\n" {
		t.Errorf("gateway /api/hello: %d %q, want the upstream's answer for /hello?x=1", code, body)
	}
	if code, body := httpGet(t, "http://"+admin+"/ready"); code != http.StatusOK || body != "LIVE\n" {
		t.Errorf("admin /ready: %d %q, want 200 LIVE", code, body)
	}
	// The minimal plugin defines no metric: Envoy's format for nothing is nothing.
	if code, body := httpGet(t, "http://"+admin+"/stats"); code != http.StatusOK || body != "" {
		t.Errorf("admin /stats: %d %q, want 200 and no lines", code, body)
	}
}

func TestCommandAdminDisabledAndDefault(t *testing.T) {
	if _, admin := runCommand(t, "-admin", ""); admin != "" {
		t.Errorf("-admin \"\" still serves an admin listener on %s", admin)
	}
	fs, _ := commandFlags()
	if got := fs.Lookup("admin").DefValue; got != "127.0.0.1:9901" {
		t.Errorf("-admin defaults to %q, want Envoy's admin address of make run, 127.0.0.1:9901", got)
	}
}
