package fleet

import (
	"encoding/binary"
	"errors"
	"strconv"
	"time"

	"github.com/portcullis/portcullis/filter/shared"
	"github.com/portcullis/portcullis/filter/wrap"
)

// Leases holds, in shared data, the part of each (key, route) pair's fleet
// budget this Envoy has reserved: one call asks the service for a batch of
// hits (hits_addend = batch), the service counts all of them at once, and
// every worker then admits requests from the batch with no call until it
// runs out or its window ends.
//
// The fleet never admits more than its limit: every request admitted from a
// lease was counted by the service before it was admitted, and a lease is
// spent only inside the service's window that counted it (it expires
// LeaseMargin before the window's end as the service reported it). What a
// lease costs is under-admission: hits reserved and not spent by the window's
// end are lost, and a batch asked for when less than the batch is left is
// refused whole by the service (it counts the hits either way). Both are at
// most one batch per Envoy per pair per window, since one worker at a time
// asks for a pair's lease (Reserve marks the call in flight; the others make
// plain calls meanwhile).
//
// Like the Blocklist it is a fixed table of slots ("pc:rll:<n>"): a pair's
// lease lives in the slot its hash selects, and a pair whose slot holds
// another pair's live lease makes plain calls.
type Leases struct {
	store shared.Store
	slots uint64
	buf   [leaseRecordSize]byte
	kb    []byte
}

// Lease bounds.
const (
	DefaultLeaseSlots = 4096
	MaxLeaseSlots     = 1 << 20
	MaxLeaseBatch     = 10000
	// LeaseMargin is how long before the service's reported reset a lease
	// stops being spent: the service reports whole seconds left
	// (window − now mod window, now truncated to the second), so its window
	// may end up to a second before the reported reset.
	LeaseMargin = time.Second
	// LeaseTarget is how long a batch is sized to last at the pair's
	// recent rate: at most about one call per pair per LeaseTarget per Envoy.
	LeaseTarget = 2 * time.Second
	// leaseRetries bounds the compare-and-swap attempts of one update.
	leaseRetries = 4
)

// leaseRecordSize: version, pair hash, hits left, window end (Unix ms), last
// batch, when it was granted (Unix ms), in flight until (Unix ms), the
// limit's requests, window seconds, and what the service had left.
const leaseRecordSize = 1 + 9*8

const leaseRecordVersion = 1

// leaseRecord is one slot's value.
type leaseRecord struct {
	hash          uint64
	left          int64 // hits of the lease not yet spent
	windowEnd     int64 // Unix ms: when the service's window ends, as it reported
	batch         int64 // the last batch granted
	grantedAt     int64 // Unix ms
	inFlightUntil int64 // Unix ms: a worker's lease call is in flight until then
	limit         int64
	windowSecs    int64
	serviceLeft   int64 // what the service had left after the last grant
}

// live reports whether r's lease can be spent at now (Unix ms).
func (r *leaseRecord) live(now int64) bool {
	return r.left > 0 && now < r.windowEnd-LeaseMargin.Milliseconds()
}

func (r *leaseRecord) encode(b *[leaseRecordSize]byte) []byte {
	b[0] = leaseRecordVersion
	for i, v := range [...]int64{int64(r.hash), r.left, r.windowEnd, r.batch, r.grantedAt, r.inFlightUntil, r.limit, r.windowSecs, r.serviceLeft} {
		binary.LittleEndian.PutUint64(b[1+8*i:], uint64(v))
	}
	return b[:]
}

// decodeLease reads a slot's value; ok is false for a value of another
// version or length (treated as an empty slot).
func decodeLease(val []byte) (leaseRecord, bool) {
	if len(val) != leaseRecordSize || val[0] != leaseRecordVersion {
		return leaseRecord{}, false
	}
	var f [9]int64
	for i := range f {
		f[i] = int64(binary.LittleEndian.Uint64(val[1+8*i:]))
	}
	return leaseRecord{hash: uint64(f[0]), left: f[1], windowEnd: f[2], batch: f[3], grantedAt: f[4],
		inFlightUntil: f[5], limit: f[6], windowSecs: f[7], serviceLeft: f[8]}, true
}

