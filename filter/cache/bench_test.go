package cache_test

import (
	"bytes"
	"strconv"
	"testing"

	"github.com/portcullis/portcullis/filter/cache"
)

// Benchmarks, not timed assertions:
//
//	go test -run '^$' -bench . -benchmem ./filter/cache
//	GOOS=wasip1 GOARCH=wasm go test -exec "$PWD/build/wasirun" -run '^$' -bench . -benchmem ./filter/cache

// benchRequest is a typical API GET: a query to sort, a few headers, one of
// them varied on.
func benchRequest() *cache.Request {
	return &cache.Request{
		Method: "GET", Scheme: "https", Authority: "api.example.com", Path: "/api/orders?status=open&page=2&limit=50",
		Tenant: "alice",
		Headers: [][2]string{
			h(":method", "GET"), h(":path", "/api/orders?status=open&page=2&limit=50"), h(":authority", "api.example.com"),
			h("user-agent", "curl/8.5.0"), h("accept", "application/json"), h("accept-encoding", "gzip, br"),
			h("x-api-key", "alice"), h("x-request-id", "6c1f7c1e-8f0f-4a59-9d0c-2b1e5a8c9d00"),
		},
	}
}

func benchIndex(b *testing.B, l *cache.Lookup) []byte {
	x := cache.Index{Epoch: 42, Vary: []string{"accept", "accept-encoding"}}
	copy(x.Key[:], mustHex(b, l.IndexKey))
	v, err := x.Append(nil)
	if err != nil {
		b.Fatal(err)
	}
	return v
}

func mustHex(b *testing.B, s string) []byte {
	out := make([]byte, len(s)/2)
	for i := range out {
		v, err := strconv.ParseUint(s[2*i:2*i+2], 16, 8)
		if err != nil {
			b.Fatal(err)
		}
		out[i] = byte(v)
	}
	return out
}

// BenchmarkKeys: the request side of a lookup. Classify computes the index
// key (K0); UseIndex decodes the index and computes the entry key (K1);
// FillKey is the fill lock's key on a miss.
func BenchmarkKeys(b *testing.B) {
	cfg, req := testConfig(), benchRequest()
	b.Run("Classify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if p := cfg.Classify(private, req); p.Action != cache.ActionLookup {
				b.Fatal(p.Reason)
			}
		}
	})
	index := benchIndex(b, cfg.Classify(private, req).Lookup)
	b.Run("UseIndex", func(b *testing.B) {
		l := cfg.Classify(private, req).Lookup
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := l.UseIndex(index, true); !ok {
				b.Fatal("no entry key")
			}
		}
	})
	b.Run("FillKey", func(b *testing.B) {
		l := cfg.Classify(private, req).Lookup
		l.UseIndex(index, true)
		b.ReportAllocs()
		for b.Loop() {
			_ = l.FillKey()
		}
	})
	b.Run("CanonicalQuery-sorted", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = cache.CanonicalQuery("limit=50&page=2&status=open")
		}
	})
	b.Run("CanonicalQuery-unsorted", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = cache.CanonicalQuery("status=open&page=2&limit=50")
		}
	})
	b.Run("ParseCacheControl", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = cache.ParseCacheControl(`public, max-age=60, s-maxage="300", stale-while-revalidate=30`)
		}
	})
}

func benchEntry(body int) cache.Entry {
	e := sampleEntry()
	e.Headers = [][2]string{
		h("content-type", "application/json"), h("etag", `"33a64df551425fcc55e4d42a148795d9f25f89d4"`),
		h("cache-control", "public, max-age=60"), h("vary", "accept, accept-encoding"),
		h("last-modified", "Wed, 21 Oct 2025 07:28:00 GMT"), h("server", "demo"), h("date", "Wed, 21 Oct 2025 07:28:00 GMT"),
		h("x-content-type-options", "nosniff"), h("strict-transport-security", "max-age=63072000"), h("content-encoding", "gzip"),
	}
	e.Body = bytes.Repeat([]byte("x"), body)
	return e
}

// BenchmarkEnvelope: encoding and decoding a response with ten header lines.
func BenchmarkEnvelope(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		e := benchEntry(size)
		name := strconv.Itoa(size>>10) + "KiB"
		b.Run("Append-"+name, func(b *testing.B) {
			buf := make([]byte, 0, size+1024)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = e.Append(buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
		data := mustAppend(b, e)
		b.Run("Decode-"+name, func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := cache.DecodeEntry(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHitAndFill: the whole decision of a hit (Answer: decode, checks,
// reply headers) and of a fill (Fill on the response headers, a 1 KiB body
// in two chunks, Envelope).
func BenchmarkHitAndFill(b *testing.B) {
	cfg, svc := testConfig(), newService()
	req := benchRequest()
	resp := benchEntry(0).Headers
	body := bytes.Repeat([]byte("x"), 1<<10)
	fill := func(l *cache.Lookup) *cache.Fill {
		f, reason := l.Fill(&cache.Response{Status: 200, Headers: resp}, t0, 7)
		if reason != "" || !f.Append(body[:512]) || !f.Append(body[512:]) || f.Envelope() == nil {
			b.Fatalf("not stored: %q", reason)
		}
		return f
	}
	l := cfg.Classify(private, req).Lookup
	l.UseIndex(nil, false)
	f := fill(l)
	svc.m[f.IndexKey], svc.m[f.EntryKey] = f.Index, f.Envelope()
	b.Run("Answer", func(b *testing.B) {
		l := cfg.Classify(private, req).Lookup
		key, _ := l.UseIndex(svc.m[l.IndexKey], true)
		entry := svc.m[key]
		b.ReportAllocs()
		for b.Loop() {
			if _, reason := l.Answer(entry, t0); reason != "" {
				b.Fatal(reason)
			}
		}
	})
	b.Run("Fill", func(b *testing.B) {
		l := cfg.Classify(private, req).Lookup
		l.UseIndex(svc.m[l.IndexKey], true)
		b.ReportAllocs()
		for b.Loop() {
			fill(l)
		}
	})
}
