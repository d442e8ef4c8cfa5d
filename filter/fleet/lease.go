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
// refused whole by the service (it counts the hits either way). Together
// they are at most two batches per Envoy per pair per window (the rest of
// one and its renewal, Spent.Renew), since one worker at a time asks for a
// pair's lease (Reserve marks the call in flight; the others spend what is
// left, or make plain calls).
//
// Like the Blocklist it is a fixed table of slots ("pc:rll:<n>"): a pair's
// lease lives in one of two slots its hash selects, and a pair whose two
// slots both hold other pairs' live leases makes plain calls.
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
// batch, when it was granted (Unix ms), hits left then, in flight until
// (Unix ms), the limit's requests, window seconds, and what the service had
// left.
const leaseRecordSize = 1 + 10*8

const leaseRecordVersion = 1

// leaseRecord is one slot's value.
type leaseRecord struct {
	hash          uint64
	left          int64 // hits of the lease not yet spent
	windowEnd     int64 // Unix ms: when the service's window ends, as it reported
	batch         int64 // the last batch granted
	grantedAt     int64 // Unix ms
	grantLeft     int64 // hits left when the last batch was granted: left − grantLeft were spent since
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
	for i, v := range [...]int64{int64(r.hash), r.left, r.windowEnd, r.batch, r.grantedAt, r.grantLeft, r.inFlightUntil, r.limit, r.windowSecs, r.serviceLeft} {
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
	var f [10]int64
	for i := range f {
		f[i] = int64(binary.LittleEndian.Uint64(val[1+8*i:]))
	}
	return leaseRecord{hash: uint64(f[0]), left: f[1], windowEnd: f[2], batch: f[3], grantedAt: f[4], grantLeft: f[5],
		inFlightUntil: f[6], limit: f[7], windowSecs: f[8], serviceLeft: f[9]}, true
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
// there is none to take them from: no lease, expired, or fewer than cost
// left (then the request asks the service, see Reserve).
func (l *Leases) Spend(key, route string, cost int64, now time.Time) (Spent, bool) {
	h, ms := shared.PairHash(key, route), now.UnixMilli()
	for range leaseRetries {
		s, mine, ok := l.lookup(h, ms)
		if !ok || !mine {
			return Spent{}, false
		}
		r := &s.rec
		if !r.live(ms) || r.left < cost {
			return Spent{}, false
		}
		r.left -= cost
		switch err := l.store.Set(s.key, r.encode(&l.buf), s.cas); {
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
// them; cost is 0 for a renewal by a request already admitted,
// Spent.Renew). It marks the call in flight until now + inFlight so that
// the other workers do not ask too; ok is false when another worker's call
// is in flight, when both of the pair's slots hold other pairs' live
// leases, or when the mark cannot be written: the request then makes a
// plain call.
//
// The batch is sized to last LeaseTarget at the rate the last lease was
// spent at (at most four times the last batch, at least half of it), and is
// at most maxBatch, half of what the service had left (half the limit in a
// new window: so that one Envoy never asks for more than is left), and what
// the rate would spend before the window ends. The first lease of a pair is
// cost: it learns the limit.
func (l *Leases) Reserve(key, route string, cost, maxBatch int64, inFlight time.Duration, now time.Time) (hits int64, ok bool) {
	h, ms := shared.PairHash(key, route), now.UnixMilli()
	s, mine, ok := l.lookup(h, ms)
	switch {
	case !ok:
		return 0, false
	case !mine:
		s.rec = leaseRecord{hash: h}
	case ms < s.rec.inFlightUntil:
		return 0, false
	}
	hits = max(cost, nextBatch(&s.rec, maxBatch, ms))
	s.rec.inFlightUntil = ms + inFlight.Milliseconds()
	if l.store.Set(s.key, s.rec.encode(&l.buf), s.cas) != nil {
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
	spent := max(r.grantLeft-r.left, 1) // renewed early, part of the last batch is still left
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
	h, ms := shared.PairHash(key, route), now.UnixMilli()
	end := asked.Add(a.Reset).UnixMilli()
	for range leaseRetries {
		s, mine, ok := l.lookup(h, ms)
		if !ok {
			return nil // other pairs took both slots meanwhile: the batch is lost, never double-spent
		}
		r := &s.rec
		if !mine || !r.live(ms) {
			*r = leaseRecord{hash: h, windowEnd: end}
		}
		r.left += hits - spent
		r.windowEnd = min(r.windowEnd, end)
		r.batch, r.grantedAt, r.grantLeft, r.inFlightUntil = hits, ms, r.left, 0
		r.limit, r.windowSecs, r.serviceLeft = a.Limit, int64(a.Window/time.Second), a.Remaining
		err := l.store.Set(s.key, r.encode(&l.buf), s.cas)
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
	s, mine, ok := l.lookup(shared.PairHash(key, route), 0)
	if ok && mine && s.rec.inFlightUntil != 0 {
		s.rec.inFlightUntil = 0
		_ = l.store.Set(s.key, s.rec.encode(&l.buf), s.cas)
	}
}

// slotRead is a slot's key and value as read.
type slotRead struct {
	key string
	rec leaseRecord // zero unless the value is a lease record
	cas uint32      // CreateCAS for a key never written
}

// lookup finds the slot of the pair hashed h among its two candidates (two
// choices keep a pair's lease from being crowded out by another pair's in
// one slot): the one holding the pair (mine), else the first that may be
// taken at now (Unix ms): never written, unreadable, or another pair's
// lease that is no longer live. ok is false when neither is the pair's and
// both hold other pairs' live leases, or a read fails.
func (l *Leases) lookup(h uint64, now int64) (s slotRead, mine, ok bool) {
	var free slotRead
	haveFree := false
	c := [2]uint64{h % l.slots, shared.Mix(h^secondChoice) % l.slots}
	n := 2
	if c[1] == c[0] { // a table that small, or the hashes meet
		n = 1
	}
	for _, idx := range c[:n] {
		key := string(strconv.AppendUint(l.kb[:len("pc:rll:")], idx, 10))
		val, cas, found, err := l.store.Get(key)
		if err != nil {
			return slotRead{}, false, false
		}
		r, known := decodeLease(val)
		switch {
		case !found:
			cas = shared.CreateCAS
		case known && r.hash == h:
			return slotRead{key: key, rec: r, cas: cas}, true, true
		case known && r.live(now):
			continue // another pair's live lease
		}
		if !haveFree {
			free, haveFree = slotRead{key: key, cas: cas}, true
		}
	}
	return free, false, haveFree
}

// secondChoice decorrelates the second slot from the first.
const secondChoice = 0x9e3779b97f4a7c15

func wrapLease(op string, err error) error {
	if err == nil {
		return nil
	}
	return wrap.With("fleet lease "+op, err)
}
