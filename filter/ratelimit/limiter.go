package ratelimit

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/portcullis/portcullis/filter/shared"
)

// FailMode is the decision when the limiter cannot decide: CAS retries ran
// out, the store failed, or the policy does not fit the table.
type FailMode uint8

const (
	FailOpen   FailMode = iota // allow the request (the default)
	FailClosed                 // deny it, with Retry-After 1 s
)

// Defaults and bounds of Options.
const (
	DefaultSlots      = 65536
	DefaultWays       = 4
	DefaultWidth      = 2
	DefaultPrefix     = "pc:rl:"
	DefaultCASRetries = 8
	MaxSlots          = 1 << 24
	MaxCASRetries     = 64
)

// Options configures a Limiter. Zero values take the defaults.
type Options struct {
	Store shared.Store

	// Slots is the number of entries in the table (one per active key),
	// grouped into Slots/Ways buckets, one shared-data key each. A multiple
	// of Ways, at most MaxSlots.
	Slots int
	// Ways is the number of entries per bucket, 1 to 8.
	Ways int
	// Width is the number of limits an entry holds: at least the widest
	// policy used with this limiter (WidthFor), at most MaxLimits.
	Width int
	// Prefix starts every shared-data key; the bucket index follows in decimal.
	Prefix string
	// CASRetries bounds the retries after a CAS mismatch (1 to MaxCASRetries).
	CASRetries int
	// FailMode is the decision when retries run out or the store fails.
	FailMode FailMode
	// Seed is mixed into key hashes so that bucket placement cannot be
	// predicted from the keys alone. Every VM must use the same seed (it is
	// part of the table's layout); changing it resets all counters.
	Seed uint64
}

// Limiter decides requests against a table in a Store. It keeps scratch
// buffers and is not safe for concurrent use: each VM owns one (a Go wasm VM
// is single-threaded); VMs coordinate only through the Store.
type Limiter struct {
	store    shared.Store
	g        geometry
	buckets  uint64
	prefix   string
	retries  int
	failOpen bool
	seed     uint64

	b    bucket
	buf  []byte // encoded record
	kb   []byte // shared-data key being built
	keys [keyCacheSize]cachedKey
}

// keyCacheSize is the number of recent shared-data key strings a Limiter
// keeps (direct-mapped by bucket index), so busy keys cost no allocation.
const keyCacheSize = 256

type cachedKey struct {
	bucket uint64
	key    string
}

// New validates opts and returns a Limiter.
func New(opts Options) (*Limiter, error) {
	if opts.Store == nil {
		return nil, errors.New("ratelimit: Store is required")
	}
	ways := cmpOr(opts.Ways, DefaultWays)
	if ways < 1 || ways > maxWays {
		return nil, fmt.Errorf("ways: must be between 1 and %d, got %d", maxWays, ways)
	}
	slots := cmpOr(opts.Slots, DefaultSlots)
	if slots < ways || slots > MaxSlots || slots%ways != 0 {
		return nil, fmt.Errorf("slots: must be a multiple of ways (%d) between %d and %d, got %d", ways, ways, MaxSlots, slots)
	}
	width := cmpOr(opts.Width, DefaultWidth)
	if width < 1 || width > MaxLimits {
		return nil, fmt.Errorf("width: must be between 1 and %d, got %d", MaxLimits, width)
	}
	retries := cmpOr(opts.CASRetries, DefaultCASRetries)
	if retries < 1 || retries > MaxCASRetries {
		return nil, fmt.Errorf("cas_retries: must be between 1 and %d, got %d", MaxCASRetries, retries)
	}
	if opts.FailMode > FailClosed {
		return nil, fmt.Errorf("fail_mode: unknown value %d", opts.FailMode)
	}
	prefix := opts.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	g := geometry{ways: ways, width: width, size: RecordSize(ways, width)}
	l := &Limiter{
		store: opts.Store, g: g, buckets: uint64(slots / ways), prefix: prefix,
		retries: retries, failOpen: opts.FailMode == FailOpen, seed: opts.Seed,
		buf: make([]byte, g.size),
		kb:  make([]byte, 0, len(prefix)+8),
	}
	l.kb = append(l.kb, prefix...)
	return l, nil
}

