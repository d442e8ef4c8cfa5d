package scenarios

import (
	"bytes"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/e2e/harness"
)

// Rate-limit scenario parameters: BurstClients clients at once on one cold
// key, against a limit of BurstLimit per BurstWindowSeconds, on a gateway
// with BurstWorkers worker threads (plugin VMs) sharing one table.
const (
	BurstLimit         = 10
	BurstWindowSeconds = 60
	BurstClients       = 64
	BurstWorkers       = 4
)

// RateLimitConfig is the shipped plugin configuration with local rate
// limiting of BurstLimit requests per BurstWindowSeconds.
func RateLimitConfig(t *testing.T) string {
	return patchConfig(t, harness.ShippedPluginConfig(t), func(cfg map[string]any) {
		delete(cfg, "cache") // every request must reach the upstream to be counted there
		cfg["rate_limit"] = map[string]any{
			"default": []any{map[string]any{"requests": BurstLimit, "window_seconds": BurstWindowSeconds}},
		}
		cfg["log"] = everyErrorLogged
	})
}

// everyErrorLogged lifts log.errors_per_second for gateways whose scenarios
// refuse more requests in one second than its default lets through, and then
// check one log line per refusal (AssertErrorsLogged).
var everyErrorLogged = map[string]any{"errors_per_second": 0}

// rateLimitBody is the 429 envelope.
type rateLimitBody struct {
	Error      string `json:"error"`
	Message    string `json:"message"`
	RetryAfter int    `json:"retry_after"`
	Policy     string `json:"policy"`
	RequestID  string `json:"request_id"`
}

// atOnce sends n requests at the same instant (send(i) sends the i-th) and
// returns their answers.
func atOnce(n int, send func(i int) (Response, error)) ([]Response, []error) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	responses := make([]Response, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			responses[i], errs[i] = send(i)
		}()
	}
	close(start)
	wg.Wait()
	return responses, errs
}

// pkParam is the partition key parameter of the IETF fields' items: 12
// bytes of a keyed hash, as a structured-field byte sequence.
var pkParam = regexp.MustCompile(`;pk=:[A-Za-z0-9+/]{16}:`)

// withoutPK is a RateLimit-Policy or RateLimit value without its pk
// parameters, which every item must carry.
func withoutPK(t *testing.T, field string) string {
	t.Helper()
	if n, items := len(pkParam.FindAllString(field, -1)), strings.Count(field, `"`)/2; n != items {
		t.Errorf("%q: %d items but %d partition keys", field, items, n)
	}
	return pkParam.ReplaceAllString(field, "")
}

// coldBurst: BurstClients parallel requests with one token on a key never
// seen before admit exactly BurstLimit (GCRA's cold-burst guarantee, across
// every VM of the gateway through shared-data CAS), answer the rest 429 JSON
// with Retry-After, and only the admitted reach the upstream.
func coldBurst(t *testing.T, gw *harness.Gateway) {
	tok := Token(harness.TestSecret, freshKey("burst"), nil)
	before := gw.Upstream.Count()
	responses, errs := atOnce(BurstClients, func(int) (Response, error) {
		return Do(gw, Request{Path: "/api/burst", Header: Bearer(tok)})
	})

	admitted, denied := 0, 0
	for i, resp := range responses {
		if errs[i] != nil {
			t.Errorf("client %d: %v", i, errs[i])
			continue
		}
		switch resp.Status {
		case http.StatusOK:
			admitted++
			if got := resp.Header.Get("X-RateLimit-Limit"); got != strconv.Itoa(BurstLimit) {
				t.Errorf("200: X-RateLimit-Limit %q, want %d", got, BurstLimit)
			}
			if got := withoutPK(t, resp.Header.Get("RateLimit-Policy")); got != `"default";q=10;w=60` {
				t.Errorf("200: RateLimit-Policy %q", got)
			}
			if n, err := strconv.Atoi(resp.Header.Get("X-RateLimit-Remaining")); err != nil || n < 0 || n >= BurstLimit {
				t.Errorf("200: X-RateLimit-Remaining %q", resp.Header.Get("X-RateLimit-Remaining"))
			}
		case http.StatusTooManyRequests:
			denied++
			checkTooMany(t, gw, resp, BurstLimit, BurstWindowSeconds, 1)
		default:
			t.Errorf("client %d: want 200 or 429, got:\n%s", i, resp)
		}
	}
	if admitted != BurstLimit || denied != BurstClients-BurstLimit {
		t.Errorf("%d admitted, %d denied; want exactly %d admitted of %d", admitted, denied, BurstLimit, BurstClients)
	}
	if got := gw.Upstream.Count() - before; got != BurstLimit {
		t.Errorf("the upstream received %d requests, want exactly %d", got, BurstLimit)
	}

	// The key stays limited, whichever worker answers.
	for range 4 {
		checkTooMany(t, gw, Send(t, gw, Request{Path: "/api/burst", Header: Bearer(tok)}), BurstLimit, BurstWindowSeconds, 1)
	}
	if got := gw.Upstream.Count() - before; got != BurstLimit {
		t.Errorf("after the burst the upstream received %d requests, want %d", got, BurstLimit)
	}
	// The counters agree (summed over every VM).
	expectCounters(t, gw, map[string]int64{"portcullis.ratelimit.allowed": BurstLimit, "portcullis.ratelimit.denied": BurstClients - BurstLimit + 4, "portcullis.ratelimit.fault.contention": 0})
}

