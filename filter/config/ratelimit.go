package config

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis/portcullis/filter/fleet"
	"github.com/portcullis/portcullis/filter/ratelimit"
	"github.com/portcullis/portcullis/filter/route"
)

// RateLimitFile configures rate limiting: local (one Envoy, every worker,
// limits set here), fleet (envoyproxy/ratelimit, limits set in its
// descriptor config) or hybrid (both: the local limits first, then the
// fleet's). Protected routes are keyed by the verified key claim; public
// routes only when PublicKey says how.
type RateLimitFile struct {
	Mode         string
	Fleet        *FleetFile
	PublicKey    string
	Default      []LimitFile
	Plans        *PlansFile
	Slots        int
	CASRetries   int
	OnContention string
	ResetFormat  string
	// Enforce false is shadow mode for every rule that does not say
	// otherwise (routes[].enforce.rate_limit).
	Enforce *bool
	// ShadowHeaders sends the rate-limit headers on the responses of rules
	// in shadow mode too (they are left out by default, so clients see no
	// change while the limits are tried out).
	ShadowHeaders bool
	// UTCOffsetMinutes is the zone calendar quotas (limits with a
	// calendar window) start their days, weeks and months in; default UTC.
	UTCOffsetMinutes *int
}

func (f *RateLimitFile) members() []member {
	return []member{
		{"mode", str(&f.Mode)},
		{"fleet", optional(&f.Fleet, nested[FleetFile])},
		{"public_key", str(&f.PublicKey)},
		{"default", list(&f.Default, nested[LimitFile])},
		{"plans", optional(&f.Plans, nested[PlansFile])},
		{"slots", integer(&f.Slots)},
		{"cas_retries", integer(&f.CASRetries)},
		{"on_contention", str(&f.OnContention)},
		{"reset_format", str(&f.ResetFormat)},
		{"enforce", optional(&f.Enforce, flag)},
		{"shadow_headers", flag(&f.ShadowHeaders)},
		{"utc_offset_minutes", optional(&f.UTCOffsetMinutes, integer[int])},
	}
}

// FleetFile configures the calls to envoyproxy/ratelimit.
type FleetFile struct {
	Cluster    string
	Authority  string
	Domain     string
	TimeoutMS  int
	OnFailure  string
	BlockSlots int
	LeaseSlots int
	Protocol   string
}

func (f *FleetFile) members() []member {
	return []member{
		{"cluster", str(&f.Cluster)},
		{"authority", str(&f.Authority)},
		{"domain", str(&f.Domain)},
		{"timeout_ms", integer(&f.TimeoutMS)},
		{"on_failure", str(&f.OnFailure)},
		{"block_slots", integer(&f.BlockSlots)},
		{"lease_slots", integer(&f.LeaseSlots)},
		{"protocol", str(&f.Protocol)},
	}
}

// LimitFile is one limit: Requests per WindowSeconds, counted by
// Algorithm (gcra, the default, or strict), or per calendar window
// (Calendar: day, week or month) as a quota.
type LimitFile struct {
	Requests      int64
	WindowSeconds int64
	Calendar      string
	Algorithm     string
}

func (f *LimitFile) members() []member {
	return []member{
		{"requests", integer(&f.Requests)},
		{"window_seconds", integer(&f.WindowSeconds)},
		{"calendar", str(&f.Calendar)},
		{"algorithm", str(&f.Algorithm)},
	}
}

// PlansFile chooses the limits by a claim of the verified token.
type PlansFile struct {
	Claim  string
	ByPlan map[string][]LimitFile
}

func (f *PlansFile) members() []member {
	return []member{
		{"claim", str(&f.Claim)},
		{"by_plan", dict(&f.ByPlan, func(limits *[]LimitFile) decodeFunc { return list(limits, nested[LimitFile]) })},
	}
}

// RateLimit is the compiled rate-limit configuration.
type RateLimit struct {
	// Default applies to protected routes without an override whose caller's
	// plan claim names no configured plan.
	Default *ratelimit.Policy
	// PlanClaim is the claim naming the caller's plan; Plans maps its values.
	PlanClaim string
	Plans     map[string]*ratelimit.Policy
	// Options for ratelimit.New, without Store and Now.
	Options     ratelimit.Options
	ResetFormat ratelimit.ResetFormat
	// PublicKey is what public routes are counted by; KeyNone leaves them
	// unlimited.
	PublicKey KeySource
	// Fleet is set in fleet and hybrid mode: the service decides (in hybrid
	// mode, on the requests the local limits admitted). In fleet mode
	// Default, Plans, Options and route overrides are unused (Local false).
	Fleet *Fleet
	// ShadowHeaders: responses of rules in shadow mode carry the rate-limit
	// headers (without Retry-After, since they are forwarded).
	ShadowHeaders bool

	// calendarOffset is the zone of calendar quotas (utc_offset_minutes).
	calendarOffset time.Duration
}

