package cache

import (
	"slices"
	"testing"
)

func TestReplayHeaders(t *testing.T) {
	in := [][2]string{
		{":status", "200"},
		{"Content-Type", "application/json"},
		{"cache-control", "max-age=60"},
		{"etag", `"v1"`},
		{"connection", "keep-alive, X-Hop"},
		{"x-hop", "1"},
		{"keep-alive", "timeout=5"}, {"proxy-connection", "x"}, {"proxy-authenticate", "x"},
		{"proxy-authorization", "x"}, {"proxy-authentication-info", "x"}, {"te", "x"}, {"trailer", "x"}, {"transfer-encoding", "chunked"},
		{"upgrade", "x"}, {"set-cookie", "a=b"}, {"age", "3"}, {"x-cache", "HIT"},
		{"x-ratelimit-limit", "10"}, {"X-RateLimit-Remaining", "9"}, {"ratelimit", "x"}, {"ratelimit-policy", "x"},
		{"retry-after", "1"}, {"x-request-id", "r"}, {"content-length", "12"},
		{"x-envoy-upstream-service-time", "3"},
		{"vary", "accept"},
		{"x-ratelimited-by-upstream", "kept: not one of ours"},
		{"set-cookie2", "obsolete, not a cookie anyone sets"},
		{"x-user", "named by no-cache or private"},
	}
	want := [][2]string{
		{"content-type", "application/json"},
		{"cache-control", "max-age=60"},
		{"etag", `"v1"`},
		{"vary", "accept"},
		{"x-ratelimited-by-upstream", "kept: not one of ours"},
		{"set-cookie2", "obsolete, not a cookie anyone sets"},
	}
	got := (&Config{}).replayHeaders(in, "X-User, x-other")
	if !slices.Equal(got, want) {
		t.Fatalf("replayHeaders = %q,\nwant %q", got, want)
	}
	if cap(got)-len(got) < hitHeaderCount {
		t.Fatalf("no room for the hit's headers (cap %d, len %d)", cap(got), len(got))
	}
}

func TestFieldValue(t *testing.T) {
	headers := [][2]string{{"accept", " a "}, {"x", "1"}, {"Accept", "b"}, {"accept", ""}}
	for _, tc := range []struct {
		name, want string
		present    bool
	}{
		{"accept", "a, b, ", true},
		{"x", "1", true},
		{"X", "1", true},
		{"y", "", false},
	} {
		if got, present := fieldValue(headers, tc.name); got != tc.want || present != tc.present {
			t.Errorf("fieldValue(%q) = %q, %v; want %q, %v", tc.name, got, present, tc.want, tc.present)
		}
	}
}

func TestVaryNames(t *testing.T) {
	for _, tc := range []struct {
		vary   string
		want   []string
		reason string
	}{
		{"", nil, ""},
		{" , ", nil, ""},
		{"Accept-Encoding", []string{"accept-encoding"}, ""},
		{"accept, Accept-Language,ACCEPT", []string{"accept", "accept-language"}, ""},
		{"*", nil, ReasonVaryStar},
		{"accept, *", nil, ReasonVaryStar},
		{"accept encoding", nil, ReasonVaryInvalid},
		{`"accept"`, nil, ReasonVaryInvalid},
		{"a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p", []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p"}, ""},
		{"a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q", nil, ReasonVaryTooMany},
	} {
		got, reason := varyNames(tc.vary)
		if !slices.Equal(got, tc.want) || reason != tc.reason {
			t.Errorf("varyNames(%q) = %q, %q; want %q, %q", tc.vary, got, reason, tc.want, tc.reason)
		}
	}
	if got := unionNames([]string{"a", "c"}, []string{"b", "c", "d"}); !slices.Equal(got, []string{"a", "b", "c", "d"}) {
		t.Errorf("unionNames = %q", got)
	}
}
