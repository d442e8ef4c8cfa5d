package ratelimit

import "encoding/binary"

// Record layout (little endian), one shared-data value per bucket:
//
//	offset  size  field
//	0       1     version (recordVersion)
//	1       1     ways W (entries in the bucket)
//	2       1     width L (TATs per entry)
//	3       1     shared mask: bit i set when entry i also carries other keys' admissions
//	4       4     reserved, zero
//	8       8     updated: int64 ns, the decision time of the last write
//	16      W×E   entries, E = 8 + 8·L bytes each:
//	              hash uint64 (0: empty), then L × TAT int64 ns
//
// A value of any other length, version, geometry, or with reserved bits set
// is unreadable and treated as an empty bucket (FaultCorrupt).
const (
	recordVersion = 1
	headerSize    = 16
	maxWays       = 8 // the shared mask is one byte
)

// RecordSize is the byte length of one bucket value for the given geometry.
func RecordSize(ways, width int) int { return headerSize + ways*(8+8*width) }

// bucket is a decoded record. Entry i's TAT j is tat[i*width+j].
type bucket struct {
	updated int64
	shared  uint8
	hash    [maxWays]uint64
	tat     [maxWays * MaxLimits]int64
}

// geometry is the table's shape, fixed per Limiter.
type geometry struct {
	ways, width int
	size        int // RecordSize(ways, width)
}

// decode fills b from val and reports whether val was a readable record.
// On false, b is empty.
func (g geometry) decode(b *bucket, val []byte) bool {
	if len(val) != g.size || val[0] != recordVersion || int(val[1]) != g.ways || int(val[2]) != g.width ||
		binary.LittleEndian.Uint32(val[4:8]) != 0 || val[3]>>g.ways != 0 {
		g.reset(b)
		return false
	}
	b.shared = val[3]
	b.updated = int64(binary.LittleEndian.Uint64(val[8:16]))
	off := headerSize
	for i := range g.ways {
		b.hash[i] = binary.LittleEndian.Uint64(val[off:])
		off += 8
		for j := range g.width {
			b.tat[i*g.width+j] = int64(binary.LittleEndian.Uint64(val[off:]))
			off += 8
		}
	}
	return true
}

// reset makes b an empty bucket (only the part the geometry uses).
func (g geometry) reset(b *bucket) {
	b.updated, b.shared = 0, 0
	clear(b.hash[:g.ways])
	clear(b.tat[:g.ways*g.width])
}

// encode writes b into dst, which must have length g.size.
func (g geometry) encode(dst []byte, b *bucket) {
	dst[0], dst[1], dst[2], dst[3] = recordVersion, byte(g.ways), byte(g.width), b.shared
	binary.LittleEndian.PutUint32(dst[4:8], 0)
	binary.LittleEndian.PutUint64(dst[8:16], uint64(b.updated))
	off := headerSize
	for i := range g.ways {
		binary.LittleEndian.PutUint64(dst[off:], b.hash[i])
		off += 8
		for j := range g.width {
			binary.LittleEndian.PutUint64(dst[off:], uint64(b.tat[i*g.width+j]))
			off += 8
		}
	}
}

// tats returns entry i's TATs.
func (g geometry) tats(b *bucket, i int) []int64 { return b.tat[i*g.width : (i+1)*g.width] }

// active reports whether entry i still holds debt at now: a used, unexpired
// entry. An expired entry's budget is full, the same as no entry at all, so
// it can be given to another key without losing anything.
func (g geometry) active(b *bucket, i int, now int64) bool {
	if b.hash[i] == 0 {
		return false
	}
	for _, t := range g.tats(b, i) {
		if t > now {
			return true
		}
	}
	return false
}

// clockTolerance is how far a record's last write may lie ahead of this
// VM's clock before it counts as the clock stepping back. Smaller gaps are
// ordinary races between VMs (clock read, then CAS) and are absorbed by
// deciding at the record's time instead (see sanitize).
const clockTolerance = int64(1_000_000_000)

// sanitize makes a decoded bucket safe to decide on at now and returns the
// decision time (never before the record's last write, unless the clock
// stepped back) and what it had to repair. It never fails.
func (g geometry) sanitize(b *bucket, now int64) (at int64, faults Fault) {
	for i := range g.ways {
		if b.hash[i] == 0 { // an empty entry has no debt and no sharers
			clear(g.tats(b, i))
			b.shared &^= 1 << i
		}
	}
	at = now
	switch {
	case b.updated > now && b.updated-now > clockTolerance:
		// The clock stepped back (or the record says so). Keep every debt as
		// it was at the last write, re-based on the new clock: no credit and
		// no penalty for the step.
		faults |= FaultClockBackwards
		for k := range b.tat[:g.ways*g.width] {
			t := b.tat[k]
			switch {
			case t < 0:
				continue // a strict limit's counts, not a time
			case k%g.width+1 < g.width && b.tat[k+1] < 0:
				// A strict limit's window end (the only time followed by
				// counts): it stays on its slice grid — shifted off it, every
				// count would be misplaced — and the decision refuses until
				// the clock is back in the limit's newest slice (readStrict).
				continue
			case t <= b.updated:
				b.tat[k] = 0
			default:
				b.tat[k] = now + min(debt(t, b.updated), maxDebt)
			}
		}
	case b.updated > now:
		at = b.updated
	}
	for k := range b.tat[:g.ways*g.width] {
		if t := b.tat[k]; t > at && debt(t, at) > maxDebt {
			b.tat[k] = at + maxDebt
			faults |= FaultClamped
		}
	}
	return at, faults
}

// debt is t − at for t > at, computed without overflow and saturated.
func debt(t, at int64) int64 {
	d := uint64(t) - uint64(at)
	if d > 1<<62 {
		return 1 << 62
	}
	return int64(d)
}