// Local reports whether this Envoy's limiter decides (local and hybrid
// mode): Default, Plans, Options and route overrides are set.
func (rl *RateLimit) Local() bool { return rl.Default != nil }

// ruleLimit is what rate limiting compiles for one route rule.
type ruleLimit struct {
	policy     *ratelimit.Policy // the rule's override; nil when it has none
	cost       int64             // 1 unless the rule says more
	costHeader string            // lower case; "" when the rule has none
	leaseBatch int64             // the fleet lease's largest batch; 0 without one
	shadow     bool              // not enforced: counted and forwarded
}

// KeySource is what a public route's requests are counted by.
type KeySource struct {
	Kind   KeyKind
	Header string // lower case, for KeyHeader
}

// KeyKind names a key source.
type KeyKind uint8

const (
	KeyNone          KeyKind = iota // public routes are not limited
	KeyClientAddress                // the downstream address (Envoy's source.address), port dropped
	KeyHeader                       // a request header's value (as trustworthy as whoever sets it)
)

// Fleet is the compiled fleet block.
type Fleet struct {
	Cluster, Authority, Domain string
	Timeout                    time.Duration
	// FailOpen admits requests when the service cannot answer (no answer in
	// time, an error, an answer not understood); otherwise they are refused.
	FailOpen   bool
	BlockSlots int
	LeaseSlots int
	// Leasing: some rule leases batches of its budget (routes[].fleet_lease).
	Leasing bool
	// Protocol is how the service is called: gRPC (an HTTP/2 cluster) or
	// its HTTP /json endpoint.
	Protocol fleet.Protocol
}

// Fleet defaults.
const (
	DefaultFleetCluster   = "ratelimit"
	DefaultFleetAuthority = "ratelimit"
	DefaultFleetDomain    = "portcullis"
	DefaultFleetTimeout   = 100 * time.Millisecond
	MaxFleetTimeoutMS     = 5000
	DefaultLeaseMaxBatch  = 50
)

// DefaultRateLimit is the limit used when rate_limit.default is omitted: the
// tutorial's 100 requests per 60 s.
var DefaultRateLimit = []LimitFile{{Requests: 100, WindowSeconds: 60}}

// DefaultPlanClaim is the claim naming the caller's plan.
const DefaultPlanClaim = "plan"

// Bounds of rate_limit.utc_offset_minutes: the zones in use, UTC−12:00 to
// UTC+14:00.
const (
	MinUTCOffsetMinutes = -12 * 60
	MaxUTCOffsetMinutes = 14 * 60
)

// compileRateLimit compiles the top-level block and returns it with what
// each route rule is charged: its override policy (nil for rules without
// one), its cost and whether it is enforced.
func compileRateLimit(f *RateLimitFile, routes []RouteFile) (*RateLimit, []ruleLimit, error) {
	rules := make([]ruleLimit, len(routes))
	rl, err := compileRateLimitBlock(f, routes)
	if err != nil || rl == nil {
		return rl, rules, err
	}
	enforce := f.Enforce == nil || *f.Enforce
	for i, r := range routes {
		rules[i] = ruleLimit{cost: 1, shadow: !enforce, costHeader: strings.ToLower(r.CostHeader)}
		if r.Cost != nil {
			rules[i].cost = *r.Cost
		}
		if r.Enforce != nil && r.Enforce.RateLimit != nil {
			rules[i].shadow = !*r.Enforce.RateLimit
		}
		if r.FleetLease != nil {
			rules[i].leaseBatch = cmp.Or(r.FleetLease.MaxBatch, DefaultLeaseMaxBatch)
			rl.Fleet.Leasing = true
		}
	}
	if !rl.Local() {
		return rl, rules, nil
	}
	overrides, err := compileOverrides(routes, rl.calendarOffset)
	if err != nil {
		return nil, nil, err
	}
	policies := []*ratelimit.Policy{rl.Default}
	for _, p := range rl.Plans {
		policies = append(policies, p)
	}
	for i, p := range overrides {
		rules[i].policy = p
		if p != nil {
			policies = append(policies, p)
		}
	}
	if err := checkCosts(rl, routes, rules); err != nil {
		return nil, nil, err
	}
	rl.Options.Width = ratelimit.WidthFor(policies...)
	return rl, rules, nil
}

