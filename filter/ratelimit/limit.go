package ratelimit

import (
	"strconv"
	"strings"
	"time"

	"github.com/portcullis/portcullis/filter/shared"
)

// Bounds on limits, checked by ValidateLimits and NewPolicy.
const (
	MaxRequests   = 1_000_000_000
	MinWindow     = time.Second
	MaxWindow     = 24 * time.Hour
	MaxLimits     = 8  // limits in one policy (and the widest record entry)
	MaxNameLength = 64 // policy and limit names
)

// maxDebt bounds any stored value's distance into the future (TAT − now):
// the largest N·I a valid GCRA limit can have is MaxWindow plus MaxRequests
// nanoseconds of rounding, and a calendar quota's value is at most a
// 31-day month plus MaxRequests away (calendar.go).
const maxDebt = int64(MaxCalendarWindow) + MaxRequests

// Limit admits Requests per Window. Name is the policy item reported in the
// IETF RateLimit-Policy and RateLimit fields; NewPolicy derives it when empty.
type Limit struct {
	Name     string
	Requests int64
	Window   time.Duration
	// Calendar, when set, makes the limit a quota of Requests per calendar
	// day, week or month (calendar.go) instead of a GCRA limit; Window is
	// then left zero and NewPolicy sets it to the window's nominal length,
	// which RateLimit-Policy reports.
	Calendar Calendar
	// UTCOffset is the zone calendar windows start in (UTC+UTCOffset):
	// whole minutes, at most MaxUTCOffset either way; zero without Calendar.
	UTCOffset time.Duration
	// Algorithm counts a limit over Window: GCRA (the default) or strict
	// (strict.go); not for calendar quotas.
	Algorithm Algorithm
}

// LimitError is a problem with one limit (Index ≥ 0, Field "requests",
// "window" or "name") or with the list as a whole (Index −1, Field "").
// The config package rewrites it into its own field path.
type LimitError struct {
	Index   int
	Field   string
	Problem string
}

func (e *LimitError) Error() string {
	if e.Index < 0 {
		return "limits: " + e.Problem
	}
	path := "limits[" + strconv.Itoa(e.Index) + "]"
	if e.Field != "" {
		path += "." + e.Field
	}
	return path + ": " + e.Problem
}

// NameError is a policy name that cannot be used (see checkName).
type NameError struct {
	Name    string
	Problem string
}

func (e *NameError) Error() string { return "policy name " + strconv.Quote(e.Name) + ": " + e.Problem }

// limitError is not inlined: it runs only on a bad configuration, and an
// inlined copy at each of its call sites costs the module more than the call.
//
//go:noinline
func limitError(index int, field, problem string) error {
	return &LimitError{Index: index, Field: field, Problem: problem}
}

// ValidateLimits checks a policy's list of limits: 1 to MaxLimits entries,
// Requests in [1, MaxRequests], Window a whole number of seconds in
// [MinWindow, MaxWindow], no two limits with the same window, and names (when
// given) valid and distinct. The error is a *LimitError.
func ValidateLimits(limits []Limit) error {
	switch {
	case len(limits) == 0:
		return limitError(-1, "", "required: at least one limit")
	case len(limits) > MaxLimits:
		return limitError(-1, "", "at most "+strconv.Itoa(MaxLimits)+" limits per policy, got "+strconv.Itoa(len(limits)))
	}
	width := 0
	for _, l := range limits {
		width += l.width()
	}
	if width > MaxLimits {
		return limitError(-1, "", "the limits need "+strconv.Itoa(width)+" values per key, at most "+strconv.Itoa(MaxLimits)+" (a strict limit takes "+strconv.Itoa(strictValues)+")")
	}
	for i, l := range limits {
		if l.Requests < 1 || l.Requests > MaxRequests {
			return limitError(i, "requests", "must be between 1 and "+strconv.Itoa(MaxRequests)+", got "+strconv.FormatInt(l.Requests, 10))
		}
		if err := validateWindow(i, l); err != nil {
			return err
		}
		if l.Name != "" {
			if err := checkName(l.Name); err != "" {
				return limitError(i, "name", err)
			}
		}
		for j := range i {
			if limits[j].Window == l.Window && limits[j].Calendar == l.Calendar && limits[j].Algorithm == l.Algorithm {
				return limitError(i, "window", "duplicate window "+windowLength(l)+" (also limits["+strconv.Itoa(j)+"]); keep the stricter one")
			}
			if l.Name != "" && limits[j].Name == l.Name {
				return limitError(i, "name", "duplicate name "+strconv.Quote(l.Name)+" (also limits["+strconv.Itoa(j)+"])")
			}
		}
	}
	return nil
}