// checkTooMany checks one 429 of a limit of limit per windowSeconds for a
// request of cost cost: the JSON envelope with retry_after, the matching
// Retry-After header and the rate-limit headers (less than cost remaining).
func checkTooMany(t *testing.T, gw *harness.Gateway, resp Response, limit, windowSeconds, cost int) {
	t.Helper()
	if resp.Status != http.StatusTooManyRequests {
		t.Errorf("want 429, got:\n%s", resp)
		return
	}
	var e rateLimitBody
	dec := json.NewDecoder(bytes.NewReader(resp.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Errorf("429 body is not the envelope (%v):\n%s", err, resp)
		return
	}
	retry, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || retry < 1 || retry > windowSeconds {
		t.Errorf("Retry-After %q, want 1..%d seconds:\n%s", resp.Header.Get("Retry-After"), windowSeconds, resp)
	}
	if e.Error != "rate_limit_exceeded" || e.Message == "" || e.RetryAfter != retry || e.RequestID == "" {
		t.Errorf("429 envelope %+v, want rate_limit_exceeded with retry_after = Retry-After %d", e, retry)
	}
	// The refusal names the limit that fired, in the body and in RateLimit.
	remaining, err := strconv.Atoi(resp.Header.Get("X-RateLimit-Remaining"))
	if err != nil || remaining < 0 || remaining >= cost {
		t.Errorf("429 X-RateLimit-Remaining %q, want 0..%d (less than the cost)", resp.Header.Get("X-RateLimit-Remaining"), cost-1)
	}
	if rl := withoutPK(t, resp.Header.Get("RateLimit")); e.Policy == "" || !strings.HasPrefix(rl, `"`+e.Policy+`";r=`+strconv.Itoa(remaining)+`;t=`) {
		t.Errorf("429 policy %q with RateLimit %q, want the refusing policy named in both", e.Policy, rl)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("429 content-type %q", ct)
	}
	if got := resp.Header.Get("X-RateLimit-Limit"); got != strconv.Itoa(limit) {
		t.Errorf("429 X-RateLimit-Limit %q, want %d", got, limit)
	}
	if e.RequestID != "" {
		gatewayErrors.add(gw, e.RequestID, http.StatusTooManyRequests)
	}
}

// Sliding-window scenario parameters: SlideLimit per SlideWindow, hammered
// by SlideClients for SlideFor.
const (
	SlideLimit   = 5
	SlideWindow  = time.Second
	SlideClients = 8
	SlideFor     = 2500 * time.Millisecond
)

// SlideConfig is the shipped configuration limited to SlideLimit per
// SlideWindow on the "slide" route rule (GCRA) and on the "strict" rule
// (the strict algorithm).
func SlideConfig(t *testing.T) string {
	return patchConfig(t, harness.ShippedPluginConfig(t), func(cfg map[string]any) {
		delete(cfg, "cache")
		routes := cfg["routes"].([]any)
		limit := func(algorithm string) []any {
			l := map[string]any{"requests": SlideLimit, "window_seconds": int(SlideWindow / time.Second)}
			if algorithm != "" {
				l["algorithm"] = algorithm
			}
			return []any{l}
		}
		slide := map[string]any{"name": "slide", "prefix": "/api/slide", "rate_limit": limit("")}
		strict := map[string]any{"name": "strict", "prefix": "/api/strict", "rate_limit": limit("strict")}
		cfg["routes"] = append([]any{slide, strict}, routes...)
		cfg["rate_limit"] = map[string]any{}
	})
}

// admission is one admitted request: when it was sent and when its answer
// arrived. The gateway decided somewhere in between.
type admission struct{ sent, answered time.Time }

// hammerOneKey sends one fresh key's requests to path from SlideClients
// clients for SlideFor and returns the admissions and the refusals.
func hammerOneKey(t *testing.T, gw *harness.Gateway, path string) (admitted []admission, refused int) {
	tok := Token(harness.TestSecret, freshKey("slide"), nil)
	var mu sync.Mutex
	deadline := time.Now().Add(SlideFor)
	var wg sync.WaitGroup
	for range SlideClients {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				sent := time.Now()
				resp, err := Do(gw, Request{Path: path, Header: Bearer(tok)})
				answered := time.Now()
				if err != nil {
					t.Errorf("request: %v", err)
					return
				}
				mu.Lock()
				switch resp.Status {
				case http.StatusOK:
					admitted = append(admitted, admission{sent, answered})
				case http.StatusTooManyRequests:
					refused++
				default:
					t.Errorf("want 200 or 429, got:\n%s", resp)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return admitted, refused
}

// mostInOneWindow is the largest number of admissions that certainly fell
// in one window of SlideWindow: an admission counts in a window only when
// it was both sent and answered inside it, so its decision certainly was.
// The count can miss an excess but never invents one.
func mostInOneWindow(admitted []admission) int {
	worst := 0
	for _, start := range admitted {
		end := start.sent.Add(SlideWindow)
		n := 0
		for _, a := range admitted {
			if !a.sent.Before(start.sent) && !a.answered.After(end) {
				n++
			}
		}
		worst = max(worst, n)
	}
	return worst
}

// noWindowAdmitsTooMany hammers one key for several windows and checks the
// algorithm's documented bound end to end: any span of one window holds at
// most 2N−1 admissions (GCRA: N + ⌈T/I⌉ − 1).
func noWindowAdmitsTooMany(t *testing.T, gw *harness.Gateway) {
	admitted, refused := hammerOneKey(t, gw, "/api/slide")
	const bound = 2*SlideLimit - 1
	worst := mostInOneWindow(admitted)
	t.Logf("%d admitted, %d refused in %v; at most %d admissions inside one %v window (bound %d)", len(admitted), refused, SlideFor, worst, SlideWindow, bound)
	if worst > bound {
		t.Errorf("a window of %v held %d admissions; the bound is 2N−1 = %d", SlideWindow, worst, bound)
	}
	// The limit still admits at its rate: the cold burst plus one per
	// emission interval (N/T), give or take the run's edges.
	if minimum := SlideLimit + int(SlideFor/SlideWindow)*SlideLimit - SlideLimit; len(admitted) < minimum || refused == 0 {
		t.Errorf("%d admitted, %d refused; want at least %d admitted and some refused", len(admitted), refused, minimum)
	}
}

// strictNoWindowAdmitsMoreThanN is the same hammer on the strict rule: no
// window of T holds more than N admissions, where GCRA's may hold 2N − 1
// (the scenario above sees them), and the strict limit still admits its N
// per 6/5·T (filter/ratelimit, strict.go).
func strictNoWindowAdmitsMoreThanN(t *testing.T, gw *harness.Gateway) {
	admitted, refused := hammerOneKey(t, gw, "/api/strict")
	worst := mostInOneWindow(admitted)
	t.Logf("%d admitted, %d refused in %v; at most %d admissions inside one %v window (strict bound %d)", len(admitted), refused, SlideFor, worst, SlideWindow, SlideLimit)
	if worst > SlideLimit {
		t.Errorf("a window of %v held %d admissions; the strict bound is N = %d", SlideWindow, worst, SlideLimit)
	}
	if minimum := 2 * SlideLimit; len(admitted) < minimum || refused == 0 {
		t.Errorf("%d admitted, %d refused; want at least %d admitted and some refused", len(admitted), refused, minimum)
	}
}