// checkCosts refuses a rule whose cost exceeds a limit that may apply to it
// (its override, else the default and every plan): no request of it could
// ever be admitted under that limit.
func checkCosts(rl *RateLimit, routes []RouteFile, rules []ruleLimit) error {
	for i, r := range rules {
		if routes[i].Cost == nil {
			continue
		}
		applies := []*ratelimit.Policy{r.policy}
		if r.policy == nil {
			applies = []*ratelimit.Policy{rl.Default}
			for _, plan := range sortedKeys(rl.Plans) {
				applies = append(applies, rl.Plans[plan])
			}
		}
		for _, p := range applies {
			for _, l := range p.Limits() {
				if r.cost > l.Requests {
					return fieldError(indexed("routes", i)+".cost", strconv.FormatInt(r.cost, 10)+" is more than the "+strconv.FormatInt(l.Requests, 10)+" requests of limit "+strconv.Quote(l.Name)+", which could then never admit the rule's requests")
				}
			}
		}
	}
	return nil
}

// compileRateLimitBlock compiles the top-level block; the routes are read
// only to refuse overrides that cannot apply.
func compileRateLimitBlock(f *RateLimitFile, routes []RouteFile) (*RateLimit, error) {
	for i, r := range routes {
		if err := checkRuleLimitFields(f, i, r); err != nil {
			return nil, err
		}
	}
	if f == nil {
		return nil, nil
	}
	rl := &RateLimit{PlanClaim: DefaultPlanClaim, Plans: map[string]*ratelimit.Policy{}, ShadowHeaders: f.ShadowHeaders}
	var err error
	if rl.PublicKey, err = compileKeySource(f.PublicKey); err != nil {
		return nil, err
	}
	switch f.ResetFormat {
	case "", "seconds":
		rl.ResetFormat = ratelimit.ResetSeconds
	case "timestamp":
		rl.ResetFormat = ratelimit.ResetTimestamp
	default:
		return nil, fieldError("rate_limit.reset_format", "must be seconds or timestamp, got "+strconv.Quote(f.ResetFormat))
	}
	switch f.Mode {
	case "", "local":
		if f.Fleet != nil {
			return nil, fieldError("rate_limit.fleet", `only in fleet or hybrid mode (rate_limit.mode "fleet" or "hybrid")`)
		}
	case "fleet":
		if rl.Fleet, err = compileFleet(f, false); err != nil {
			return nil, err
		}
		return rl, nil
	case "hybrid":
		if rl.Fleet, err = compileFleet(f, true); err != nil {
			return nil, err
		}
	default:
		return nil, fieldError("rate_limit.mode", "must be local, fleet or hybrid, got "+strconv.Quote(f.Mode))
	}
	if rl.calendarOffset, err = compileUTCOffset(f, routes); err != nil {
		return nil, err
	}
	defaults := f.Default
	if defaults == nil {
		defaults = DefaultRateLimit
	}
	if rl.Default, err = compilePolicy("rate_limit.default", "default", defaults, rl.calendarOffset); err != nil {
		return nil, err
	}
	if f.Plans != nil {
		if f.Plans.Claim != "" {
			if strings.TrimSpace(f.Plans.Claim) != f.Plans.Claim {
				return nil, fieldError("rate_limit.plans.claim", "must not have surrounding spaces")
			}
			rl.PlanClaim = f.Plans.Claim
		}
		if len(f.Plans.ByPlan) == 0 {
			return nil, fieldError("rate_limit.plans.by_plan", "required: at least one plan")
		}
		for _, plan := range sortedKeys(f.Plans.ByPlan) {
			field := "rate_limit.plans.by_plan." + plan
			if plan == "" {
				return nil, fieldError("rate_limit.plans.by_plan", "plan names must not be empty")
			}
			p, err := compilePolicy(field, "plan-"+plan, f.Plans.ByPlan[plan], rl.calendarOffset)
			if err != nil {
				return nil, err
			}
			rl.Plans[plan] = p
		}
	}
	switch f.OnContention {
	case "", "allow":
		rl.Options.FailMode = ratelimit.FailOpen
	case "deny":
		rl.Options.FailMode = ratelimit.FailClosed
	default:
		return nil, fieldError("rate_limit.on_contention", "must be allow or deny, got "+strconv.Quote(f.OnContention))
	}
	if s := f.Slots; s != 0 && (s < ratelimit.DefaultWays || s > ratelimit.MaxSlots || s%ratelimit.DefaultWays != 0) {
		return nil, fieldError("rate_limit.slots", "must be a multiple of "+strconv.Itoa(ratelimit.DefaultWays)+" between "+strconv.Itoa(ratelimit.DefaultWays)+" and "+strconv.Itoa(ratelimit.MaxSlots)+", got "+strconv.Itoa(s))
	}
	if n := f.CASRetries; n != 0 && (n < 1 || n > ratelimit.MaxCASRetries) {
		return nil, fieldError("rate_limit.cas_retries", "must be between 1 and "+strconv.Itoa(ratelimit.MaxCASRetries)+", got "+strconv.Itoa(n))
	}
	rl.Options.Slots = f.Slots
	rl.Options.CASRetries = f.CASRetries
	return rl, nil
}

