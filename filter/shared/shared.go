// Package shared is the contract of proxy-wasm shared data as the pure
// packages use it: a key-value store shared by every VM of one vm_id (one
// per Envoy worker), updated with compare-and-swap, that never deletes a key.
// filter/host backs it with the proxy; tests back it with maps that have the
// same semantics. The tables built on it (rate-limit buckets, the fleet
// blocklist, cache fill locks) are fixed arrays of keys chosen by PairHash
// or a policy hash, so their memory is bounded by design.
package shared

import (
	"errors"
	"math"
)

// Store is proxy_get_shared_data / proxy_set_shared_data. It must be
// linearizable (Envoy holds one mutex for every call):
//
//   - Get returns the value and cas of key; found is false (err nil) for a
//     key that was never written.
//   - Set writes value under key and gives the key a new non-zero cas when
//     cas is 0, when cas equals the key's current cas, or when the key does
//     not exist (whatever cas is); otherwise it returns ErrCasMismatch (or an
//     error wrapping it) and writes nothing.
//
// Set must not keep value after returning; callers reuse their buffers.
type Store interface {
	Get(key string) (value []byte, cas uint32, found bool, err error)
	Set(key string, value []byte, cas uint32) error
}

// ErrCasMismatch is what Store.Set returns when the key's cas is not the one
// given: another VM wrote it since it was read.
var ErrCasMismatch = errors.New("shared data: cas mismatch")

// CreateCAS is the cas to write a key with that Get reported missing: every
// table creates its keys with it. Envoy's cas 0 would overwrite a key another
// VM created since our Get; a non-zero cas creates a missing key but fails
// against an existing one — unless that key's cas happens to be exactly this
// value (one in 2³² writes), which is the only residual race, and only on a
// key's very first writes.
const CreateCAS = math.MaxUint32

// FNV-1a 64: deterministic in every VM and process (unlike hash/maphash),
// which tables shared between VMs need.
const (
	FNVOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// FNVByte folds c into the FNV-1a state h.
func FNVByte(h uint64, c byte) uint64 { return (h ^ uint64(c)) * fnvPrime }

// FNVString folds s into the FNV-1a state h.
func FNVString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h = FNVByte(h, s[i])
	}
	return h
}

// Mix is a 64-bit finalizer (MurmurHash3's): FNV's low bits are poorly
// mixed, and tables choose their slot by the low bits.
func Mix(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// PairHash hashes the pair (a, b) for tables in shared data that must agree
// across VMs; never 0 (tables use 0 for an empty slot). a must not contain
// NUL, which separates the two.
func PairHash(a, b string) uint64 {
	h := Mix(FNVString(FNVByte(FNVString(FNVOffset, a), 0), b))
	if h == 0 {
		h = 1
	}
	return h
}
