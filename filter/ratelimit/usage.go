package ratelimit

// usage is one limit's state at a decision, decoded from the key's entry:
// a GCRA debt, a calendar quota's spend in its current window, or a strict
// limit's units in the slices its window sees.
type usage struct {
	debt   int64 // GCRA: TAT − at, in [0, maxDebt]
	spent  int64 // calendar, strict: units the window holds
	end    int64 // calendar: the window's end; strict: the current slice
	counts [strictRing]int64
}

// read decodes r's state from the entry's values at the decision time at.
// On an entry of the key's own (own) a state beyond an exhausted budget is
// cut to it in vals (reported as clamped): its debt can never exceed that,
// while a shared entry legitimately holds other keys' and policies' state.
func (r *rule) read(vals []int64, at int64, own bool) (u usage, clamped bool) {
	if r.Algorithm == AlgorithmStrict {
		return r.readStrict(vals, at, own)
	}
	v := &vals[r.col]
	// A negative value is a strict limit's counts: another key's on a shared
	// entry (an exhausted budget), else left over from another configuration.
	foreign := *v < 0 && !own
	if *v < 0 && own {
		*v = 0
	}
	if r.Calendar != CalendarNone {
		var start int64
		start, u.end = r.Calendar.window(at, r.offset)
		u.spent = quotaSpent(*v, at, start, u.end, own)
		if foreign {
			u.spent = MaxRequests + 1
		}
		if own && u.spent > r.Requests {
			u.spent, *v, clamped = r.Requests, u.end+r.Requests, true
		}
		return u, clamped
	}
	if foreign {
		u.debt = r.capacity
		return u, false
	}
	*v = max(*v, at) // a TAT in the past is no debt; keeps the debt in [0, maxDebt]
	if own && *v-at > r.capacity {
		*v, clamped = at+r.capacity, true
	}
	u.debt = *v - at
	return u, clamped
}

// admits reports whether r lets a request of cost units through.
func (r *rule) admits(u *usage, cost int64) bool {
	if r.Calendar != CalendarNone || r.Algorithm == AlgorithmStrict {
		return u.spent+cost <= r.Requests
	}
	return u.debt <= r.tolerance-(cost-1)*r.interval // debt beyond (N−c)·I denies
}

// charge spends cost units of an admitted request in u and vals.
func (r *rule) charge(vals []int64, u *usage, at, cost int64) {
	if r.Algorithm == AlgorithmStrict {
		r.chargeStrict(vals, u, cost)
		return
	}
	if r.Calendar != CalendarNone {
		u.spent += cost
		vals[r.col] = u.end + u.spent
		return
	}
	u.debt += cost * r.interval
	vals[r.col] = at + u.debt
}

// owe adds a debt of units to u and vals, capped at an exhausted budget
// (a state already beyond it, another key's on a shared entry, is kept).
func (r *rule) owe(vals []int64, u *usage, at, units int64) {
	room := max(r.Requests-u.spent, 0)
	switch {
	case r.Algorithm == AlgorithmStrict:
		r.chargeStrict(vals, u, min(units, room))
	case r.Calendar != CalendarNone:
		r.charge(vals, u, at, min(units, room))
	default:
		u.debt = max(u.debt, min(u.debt+min(units, r.Requests)*r.interval, r.capacity))
		vals[r.col] = at + u.debt
	}
}

// numbers are r's figures for the headers: the requests of cost 1 it
// would admit now, the time until its budget is full again, and for a
// request of cost units it refuses, the time until it admits it.
func (r *rule) numbers(u *usage, at, cost int64) (remaining, reset, retry int64) {
	if r.Algorithm == AlgorithmStrict {
		return r.numbersStrict(u, at, cost)
	}
	if r.Calendar != CalendarNone {
		if u.spent > 0 {
			reset = u.end - at
		}
		if !r.admits(u, cost) {
			retry = u.end - at // the next window starts empty
		}
		return max(r.Requests-u.spent, 0), reset, retry
	}
	remaining = max(r.Requests-(u.debt+r.interval-1)/r.interval, 0)
	return remaining, u.debt, max(u.debt-(r.tolerance-(cost-1)*r.interval), 0)
}
