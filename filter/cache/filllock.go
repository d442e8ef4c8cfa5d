package cache

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/portcullis/portcullis/filter/shared"
)

// FillLocks is a fixed table of fill locks in shared data, so that
// concurrent misses of one entry in one Envoy make one upstream request
// (doc.go, "Stampedes"). Slot n is the shared-data key "pc:fill:<n>",
// holding a lockRecordSize-byte record: version, the holder's key hash,
// its deadline (Unix ms). A record past its deadline, or unreadable, is a
// free slot: a holder that never releases (its stream died) blocks others
// until its deadline at most.
//
// A FillLocks keeps scratch buffers: one per VM, not for concurrent use.
type FillLocks struct {
	store shared.Store
	keys  slotKeys
	rec   [lockRecordSize]byte
}

// MaxFillLockSlots bounds the table, and so its shared data.
const MaxFillLockSlots = 1 << 20

const (
	lockPrefix     = "pc:fill:"
	lockVersion    = 1
	lockRecordSize = 1 + 8 + 8
	lockCASRetries = 8
)

// ErrLockContention is Acquisition.Err when the CAS retries ran out.
var ErrLockContention = errors.New("cache: fill lock contended")

// NewFillLocks returns a table of slots locks (1 to MaxFillLockSlots) in store.
func NewFillLocks(store shared.Store, slots int) *FillLocks {
	return &FillLocks{store: store, keys: newSlotKeys(lockPrefix, slots, MaxFillLockSlots)}
}

// LockState is the outcome of TryAcquire.
type LockState uint8

const (
	// Acquired: this request fills; Release the Lock when the fill is
	// stored or abandoned.
	Acquired LockState = iota
	// Busy: another request holds the slot (this key's fill, or, rarely,
	// another key's that shares the slot) until Acquisition.Until: wait,
	// polling Held, then look up again.
	Busy
	// Unavailable: the store failed or stayed contended (Acquisition.Err):
	// go upstream without waiting; caching is an optimisation.
	Unavailable
)

// Acquisition is what TryAcquire decided.
type Acquisition struct {
	State LockState
	Lock  Lock      // Acquired
	Until time.Time // Busy: the holder's deadline
	Err   error     // Unavailable
}

// Lock is an acquired fill lock: the holder's key hash and deadline, which
// together identify this acquisition (a later one of the same key has a
// later deadline), so Release never frees another holder's lock.
type Lock struct {
	hash     uint64
	deadline int64
}

// TryAcquire takes the fill lock of key (Lookup.FillKey) at now for ttl
// (Config.FillWait; at least 1 ms), unless a holder's deadline is still
// ahead.
func (t *FillLocks) TryAcquire(key string, now time.Time, ttl time.Duration) Acquisition {
	h := shared.PairHash(lockPrefix, key)
	slot := t.keys.key(h)
	ms := now.UnixMilli()
	lock := Lock{hash: h, deadline: ms + max(ttl.Milliseconds(), 1)}
	for range lockCASRetries + 1 {
		value, cas, found, err := t.store.Get(slot)
		if err != nil {
			return Acquisition{State: Unavailable, Err: err}
		}
		if holder, ok := decodeLock(value); found && ok && holder.deadline > ms {
			return Acquisition{State: Busy, Until: time.UnixMilli(holder.deadline)}
		}
		if !found {
			cas = shared.CreateCAS
		}
		switch err := t.store.Set(slot, t.encode(lock), cas); {
		case err == nil:
			return Acquisition{State: Acquired, Lock: lock}
		case !errors.Is(err, shared.ErrCasMismatch):
			return Acquisition{State: Unavailable, Err: err}
		}
	}
	return Acquisition{State: Unavailable, Err: ErrLockContention}
}

// Held reports whether the slot of key is held at now, and until when: a
// waiter polls it, and looks up again once it is not.
func (t *FillLocks) Held(key string, now time.Time) (until time.Time, held bool) {
	value, _, found, err := t.store.Get(t.keys.key(shared.PairHash(lockPrefix, key)))
	if err != nil || !found {
		return time.Time{}, false
	}
	if holder, ok := decodeLock(value); ok && holder.deadline > now.UnixMilli() {
		return time.UnixMilli(holder.deadline), true
	}
	return time.Time{}, false
}

// Release frees l, if the slot still holds it (not once it expired and was
// taken again). An error means it stays held until its deadline.
func (t *FillLocks) Release(l Lock) error {
	slot := t.keys.key(l.hash)
	for range lockCASRetries + 1 {
		value, cas, found, err := t.store.Get(slot)
		if err != nil {
			return err
		}
		if holder, ok := decodeLock(value); !found || !ok || holder != l {
			return nil
		}
		switch err := t.store.Set(slot, t.encode(Lock{}), cas); {
		case err == nil:
			return nil
		case !errors.Is(err, shared.ErrCasMismatch):
			return err
		}
	}
	return ErrLockContention
}

func (t *FillLocks) encode(l Lock) []byte {
	t.rec[0] = lockVersion
	binary.LittleEndian.PutUint64(t.rec[1:], l.hash)
	binary.LittleEndian.PutUint64(t.rec[9:], uint64(l.deadline))
	return t.rec[:]
}

func decodeLock(value []byte) (Lock, bool) {
	if len(value) != lockRecordSize || value[0] != lockVersion {
		return Lock{}, false
	}
	return Lock{hash: binary.LittleEndian.Uint64(value[1:]), deadline: int64(binary.LittleEndian.Uint64(value[9:]))}, true
}