// checkRuleLimitFields refuses the rate-limit fields of rule i that cannot
// apply: rate_limit, cost, cost_header and enforce.rate_limit need the
// top-level block, and on a public rule a public_key to count by; overrides
// are local only; a cost is 1 to MaxRequests; a cost_header is a header
// name the gateway does not set itself.
func checkRuleLimitFields(f *RateLimitFile, i int, r RouteFile) error {
	field := indexed("routes", i)
	for _, set := range []struct {
		name string
		set  bool
	}{
		{"rate_limit", r.RateLimit != nil}, {"cost", r.Cost != nil}, {"cost_header", r.CostHeader != ""},
		{"enforce.rate_limit", r.Enforce != nil && r.Enforce.RateLimit != nil}, {"fleet_lease", r.FleetLease != nil},
	} {
		switch {
		case !set.set:
		case f == nil:
			return fieldError(field+"."+set.name, "requires the top-level rate_limit block")
		case r.Public && f.PublicKey == "":
			return fieldError(field+"."+set.name, "public routes are rate-limited only with rate_limit.public_key (there is no verified key to count against)")
		}
	}
	if r.FleetLease != nil {
		switch n := r.FleetLease.MaxBatch; {
		case f.Mode != "fleet" && f.Mode != "hybrid":
			return fieldError(field+".fleet_lease", `leases a fleet budget: only in fleet or hybrid mode (rate_limit.mode "fleet" or "hybrid")`)
		case n != 0 && (n < 2 || n > fleet.MaxLeaseBatch):
			return fieldError(field+".fleet_lease.max_batch", "must be between 2 and "+strconv.Itoa(fleet.MaxLeaseBatch)+", got "+strconv.FormatInt(n, 10))
		}
	}
	if r.RateLimit != nil && f.Mode == "fleet" {
		return fieldError(field+".rate_limit", "in fleet mode the limits are set in the ratelimit service's descriptor config")
	}
	if c := r.Cost; c != nil && (*c < 1 || *c > ratelimit.MaxRequests) {
		return fieldError(field+".cost", "must be between 1 and "+strconv.Itoa(ratelimit.MaxRequests)+", got "+strconv.FormatInt(*c, 10))
	}
	if h := strings.ToLower(r.CostHeader); h != "" && (!isToken(h) || slices.Contains(rateLimitHeaders, h)) {
		return fieldError(field+".cost_header", "not a response header the upstream can set: "+strconv.Quote(r.CostHeader))
	}
	return nil
}

// rateLimitHeaders are the response headers the gateway sets itself, which
// a cost_header cannot be.
var rateLimitHeaders = []string{ratelimit.HeaderLimit, ratelimit.HeaderRemaining, ratelimit.HeaderReset,
	ratelimit.HeaderPolicy, ratelimit.HeaderRateLimit, ratelimit.HeaderRetryAfter}

// compileOverrides compiles the routes' rate_limit overrides: one policy
// per rule, nil where the rule has none. Each is named after its rule
// ("route-<name>"), or its index where the name is taken or unusable.
func compileOverrides(routes []RouteFile, offset time.Duration) ([]*ratelimit.Policy, error) {
	out := make([]*ratelimit.Policy, len(routes))
	names := map[string]bool{}
	for i, r := range routes {
		if r.RateLimit == nil {
			continue
		}
		name := "route-" + ruleName(r)
		if names[name] || !validPolicyName(name) {
			name = "route-" + strconv.Itoa(i)
		}
		names[name] = true
		p, err := compilePolicy(indexed("routes", i)+".rate_limit", name, r.RateLimit, offset)
		if err != nil {
			return nil, err
		}
		out[i] = p
	}
	return out, nil
}

