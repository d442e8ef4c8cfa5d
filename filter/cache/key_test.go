package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

// The canonical strings of the package documentation, byte for byte.
const (
	docIndexString = "portcullis-cache/1 index\n" +
		"host 15:api.example.com\n" +
		"path 11:/api/orders\n" +
		"tenant 5:alice\n"
	docEntryString = "portcullis-cache/1 entry\n" +
		"index 62dfcfbb816a69e0348cf2e7088d5de9a1af6e82deb1374be3ed8a91a2e9080c\n" +
		"epoch 1c0ffee5badc0de5\n" +
		"method GET\n" +
		"query 18:lang=en&page=2&q=x\n" +
		"vary 15:accept-encoding 4:gzip\n" +
		"vary 15:accept-language -\n"
)

func TestKeyFormat(t *testing.T) {
	cfg := &Config{}
	req := &Request{
		Method: "GET", Scheme: "https", Authority: "API.example.com:443", Path: "/api/orders?q=x&page=2&lang=en",
		Tenant: "alice", Headers: [][2]string{{"accept-encoding", "gzip"}},
	}
	l := cfg.Classify(&RoutePolicy{}, req).Lookup
	k0 := sha256.Sum256([]byte(docIndexString))
	if l.IndexKey != hex.EncodeToString(k0[:]) {
		t.Fatalf("IndexKey %s is not the SHA-256 of\n%s", l.IndexKey, docIndexString)
	}
	x := Index{Key: k0, Epoch: 0x1c0ffee5badc0de5, Vary: []string{"accept-encoding", "accept-language"}}
	value, err := x.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	entryKey, ok := l.UseIndex(value, true)
	k1 := sha256.Sum256([]byte(docEntryString))
	if !ok || entryKey != hex.EncodeToString(k1[:]) {
		t.Fatalf("entry key %s, %v is not the SHA-256 of\n%s", entryKey, ok, docEntryString)
	}
	if len(entryKey) != 64 || strings.ToLower(entryKey) != entryKey {
		t.Fatalf("entry key %q is not 64 lower-case hex digits", entryKey)
	}
}

func TestCanonicalHost(t *testing.T) {
	for _, tc := range []struct{ scheme, authority, want string }{
		{"https", "API.Example.COM", "api.example.com"},
		{"https", "api.example.com:443", "api.example.com"},
		{"http", "api.example.com:80", "api.example.com"},
		{"http", "api.example.com:443", "api.example.com:443"},
		{"https", "api.example.com:80", "api.example.com:80"},
		{"", "api.example.com:80", "api.example.com"},
		{"", "api.example.com:443", "api.example.com"},
		{"https", "api.example.com:", "api.example.com"},
		{"https", "api.example.com:8443", "api.example.com:8443"},
		{"https", "[2001:DB8::1]:443", "[2001:db8::1]"},
		{"https", "[2001:db8::443]", "[2001:db8::443]"},
		{"http", "10.0.0.1:80", "10.0.0.1"},
		{"http", "", ""},
	} {
		if got := canonicalHost(tc.scheme, tc.authority); got != tc.want {
			t.Errorf("canonicalHost(%q, %q) = %q, want %q", tc.scheme, tc.authority, got, tc.want)
		}
	}
}

// Length prefixes keep fields apart: no choice of host, path, tenant or
// header value makes two different requests share a key.
func TestKeysDoNotCollide(t *testing.T) {
	index := map[digest]string{}
	for _, tc := range []struct{ host, path, tenant string }{
		{"a", "/b", "c"}, {"a/b", "", "c"}, {"a", "/b\ntenant 1:c", ""}, {"a", "/bc", ""},
		{"a", "/b", ""}, {"a", "/b", "shared"},
	} {
		for _, shared := range []bool{false, true} {
			if shared && tc.tenant != "" {
				continue
			}
			d := indexDigest(tc.host, tc.path, tc.tenant, shared)
			name := tc.host + "|" + tc.path + "|" + tc.tenant
			if other, dup := index[d]; dup {
				t.Fatalf("%q and %q share an index key", name, other)
			}
			index[d] = name
		}
	}
	var k0 digest
	epoch := uint64(1)
	variant := func(query string, headers ...[2]string) digest {
		return variantDigest("entry", k0, &epoch, query, []string{"accept"}, headers)
	}
	seen := map[digest]int{}
	for i, d := range []digest{
		variant(""),
		variant("", [2]string{"accept", ""}),
		variant("", [2]string{"accept", "-"}),
		variant("", [2]string{"accept", "a 1:b"}),
		variant("", [2]string{"accept", "a"}),
		variant("a"),
		variantDigest("fill", k0, nil, "", []string{"accept"}, nil),
		variantDigest("entry", k0, nil, "", []string{"accept"}, nil),
	} {
		if j, dup := seen[d]; dup {
			t.Fatalf("variants %d and %d share a key", j, i)
		}
		seen[d] = i
	}
	// What RFC 9110 §5.3 says is one value is one key: several lines are
	// their comma-joined list, and surrounding whitespace is not part of it.
	if variant("", [2]string{"accept", "a"}, [2]string{"Accept", " b "}) != variant("", [2]string{"accept", "a, b"}) {
		t.Fatal("two field lines and their joined value differ")
	}
	if variant("", [2]string{"accept-language", "a"}) != variant("") {
		t.Fatal("a field the path does not vary on changes the key")
	}
}

func FuzzParseHexKey(f *testing.F) {
	f.Add(hexKey(digest{1, 2, 0xab}))
	f.Add(strings.ToUpper(hexKey(digest{0xff})))
	f.Add("zz")
	f.Fuzz(func(t *testing.T, key string) {
		got, ok := parseHexKey(key)
		var want digest
		wantOK := false
		if len(key) == 2*len(want) {
			n, err := hex.Decode(want[:], []byte(key))
			wantOK = err == nil && n == len(want)
		}
		if ok != wantOK || ok && got != want {
			t.Fatalf("parseHexKey(%q) = %x, %v; encoding/hex says %x, %v", key, got, ok, want, wantOK)
		}
		if ok && strings.ToLower(key) == key && hexKey(got) != key {
			t.Fatalf("hexKey(parseHexKey(%q)) = %q", key, hexKey(got))
		}
	})
}
