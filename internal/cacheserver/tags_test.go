package cacheserver

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func member(n int, scope string) string { return key(n) + "-" + scope }

const (
	scopeA = "aaaaaaaaaaaaaaaa"
	scopeB = "bbbbbbbbbbbbbbbb"
)

func tagPath(n int) string { return "/v1/tags/" + key(n) }

// purged DELETEs tag n (scope "" for all) and returns the keys answered, sorted.
func purged(t *testing.T, h *Handler, n int, scope string) []string {
	t.Helper()
	path := tagPath(n)
	if scope != "" {
		path += "?scope=" + scope
	}
	w := do(t, h, "DELETE", path, nil)
	if w.Code != 200 || w.Header().Get("Content-Type") != "text/plain" {
		t.Fatalf("DELETE %s: %d %q", path, w.Code, w.Body)
	}
	keys := strings.Fields(w.Body.String())
	slices.Sort(keys)
	return keys
}

// TestTags: members filed under tags are purged by scope or all at once,
// and the keys they name are deleted with them.
func TestTags(t *testing.T) {
	backends(t, func(t *testing.T, store Store) {
		h := NewHandler(store, Options{})
		for _, n := range []int{1, 2, 3} {
			mustDo(t, h, "PUT", entry(n), "index", 204)
		}
		tags := key(100) + "\n" + key(101) + "\n"
		mustDo(t, h, "PUT", "/v1/tags/"+member(1, scopeA), tags, 204, TTLHeader, "60")
		mustDo(t, h, "PUT", "/v1/tags/"+member(2, scopeB), tags, 204, TTLHeader, "60")
		mustDo(t, h, "PUT", "/v1/tags/"+member(3, scopeB), key(100), 204) // no final newline, default TTL
		mustDo(t, h, "PUT", "/v1/tags/"+member(3, scopeB), key(100), 204) // twice is once

		if got := purged(t, h, 100, scopeA); !slices.Equal(got, []string{key(1)}) {
			t.Fatalf("purge of tag 100, scope A: %q", got)
		}
		mustDo(t, h, "GET", entry(1), "", 404) // the member's key is gone
		mustDo(t, h, "GET", entry(2), "", 200) // the other scope's stays
		if got := purged(t, h, 100, scopeA); len(got) != 0 {
			t.Fatalf("second purge of tag 100, scope A: %q", got)
		}
		if got := purged(t, h, 100, ""); !slices.Equal(got, []string{key(2), key(3)}) {
			t.Fatalf("purge of tag 100, all scopes: %q", got)
		}
		mustDo(t, h, "GET", entry(2), "", 404)
		mustDo(t, h, "GET", entry(3), "", 404)
		// Tag 101 still lists members 1 and 2 (their keys already gone): a
		// purge answers them again, which costs a tombstone, nothing more.
		if got := purged(t, h, 101, ""); !slices.Equal(got, []string{key(1), key(2)}) {
			t.Fatalf("purge of tag 101: %q", got)
		}
		if got := purged(t, h, 999, ""); len(got) != 0 {
			t.Fatalf("purge of an unknown tag: %q", got)
		}
		s := stats(t, h)
		if s["tagged"] != 4 || s["purges"] != 5 {
			t.Errorf("stats %v", s)
		}

		for _, bad := range []struct{ name, method, path, body string }{
			{"member without a scope", "PUT", "/v1/tags/" + key(1), key(100)},
			{"member with a short scope", "PUT", "/v1/tags/" + key(1) + "-abc", key(100)},
			{"member with upper case", "PUT", "/v1/tags/" + strings.ToUpper(member(1, scopeA)), key(100)},
			{"no tags", "PUT", "/v1/tags/" + member(1, scopeA), ""},
			{"a tag that is not a key", "PUT", "/v1/tags/" + member(1, scopeA), "product-42"},
			{"an empty line", "PUT", "/v1/tags/" + member(1, scopeA), key(100) + "\n\n" + key(101)},
			{"too many tags", "PUT", "/v1/tags/" + member(1, scopeA), strings.Repeat(key(100)+"\n", MaxTagsPerPut) + key(101)},
			{"purge of a member", "DELETE", "/v1/tags/" + member(1, scopeA), ""},
			{"short scope", "DELETE", tagPath(100) + "?scope=abc", ""},
			{"two scopes", "DELETE", tagPath(100) + "?scope=" + scopeA + "&scope=" + scopeB, ""},
			{"another parameter", "DELETE", tagPath(100) + "?scope=" + scopeA + "&x=1", ""},
		} {
			if w := do(t, h, bad.method, bad.path, []byte(bad.body)); w.Code != 400 || !strings.Contains(w.Body.String(), `"error":"bad_`) {
				t.Errorf("%s: %d %q", bad.name, w.Code, w.Body)
			}
		}
		if w := do(t, h, "PUT", "/v1/tags/"+member(1, scopeA), []byte(strings.Repeat(key(100)+"\n", 2*MaxTagsPerPut))); w.Code != 413 {
			t.Errorf("a body past the limit: %d", w.Code)
		}
		if w := do(t, h, "PUT", "/v1/tags/"+member(1, scopeA), []byte(key(100)), TTLHeader, "0"); w.Code != 400 {
			t.Errorf("TTL 0: %d", w.Code)
		}
		if w := do(t, h, "GET", tagPath(100), nil); w.Code != 405 || w.Header().Get("Allow") != "PUT, DELETE" {
			t.Errorf("GET a tag: %d %q", w.Code, w.Header())
		}
	})
}

// TestMemoryTagBounds: a memory store refuses tags past its members'
// budget, and expired sets free theirs.
func TestMemoryTagBounds(t *testing.T) {
	m, err := NewMemory(4 * 1024 * TagMemberWeight) // room for 1024 members
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for i := range 1024 {
		if err := m.AddToTags(ctx, member(i, scopeA), []string{key(1)}, 50*time.Millisecond); err != nil {
			t.Fatalf("member %d: %v", i, err)
		}
	}
	if err := m.AddToTags(ctx, member(5000, scopeA), []string{key(2)}, time.Minute); err != ErrTooLarge {
		t.Fatalf("past the budget: %v, want ErrTooLarge", err)
	}
	time.Sleep(60 * time.Millisecond)
	if err := m.AddToTags(ctx, member(5000, scopeA), []string{key(2)}, time.Minute); err != nil {
		t.Fatalf("after the full set expired: %v", err)
	}
	if keys, _ := m.PurgeTag(ctx, key(1), ""); len(keys) != 0 {
		t.Fatalf("an expired set answered %d keys", len(keys))
	}
}

func mustDo(t *testing.T, h *Handler, method, path, body string, status int, header ...string) {
	t.Helper()
	if w := do(t, h, method, path, []byte(body), header...); w.Code != status {
		t.Fatalf("%s %s: %d %q, want %d", method, path, w.Code, w.Body, status)
	}
}