// NewLeases returns a table of slots keys in store (0 means DefaultLeaseSlots).
func NewLeases(store shared.Store, slots int) *Leases {
	if slots <= 0 {
		slots = DefaultLeaseSlots
	}
	return &Leases{store: store, slots: uint64(min(slots, MaxLeaseSlots)), kb: []byte("pc:rll:")}
}

// Spent is what a request admitted from a lease reports.
type Spent struct {
	Limit  int64
	Window time.Duration
	// Remaining is what the service had left after the last grant plus
	// what is left of this Envoy's lease: an upper bound of the fleet's
	// budget (other Envoys' leases are not known here).
	Remaining int64
	Reset     time.Duration
	// Renew: the lease is down to its low-water mark (half its batch) and
	// no call for the pair is in flight, so the request that spent it
	// should also ask for the next batch (Reserve with cost 0): it arrives
	// while the rest of this one is spent, instead of after, when every
	// request until then would make a plain call.
	Renew bool
}

// Spend takes cost hits from the lease of (key, route). ok is false when
// there is none to take them from: no lease, another pair's, expired, or
// fewer than cost left (then the request asks the service, see Reserve).
func (l *Leases) Spend(key, route string, cost int64, now time.Time) (Spent, bool) {
	h := shared.PairHash(key, route)
	slot := l.slotKey(h)
	ms := now.UnixMilli()
	for range leaseRetries {
		val, cas, found, err := l.store.Get(slot)
		if err != nil || !found {
			return Spent{}, false
		}
		r, ok := decodeLease(val)
		if !ok || r.hash != h || !r.live(ms) || r.left < cost {
			return Spent{}, false
		}
		r.left -= cost
		switch err := l.store.Set(slot, r.encode(&l.buf), cas); {
		case err == nil:
			return Spent{Limit: r.limit, Window: time.Duration(r.windowSecs) * time.Second,
				Remaining: r.serviceLeft + r.left, Reset: time.Duration(r.windowEnd-ms) * time.Millisecond,
				Renew: r.left < r.batch/2 && ms >= r.inFlightUntil}, true
		case !errors.Is(err, shared.ErrCasMismatch):
			return Spent{}, false
		}
	}
	return Spent{}, false
}

// Reserve decides whether this request asks the service for a new lease of
// (key, route), and for how many hits (at least cost; it spends cost of
// them; cost is 0 for a renewal by a request already admitted, Spent.Renew). It marks the call in flight until now + inFlight so that the
// other workers make plain calls meanwhile; ok is false when another
// worker's call is in flight, when the slot holds another pair's live
// lease, or when the mark cannot be written: the request then makes a plain
// call.
//
// The batch is sized to last LeaseTarget at the rate the last lease was
// spent at (at most four times the last batch, at least half of it), and is at
// most maxBatch, half of what the service had left (half the limit in a new
// window: so that one Envoy never asks for more than is left), and what the
// rate would spend before the window ends. The first lease of a pair is cost: it learns the limit.
func (l *Leases) Reserve(key, route string, cost, maxBatch int64, inFlight time.Duration, now time.Time) (hits int64, ok bool) {
	h := shared.PairHash(key, route)
	slot := l.slotKey(h)
	ms := now.UnixMilli()
	val, cas, found, err := l.store.Get(slot)
	if err != nil {
		return 0, false
	}
	r, known := decodeLease(val)
	switch {
	case !found:
		r, cas = leaseRecord{hash: h}, shared.CreateCAS
	case r.hash != h && r.live(ms):
		return 0, false
	case !known || r.hash != h:
		r = leaseRecord{hash: h}
	case ms < r.inFlightUntil:
		return 0, false
	}
	hits = max(cost, nextBatch(&r, maxBatch, ms))
	r.inFlightUntil = ms + inFlight.Milliseconds()
	if l.store.Set(slot, r.encode(&l.buf), cas) != nil {
		return 0, false
	}
	return hits, true
}

