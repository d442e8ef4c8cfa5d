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

// maxDebt bounds any stored debt (TAT − now): the largest N·I a valid limit
// can have is MaxWindow plus MaxRequests nanoseconds of rounding.
const maxDebt = int64(MaxWindow) + MaxRequests

// Limit admits Requests per Window. Name is the policy item reported in the
// IETF RateLimit-Policy and RateLimit fields; NewPolicy derives it when empty.
type Limit struct {
	Name     string
	Requests int64
	Window   time.Duration
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
	for i, l := range limits {
		if l.Requests < 1 || l.Requests > MaxRequests {
			return limitError(i, "requests", "must be between 1 and "+strconv.Itoa(MaxRequests)+", got "+strconv.FormatInt(l.Requests, 10))
		}
		if l.Window < MinWindow || l.Window > MaxWindow {
			return limitError(i, "window", "must be between "+MinWindow.String()+" and "+MaxWindow.String()+", got "+l.Window.String())
		}
		if l.Window%time.Second != 0 {
			return limitError(i, "window", "must be a whole number of seconds, got "+l.Window.String())
		}
		if l.Name != "" {
			if err := checkName(l.Name); err != "" {
				return limitError(i, "name", err)
			}
		}
		for j := range i {
			if limits[j].Window == l.Window {
				return limitError(i, "window", "duplicate window "+l.Window.String()+" (also limits["+strconv.Itoa(j)+"]); keep the stricter one")
			}
			if l.Name != "" && limits[j].Name == l.Name {
				return limitError(i, "name", "duplicate name "+strconv.Quote(l.Name)+" (also limits["+strconv.Itoa(j)+"])")
			}
		}
	}
	return nil
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

// rule is a compiled limit: GCRA's emission interval and tolerances in ns.
type rule struct {
	Limit
	interval  int64 // I = ⌈T/N⌉
	capacity  int64 // N·I, the debt of an exhausted budget
	tolerance int64 // (N−1)·I, the largest debt that still admits
}

// Policy is a named, validated set of limits that apply together. It is
// immutable and may be shared by every request of a VM.
type Policy struct {
	name   string
	rules  []rule
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
	for i, l := range limits {
		if l.Name == "" {
			l.Name = name
			if len(limits) > 1 {
				l.Name = name + "-" + strconv.FormatInt(int64(l.Window/time.Second), 10) + "s"
			}
		}
		window := int64(l.Window)
		interval := (window + l.Requests - 1) / l.Requests
		p.rules[i] = rule{Limit: l, interval: interval, capacity: l.Requests * interval, tolerance: (l.Requests - 1) * interval}
		items[i] = policyItem(l)
	}
	for i := range p.rules {
		for j := range i {
			if p.rules[i].Name == p.rules[j].Name {
				return nil, limitError(i, "name", "name "+strconv.Quote(p.rules[i].Name)+" is also the derived or given name of limits["+strconv.Itoa(j)+"]")
			}
		}
	}
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

// Width is the number of limits, i.e. the record width the policy needs.
func (p *Policy) Width() int { return len(p.rules) }

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
