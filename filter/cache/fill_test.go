package cache_test

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/filter/cache"
)

// lookedUp is a GET lookup of path that found no index.
func lookedUp(cfg *cache.Config, p *cache.RoutePolicy, req *cache.Request) *cache.Lookup {
	l := cfg.Classify(p, req).Lookup
	l.UseIndex(nil, false)
	return l
}

func httpDate(t time.Time) string { return t.UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT") }

func TestFillDecision(t *testing.T) {
	cfg := testConfig()
	many := make([][2]string, cache.MaxHeaders+1)
	for i := range many {
		many[i] = h("x-h"+strconv.Itoa(i), "v")
	}
	for _, tc := range []struct {
		name    string
		policy  *cache.RoutePolicy
		status  int
		headers [][2]string
		ttl     time.Duration // when stored
		reason  string
	}{
		// Statuses and their TTLs.
		{"200: the configured TTL", private, 200, nil, time.Minute, ""},
		{"200 on a rule with its own TTL", shortTTL, 200, nil, 5 * time.Second, ""},
		{"404: its own TTL", private, 404, nil, 10 * time.Second, ""},
		{"404 on a rule with its own TTL: the status's", shortTTL, 404, nil, 10 * time.Second, ""},
		{"301", private, 301, nil, time.Hour, ""},
		{"203 not listed", private, 203, nil, 0, cache.ReasonStatus},
		{"500", private, 500, nil, 0, cache.ReasonStatus},
		{"304", private, 304, nil, 0, cache.ReasonStatus},

		// Set-Cookie and Cache-Control.
		{"Set-Cookie", private, 200, [][2]string{h("Set-Cookie", "a=b")}, 0, cache.ReasonSetCookie},
		{"no-store", private, 200, [][2]string{h("cache-control", "max-age=60, NO-STORE")}, 0, cache.ReasonResponseNoStore},
		{"no-store on a second line", private, 200, [][2]string{h("cache-control", "max-age=60"), h("cache-control", "no-store")}, 0, cache.ReasonResponseNoStore},
		{"private", private, 200, [][2]string{h("cache-control", "private")}, 0, cache.ReasonResponsePrivate},
		{"qualified private: stored without the field", private, 200, [][2]string{h("cache-control", `private="x-user", max-age=60`)}, time.Minute, ""},
		{"no-cache without a validator", private, 200, [][2]string{h("cache-control", "no-cache")}, 0, cache.ReasonResponseNoCache},
		{"no-cache with a validator: stored stale, to revalidate", private, 200, [][2]string{h("cache-control", "no-cache, max-age=60"), h("etag", `"a"`)}, 0, ""},
		{"qualified no-cache: stored without the field", private, 200, [][2]string{h("cache-control", `no-cache="x-user"`)}, time.Minute, ""},
		{"must-understand with an understood status ignores no-store", private, 200, [][2]string{h("cache-control", "max-age=60, must-understand, no-store")}, time.Minute, ""},
		{"a quoted comma is not a separator", private, 200, [][2]string{h("cache-control", `x="a, no-store", max-age=9`)}, 9 * time.Second, ""},

		// Explicit freshness (RFC 9111 §4.2.1).
		{"max-age longer", private, 200, [][2]string{h("cache-control", "max-age=120")}, 2 * time.Minute, ""},
		{"max-age shorter", private, 200, [][2]string{h("cache-control", "max-age=7")}, 7 * time.Second, ""},
		{"max-age quoted", private, 200, [][2]string{h("cache-control", `max-age="90"`)}, 90 * time.Second, ""},
		{"max-age=0", private, 200, [][2]string{h("cache-control", "max-age=0")}, 0, cache.ReasonStale},
		{"max-age invalid", private, 200, [][2]string{h("cache-control", "max-age=1h")}, 0, cache.ReasonStale},
		{"max-age twice, differently", private, 200, [][2]string{h("cache-control", "max-age=60, max-age=120")}, 0, cache.ReasonStale},
		{"max-age twice, the same", private, 200, [][2]string{h("cache-control", "max-age=60"), h("cache-control", "max-age=60")}, time.Minute, ""},
		{"max-age huge", private, 200, [][2]string{h("cache-control", "max-age=99999999999999999999")}, time.Duration(cache.MaxDelta) * time.Second, ""},
		{"max-age=0 with an ETag: stored stale, to revalidate", private, 200, [][2]string{h("cache-control", "max-age=0"), h("etag", `"a"`)}, 0, ""},
		{"s-maxage wins over max-age", private, 200, [][2]string{h("cache-control", "max-age=120, s-maxage=30")}, 30 * time.Second, ""},
		{"s-maxage longer than max-age", private, 200, [][2]string{h("cache-control", "s-maxage=300, max-age=5")}, 5 * time.Minute, ""},
		{"s-maxage=0", private, 200, [][2]string{h("cache-control", "s-maxage=0, max-age=60")}, 0, cache.ReasonStale},
		{"Expires − Date, less the apparent age", private, 200, [][2]string{h("date", httpDate(t0.Add(-10*time.Second))), h("expires", httpDate(t0.Add(80*time.Second)))}, 80 * time.Second, ""},
		{"Expires − Date, Date an hour old", private, 200, [][2]string{h("date", httpDate(t0.Add(-time.Hour))), h("expires", httpDate(t0.Add(-time.Hour+90*time.Second)))}, 0, cache.ReasonStale},
		{"Expires without Date", private, 200, [][2]string{h("expires", httpDate(t0.Add(45*time.Second)))}, 45 * time.Second, ""},
		{"Expires with an invalid Date", private, 200, [][2]string{h("date", "yesterday"), h("expires", httpDate(t0.Add(45*time.Second)))}, 45 * time.Second, ""},
		{"Expires in RFC 850 form", private, 200, [][2]string{h("expires", t0.Add(45*time.Second).Format("Monday, 02-Jan-06 15:04:05 GMT"))}, 45 * time.Second, ""},
		{"Expires in asctime form", private, 200, [][2]string{h("expires", t0.Add(45*time.Second).Format("Mon Jan _2 15:04:05 2006"))}, 45 * time.Second, ""},
		{"Expires 0", private, 200, [][2]string{h("expires", "0")}, 0, cache.ReasonStale},
		{"Expires in the past", private, 200, [][2]string{h("expires", httpDate(t0.Add(-time.Second)))}, 0, cache.ReasonStale},
		{"Expires twice", private, 200, [][2]string{h("expires", httpDate(t0.Add(time.Hour))), h("expires", httpDate(t0.Add(time.Hour)))}, 0, cache.ReasonStale},
		{"max-age wins over Expires", private, 200, [][2]string{h("expires", "0"), h("cache-control", "max-age=20")}, 20 * time.Second, ""},

		// Age on arrival (RFC 9111 §4.2.3, §5.1).
		{"Age taken off max-age", private, 200, [][2]string{h("cache-control", "max-age=60"), h("age", "20")}, 40 * time.Second, ""},
		{"Age taken off the configured TTL", private, 200, [][2]string{h("age", "50")}, 10 * time.Second, ""},
		{"Age as old as max-age", private, 200, [][2]string{h("cache-control", "max-age=60"), h("age", "60")}, 0, cache.ReasonStale},
		{"Age invalid: stale", private, 200, [][2]string{h("age", "-5")}, 0, cache.ReasonStale},
		{"Age as a list: stale", private, 200, [][2]string{h("age", "10, 50")}, 0, cache.ReasonStale},
		{"Age on two lines: stale", private, 200, [][2]string{h("age", "0"), h("age", "0")}, 0, cache.ReasonStale},
		{"Age with a parameter: stale", private, 200, [][2]string{h("age", "10;a=b")}, 0, cache.ReasonStale},
		{"Age smaller than the apparent age", private, 200, [][2]string{h("cache-control", "max-age=60"), h("age", "5"), h("date", httpDate(t0.Add(-20*time.Second)))}, 40 * time.Second, ""},
		{"Age larger than the apparent age", private, 200, [][2]string{h("cache-control", "max-age=60"), h("age", "30"), h("date", httpDate(t0.Add(-20*time.Second)))}, 30 * time.Second, ""},
		{"a Date in the future: no apparent age", private, 200, [][2]string{h("cache-control", "max-age=60"), h("date", httpDate(t0.Add(time.Hour)))}, time.Minute, ""},

		// Heuristic freshness (RFC 9111 §4.2.2).
		{"Last-Modified: a tenth of its age", private, 200, [][2]string{h("date", httpDate(t0)), h("last-modified", httpDate(t0.Add(-100*time.Second)))}, 10 * time.Second, ""},
		{"Last-Modified long ago: the configured bound", private, 200, [][2]string{h("last-modified", httpDate(t0.Add(-240*time.Hour)))}, time.Minute, ""},
		{"Last-Modified after Date: the configured bound", private, 200, [][2]string{h("date", httpDate(t0)), h("last-modified", httpDate(t0.Add(time.Hour)))}, time.Minute, ""},

		// Targeted fields (RFC 9213): the most specific one present wins.
		{"CDN-Cache-Control over Cache-Control", private, 200, [][2]string{h("cache-control", "max-age=5"), h("cdn-cache-control", "max-age=30")}, 30 * time.Second, ""},
		{"CDN-Cache-Control no-store", private, 200, [][2]string{h("cache-control", "max-age=60"), h("cdn-cache-control", "no-store")}, 0, cache.ReasonResponseNoStore},
		{"CDN-Cache-Control lets Cache-Control's private go", private, 200, [][2]string{h("cache-control", "private"), h("cdn-cache-control", "max-age=30")}, 30 * time.Second, ""},
		{"Portcullis-Cache-Control over both", private, 200, [][2]string{h("cache-control", "max-age=5"), h("cdn-cache-control", "max-age=30"), h("portcullis-cache-control", "max-age=90")}, 90 * time.Second, ""},

		// Sizes.
		{"Content-Length over the limit", private, 200, [][2]string{h("content-length", "1025")}, 0, cache.ReasonBodyTooLarge},
		{"Content-Length at the limit", private, 200, [][2]string{h("content-length", "1024")}, time.Minute, ""},
		{"too many header lines", private, 200, many, 0, cache.ReasonHeaders},
		{"a control character in a value", private, 200, [][2]string{h("x-a", "a\x00b")}, 0, cache.ReasonHeaders},
		{"a header value over 64 KiB", private, 200, [][2]string{h("x-a", strings.Repeat("a", 1<<16))}, 0, cache.ReasonHeaders},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := lookedUp(cfg, tc.policy, get("/f"))
			f, reason := l.Fill(&cache.Response{Status: tc.status, Headers: tc.headers}, t0, 1)
			if reason != tc.reason {
				t.Fatalf("reason %q, want %q", reason, tc.reason)
			}
			if reason != "" {
				if f != nil {
					t.Fatal("a Fill with a reason")
				}
				return
			}
			wantTTL := min(max(tc.ttl, time.Second), cache.MaxStoreTTL)
			for _, kv := range tc.headers {
				if kv[0] == "etag" || kv[0] == "last-modified" { // kept an hour more, to be revalidated
					wantTTL = min(tc.ttl+time.Hour, cache.MaxStoreTTL)
				}
			}
			if f.TTL != wantTTL || f.IndexTTL != min(max(wantTTL, time.Hour), cache.MaxStoreTTL) {
				t.Fatalf("TTL %v (index %v), want %v", f.TTL, f.IndexTTL, wantTTL)
			}
			e, err := cache.DecodeEntry(f.Envelope())
			if err != nil {
				t.Fatal(err)
			}
			if e.Status != tc.status || e.StoredAt != t0.UnixMilli() || time.Duration(e.ExpiresAt-e.StoredAt)*time.Millisecond != tc.ttl {
				t.Fatalf("entry %+v", e)
			}
			for _, kv := range e.Headers {
				if kv[0] == "x-user" {
					t.Fatalf("x-user stored although named by no-cache or private: %q", e.Headers)
				}
			}
		})
	}
}