// compileFleet compiles the fleet block; in fleet mode (not hybrid) the
// local-mode fields must be absent.
func compileFleet(f *RateLimitFile, hybrid bool) (*Fleet, error) {
	for _, local := range []struct {
		name string
		set  bool
	}{
		{"default", f.Default != nil}, {"plans", f.Plans != nil}, {"slots", f.Slots != 0},
		{"cas_retries", f.CASRetries != 0}, {"on_contention", f.OnContention != ""},
		{"utc_offset_minutes", f.UTCOffsetMinutes != nil},
	} {
		if local.set && !hybrid {
			return nil, fieldError("rate_limit."+local.name, `only in local or hybrid mode: in fleet mode the limits are set in the ratelimit service's descriptor config`)
		}
	}
	if f.Fleet == nil {
		return nil, fieldError("rate_limit.fleet", "required in fleet and hybrid mode")
	}
	ff := f.Fleet
	fl := &Fleet{
		Cluster:    cmp.Or(ff.Cluster, DefaultFleetCluster),
		Authority:  cmp.Or(ff.Authority, DefaultFleetAuthority),
		Domain:     cmp.Or(ff.Domain, DefaultFleetDomain),
		Timeout:    DefaultFleetTimeout,
		BlockSlots: ff.BlockSlots,
		LeaseSlots: ff.LeaseSlots,
	}
	if !isToken(fl.Cluster) {
		return nil, fieldError("rate_limit.fleet.cluster", "not an Envoy cluster name: "+strconv.Quote(fl.Cluster))
	}
	if !isToken(fl.Domain) {
		return nil, fieldError("rate_limit.fleet.domain", "not a descriptor domain: "+strconv.Quote(fl.Domain))
	}
	if !route.SafeHeaderValue(fl.Authority) || strings.ContainsAny(fl.Authority, " \t/") {
		return nil, fieldError("rate_limit.fleet.authority", "not a host[:port]: "+strconv.Quote(fl.Authority))
	}
	if ms := ff.TimeoutMS; ms != 0 {
		if ms < 1 || ms > MaxFleetTimeoutMS {
			return nil, fieldError("rate_limit.fleet.timeout_ms", "must be between 1 and "+strconv.Itoa(MaxFleetTimeoutMS)+", got "+strconv.Itoa(ms))
		}
		fl.Timeout = time.Duration(ms) * time.Millisecond
	}
	switch ff.OnFailure {
	case "", "allow":
		fl.FailOpen = true
	case "deny":
	default:
		return nil, fieldError("rate_limit.fleet.on_failure", "must be allow or deny, got "+strconv.Quote(ff.OnFailure))
	}
	switch ff.Protocol {
	case "", "grpc":
	case "json":
		fl.Protocol = fleet.JSON
	default:
		return nil, fieldError("rate_limit.fleet.protocol", "must be grpc or json, got "+strconv.Quote(ff.Protocol))
	}
	if n := ff.BlockSlots; n != 0 && (n < 1 || n > fleet.MaxBlockSlots) {
		return nil, fieldError("rate_limit.fleet.block_slots", "must be between 1 and "+strconv.Itoa(fleet.MaxBlockSlots)+", got "+strconv.Itoa(n))
	}
	if n := ff.LeaseSlots; n != 0 && (n < 1 || n > fleet.MaxLeaseSlots) {
		return nil, fieldError("rate_limit.fleet.lease_slots", "must be between 1 and "+strconv.Itoa(fleet.MaxLeaseSlots)+", got "+strconv.Itoa(n))
	}
	return fl, nil
}

// compileKeySource reads public_key: "", "client_address" or "header:<name>".
func compileKeySource(s string) (KeySource, error) {
	switch {
	case s == "":
		return KeySource{}, nil
	case s == "client_address":
		return KeySource{Kind: KeyClientAddress}, nil
	case strings.HasPrefix(s, "header:"):
		name := strings.ToLower(strings.TrimPrefix(s, "header:"))
		if !isToken(name) {
			return KeySource{}, fieldError("rate_limit.public_key", "not a header name: "+strconv.Quote(strings.TrimPrefix(s, "header:")))
		}
		return KeySource{Kind: KeyHeader, Header: name}, nil
	}
	return KeySource{}, fieldError("rate_limit.public_key", `must be "client_address" or "header:<name>", got `+strconv.Quote(s))
}

