package ratelimit

import "time"

// Algorithm is how a limit over a Window counts.
type Algorithm uint8

const (
	// AlgorithmGCRA (the default): a cold key gets its N at once, then one
	// every T/N; any window of length T holds at most 2N − 1.
	AlgorithmGCRA Algorithm = iota
	// AlgorithmStrict: any window of length T holds at most N, whatever the
	// timing (a sliding window, counted conservatively in slices).
	AlgorithmStrict
)

// String is the configuration's name of a.
func (a Algorithm) String() string {
	if a == AlgorithmStrict {
		return "strict"
	}
	return "gcra"
}

// A strict limit counts the units admitted in each slice of length
// L = ⌈T/strictSlices⌉ (slice s is [s·L, (s+1)·L) of Unix time) and
// admits a request at t, in slice c, iff the units of slices c−strictSlices
// … c, plus its own, are at most N. Those slices cover (t−T, t], so every
// admission at t sees everything admitted in the T before it. Its state is
// strictValues values of the key's entry:
//
//	value 0     (w + strictRing)·L: the end of the last slice any window
//	            holding slice w, the newest with admissions, can see; the
//	            entry is active until then
//	values 1–3  the units of the strictRing slices w−strictSlices … w,
//	            slice s at position s mod strictRing, two per value as
//	            ^(hi<<31 | lo): negative, so no time is ever mistaken
//	            for counts or counts for a time
//
// maxStrictLag is the furthest a strict limit's state may lie ahead of the
// clock and still be waited for (readStrict); further, the clock is taken
// to have been reset and the key's window starts again.
const maxStrictLag = int64(time.Hour)

const (
	strictSlices = 5
	strictRing   = strictSlices + 1
	strictValues = 1 + strictRing/2
	countBits    = 31
	countMask    = 1<<countBits - 1
)

// readStrict decodes r's state at the decision time at, in slice c = at/L.
// State that is not this limit's (a time that is no slice end, or beyond
// the current slice; counts that are not negative) is another key's on a
// shared entry, and counts as an exhausted budget; on the key's own it is
// left over from another configuration and counts nothing, and counts
// beyond N are cut to N in the current slice (clamped).
func (r *rule) readStrict(vals []int64, at int64, own bool) (u usage, clamped bool) {
	c := at / r.slice
	u.end = c
	newest := vals[r.col]
	if newest <= at {
		return u, false // nothing the current window can see
	}
	w := newest/r.slice - strictRing
	if own && newest%r.slice == 0 && w > c {
		// The key's newest slice is after this decision's: the clock stepped
		// back, or this worker read it a second or more before another
		// committed. Deciding in slice c would move the state back and
		// forget the newer slices' units, so the request is refused as over
		// the limit until the clock reaches the newest slice — unless that
		// is more than maxStrictLag away: the clock was reset, and the key's
		// window starts again.
		if (w-c)*r.slice <= maxStrictLag {
			u.spent = MaxRequests + 1
		}
		return u, false
	}
	foreign := newest%r.slice != 0 || w > c
	for i := range strictRing {
		v := vals[r.col+1+i/2]
		switch {
		case v < 0:
			x := uint64(^v) >> (countBits * (i % 2))
			u.counts[i] = int64(x & countMask)
		case v > 0:
			foreign = true
		}
	}
	if foreign && !own {
		u.spent = MaxRequests + 1
		return u, false
	}
	for s := w + 1; s <= min(c, w+strictRing); s++ {
		u.counts[s%strictRing] = 0 // slices the window has left
	}
	for _, n := range u.counts {
		u.spent += n
	}
	if own && u.spent > r.Requests {
		u.counts = [strictRing]int64{}
		u.counts[c%strictRing], u.spent, clamped = r.Requests, r.Requests, true
		r.writeStrict(vals, &u)
	}
	return u, clamped
}

// writeStrict stores u, whose newest slice is the current one.
func (r *rule) writeStrict(vals []int64, u *usage) {
	vals[r.col] = (u.end + strictRing) * r.slice
	for i := 0; i < strictRing; i += 2 {
		vals[r.col+1+i/2] = ^int64(uint64(u.counts[i]) | uint64(u.counts[i+1])<<countBits)
	}
}

// chargeStrict spends cost units of an admitted request in the current slice.
func (r *rule) chargeStrict(vals []int64, u *usage, cost int64) {
	u.counts[u.end%strictRing] += cost
	u.spent += cost
	r.writeStrict(vals, u)
}

// numbersStrict are the header figures of a strict limit: what is left,
// when the newest units leave the window (the budget is then full), and
// for a refusal, the first slice end after which the window's units plus
// cost fit in N (at that instant the request is admitted).
func (r *rule) numbersStrict(u *usage, at, cost int64) (remaining, reset, retry int64) {
	c := u.end
	for s := c; s > c-strictRing; s-- {
		if u.counts[s%strictRing] > 0 {
			reset = (s+strictRing)*r.slice - at
			break
		}
	}
	if u.spent+cost > r.Requests {
		left := u.spent
		for i := range int64(strictRing) {
			left -= u.counts[(c-strictSlices+i)%strictRing]
			if left+cost <= r.Requests {
				retry = (c+i+1)*r.slice - at
				break
			}
		}
		if retry == 0 { // another key's state: all of it has to leave
			retry = (c+strictRing)*r.slice - at
		}
	}
	return max(r.Requests-u.spent, 0), reset, retry
}
