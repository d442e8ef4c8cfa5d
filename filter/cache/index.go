package cache

import (
	"crypto/sha256"
	"encoding/binary"
	"strconv"
	"strings"
)

// Index is the record at an index key (K0): which generation of entries the
// path's variants are stored under, and which request fields they vary on.
//
// Layout, version 1 (integers little endian):
//
//	offset  size  field
//	0       3     magic "PCI"
//	3       1     version (1)
//	4       32    key: the SHA-256 the record is stored under (K0)
//	36      8     epoch: uint64, chosen at random when the record is created
//	44      1     count N of varied field names, at most MaxVary
//	45      …     N × (uint8 length, name): lower-case tokens, sorted, unique
//
// Anything else, including trailing bytes, does not decode.
type Index struct {
	Key   [sha256.Size]byte
	Epoch uint64
	Vary  []string
}

const (
	indexMagic     = "PCI"
	indexVersion   = 1
	indexFixedSize = 45
)

// Append appends x's record to dst; it fails (ErrCorrupt) when x breaks the
// layout's rules.
func (x *Index) Append(dst []byte) ([]byte, error) {
	if err := checkVaryNames(x.Vary); err != nil {
		return dst, err
	}
	b := append(append(dst, indexMagic...), indexVersion)
	b = append(b, x.Key[:]...)
	b = binary.LittleEndian.AppendUint64(b, x.Epoch)
	b = append(b, byte(len(x.Vary)))
	for _, name := range x.Vary {
		b = appendStr8(b, name)
	}
	return b, nil
}

// DecodeIndex reads an index record; garbage is an error wrapping
// ErrCorrupt, never a panic.
func DecodeIndex(data []byte) (Index, error) {
	var x Index
	if len(data) < indexFixedSize {
		return x, corrupt(strconv.Itoa(len(data)) + " bytes, shorter than the fixed fields")
	}
	if string(data[:3]) != indexMagic || data[3] != indexVersion {
		return x, corrupt("not a version " + strconv.Itoa(indexVersion) + " index")
	}
	copy(x.Key[:], data[4:36])
	x.Epoch = binary.LittleEndian.Uint64(data[36:])
	n := int(data[44])
	if n > MaxVary {
		return Index{}, corrupt(strconv.Itoa(n) + " varied fields")
	}
	if n > 0 {
		r := newReader(string(data[indexFixedSize:]))
		x.Vary = make([]string, n)
		for i := range x.Vary {
			x.Vary[i] = r.str8()
		}
		if !r.ok || r.rest() != 0 {
			return Index{}, corrupt("names do not fill their space")
		}
	} else if len(data) != indexFixedSize {
		return Index{}, corrupt(strconv.Itoa(len(data)-indexFixedSize) + " trailing bytes")
	}
	if err := checkVaryNames(x.Vary); err != nil {
		return Index{}, err
	}
	return x, nil
}

// checkVaryNames enforces the index's rule on names: at most MaxVary
// lower-case tokens, sorted and unique, so that every reader computes the
// same entry keys from them.
func checkVaryNames(names []string) error {
	if len(names) > MaxVary {
		return corrupt(strconv.Itoa(len(names)) + " varied fields")
	}
	for i, name := range names {
		if len(name) > maxNameBytes || !lowerToken(name) {
			return corrupt("varied field name " + strconv.Quote(name))
		}
		if i > 0 && strings.Compare(names[i-1], name) >= 0 {
			return corrupt("varied field names not sorted and unique")
		}
	}
	return nil
}