func validPolicyName(name string) bool {
	_, err := ratelimit.NewPolicy(name, []ratelimit.Limit{{Requests: 1, Window: time.Second}})
	return err == nil
}

// compileUTCOffset reads utc_offset_minutes, which only calendar quotas use:
// set without one, it is refused (it would change nothing).
func compileUTCOffset(f *RateLimitFile, routes []RouteFile) (time.Duration, error) {
	m := f.UTCOffsetMinutes
	if m == nil {
		return 0, nil
	}
	if *m < MinUTCOffsetMinutes || *m > MaxUTCOffsetMinutes {
		return 0, fieldError("rate_limit.utc_offset_minutes", "must be between "+strconv.Itoa(MinUTCOffsetMinutes)+" and "+strconv.Itoa(MaxUTCOffsetMinutes)+", got "+strconv.Itoa(*m))
	}
	lists := [][]LimitFile{f.Default}
	if f.Plans != nil {
		for _, plan := range f.Plans.ByPlan {
			lists = append(lists, plan)
		}
	}
	for _, r := range routes {
		lists = append(lists, r.RateLimit)
	}
	for _, list := range lists {
		if slices.ContainsFunc(list, func(l LimitFile) bool { return l.Calendar != "" }) {
			return time.Duration(*m) * time.Minute, nil
		}
	}
	return 0, fieldError("rate_limit.utc_offset_minutes", "only for limits with a calendar window, and no limit has one")
}

// compilePolicy validates limits (at field) and compiles them into a policy;
// calendar quotas start their windows at offset from UTC.
func compilePolicy(field, name string, limits []LimitFile, offset time.Duration) (*ratelimit.Policy, error) {
	out := make([]ratelimit.Limit, len(limits))
	maxSeconds := int64(ratelimit.MaxWindow / time.Second)
	for i, l := range limits {
		var algorithm ratelimit.Algorithm
		switch l.Algorithm {
		case "", "gcra":
		case "strict":
			algorithm = ratelimit.AlgorithmStrict
		default:
			return nil, fieldError(indexed(field, i)+".algorithm", "must be gcra or strict, got "+strconv.Quote(l.Algorithm))
		}
		if l.Calendar != "" {
			c, ok := ratelimit.ParseCalendar(l.Calendar)
			switch {
			case !ok:
				return nil, fieldError(indexed(field, i)+".calendar", "must be day, week or month, got "+strconv.Quote(l.Calendar))
			case l.WindowSeconds != 0:
				return nil, fieldError(indexed(field, i)+".window_seconds", "not with calendar: a calendar window has its own length")
			case l.Algorithm != "":
				return nil, fieldError(indexed(field, i)+".algorithm", "not with calendar: a calendar quota counts its whole window")
			}
			out[i] = ratelimit.Limit{Requests: l.Requests, Calendar: c, UTCOffset: offset}
			continue
		}
		if l.WindowSeconds < 1 || l.WindowSeconds > maxSeconds {
			return nil, fieldError(indexed(field, i)+".window_seconds", "must be between 1 and "+strconv.FormatInt(maxSeconds, 10)+", got "+strconv.FormatInt(l.WindowSeconds, 10))
		}
		out[i] = ratelimit.Limit{Requests: l.Requests, Window: time.Duration(l.WindowSeconds) * time.Second, Algorithm: algorithm}
	}
	p, err := ratelimit.NewPolicy(name, out)
	// NewPolicy returns its errors unwrapped, so type assertions find them;
	// errors.As would link reflectlite's assignability code for nothing.
	le, isLE := err.(*ratelimit.LimitError)
	ne, isNE := err.(*ratelimit.NameError)
	switch {
	case err == nil:
		return p, nil
	case isLE && le.Index < 0:
		return nil, fieldError(field, le.Problem)
	case isLE:
		sub := le.Field
		switch sub {
		case "window":
			sub = "window_seconds"
			if out[le.Index].Calendar != ratelimit.CalendarNone {
				sub = "calendar"
			}
		}
		return nil, fieldError(indexed(field, le.Index)+"."+sub, le.Problem)
	case isNE:
		return nil, fieldError(field, "name "+strconv.Quote(strings.TrimPrefix(name, "plan-"))+" "+ne.Problem)
	}
	return nil, fieldError(field, err.Error())
}
