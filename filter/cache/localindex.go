package cache

import (
	"encoding/binary"
	"errors"
	"github.com/portcullis/portcullis/filter/wrap"
	"strconv"
	"time"

	"github.com/portcullis/portcullis/filter/shared"
)

// LocalIndex is this Envoy's copy of index records, in shared data, so that
// a lookup that finds one derives the entry key itself and makes one
// callout (the entry), or none when the entry is hot (HotEntries); and so
// that an invalidation reaches every worker of this Envoy at once (doc.go,
// "The in-proxy tier").
//
// Slot n is the shared-data key "pc:idx:<n>", chosen by K0's first 8 bytes
// (K0 is a SHA-256: no further hashing needed). Its value, version 1:
//
//	offset  size  field
//	0       1     version (1)
//	1       1     kind: 1 an index copy, 2 tombstones
//	kind 1:
//	2       8     expires-at: int64 Unix ms, when the copy stops being used
//	10      …     the Index record (which carries the full K0)
//	kind 2:
//	2       1     count N, 1 to maxTombstones
//	3       …     N × (uint64 tag: K0's bytes 8 to 15; int64 until, Unix ms)
//
// A copy is used only when its record's key is the lookup's K0 (so a slot
// shared by two paths is a miss of the copy, never a wrong index) and
// before its expires-at. A tombstone says "no index" for its path until its
// deadline: it outlives the DELETE that the invalidation sends to the cache
// cluster, so no worker reads the old record back from there meanwhile.
// Nothing overwrites another path's live tombstone but another tombstone
// (kept beside it), and a lookup's copy of a cluster read is written only
// if the slot did not change since the lookup read it (compare-and-swap),
// so an invalidation that happened while the read was in flight is never
// undone.
//
// A LocalIndex keeps scratch buffers: one per VM, not for concurrent use.
type LocalIndex struct {
	store        shared.Store
	keys         slotKeys
	ttl          time.Duration
	tombstoneTTL time.Duration
	buf          []byte
}

// MaxLocalIndexSlots bounds the table, and so its shared data.
const MaxLocalIndexSlots = 1 << 20

const (
	localIndexPrefix    = "pc:idx:"
	localVersion        = 1
	localKindIndex      = 1
	localKindTombstones = 2
	localIndexHead      = 10
	tombstoneSize       = 16
	// maxTombstones is how many paths of one slot can be invalidated within
	// a tombstone's lifetime before the one closest to its deadline is
	// dropped (doc.go gives the odds).
	maxTombstones = 8
	// tombstoneSlack is what a tombstone adds to the cache callout timeout:
	// the DELETE leaves on the next tick (at most flushPeriod, 100 ms, away)
	// and answers within the timeout; a second covers both with room.
	tombstoneSlack  = time.Second
	localCASRetries = lockCASRetries
)

// ErrLocalContention is returned by Invalidate when the CAS retries ran out.
var ErrLocalContention = errors.New("cache: local index slot contended")

// NewLocalIndex returns the table described by c (LocalIndexSlots,
// LocalIndexTTL; its tombstones live Timeout plus tombstoneSlack) in store.
func NewLocalIndex(store shared.Store, c *Config) *LocalIndex {
	return &LocalIndex{
		store: store, keys: newSlotKeys(localIndexPrefix, c.LocalIndexSlots, MaxLocalIndexSlots),
		ttl: c.LocalIndexTTL, tombstoneTTL: c.Timeout + tombstoneSlack,
	}
}

// localState is what a lookup found in its slot.
type localState uint8

const (
	localUnread  localState = iota // UseLocalIndex was not called
	localFree                      // no live record of another path's that must stay: a copy may be written
	localBlocked                   // another path's live tombstones: leave the slot alone
)

// localRead is what UseLocalIndex saw, for Remember.
type localRead struct {
	state localState
	cas   uint32 // the slot's, or CreateCAS when it did not exist
}

// UseLocalIndex reads this Envoy's copy of the index. known is false when
// there is none (or it could not be read): GET IndexKey from the store,
// call UseIndex, then LocalIndex.Remember. Otherwise it did what UseIndex
// would have: ok says whether EntryKey is to be looked up (not on a
// tombstone, which is an absent index, nor on a Refresh).
func (l *Lookup) UseLocalIndex(t *LocalIndex, now time.Time) (ok, known bool) {
	slot := t.keys.key(slotHash(l.k0))
	value, cas, found, err := t.store.Get(slot)
	if err != nil {
		return false, false
	}
	l.local = localRead{state: localFree, cas: cas}
	if !found {
		l.local.cas = shared.CreateCAS
		return false, false
	}
	ms := now.UnixMilli()
	if len(value) < 2 || value[0] != localVersion {
		return false, false // unreadable: as free, the next write replaces it
	}
	switch value[1] {
	case localKindIndex:
		if len(value) < localIndexHead || int64(binary.LittleEndian.Uint64(value[2:])) <= ms {
			return false, false
		}
		x, err := DecodeIndex(value[localIndexHead:])
		if err != nil || x.Key != l.k0 {
			return false, false // another path's copy (or garbage): ours may replace it
		}
		return l.useIndex(x), true
	case localKindTombstones:
		tombs, _ := decodeTombstones(value)
		tag := tombstoneTag(l.k0)
		for _, ts := range tombs {
			if ts.until <= ms {
				continue
			}
			if ts.tag == tag {
				l.index = indexAbsent // invalidated: a miss, and a fill starts a new epoch
				return false, true
			}
			l.local.state = localBlocked
		}
	}
	return false, false
}

