package ratelimit

import (
	"math/bits"
	"time"
)

// Fault is a set of unusual things that happened during one decision. None
// of them is an error the caller must handle: each has a defined outcome,
// and the plugin counts each in its own metric (Fault.Metric).
type Fault uint8

const (
	// FaultCorrupt: the record was unreadable (length, version, geometry or
	// reserved bits) and was treated as an empty bucket, then rewritten.
	FaultCorrupt Fault = 1 << iota
	// FaultClamped: a stored TAT lay absurdly far in the future; it was cut
	// to an exhausted budget (the key waits at most one emission interval
	// more, and no request is admitted that an exhausted budget would deny).
	FaultClamped
	// FaultClockBackwards: the clock read more than a second before the
	// record's last write; the record's debts were re-based on the new clock.
	FaultClockBackwards
	// FaultShared: every entry of the key's bucket held another key's active
	// state, so the key was charged against a neighbour's budget (stricter
	// for both, never more admissions).
	FaultShared
	// FaultContention: every CAS attempt met a concurrent write; the
	// decision is the configured fail mode.
	FaultContention
	// FaultStore: the store failed (not a CAS mismatch); the decision is the
	// configured fail mode.
	FaultStore
	// FaultPolicy: the policy has more limits than the table's width (a
	// configuration bug the plugin should refuse at start, see WidthFor);
	// the decision is the configured fail mode.
	FaultPolicy
	faultEnd
)

var faultMetrics = [...]string{"corrupt_record", "clamped", "clock_backwards", "shared_slot", "contention", "store_error", "policy_too_wide"}

// Faults lists every fault, for defining one counter each.
func Faults() []Fault {
	out := make([]Fault, 0, len(faultMetrics))
	for f := Fault(1); f < faultEnd; f <<= 1 {
		out = append(out, f)
	}
	return out
}

// Metric is the snake_case name of a single fault, for metric names and logs.
func (f Fault) Metric() string {
	if bits.OnesCount8(uint8(f)) != 1 || f >= faultEnd {
		return "unknown"
	}
	return faultMetrics[bits.TrailingZeros8(uint8(f))]
}

// Has reports whether every fault in g is set in f.
func (f Fault) Has(g Fault) bool { return f&g == g }

// degraded are the faults after which the decision is the fail mode, not a
// computed answer.
const degraded = FaultContention | FaultStore | FaultPolicy

// Decision is the outcome of one request against a policy. Limit, Remaining
// and Reset describe the tightest limit: for a denial the one that keeps the
// request waiting longest, otherwise the one with the fewest remaining
// requests (ties: the longer Reset, then the earlier limit).
type Decision struct {
	Allowed bool
	// Limit is the tightest limit.
	Limit Limit
	// Remaining is how many more requests of cost 1 the tightest limit
	// would admit at this instant, after this one: N − ⌈debt/I⌉, never
	// negative (a request of a higher cost may be refused with some left).
	Remaining int64
	// Reset is the time until the tightest limit's budget is full again
	// (Remaining back to Requests): the debt TAT − now.
	Reset time.Duration
	// RetryAfter is, for a denial, the time until this request, at its
	// cost, would be admitted (every limit allowing it); 0 when allowed.
	RetryAfter time.Duration
	// Faults lists what was repaired or went wrong; see Fault.
	Faults Fault
	// Retries counts the CAS mismatches this decision met.
	Retries int

	at     int64 // decision time, Unix ns
	policy *Policy
	cost   int64 // the requests this one counted as (Decide's cost)
}

// Degraded reports whether the decision is the configured fail mode
// (contention, store error, misconfiguration) rather than computed. Its
// Limit, Remaining and Reset are then unknown and headers omit them.
func (d *Decision) Degraded() bool { return d.Faults&degraded != 0 }

// At is the time the decision was made at.
func (d *Decision) At() time.Time { return time.Unix(0, d.at) }

// ResetAt is the instant the tightest limit's budget is full again.
func (d *Decision) ResetAt() time.Time { return time.Unix(0, d.at+int64(d.Reset)) }
