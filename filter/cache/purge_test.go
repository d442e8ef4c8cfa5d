package cache_test

import (
	"errors"
	"maps"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/filter/cache"
)

const purgeSecret = "the-admin-secret-of-at-least-32-bytes!"

func purgeConfig() *cache.Config {
	c := testConfig()
	c.Purge = cache.NewPurgeConfig("/_purge", "Surrogate-Key", []byte(purgeSecret))
	return c
}

func TestPurgeAuthorize(t *testing.T) {
	p := purgeConfig().Purge
	for _, tc := range []struct {
		authorization string
		want          cache.PurgeAuth
	}{
		{"Bearer " + purgeSecret, cache.PurgeAllowed},
		{"bearer " + purgeSecret, cache.PurgeAllowed},
		{"  Bearer   " + purgeSecret + " ", cache.PurgeAllowed},
		{"", cache.PurgeNoCredential},
		{"Bearer", cache.PurgeNoCredential},
		{"Bearer ", cache.PurgeNoCredential},
		{"Basic " + purgeSecret, cache.PurgeNoCredential},
		{purgeSecret, cache.PurgeNoCredential},
		{"Bearer " + purgeSecret[:len(purgeSecret)-1], cache.PurgeWrongSecret},
		{"Bearer " + purgeSecret + "x", cache.PurgeWrongSecret},
		{"Bearer " + strings.ToUpper(purgeSecret), cache.PurgeWrongSecret},
		{"Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln", cache.PurgeWrongSecret}, // a tenant's JWT
	} {
		if got := p.Authorize(tc.authorization); got != tc.want {
			t.Errorf("Authorize(%q) = %d, want %d", tc.authorization, got, tc.want)
		}
	}
}

func TestParsePurge(t *testing.T) {
	p := purgeConfig().Purge
	for _, bad := range []string{
		"/_purge",
		"/_purge?path=/a",
		"/_purge?tenant=alice",
		"/_purge?path=/a&tag=x&all=true",
		"/_purge?path=/a&tenant=alice&all=true",
		"/_purge?path=/a&all=yes",
		"/_purge?path=/a&all=true&all=true",
		"/_purge?path=a&all=true",
		"/_purge?path=/a%3Fq&all=true",
		"/_purge?path=/a%20b&all=true",
		"/_purge?tag=a,b&all=true",
		"/_purge?tag=a%20b&all=true",
		"/_purge?tag=&all=true",
		"/_purge?tag=" + strings.Repeat("x", cache.MaxSurrogateKeyBytes+1) + "&all=true",
		"/_purge?path=/a&tenant=",
		"/_purge?path=/a&tenant=al%0aice",
		"/_purge?path=/a&all=true&host=evil.com/x",
		"/_purge?path=/a&all=true&nonsense=1",
		"/_purge?path=/a&all=true&%zz",
	} {
		if r, err := p.ParsePurge("https", "api.example.com", bad); !errors.Is(err, cache.ErrBadPurge) {
			t.Errorf("ParsePurge(%q) = %+v, %v; want ErrBadPurge", bad, r, err)
		}
	}
	r, err := p.ParsePurge("https", "API.example.com:443", "/_purge?path=/api/orders&tenant=alice")
	if err != nil {
		t.Fatal(err)
	}
	if r.By != "path" || r.Host != "api.example.com" || r.Path != "/api/orders" || r.AllTenants || r.Scope == "" || len(r.Direct) != 1 {
		t.Errorf("tenant path purge: %+v", r)
	}
	other, _ := p.ParsePurge("https", "api.example.com", "/_purge?path=/api/orders&tenant=bob")
	all, _ := p.ParsePurge("https", "gw.internal", "/_purge?path=/api/orders&all=true&host=api.example.com")
	if other.Scope == r.Scope || other.Direct[0] == r.Direct[0] || all.Scope != "" || all.Direct != nil || !all.AllTenants {
		t.Errorf("scopes: alice %+v, bob %+v, all %+v", r, other, all)
	}
	if all.TagKey != r.TagKey || all.TagKey != other.TagKey {
		t.Errorf("one path, one tag set: %s %s %s", r.TagKey, other.TagKey, all.TagKey)
	}
	tag, _ := p.ParsePurge("https", "api.example.com", "/_purge?tag=product-42&all=true")
	if tag.By != "tag" || tag.Tag != "product-42" || tag.TagKey == all.TagKey || tag.Direct != nil {
		t.Errorf("tag purge: %+v", tag)
	}
}

func TestSurrogateKeys(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  []string
		ok    bool
	}{
		{"", nil, true},
		{"a b  c", []string{"a", "b", "c"}, true},   // Fastly: spaces
		{"a,b, c,,", []string{"a", "b", "c"}, true}, // Cloudflare: commas
		{"a a, a", []string{"a"}, true},             // duplicates once
		{"product-42 user:7", []string{"product-42", "user:7"}, true},
		{"caf\u00e9", nil, false},
		{strings.Repeat("x", cache.MaxSurrogateKeyBytes+1), nil, false},
		{strings.Repeat("k ", cache.MaxSurrogateKeys), []string{"k"}, true},
	} {
		got, ok := cache.SurrogateKeys(tc.value)
		if ok != tc.ok || !slices.Equal(got, tc.want) {
			t.Errorf("SurrogateKeys(%q) = %q, %v; want %q, %v", tc.value, got, ok, tc.want, tc.ok)
		}
	}
	many := make([]string, cache.MaxSurrogateKeys+1)
	for i := range many {
		many[i] = "k" + strings.Repeat("x", i)
	}
	if _, ok := cache.SurrogateKeys(strings.Join(many, " ")); ok {
		t.Error("more than MaxSurrogateKeys accepted")
	}
}

