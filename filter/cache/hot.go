package cache

import (
	"bytes"
	"time"
)

// HotEntries is one VM's table of recently hit entries, keyed by K1: a
// request whose entry key (from LocalIndex) is here is answered with no
// host call at all to find it (doc.go, "The in-proxy tier"). Since K1
// includes the index's epoch, an invalidation, which changes the index
// copy every worker reads first, makes the old entries unreachable without
// touching any VM's table; they age out by eviction.
//
// Bounds: at most maxEntries entries, each stored value at most
// maxEntryBytes long, and maxBytes in all, where an entry is charged
// entryCharge. Eviction is CLOCK: a hit sets an entry's reference bit; the
// hand clears set bits and evicts the first entry it finds unset, so an
// entry kept but never hit again goes first.
//
// Not for concurrent use: one per VM, whose runtime is single-threaded.
type HotEntries struct {
	maxEntries, maxBytes, maxEntryBytes int
	bytes                               int
	slots                               []hotSlot
	where                               map[digest]int
	free                                []int
	hand                                int
}

type hotSlot struct {
	key   digest
	entry Entry
	size  int // its charge
	used  bool
	ref   bool
}

// hotSlotOverhead is charged per entry on top of its value: the slot, its
// map entry and the decoded Entry's fixed fields.
const hotSlotOverhead = 256

// NewHotEntries returns a table bounded by c's LocalEntries, LocalBytes and
// LocalMaxEntryBytes.
func NewHotEntries(c *Config) *HotEntries {
	n := max(c.LocalEntries, 1)
	return &HotEntries{
		maxEntries: n, maxBytes: c.LocalBytes, maxEntryBytes: c.LocalMaxEntryBytes,
		where: make(map[digest]int, n),
	}
}

// Len is the number of entries held; Bytes their charge.
func (t *HotEntries) Len() int   { return len(t.where) }
func (t *HotEntries) Bytes() int { return t.bytes }

// AnswerHot answers l from the table: ok is false when its entry is not
// there (or no entry key is known) or cannot answer this request (expired,
// which drops it unless it can be revalidated, or too old for the request's
// max-age or min-fresh); then GET EntryKey from the store. A hit may be
// Stale (within stale-while-revalidate): the caller answers it from here
// only when the store cannot hold a newer response yet, because the key's
// refresh is still in flight (its fill lock is held), and otherwise GETs
// the store, which may hold the response another request refreshed.
func (l *Lookup) AnswerHot(t *HotEntries, now time.Time) (hit Hit, ok bool) {
	if l.Refresh || l.index != indexPresent {
		return Hit{}, false
	}
	i, found := t.where[l.k1]
	if !found {
		return Hit{}, false
	}
	s := &t.slots[i]
	hit, reason := l.answer(&s.entry, now)
	switch {
	case reason == "":
		s.ref = true
		return hit, true
	case reason == MissExpired:
		t.drop(i)
	}
	return Hit{}, false
}

// Keep adds value, the store's entry that just answered l with a hit (its
// Answer), to the table, evicting what it must; a value over the entry size
// limit, or one that does not decode as l's entry, is not kept. value is
// copied: the table never shares a caller's buffer.
func (t *HotEntries) Keep(l *Lookup, value []byte) {
	if len(value) > t.maxEntryBytes || l.index != indexPresent {
		return
	}
	e, err := DecodeEntry(bytes.Clone(value))
	if err != nil || e.Key != l.k1 {
		return
	}
	size := entryCharge(&e, len(value))
	if size > t.maxBytes {
		return
	}
	if i, ok := t.where[l.k1]; ok {
		t.drop(i)
	}
	for len(t.where) >= t.maxEntries || t.bytes+size > t.maxBytes {
		t.evict()
	}
	var i int
	if n := len(t.free); n > 0 {
		i, t.free = t.free[n-1], t.free[:n-1]
	} else {
		i = len(t.slots)
		t.slots = append(t.slots, hotSlot{})
	}
	t.slots[i] = hotSlot{key: l.k1, entry: e, size: size, used: true}
	t.where[l.k1] = i
	t.bytes += size
}

// entryCharge is what an entry decoded from a value of n bytes holds: the
// value, the one copy of its header part DecodeEntry makes, the header and
// vary tables, and the slot.
func entryCharge(e *Entry, n int) int {
	return n + (n - len(e.Body)) + 32*cap(e.Headers) + 40*len(e.Vary) + hotSlotOverhead
}

// evict drops one entry by CLOCK; the table is not empty.
func (t *HotEntries) evict() {
	for {
		t.hand = (t.hand + 1) % len(t.slots)
		s := &t.slots[t.hand]
		switch {
		case !s.used:
		case s.ref:
			s.ref = false
		default:
			t.drop(t.hand)
			return
		}
	}
}

func (t *HotEntries) drop(i int) {
	s := &t.slots[i]
	delete(t.where, s.key)
	t.bytes -= s.size
	*s = hotSlot{}
	t.free = append(t.free, i)
}
