package route_test

import (
	"strings"
	"testing"

	"github.com/portcullis/portcullis/filter/route"
)

func TestMatch(t *testing.T) {
	table := route.NewTable([]route.Rule{
		{Name: "public", Prefix: "/api/public", Methods: []string{"GET", "HEAD"}, Public: true},
		{Name: "api", Prefix: "/api"},
		{Name: "static", Prefix: "/static/", Public: true},
		{Name: "writes", Prefix: "/orders", Methods: []string{"POST"}},
	})
	for _, tc := range []struct {
		method, path string
		rule         string // "" = no rule matches
	}{
		{"GET", "/api", "api"},
		{"GET", "/api/", "api"},
		{"GET", "/api/users", "api"},
		{"DELETE", "/api/users/7", "api"},
		{"GET", "/apix", ""},
		{"GET", "/api-v2", ""},
		{"GET", "/ap", ""},
		{"GET", "/API", ""}, // paths are case-sensitive
		{"GET", "/api/public", "public"},
		{"HEAD", "/api/public/docs", "public"},
		{"GET", "/api/public/", "public"},
		{"POST", "/api/public", "api"},      // method not allowed by the public rule: the next rule covers it
		{"get", "/api/public", "api"},       // methods are case-sensitive (RFC 9110 §9.1)
		{"GET", "/api/publicity", "api"},    // not the public segment
		{"GET", "/api/public.json", "api"},  // not the public segment
		{"GET", "/static/app.js", "static"}, // a prefix ending in "/" is a plain prefix
		{"GET", "/static/", "static"},
		{"GET", "/static", ""},
		{"GET", "/staticx/a", ""},
		{"POST", "/orders", "writes"},
		{"POST", "/orders/1", "writes"},
		{"GET", "/orders", ""}, // no other rule covers it
		{"GET", "/", ""},
		{"GET", "", ""},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r, ok := table.Match(tc.method, tc.path)
			got := ""
			if ok {
				got = r.Name
			}
			if got != tc.rule || ok != (tc.rule != "") {
				t.Fatalf("Match(%q, %q) = %q, %v; want %q", tc.method, tc.path, got, ok, tc.rule)
			}
		})
	}
}

func TestMatchFirstRuleWins(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rules []route.Rule
		path  string
		want  string
	}{
		{"broad rule first shadows a specific one", []route.Rule{{Name: "api", Prefix: "/api"}, {Name: "public", Prefix: "/api/public", Public: true}}, "/api/public/x", "api"},
		{"specific rule first", []route.Rule{{Name: "public", Prefix: "/api/public", Public: true}, {Name: "api", Prefix: "/api"}}, "/api/public/x", "public"},
		{"same prefix twice", []route.Rule{{Name: "one", Prefix: "/a"}, {Name: "two", Prefix: "/a"}}, "/a", "one"},
		{"catch-all last", []route.Rule{{Name: "a", Prefix: "/a"}, {Name: "all", Prefix: "/"}}, "/b/c", "all"},
		{"catch-all first", []route.Rule{{Name: "all", Prefix: "/"}, {Name: "a", Prefix: "/a"}}, "/a", "all"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := route.NewTable(tc.rules).Match("GET", tc.path)
			if !ok || r.Name != tc.want {
				t.Fatalf("Match(GET, %q) = %+v, %v; want rule %q", tc.path, r, ok, tc.want)
			}
		})
	}
}

func TestMatchEmptyTable(t *testing.T) {
	if r, ok := (route.Table{}).Match("GET", "/"); ok || r != nil {
		t.Fatalf("empty table matched %+v", r)
	}
}

func TestMatchReturnsTheRuleItself(t *testing.T) {
	table := route.NewTable([]route.Rule{{Name: "a", Prefix: "/a", Methods: []string{"GET"}}})
	r1, _ := table.Match("GET", "/a")
	r2, _ := table.Match("GET", "/a/b")
	if r1 != r2 {
		t.Fatalf("Match returned different pointers for one rule; callers may key state on it")
	}
}

func TestSplitPath(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		path string
		ok   bool
	}{
		{"/", "/", true},
		{"/api/users", "/api/users", true},
		{"/api/users/", "/api/users/", true},
		{"/api/users?id=7", "/api/users", true},
		{"/api/users?next=/../admin", "/api/users", true}, // the query is not the path
		{"/api/users#frag", "/api/users", true},
		{"/api/users?a=1#frag", "/api/users", true},
		{"/api/users#frag?a=1", "/api/users", true},
		{"/a//b", "/a//b", true},
		{"/.well-known/jwks.json", "/.well-known/jwks.json", true},
		{"/a/..b/c", "/a/..b/c", true},
		{"/a/b../c", "/a/b../c", true},
		{"/a/.../c", "/a/.../c", true},
		{"/a%20b", "/a%20b", true},
		{"/%41pi", "/%41pi", true},
		{"/a%252e%252e/b", "/a%252e%252e/b", true}, // double-encoded: one decoding yields %2e, not a dot
		{"/a/../b", "/a/../b", false},
		{"/..", "/..", false},
		{"/../", "/../", false},
		{"/a/..", "/a/..", false},
		{"/a/.", "/a/.", false},
		{"/./a", "/./a", false},
		{"/a/./b", "/a/./b", false},
		{"/a/..?x=1", "/a/..", false},
		{"/a/%2e%2e/b", "/a/%2e%2e/b", false},
		{"/a/%2E%2E/b", "/a/%2E%2E/b", false},
		{"/a/.%2e/b", "/a/.%2e/b", false},
		{"/a/%2e/b", "/a/%2e/b", false},
		{"/a%2Fb", "/a%2Fb", false},
		{"/a%2fb", "/a%2fb", false},
		{"/public%2f..%2fadmin", "/public%2f..%2fadmin", false},
		{"/a%5cb", "/a%5cb", false},
		{"/a%5Cb", "/a%5Cb", false},
		{`/a\b`, `/a\b`, false},
		{`/a\..\b`, `/a\..\b`, false},
		{"", "", false},
		{"?x=1", "", false},
		{"#x", "", false},
		{"a/b", "a/b", false},
		{"*", "*", false},
		{"http://host/a", "http://host/a", false},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			path, ok := route.SplitPath(tc.raw)
			if ok != tc.ok || (ok && path != tc.path) {
				t.Fatalf("SplitPath(%q) = %q, %v; want %q, %v", tc.raw, path, ok, tc.path, tc.ok)
			}
		})
	}
}

// FuzzSplitPath checks that whatever SplitPath accepts is a plain absolute
// path: no query, no fragment, no dot segment, no backslash, no encoded dot,
// slash or backslash.
func FuzzSplitPath(f *testing.F) {
	for _, s := range []string{"/", "/api/x?y=1", "/a/../b", "/a%2fb", `/a\b`, "/a/%2E/b", "/a#b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		path, ok := route.SplitPath(raw)
		if !ok {
			return
		}
		if !strings.HasPrefix(raw, path) || path == "" || path[0] != '/' || strings.ContainsAny(path, "?#\\") {
			t.Fatalf("SplitPath(%q) accepted %q", raw, path)
		}
		lower := strings.ToLower(path)
		for _, enc := range []string{"%2e", "%2f", "%5c"} {
			if strings.Contains(lower, enc) {
				t.Fatalf("SplitPath(%q) accepted %q holding %s", raw, path, enc)
			}
		}
		for _, seg := range strings.Split(path, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("SplitPath(%q) accepted dot segment in %q", raw, path)
			}
		}
	})
}
