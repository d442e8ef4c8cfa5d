package upstream

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestEcho(t *testing.T) {
	h := New()
	srv := httptest.NewServer(h)
	defer srv.Close()

	for i, tc := range []struct {
		method, path, body string
		headers            map[string][]string
		wantStatus         int
		wantPath, wantQ    string
	}{
		{method: "GET", path: "/users/1?x=1&y=2", wantStatus: 200, wantPath: "/users/1", wantQ: "x=1&y=2",
			headers: map[string][]string{"X-One": {"a"}, "X-Two": {"b", "c"}}},
		{method: "POST", path: "/items", body: `{"a":1}`, wantStatus: 200, wantPath: "/items"},
		{method: "GET", path: "/status/503", wantStatus: 503, wantPath: "/status/503"},
		{method: "GET", path: "/status/nope", wantStatus: 400, wantPath: "/status/nope"},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
		for k, vs := range tc.headers {
			for _, v := range vs {
				req.Header.Add(k, v)
			}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e Echo
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.wantStatus || e.Method != tc.method || e.Path != tc.wantPath || e.Query != tc.wantQ {
			t.Errorf("%s %s: got %d %+v", tc.method, tc.path, resp.StatusCode, e)
		}
		if e.Count != int64(i+1) || h.Count() != int64(i+1) {
			t.Errorf("count = %d (handler %d), want %d", e.Count, h.Count(), i+1)
		}
		if e.BodyBytes != int64(len(tc.body)) {
			t.Errorf("body_bytes = %d, want %d", e.BodyBytes, len(tc.body))
		}
		if tc.headers != nil {
			if e.Headers["x-one"] != "a" {
				t.Errorf("x-one = %v", e.Headers["x-one"])
			}
			if v, ok := e.Headers["x-two"].([]any); !ok || len(v) != 2 {
				t.Errorf("x-two = %#v, want two values", e.Headers["x-two"])
			}
		}
	}
}

func TestSlow(t *testing.T) {
	srv := httptest.NewServer(New())
	defer srv.Close()
	start := time.Now()
	resp, err := http.Get(srv.URL + "/slow?ms=50")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("status %d after %v", resp.StatusCode, time.Since(start))
	}
}

func TestCachingHeadersOnRequest(t *testing.T) {
	h := New()
	req := httptest.NewRequest(http.MethodGet, "/x", nil)
	req.Header.Set("X-Upstream-Cache-Control", "private, max-age=5")
	req.Header.Set("X-Upstream-Vary", "Accept-Language")
	req.Header.Set("X-Upstream-Set-Cookie", "s=1")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	for name, want := range map[string]string{"Cache-Control": "private, max-age=5", "Vary": "Accept-Language", "Set-Cookie": "s=1"} {
		if got := w.Header().Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/x", nil))
	if cc := w.Header().Get("Cache-Control"); cc != "" {
		t.Errorf("Cache-Control %q without asking", cc)
	}
}