// TestFillStaleRetention: past its freshness an entry stays in the store as
// long as it may be served stale (RFC 5861) or, with a validator,
// revalidated; never for what must not be served stale (RFC 9111 §4.2.4).
func TestFillStaleRetention(t *testing.T) {
	cfg := testConfig()
	for _, tc := range []struct {
		name string
		cc   string
		etag bool
		want time.Duration
	}{
		{"no stale directives", "max-age=10", false, 10 * time.Second},
		{"stale-while-revalidate", "max-age=10, stale-while-revalidate=30", false, 40 * time.Second},
		{"stale-if-error, the longer window", "max-age=10, stale-while-revalidate=30, stale-if-error=300", false, 310 * time.Second},
		{"must-revalidate forbids stale", "max-age=10, must-revalidate, stale-if-error=300", false, 10 * time.Second},
		{"proxy-revalidate forbids stale", "max-age=10, proxy-revalidate, stale-while-revalidate=30", false, 10 * time.Second},
		{"s-maxage forbids stale", "s-maxage=10, stale-while-revalidate=30", false, 10 * time.Second},
		{"a validator: kept an hour to revalidate", "max-age=10", true, 10*time.Second + time.Hour},
		{"a validator and a longer stale window", "max-age=10, stale-if-error=7200", true, 7210 * time.Second},
		{"capped at what the store takes", "max-age=86400, stale-if-error=86400", false, cache.MaxStoreTTL},
	} {
		headers := [][2]string{h("cache-control", tc.cc)}
		if tc.etag {
			headers = append(headers, h("etag", `"v"`))
		}
		f, reason := lookedUp(cfg, private, get("/r")).Fill(&cache.Response{Status: 200, Headers: headers}, t0, 1)
		if reason != "" || f.TTL != tc.want {
			t.Errorf("%s: TTL %v (%q), want %v", tc.name, f.TTL, reason, tc.want)
		}
	}
}