// Remember writes the index that UseIndex just took from the cache cluster
// as this Envoy's copy, unless the slot changed since UseLocalIndex read it
// or holds another path's live tombstones. An error only means no copy.
func (t *LocalIndex) Remember(l *Lookup, now time.Time) error {
	if l.index != indexPresent || l.local.state != localFree {
		return nil
	}
	err := t.writeCopy(l.k0, &l.idx, l.local.cas, now)
	l.local.state = localUnread // one write per read
	if errors.Is(err, shared.ErrCasMismatch) {
		return nil // the slot moved on (an invalidation, another copy): leave it
	}
	return err
}

// Fill writes the index record a fill is about to PUT (f.Index, when not
// nil) as this Envoy's copy: a new epoch, which every worker of this Envoy
// then uses.
func (t *LocalIndex) Fill(f *Fill, now time.Time) error {
	if f.Index == nil {
		return nil
	}
	slot := t.keys.key(slotHash(f.k0))
	value, cas, found, err := t.store.Get(slot)
	if err != nil {
		return err
	}
	if !found {
		cas = shared.CreateCAS
	} else if othersTombstoned(value, tombstoneTag(f.k0), now.UnixMilli()) {
		return nil
	}
	if err := t.writeCopy(f.k0, &f.idx, cas, now); err != nil && !errors.Is(err, shared.ErrCasMismatch) {
		return err
	}
	return nil
}

func (t *LocalIndex) writeCopy(k0 digest, x *Index, cas uint32, now time.Time) error {
	b := append(t.buf[:0], localVersion, localKindIndex)
	b = binary.LittleEndian.AppendUint64(b, uint64(now.Add(t.ttl).UnixMilli()))
	b, err := x.Append(b)
	if err != nil {
		return err
	}
	t.buf = b
	return t.store.Set(t.keys.key(slotHash(k0)), b, cas)
}

// Invalidate makes the index keys (Plan.Invalidate) absent on this Envoy at
// once: each one's slot gets a tombstone, kept beside the live tombstones of
// other paths in it. It runs before the DELETEs to the cache cluster leave.
func (t *LocalIndex) Invalidate(keys []string, now time.Time) error {
	ms := now.UnixMilli()
	until := now.Add(t.tombstoneTTL).UnixMilli()
	var errs []error
	for _, key := range keys {
		k0, ok := parseHexKey(key)
		if !ok {
			errs = append(errs, errors.New("cache: invalidating "+strconv.Quote(key)+": not an index key"))
			continue
		}
		if err := t.tombstone(k0, ms, until); err != nil {
			errs = append(errs, wrap.With("cache: invalidating "+key[:16]+" on this Envoy", err))
		}
	}
	return errors.Join(errs...)
}

func (t *LocalIndex) tombstone(k0 digest, ms, until int64) error {
	slot := t.keys.key(slotHash(k0))
	tag := tombstoneTag(k0)
	for range localCASRetries + 1 {
		value, cas, found, err := t.store.Get(slot)
		if err != nil {
			return err
		}
		if !found {
			cas = shared.CreateCAS
		}
		kept, _ := decodeTombstones(value)
		tombs := []tombstone{{tag: tag, until: until}}
		for _, ts := range kept {
			if ts.tag != tag && ts.until > ms {
				tombs = append(tombs, ts)
			}
		}
		if len(tombs) > maxTombstones {
			tombs = dropSoonest(tombs[1:], tombs[0])
		}
		switch err := t.store.Set(slot, t.encodeTombstones(tombs), cas); {
		case err == nil:
			return nil
		case !errors.Is(err, shared.ErrCasMismatch):
			return err
		}
	}
	return ErrLocalContention
}

// dropSoonest replaces the tombstone of others closest to its deadline
// with ours (others is full).
func dropSoonest(others []tombstone, ours tombstone) []tombstone {
	soonest := 0
	for i, ts := range others {
		if ts.until < others[soonest].until {
			soonest = i
		}
	}
	others[soonest] = ours
	return others
}

type tombstone struct {
	tag   uint64
	until int64
}

func (t *LocalIndex) encodeTombstones(tombs []tombstone) []byte {
	b := append(t.buf[:0], localVersion, localKindTombstones, byte(len(tombs)))
	for _, ts := range tombs {
		b = binary.LittleEndian.AppendUint64(b, ts.tag)
		b = binary.LittleEndian.AppendUint64(b, uint64(ts.until))
	}
	t.buf = b
	return b
}

// decodeTombstones reads a tombstones record; ok is false for anything else
// (an index copy, garbage, nothing).
func decodeTombstones(value []byte) (tombs []tombstone, ok bool) {
	if len(value) < 3 || value[0] != localVersion || value[1] != localKindTombstones {
		return nil, false
	}
	n := int(value[2])
	if n == 0 || n > maxTombstones || len(value) != 3+n*tombstoneSize {
		return nil, false
	}
	tombs = make([]tombstone, n)
	for i := range tombs {
		r := value[3+i*tombstoneSize:]
		tombs[i] = tombstone{tag: binary.LittleEndian.Uint64(r), until: int64(binary.LittleEndian.Uint64(r[8:]))}
	}
	return tombs, true
}

// othersTombstoned reports whether value holds a live tombstone of a path
// other than tag's.
func othersTombstoned(value []byte, tag uint64, ms int64) bool {
	tombs, _ := decodeTombstones(value)
	for _, ts := range tombs {
		if ts.tag != tag && ts.until > ms {
			return true
		}
	}
	return false
}

// slotHash chooses K0's slot, tombstoneTag tells paths of one slot apart:
// different bytes of the SHA-256, so they are independent.
func slotHash(k0 digest) uint64     { return binary.LittleEndian.Uint64(k0[:8]) }
func tombstoneTag(k0 digest) uint64 { return binary.LittleEndian.Uint64(k0[8:16]) }