// TestFillTagsMatchPurges: the tag sets a fill files its index key under
// are the ones the purges of its path and its surrogate keys name, with its
// tenant's scope; the surrogate keys field is not stored.
func TestFillTagsMatchPurges(t *testing.T) {
	cfg := purgeConfig()
	now := time.Unix(1_700_000_000, 0)
	req := get("/api/orders?page=2")
	l := lookedUp(cfg, private, req)
	f, reason := l.Fill(&cache.Response{Status: 200, Headers: [][2]string{
		h("content-type", "application/json"), h("Surrogate-Key", "orders product-42"),
	}}, now, 7)
	if reason != "" {
		t.Fatalf("not stored: %s", reason)
	}
	purge := func(q string) *cache.PurgeRequest {
		r, err := cfg.Purge.ParsePurge("https", "api.example.com", "/_purge?"+q)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	key, scope, ok := strings.Cut(f.TagMember, cache.TagMemberSeparator)
	alice := purge("path=/api/orders&tenant=alice")
	if !ok || key != l.IndexKey || key != alice.Direct[0] || scope != alice.Scope {
		t.Fatalf("member %q; index key %s, alice's purge %+v", f.TagMember, l.IndexKey, alice)
	}
	if bob := purge("path=/api/orders&tenant=bob"); bob.Scope == scope {
		t.Fatal("bob's purge takes alice's members")
	}
	tags := f.Tags
	for _, q := range []string{"path=/api/orders&all=true", "tag=orders&all=true", "tag=product-42&tenant=alice"} {
		if !slices.Contains(tags, purge(q).TagKey) {
			t.Errorf("%s: its tag set %s is not among the fill's %q", q, purge(q).TagKey, tags)
		}
	}
	if len(tags) != 3 || slices.Contains(tags, purge("tag=other&all=true").TagKey) {
		t.Errorf("tags %q", tags)
	}
	f.Append([]byte("{}"))
	e, err := cache.DecodeEntry(f.Envelope())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range e.Headers {
		if kv[0] == "surrogate-key" {
			t.Fatalf("the surrogate keys field is stored: %q", e.Headers)
		}
	}

	shared := lookedUp(cfg, public, with(req, func(r *cache.Request) { r.Tenant = "" }))
	sf, _ := shared.Fill(&cache.Response{Status: 200, Headers: [][2]string{h("cache-control", "public")}}, now, 7)
	if _, s, _ := strings.Cut(sf.TagMember, cache.TagMemberSeparator); s == scope {
		t.Error("the shared scope is alice's")
	}
	if tags := sf.Tags; len(tags) != 1 || tags[0] != purge("path=/api/orders&all=true").TagKey {
		t.Errorf("a fill without surrogate keys files only its path: %q", tags)
	}

	tooMany := ""
	for i := range cache.MaxSurrogateKeys + 1 {
		tooMany += " k" + strings.Repeat("x", i)
	}
	if _, reason := lookedUp(cfg, private, req).Fill(&cache.Response{Status: 200, Headers: [][2]string{h("surrogate-key", tooMany)}}, now, 7); reason != cache.ReasonSurrogateKeys {
		t.Errorf("%d surrogate keys: reason %q", cache.MaxSurrogateKeys+1, reason)
	}
	if f, _ := lookedUp(testConfig(), private, req).Fill(&cache.Response{Status: 200, Headers: [][2]string{h("surrogate-key", "a")}}, now, 7); f.TagMember != "" || f.Tags != nil {
		t.Error("without cache.purge a fill files tags")
	}
}

func TestParsePurgedKeys(t *testing.T) {
	k1, k2 := strings.Repeat("a", 64), strings.Repeat("0", 64)
	got, err := cache.ParsePurgedKeys([]byte(k1 + "\n" + k2 + "\n"))
	if err != nil || !slices.Equal(got, []string{k1, k2}) {
		t.Fatalf("%q, %v", got, err)
	}
	if got, err := cache.ParsePurgedKeys(nil); err != nil || got != nil {
		t.Fatalf("empty: %q, %v", got, err)
	}
	for _, bad := range []string{"x\n", k1 + "0\n", strings.ToUpper(k1), `{"keys":[]}`} {
		if _, err := cache.ParsePurgedKeys([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// FuzzParseQuery: the purge endpoint's query reader accepts what
// url.ParseQuery accepts, with the same values, and refuses what it refuses.
func FuzzParseQuery(f *testing.F) {
	for _, seed := range []string{"", "path=/a&tenant=alice", "tag=p-1&all=true&host=x:8", "a=%41%2b+b", "a=%4", "a=%zz", "a;b=c", "&&a=&=b", "a=1&a=2"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, ok := cache.ParseQuery(raw)
		want, err := url.ParseQuery(raw)
		if ok != (err == nil) {
			t.Fatalf("%q: ok %v, url.ParseQuery error %v", raw, ok, err)
		}
		if ok && !maps.EqualFunc(got, map[string][]string(want), slices.Equal[[]string]) {
			t.Fatalf("%q: %q, url.ParseQuery %q", raw, got, want)
		}
	})
}
