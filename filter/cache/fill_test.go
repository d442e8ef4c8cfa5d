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
		{"qualified private", private, 200, [][2]string{h("cache-control", `private="x-user", max-age=60`)}, 0, cache.ReasonResponsePrivate},
		{"no-cache", private, 200, [][2]string{h("cache-control", "no-cache")}, 0, cache.ReasonResponseNoCache},
		{"qualified no-cache", private, 200, [][2]string{h("cache-control", `no-cache="set-cookie"`)}, 0, cache.ReasonResponseNoCache},
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
		{"s-maxage wins over max-age", private, 200, [][2]string{h("cache-control", "max-age=120, s-maxage=30")}, 30 * time.Second, ""},
		{"s-maxage longer than max-age", private, 200, [][2]string{h("cache-control", "s-maxage=300, max-age=5")}, 5 * time.Minute, ""},
		{"s-maxage=0", private, 200, [][2]string{h("cache-control", "s-maxage=0, max-age=60")}, 0, cache.ReasonStale},
		{"Expires − Date", private, 200, [][2]string{h("date", httpDate(t0.Add(-time.Hour))), h("expires", httpDate(t0.Add(-time.Hour+90*time.Second)))}, 90 * time.Second, ""},
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
		{"Age invalid: ignored", private, 200, [][2]string{h("age", "-5")}, time.Minute, ""},
		{"Age as a list: the first member", private, 200, [][2]string{h("age", "10, 50")}, 50 * time.Second, ""},

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
			if f.TTL != tc.ttl || f.IndexTTL != max(tc.ttl, time.Hour) {
				t.Fatalf("TTL %v (index %v), want %v", f.TTL, f.IndexTTL, tc.ttl)
			}
			e, err := cache.DecodeEntry(f.Envelope())
			if err != nil {
				t.Fatal(err)
			}
			if e.Status != tc.status || e.StoredAt != t0.UnixMilli() || time.Duration(e.ExpiresAt-e.StoredAt)*time.Millisecond != tc.ttl {
				t.Fatalf("entry %+v", e)
			}
		})
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