// validateWindow checks limit i's window: a whole number of seconds in
// [MinWindow, MaxWindow], or a calendar window with no Window of its own
// and a UTCOffset of whole minutes within MaxUTCOffset.
func validateWindow(i int, l Limit) error {
	if l.Algorithm > AlgorithmStrict {
		return limitError(i, "algorithm", "unknown algorithm "+strconv.Itoa(int(l.Algorithm)))
	}
	if l.Calendar == CalendarNone {
		switch {
		case l.UTCOffset != 0:
			return limitError(i, "utc_offset", "only for calendar windows")
		case l.Window < MinWindow || l.Window > MaxWindow:
			return limitError(i, "window", "must be between "+MinWindow.String()+" and "+MaxWindow.String()+", got "+l.Window.String())
		case l.Window%time.Second != 0:
			return limitError(i, "window", "must be a whole number of seconds, got "+l.Window.String())
		}
		return nil
	}
	switch {
	case l.Calendar > CalendarMonth:
		return limitError(i, "calendar", "unknown calendar window "+strconv.Itoa(int(l.Calendar)))
	case l.Algorithm != AlgorithmGCRA:
		return limitError(i, "algorithm", "a calendar quota counts its whole window; "+l.Algorithm.String()+" is for limits over a window")
	case l.Window != 0 && l.Window != l.Calendar.nominal():
		return limitError(i, "window", "a calendar "+l.Calendar.String()+" has no window of its own, got "+l.Window.String())
	case l.UTCOffset < -MaxUTCOffset || l.UTCOffset > MaxUTCOffset || l.UTCOffset%time.Minute != 0:
		return limitError(i, "utc_offset", "must be whole minutes between -"+MaxUTCOffset.String()+" and "+MaxUTCOffset.String()+", got "+l.UTCOffset.String())
	}
	return nil
}

// windowName is how a limit's window is named in derived names and errors:
// "60s", or the calendar window ("month").
func windowName(l Limit) string {
	if l.Calendar != CalendarNone {
		return l.Calendar.String()
	}
	return strconv.FormatInt(int64(l.Window/time.Second), 10) + "s"
}

// windowLength is a limit's window in errors: "1m0s", or the calendar
// window ("month").
func windowLength(l Limit) string {
	if l.Calendar != CalendarNone {
		return l.Calendar.String()
	}
	return l.Window.String()
}

// checkName returns why s cannot be a policy or limit name, or "". Names are
// visible ASCII without quote or backslash, so they go into a structured
// field string unescaped.
func checkName(s string) string {
	if s == "" || len(s) > MaxNameLength {
		return "must be 1 to " + strconv.Itoa(MaxNameLength) + " characters, got " + strconv.Itoa(len(s))
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '\\' {
			return "must be visible ASCII without quotes or backslashes: " + strconv.Quote(s)
		}
	}
	return ""
}

// rule is a compiled limit: GCRA's emission interval and tolerances in ns,
// or a calendar quota's zone.
type rule struct {
	Limit
	col       int   // the entry's first value this limit keeps its state in (values: see width)
	interval  int64 // I = ⌈T/N⌉
	capacity  int64 // N·I, the debt of an exhausted budget
	tolerance int64 // (N−1)·I, the largest debt that still admits
	offset    int64 // UTCOffset in ns, for calendar quotas
	slice     int64 // L = ⌈T/strictSlices⌉, for strict limits
}

