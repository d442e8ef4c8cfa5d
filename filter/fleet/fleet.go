// Package fleet speaks to envoyproxy/ratelimit, the rate limiter shared by a
// fleet of Envoys: it builds the body of a ShouldRateLimit call, to the
// service's gRPC method (a protobuf RateLimitRequest in a gRPC frame,
// grpc.go) or its HTTP /json endpoint, reads the answer, and remembers (in a
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
	var r reported
	r.overall = codeNamed[root.Get("overallCode").Str()]
	switch {
	case status == 200 && r.overall == codeOK:
	case status == 429 && r.overall == codeOverLimit:
	default:
		return Answer{}, badAnswer("status " + strconv.Itoa(status) + " with overallCode " + strconv.Quote(root.Get("overallCode").Str()))
	}
	var st jsonread.Value
	for first := range root.Get("statuses").Elements() {
		st = first
		break
	}
	if r.hasStatus = st.Exists(); !r.hasStatus {
		return r.answer()
	}
	r.code = codeNamed[st.Get("code").Str()]
	lim := st.Get("currentLimit")
	if r.hasLimit = lim.Exists(); !r.hasLimit {
		return r.answer()
	}
	var err error
	if r.limit, err = protoInt(lim.Get("requestsPerUnit")); err != nil {
		return Answer{}, badAnswer("requestsPerUnit: " + err.Error())
	}
	unit := lim.Get("unit").Str()
	if r.unit = unitNamed[unit]; r.unit == 0 {
		return Answer{}, badAnswer("unknown unit " + strconv.Quote(unit))
	}
	if r.remaining, err = protoInt(st.Get("limitRemaining")); err != nil {
		return Answer{}, badAnswer("limitRemaining: " + err.Error())
	}
	if r.reset, err = protoDuration(st.Get("durationUntilReset")); err != nil {
		return Answer{}, badAnswer("durationUntilReset: " + err.Error())
	}
	return r.answer()
}

// reported is what an answer said of the first descriptor, in either
// protocol, before it is checked for consistency.
type reported struct {
	overall, code       code
	hasStatus, hasLimit bool
	limit, remaining    int64
	unit                unit
	reset               time.Duration
}

// answer checks r the same way whatever the protocol, and returns it as an
// Answer.
func (r *reported) answer() (Answer, error) {
	a := Answer{Over: r.overall == codeOverLimit}
	if !r.hasStatus {
		if a.Over {
			return Answer{}, badAnswer("OVER_LIMIT without a status")
		}
		return a, nil
	}
	if r.code != r.overall {
		return Answer{}, badAnswer("status code " + r.code.String() + " under overallCode " + r.overall.String())
	}
	if !r.hasLimit {
		if a.Over {
			return Answer{}, badAnswer("OVER_LIMIT without currentLimit")
		}
		return a, nil
	}
	if a.Window = r.unit.window(); a.Window == 0 {
		return Answer{}, badAnswer("unknown unit " + strconv.Itoa(int(r.unit)))
	}
	a.Limited, a.Limit, a.Remaining, a.Reset = true, r.limit, r.remaining, r.reset
	if a.Reset > a.Window {
		return Answer{}, badAnswer("reset " + a.Reset.String() + " is longer than the " + a.Window.String() + " window")
	}
	return a, nil
}

// code is RateLimitResponse.Code, by its protobuf number.
type code uint64

const (
	codeUnknown   code = 0
	codeOK        code = 1
	codeOverLimit code = 2
)

// codeNamed maps the codes' protojson names; a missing name is UNKNOWN.
var codeNamed = map[string]code{"OK": codeOK, "OVER_LIMIT": codeOverLimit}

func (c code) String() string {
	switch c {
	case codeOK:
		return "OK"
	case codeOverLimit:
		return "OVER_LIMIT"
	}
	return "UNKNOWN(" + strconv.FormatUint(uint64(c), 10) + ")"
}

// unit is RateLimitResponse.RateLimit.Unit, by its protobuf number.
type unit uint64

// unitNamed maps the units' protojson names to their numbers.
var unitNamed = map[string]unit{"SECOND": 1, "MINUTE": 2, "HOUR": 3, "DAY": 4, "MONTH": 5, "YEAR": 6, "WEEK": 7}

// unitWindows is the length of each unit, as the service divides time (its
// utils.UnitToDivider); 0 for UNKNOWN.
var unitWindows = [...]time.Duration{
	1: time.Second,
	2: time.Minute,
	3: time.Hour,
	4: 24 * time.Hour,
	5: 30 * 24 * time.Hour,
	6: 365 * 24 * time.Hour,
	7: 7 * 24 * time.Hour,
}

// window is u's length, or 0 when u is not a known unit.
func (u unit) window() time.Duration {
	if u >= unit(len(unitWindows)) {
		return 0
	}
	return unitWindows[u]
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