// nextBatch sizes the next lease of r's pair at now (Unix ms).
func nextBatch(r *leaseRecord, maxBatch, now int64) int64 {
	if r.batch == 0 || r.windowSecs == 0 {
		return 1
	}
	target := LeaseTarget.Milliseconds()
	if left := windowLeft(r.windowSecs*1000, now); left < target {
		target = left
	}
	lasted := max(now-r.grantedAt, 1)
	spent := max(r.batch-r.left, 1) // renewed early, part of the last batch is still left
	b := spent * target / lasted
	b = min(max(b, r.batch/2), 4*r.batch, maxBatch)
	if r.windowEnd > now { // the same window as the last grant: the service's count is known
		b = min(b, r.serviceLeft/2)
	} else { // a new window: at most the whole limit is left
		b = min(b, r.limit/2)
	}
	return max(b, 1)
}

// windowLeft is how long the service's fixed window of length window (ms)
// has left at now (Unix ms): it aligns its windows to the Unix epoch. Only
// batch sizes depend on it, never which hits may be spent.
func windowLeft(window, now int64) int64 {
	return window - now%window
}

// Grant stores the lease the service granted for (key, route): hits asked
// for at asked, of which spent went to the request that asked, and the
// service's answer (which must be an admission). A lease still live is
// added to. It also clears the in-flight mark.
func (l *Leases) Grant(key, route string, hits, spent int64, asked time.Time, a Answer, now time.Time) error {
	h := shared.PairHash(key, route)
	slot := l.slotKey(h)
	ms := now.UnixMilli()
	end := asked.Add(a.Reset).UnixMilli()
	for range leaseRetries {
		val, cas, found, err := l.store.Get(slot)
		if err != nil {
			return wrapLease("grant", err)
		}
		r, known := decodeLease(val)
		switch {
		case !found:
			r, cas = leaseRecord{hash: h}, shared.CreateCAS
		case known && r.hash != h && r.live(ms):
			return nil // another pair took the slot meanwhile: the batch is lost, never double-spent
		case r.hash != h || !r.live(ms):
			r = leaseRecord{hash: h, windowEnd: end}
		}
		r.left += hits - spent
		r.windowEnd = min(r.windowEnd, end)
		if r.windowEnd == 0 {
			r.windowEnd = end
		}
		r.batch, r.grantedAt, r.inFlightUntil = hits, ms, 0
		r.limit, r.windowSecs, r.serviceLeft = a.Limit, int64(a.Window/time.Second), a.Remaining
		err = l.store.Set(slot, r.encode(&l.buf), cas)
		if !errors.Is(err, shared.ErrCasMismatch) {
			return wrapLease("grant", err)
		}
	}
	return wrapLease("grant", shared.ErrCasMismatch)
}

// Release clears the in-flight mark of (key, route) after a call that
// granted no lease (refused, failed, or no limit applies), so that the next
// request may ask again. A lost release only delays that until the mark
// expires.
func (l *Leases) Release(key, route string) {
	h := shared.PairHash(key, route)
	slot := l.slotKey(h)
	val, cas, found, err := l.store.Get(slot)
	if err != nil || !found {
		return
	}
	if r, ok := decodeLease(val); ok && r.hash == h && r.inFlightUntil != 0 {
		r.inFlightUntil = 0
		_ = l.store.Set(slot, r.encode(&l.buf), cas)
	}
}

func (l *Leases) slotKey(h uint64) string {
	return string(strconv.AppendUint(l.kb[:len("pc:rll:")], h%l.slots, 10))
}

func wrapLease(op string, err error) error {
	if err == nil {
		return nil
	}
	return wrap.With("fleet lease "+op, err)
}