// width is the number of entry values a limit keeps its state in: one
// (a TAT, a quota's end + spend), or strictValues for a strict limit.
func (l Limit) width() int {
	if l.Algorithm == AlgorithmStrict {
		return strictValues
	}
	return 1
}

// Policy is a named, validated set of limits that apply together. It is
// immutable and may be shared by every request of a VM.
type Policy struct {
	name   string
	rules  []rule
	width  int    // entry values the limits keep their state in
	prefix uint64 // FNV-1a state after the name and separator
	field  string // RateLimit-Policy value
	// reported policies only describe limits enforced elsewhere (ReportedPolicy).
	reported bool
}

// NewPolicy validates name (see ValidateLimits for the rules on names) and
// limits and compiles them. Limits without a name are named after the policy:
// the name itself for a single limit, "<name>-<window seconds>s" otherwise.
func NewPolicy(name string, limits []Limit) (*Policy, error) {
	if problem := checkName(name); problem != "" {
		return nil, &NameError{Name: name, Problem: problem}
	}
	if err := ValidateLimits(limits); err != nil {
		return nil, err
	}
	p := &Policy{name: name, rules: make([]rule, len(limits))}
	items := make([]string, len(limits))
	col := 0
	for i, l := range limits {
		if l.Name == "" {
			l.Name = name
			if len(limits) > 1 {
				l.Name = name + "-" + windowName(l)
			}
		}
		r := rule{col: col, offset: int64(l.UTCOffset)}
		col += l.width()
		switch {
		case l.Calendar != CalendarNone:
			l.Window = l.Calendar.nominal()
		case l.Algorithm == AlgorithmStrict:
			r.slice = (int64(l.Window) + strictSlices - 1) / strictSlices
		default:
			r.interval = (int64(l.Window) + l.Requests - 1) / l.Requests
			r.capacity, r.tolerance = l.Requests*r.interval, (l.Requests-1)*r.interval
		}
		r.Limit = l
		p.rules[i] = r
		items[i] = policyItem(l)
	}
	for i := range p.rules {
		for j := range i {
			if p.rules[i].Name == p.rules[j].Name {
				return nil, limitError(i, "name", "name "+strconv.Quote(p.rules[i].Name)+" is also the derived or given name of limits["+strconv.Itoa(j)+"]")
			}
		}
	}
	p.width = col
	p.field = strings.Join(items, ", ")
	p.prefix = shared.FNVString(shared.FNVOffset, name)
	p.prefix = shared.FNVByte(p.prefix, 0) // names never contain NUL: (name, key) pairs hash unambiguously
	return p, nil
}

// Name is the policy's name.
func (p *Policy) Name() string { return p.name }

// Limits returns a copy of the compiled limits, with derived names filled in.
func (p *Policy) Limits() []Limit {
	out := make([]Limit, len(p.rules))
	for i, r := range p.rules {
		out[i] = r.Limit
	}
	return out
}

// minRequests is the smallest Requests of p's limits: the largest cost a
// request can have under p and still be admitted.
func (p *Policy) minRequests() int64 {
	n := int64(MaxRequests)
	for _, r := range p.rules {
		n = min(n, r.Requests)
	}
	return n
}

// Width is the number of values per key the limits keep their state in
// (one per limit, strictValues per strict limit): the record width the
// policy needs.
func (p *Policy) Width() int { return p.width }

// WidthFor returns the widest of policies, for Options.Width.
func WidthFor(policies ...*Policy) int {
	w := 1
	for _, p := range policies {
		w = max(w, p.Width())
	}
	return w
}

// keyHash is the stored identity of (policy, key); 0 marks an empty entry.
func (p *Policy) keyHash(key string, seed uint64) uint64 {
	h := shared.Mix(shared.FNVString(p.prefix, key) ^ seed)
	if h == 0 {
		h = 1
	}
	return h
}
