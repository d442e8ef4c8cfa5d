// Package fleet speaks to envoyproxy/ratelimit, the rate limiter shared by a
// fleet of Envoys: it builds the body of a ShouldRateLimit call to the
// service's HTTP /json endpoint, reads the answer, and remembers (in a
// bounded table in shared data, Blocklist) keys that are over their limit so
// that a blocked key costs no call until its reset.
//
// The plugin sends one descriptor per request, in the domain of the config:
//
//	[{"key": "api_key", "value": <key>}, {"key": "route", "value": <route rule name>}]
//
// (a public route counted by client address or by a header has the first
// entry "client_address" or "client_header" instead), so that the service's
// descriptor config (ratelimit/config/portcullis.yaml) can set one limit per
// key and route, with overrides for particular routes. The
// service counts in fixed windows (its units: second … year) in Redis; the
// plugin only reports what it answers.
package fleet

import (
	"errors"
	"strconv"
	"time"

	"github.com/portcullis/portcullis/filter/jsonread"
	"github.com/portcullis/portcullis/filter/wrap"

	"github.com/portcullis/portcullis/filter/jsonobj"
)

// Descriptor entry keys, as the descriptor config must name them.
const (
	KeyEntry           = "api_key"        // the verified key of a protected route
	ClientAddressEntry = "client_address" // a public route counted by client address
	HeaderEntry        = "client_header"  // a public route counted by a header
	RouteEntry         = "route"
)

// RequestBody appends to dst the JSON RateLimitRequest (protojson field
// names) for a request of (entry: key) on route in domain that costs cost
// hits: above 1 it is the request's hitsAddend, which the service adds to
// the counter instead of 1.
func RequestBody(dst []byte, domain, entry, key, route string, cost int64) []byte {
	dst = append(dst, `{"domain":`...)
	dst = jsonobj.AppendString(dst, domain)
	dst = append(dst, `,"descriptors":[{"entries":[{"key":`...)
	dst = jsonobj.AppendString(dst, entry)
	dst = append(dst, `,"value":`...)
	dst = jsonobj.AppendString(dst, key)
	dst = append(dst, `},{"key":"`+RouteEntry+`","value":`...)
	dst = jsonobj.AppendString(dst, route)
	dst = append(dst, `}]}]`...)
	if cost > 1 {
		dst = append(dst, `,"hitsAddend":`...)
		dst = strconv.AppendInt(dst, cost, 10)
	}
	return append(dst, '}')
}

// Answer is what the service decided for one descriptor.
type Answer struct {
	// Over: the request is over the limit and must be refused.
	Over bool
	// Limited: a limit of the descriptor config applied. When false (no
	// rule matched the descriptor) Limit, Remaining and Reset are zero.
	Limited   bool
	Limit     int64
	Window    time.Duration
	Remaining int64
	Reset     time.Duration
}

// ErrBadAnswer wraps every reason an answer is not understood; the plugin
// then applies its failure mode.
var ErrBadAnswer = errors.New("ratelimit service answer not understood")

func badAnswer(detail string) error { return wrap.Detail(ErrBadAnswer, detail) }

// ParseAnswer reads the service's answer: HTTP status and JSON body
// (RateLimitResponse). The service answers 200 with overallCode OK, 429
// with OVER_LIMIT, and anything else on errors.
func ParseAnswer(status int, body []byte) (Answer, error) {
	root, ok := jsonread.Parse(string(body))
	if !ok {
		return Answer{}, badAnswer("status " + strconv.Itoa(status) + ", body is not JSON")
	}
	code := root.Get("overallCode").Str()
	switch {
	case status == 200 && code == "OK":
	case status == 429 && code == "OVER_LIMIT":
	default:
		return Answer{}, badAnswer("status " + strconv.Itoa(status) + " with overallCode " + strconv.Quote(code))
	}
	a := Answer{Over: code == "OVER_LIMIT"}
	var st jsonread.Value
	for first := range root.Get("statuses").Elements() {
		st = first
		break
	}
	if !st.Exists() {
		if a.Over {
			return Answer{}, badAnswer("OVER_LIMIT without a status")
		}
		return a, nil
	}
	if stCode := st.Get("code").Str(); stCode != code {
		return Answer{}, badAnswer("status code " + strconv.Quote(stCode) + " under overallCode " + strconv.Quote(code))
	}
	lim := st.Get("currentLimit")
	if !lim.Exists() {
		if a.Over {
			return Answer{}, badAnswer("OVER_LIMIT without currentLimit")
		}
		return a, nil
	}
	var err error
	a.Limited = true
	if a.Limit, err = protoInt(lim.Get("requestsPerUnit")); err != nil {
		return Answer{}, badAnswer("requestsPerUnit: " + err.Error())
	}
	if a.Window = unitWindow[lim.Get("unit").Str()]; a.Window == 0 {
		return Answer{}, badAnswer("unknown unit " + strconv.Quote(lim.Get("unit").Str()))
	}
	if a.Remaining, err = protoInt(st.Get("limitRemaining")); err != nil {
		return Answer{}, badAnswer("limitRemaining: " + err.Error())
	}
	if a.Reset, err = protoDuration(st.Get("durationUntilReset")); err != nil {
		return Answer{}, badAnswer("durationUntilReset: " + err.Error())
	}
	if a.Reset > a.Window {
		return Answer{}, badAnswer("reset " + a.Reset.String() + " is longer than the " + a.Window.String() + " window")
	}
	return a, nil
}

// unitWindow is the length of each RateLimitResponse.RateLimit.Unit, as the
// service divides time (its utils.UnitToDivider).
var unitWindow = map[string]time.Duration{
	"SECOND": time.Second,
	"MINUTE": time.Minute,
	"HOUR":   time.Hour,
	"DAY":    24 * time.Hour,
	"WEEK":   7 * 24 * time.Hour,
	"MONTH":  30 * 24 * time.Hour,
	"YEAR":   365 * 24 * time.Hour,
}

// protoInt reads a uint32 field: protojson omits zero values and writes
// numbers (uint64 would be strings, which are accepted too).
func protoInt(r jsonread.Value) (int64, error) {
	var n int64
	var err error
	ok := false
	switch r.Kind() {
	case jsonread.Absent, jsonread.Null:
		return 0, nil // omitted: zero
	case jsonread.Number:
		n, ok = r.Int()
	case jsonread.String:
		n, err = strconv.ParseInt(r.Str(), 10, 64)
		ok = err == nil
	}
	if !ok || n < 0 || n > 1<<32 {
		return 0, errors.New("not a count: " + r.Raw)
	}
	return n, nil
}

// protoDuration reads a google.protobuf.Duration in protojson form: a
// decimal number of seconds with the suffix "s" ("59s", "0.250s").
func protoDuration(r jsonread.Value) (time.Duration, error) {
	if k := r.Kind(); k == jsonread.Absent || k == jsonread.Null {
		return 0, nil
	}
	s := r.Str()
	if len(s) < 2 || s[len(s)-1] != 's' || s[0] == '-' || s[0] == '+' {
		return 0, errors.New("not a duration: " + r.Raw)
	}
	secs, err := strconv.ParseFloat(s[:len(s)-1], 64)
	if err != nil || !(secs >= 0 && secs <= 366*24*3600) { // NaN fails both
		return 0, errors.New("not a duration: " + r.Raw)
	}
	return time.Duration(secs * float64(time.Second)), nil
}