// TestFillWithoutHeuristics: a status whose heuristic bound is 0
// (cache.default_ttl_seconds: 0) is stored only with freshness of its own
// or a validator.
func TestFillWithoutHeuristics(t *testing.T) {
	cfg := testConfig()
	cfg.Statuses = map[int]time.Duration{200: 0}
	for _, tc := range []struct {
		name    string
		headers [][2]string
		fresh   time.Duration
		reason  string
	}{
		{"nothing", nil, 0, cache.ReasonStale},
		{"Last-Modified only: no heuristic, but a validator", [][2]string{h("last-modified", httpDate(t0.Add(-time.Hour)))}, 0, ""},
		{"ETag only", [][2]string{h("etag", `"e"`)}, 0, ""},
		{"max-age", [][2]string{h("cache-control", "max-age=30")}, 30 * time.Second, ""},
		{"Expires", [][2]string{h("expires", httpDate(t0.Add(20*time.Second)))}, 20 * time.Second, ""},
	} {
		f, reason := lookedUp(cfg, private, get("/n")).Fill(&cache.Response{Status: 200, Headers: tc.headers}, t0, 1)
		if reason != tc.reason {
			t.Errorf("%s: reason %q, want %q", tc.name, reason, tc.reason)
			continue
		}
		if f == nil {
			continue
		}
		e, err := cache.DecodeEntry(f.Envelope())
		if err != nil || time.Duration(e.ExpiresAt-e.StoredAt)*time.Millisecond != tc.fresh {
			t.Errorf("%s: entry %+v, %v; want fresh for %v", tc.name, e, err, tc.fresh)
		}
	}
}