func cmpOr(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// Decide charges a request of key under policy p at cost (the number of
// requests it counts as, at least 1), if every limit of p admits the whole
// cost, and returns the outcome. A denial changes no budget. It never
// panics and never returns an error: failures become the fail mode and are
// reported in Decision.Faults. at is the proxy's clock (the caller reads
// it once per request, for every stage). A cost above a limit's Requests
// could never be admitted: it is a configuration bug (config refuses it),
// decided as the fail mode with FaultPolicy.
func (l *Limiter) Decide(p *Policy, key string, cost int64, at time.Time) Decision {
	cost = max(cost, 1)
	if cost > p.minRequests() {
		return l.fail(p, at.UnixNano(), FaultPolicy, 0)
	}
	return l.decide(p, key, cost, false, at)
}

// Charge adds a debt of units to key under p without deciding anything: the
// cost a response reported after its request was admitted (a rule's
// cost_header), which the key's next requests pay for. Each limit's debt is
// capped at an exhausted budget (N·I; a quota's N; a strict window's N), so
// one absurd report costs the key at most one window's wait. The Decision
// is always Allowed and reports the limits after the charge; a store that
// fails loses the charge (Faults say why).
func (l *Limiter) Charge(p *Policy, key string, units int64, at time.Time) Decision {
	return l.decide(p, key, max(units, 0), true, at)
}

// decide is Decide (debt false) or Charge (debt true) of cost units.
func (l *Limiter) decide(p *Policy, key string, cost int64, debt bool, at time.Time) Decision {
	now := at.UnixNano()
	if p.Width() > l.g.width || p.reported {
		return l.fail(p, now, FaultPolicy, 0)
	}
	h := p.keyHash(key, l.seed)
	slot := l.slotKey(h)
	for attempt := 0; ; attempt++ {
		val, cas, found, err := l.store.Get(slot)
		if err != nil {
			return l.fail(p, now, FaultStore, attempt)
		}
		var faults Fault
		if !found {
			l.g.reset(&l.b)
			cas = shared.CreateCAS
		} else if !l.g.decode(&l.b, val) {
			faults |= FaultCorrupt
		}
		at, f := l.g.sanitize(&l.b, now)
		d := Decision{cost: cost}
		changed := l.apply(&d, p, h, at, debt)
		d.Faults |= faults | f
		d.Retries = attempt
		// A denial writes only to persist a repair; otherwise it leaves the
		// record exactly as it was.
		if !changed && d.Faults&(FaultCorrupt|FaultClamped|FaultClockBackwards) == 0 {
			return d
		}
		l.b.updated = at
		l.g.encode(l.buf, &l.b)
		err = l.store.Set(slot, l.buf, cas)
		switch {
		case err == nil:
			return d
		case !errors.Is(err, shared.ErrCasMismatch):
			return l.fail(p, now, d.Faults|FaultStore, attempt)
		case attempt == l.retries:
			return l.fail(p, now, d.Faults|FaultContention, attempt+1)
		}
	}
}

// slotKey is the shared-data key of h's bucket.
func (l *Limiter) slotKey(h uint64) string {
	idx := h % l.buckets
	c := &l.keys[idx%keyCacheSize]
	if c.key == "" || c.bucket != idx {
		l.kb = strconv.AppendUint(l.kb[:len(l.prefix)], idx, 10)
		c.bucket, c.key = idx, string(l.kb)
	}
	return c.key
}

// apply decides on the decoded bucket at time at into d, charging the key's
// entry when the request is admitted, and reports whether it was (the
// bucket then has to be written). A debt is charged, capped, without a
// decision.
func (l *Limiter) apply(d *Decision, p *Policy, h uint64, at int64, debt bool) bool {
	g, b := l.g, &l.b
	d.at, d.policy = at, p
	e := -1
	for i := range g.ways {
		if b.hash[i] == h {
			e = i
			break
		}
	}
	sharing := false
	if e < 0 {
		e, sharing = l.place(p, h, at)
	}
	if sharing {
		d.Faults |= FaultShared
	}
	// An entry the key has to itself can never hold more than an exhausted
	// budget; a shared one legitimately holds other keys' state.
	own := !sharing && b.shared&(1<<e) == 0
	vals := g.tats(b, e)
	var uses [MaxLimits]usage
	d.Allowed = true
	for j := range p.rules {
		r := &p.rules[j]
		u, clamped := r.read(vals, at, own)
		if clamped {
			d.Faults |= FaultClamped
		}
		uses[j] = u
		d.Allowed = d.Allowed && (debt || r.admits(&uses[j], d.cost))
	}
	if d.Allowed {
		for j := range p.rules {
			if debt {
				p.rules[j].owe(vals, &uses[j], at, d.cost)
			} else {
				p.rules[j].charge(vals, &uses[j], at, d.cost)
			}
		}
		if sharing {
			b.shared |= 1 << e
		}
	}
	l.report(d, p, uses[:len(p.rules)])
	return d.Allowed
}

// place finds an entry for h, which has none in the bucket. The first entry
// that is empty or expired is given to h. When every entry is active, h is
// charged against its fallback entry's budget (sharing). A key that shared
// and later gets an entry of its own starts from the fallback entry's state
// (cut to an exhausted budget), which includes its own admissions, so
// moving never hands it a fresh budget.
func (l *Limiter) place(p *Policy, h uint64, at int64) (e int, sharing bool) {
	g, b := l.g, &l.b
	fallback := int((h >> 40) % uint64(g.ways))
	for i := range g.ways {
		if g.active(b, i, at) {
			continue
		}
		vals := g.tats(b, i)
		clear(vals)
		if i != fallback && b.shared&(1<<fallback) != 0 && g.active(b, fallback, at) {
			copy(vals[:p.Width()], g.tats(b, fallback))
			for j := range p.rules {
				p.rules[j].read(vals, at, true) // its own state is never more than an exhausted budget
			}
		}
		b.hash[i] = h
		b.shared &^= 1 << i
		return i, false
	}
	return fallback, true
}

// report fills the tightest limit's numbers from the key's usage.
func (l *Limiter) report(d *Decision, p *Policy, uses []usage) {
	best := -1
	var bestRemaining, bestReset, bestRetry int64
	for j := range p.rules {
		remaining, owed, retry := p.rules[j].numbers(&uses[j], d.at, d.cost)
		var better bool
		switch {
		case best < 0:
			better = true
		case !d.Allowed:
			better = retry > bestRetry
		default:
			better = remaining < bestRemaining || remaining == bestRemaining && owed > bestReset
		}
		if better {
			best, bestRemaining, bestReset, bestRetry = j, remaining, owed, retry
		}
	}
	d.Limit = p.rules[best].Limit
	d.Remaining = bestRemaining
	d.Reset = time.Duration(bestReset)
	if !d.Allowed {
		d.RetryAfter = time.Duration(bestRetry)
	}
}

// fail is the fail-mode decision.
func (l *Limiter) fail(p *Policy, at int64, f Fault, retries int) Decision {
	d := Decision{Allowed: l.failOpen, Faults: f, Retries: retries, at: at, policy: p}
	if len(p.rules) > 0 {
		d.Limit = p.rules[0].Limit
	}
	if !d.Allowed {
		d.RetryAfter = time.Second
	}
	return d
}
