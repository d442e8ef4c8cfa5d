package fleet

import (
	"encoding/binary"
	"strconv"
	"time"

	"github.com/portcullis/portcullis/filter/shared"
)

// Blocklist remembers, in shared data, the (key, route) pairs the service
// has refused, until their reset, so that every worker of this Envoy refuses
// them again without calling the service.
//
// It is a fixed table of Slots keys ("pc:rlb:<n>"), so its memory is bounded
// however many keys pass (Slots × (key + RecordSize) bytes of shared data).
// A pair lives in the slot its hash selects; a newer block of another pair
// that lands in the same slot replaces it, and the displaced pair only costs
// a call to the service again — never an admission the service did not make.
// Writes are unconditional (cas 0): two workers that block at once write
// equivalent records, and a lost write costs one call.
type Blocklist struct {
	store shared.Store
	slots uint64
	buf   [RecordSize]byte
	kb    []byte
}

// DefaultBlockSlots is the table size when the config does not set one.
const DefaultBlockSlots = 4096

// MaxBlockSlots bounds the table (and so its shared-data memory).
const MaxBlockSlots = 1 << 20

// RecordSize is the size of one slot's value: version, pair hash, blocked
// until (Unix ms), the limit's requests and window seconds.
const RecordSize = 1 + 8 + 8 + 8 + 8

const recordVersion = 1

// Block is a remembered refusal.
type Block struct {
	Until  time.Time
	Limit  int64
	Window time.Duration
}

// NewBlocklist returns a table of slots keys in store (0 means DefaultBlockSlots).
func NewBlocklist(store shared.Store, slots int) *Blocklist {
	if slots <= 0 {
		slots = DefaultBlockSlots
	}
	return &Blocklist{store: store, slots: uint64(min(slots, MaxBlockSlots)), kb: []byte("pc:rlb:")}
}

func (b *Blocklist) slotKey(h uint64) string {
	return string(strconv.AppendUint(b.kb[:len("pc:rlb:")], h%b.slots, 10))
}

// Blocked reports whether (key, route) is blocked at now. A record that
// cannot be read (another version, wrong length) is treated as no block.
func (b *Blocklist) Blocked(key, route string, now time.Time) (Block, bool) {
	h := shared.PairHash(key, route)
	val, _, found, err := b.store.Get(b.slotKey(h))
	if err != nil || !found || len(val) != RecordSize || val[0] != recordVersion {
		return Block{}, false
	}
	if binary.LittleEndian.Uint64(val[1:]) != h {
		return Block{}, false
	}
	until := int64(binary.LittleEndian.Uint64(val[9:]))
	if now.UnixMilli() >= until {
		return Block{}, false
	}
	return Block{
		Until:  time.UnixMilli(until),
		Limit:  int64(binary.LittleEndian.Uint64(val[17:])),
		Window: time.Duration(binary.LittleEndian.Uint64(val[25:])) * time.Second,
	}, true
}

// Add blocks (key, route) until blk.Until. An error means the block is not
// remembered (the next request asks the service again).
func (b *Blocklist) Add(key, route string, blk Block) error {
	h := shared.PairHash(key, route)
	b.buf[0] = recordVersion
	binary.LittleEndian.PutUint64(b.buf[1:], h)
	binary.LittleEndian.PutUint64(b.buf[9:], uint64(blk.Until.UnixMilli()))
	binary.LittleEndian.PutUint64(b.buf[17:], uint64(blk.Limit))
	binary.LittleEndian.PutUint64(b.buf[25:], uint64(blk.Window/time.Second))
	return b.store.Set(b.slotKey(h), b.buf[:], 0)
}
