package e2e

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/e2e/harness"
	"github.com/portcullis/portcullis/e2e/scenarios"
)

// TestMonthlyQuotaCrossesAMonthBoundary runs the compiled plugin on the
// wazero host with an injected wall clock (Envoy's cannot be moved), two
// workers sharing the table: a quota of 3 per calendar month in UTC+01:00
// is spent in the last seconds of January there, and full again at the
// first instant of February. filter/plugin's test of the same name runs it
// natively.
func TestMonthlyQuotaCrossesAMonthBoundary(t *testing.T) {
	t.Parallel()
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 31, 22, 59, 58, 0, time.UTC).UnixNano()) // 23:59:58 in UTC+01:00
	gw := harness.NewWasmHost(t).Start(t, harness.Options{
		PluginConfig: `{"routes": [{"name": "open", "prefix": "/api", "public": true}],
		  "rate_limit": {"public_key": "header:x-client", "default": [{"requests": 3, "calendar": "month"}], "utc_offset_minutes": 60}}`,
		Walltime: func() time.Time { return time.Unix(0, now.Load()) },
	})
	send := func() scenarios.Response {
		return scenarios.Send(t, gw, scenarios.Request{Path: "/api/x", Header: map[string][]string{"X-Client": {"c1"}}})
	}
	month := func(name string, retryAfter string) {
		t.Helper()
		before := gw.Upstream.Count()
		for i := range 3 {
			if r := send(); r.Status != 200 {
				t.Fatalf("%s, request %d: %s, want 200", name, i+1, r)
			} else if p := r.Header.Get("RateLimit-Policy"); !strings.HasPrefix(p, `"default";q=3;w=2592000;pk=`) {
				t.Errorf("%s: RateLimit-Policy %q", name, p)
			}
		}
		r := send()
		if r.Status != 429 || r.Header.Get("Retry-After") != retryAfter {
			t.Fatalf("%s, 4th request: %s (Retry-After %q), want 429 with Retry-After %s", name, r, r.Header.Get("Retry-After"), retryAfter)
		}
		if got := gw.Upstream.Count() - before; got != 3 {
			t.Errorf("%s: the upstream saw %d requests, want 3", name, got)
		}
	}
	month("January", "2")
	now.Add(int64(2 * time.Second)) // 1 February, 00:00:00 in UTC+01:00
	month("February", "2419200")    // 28 days until 1 March
}
