package cache

import "strconv"

// slotKeys names the slots of a fixed table in shared data ("<prefix><n>",
// n below the table's size): shared data never deletes a key, so a table
// that only ever uses these keys has bounded memory. It keeps a scratch
// buffer: one per table, not for concurrent use.
type slotKeys struct {
	prefix string
	slots  uint64
	kb     []byte
}

// newSlotKeys returns the names of a table of slots slots (clamped to 1 to
// maxSlots).
func newSlotKeys(prefix string, slots, maxSlots int) slotKeys {
	return slotKeys{prefix: prefix, slots: uint64(min(max(slots, 1), maxSlots)), kb: []byte(prefix)}
}

// key is the name of the slot chosen by hash h.
func (s *slotKeys) key(h uint64) string {
	s.kb = strconv.AppendUint(s.kb[:len(s.prefix)], h%s.slots, 10)
	return string(s.kb)
}