// TestFillMustUnderstand: must-understand stores only a status the gateway
// implements (RFC 9111 §5.2.2.3).
func TestFillMustUnderstand(t *testing.T) {
	cfg := testConfig()
	cfg.Statuses[299] = 0
	resp := &cache.Response{Status: 299, Headers: [][2]string{h("cache-control", "max-age=60, must-understand")}}
	if _, reason := lookedUp(cfg, private, get("/u")).Fill(resp, t0, 1); reason != cache.ReasonMustUnderstand {
		t.Errorf("299 with must-understand: %q", reason)
	}
	resp.Headers = [][2]string{h("cache-control", "max-age=60")}
	if _, reason := lookedUp(cfg, private, get("/u")).Fill(resp, t0, 1); reason != "" {
		t.Errorf("299 without must-understand: %q", reason)
	}
}

func TestFillPreconditions(t *testing.T) {
	cfg := testConfig()
	ok := &cache.Response{Status: 200}
	head := cfg.Classify(private, with(get("/f"), func(r *cache.Request) { r.Method = "HEAD" })).Lookup
	head.UseIndex(nil, false)
	if _, reason := head.Fill(ok, t0, 1); reason != cache.ReasonHead || head.CanFill() {
		t.Errorf("HEAD: %q", reason)
	}
	unread := cfg.Classify(private, get("/f")).Lookup
	if _, reason := unread.Fill(ok, t0, 1); reason != cache.ReasonIndexUnknown {
		t.Errorf("before the index was read: %q", reason)
	}
}

func TestFillBody(t *testing.T) {
	cfg := testConfig() // 1 KiB
	for _, tc := range []struct {
		name   string
		chunks []int
		fits   bool
	}{
		{"empty", nil, true},
		{"one chunk", []int{100}, true},
		{"exactly the limit in pieces", []int{1000, 0, 24}, true},
		{"one byte over", []int{1000, 25}, false},
		{"one big chunk", []int{5000}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, _ := lookedUp(cfg, private, get("/b")).Fill(&cache.Response{Status: 200}, t0, 1)
			var body []byte
			fits := true
			for i, n := range tc.chunks {
				chunk := bytes.Repeat([]byte{byte('a' + i)}, n)
				body = append(body, chunk...)
				fits = f.Append(chunk) && fits
			}
			if fits != tc.fits {
				t.Fatalf("fits = %v, want %v", fits, tc.fits)
			}
			env := f.Envelope()
			if !tc.fits {
				if env != nil || f.Append([]byte("x")) {
					t.Fatal("a fill that was too big goes on")
				}
				return
			}
			e, err := cache.DecodeEntry(env)
			if err != nil || !bytes.Equal(e.Body, body) {
				t.Fatalf("body %q, %v; want %q", e.Body, err, body)
			}
		})
	}
}
