package ratelimit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"hash"
	"strings"

	"github.com/portcullis/portcullis/filter/shared"
)

// PartitionKeyBytes is how much of the keyed hash the pk parameter carries:
// 96 bits, enough that two keys of one Envoy practically never share a pk,
// short enough for a header.
const PartitionKeyBytes = 12

// Partitioner computes the partition key ("pk") that RateLimit-Policy and
// RateLimit carry (draft-ietf-httpapi-ratelimit-headers-12, the pk
// parameter, an sf-binary): the first PartitionKeyBytes of
// HMAC-SHA256(seed, key), so a client can tell its budgets apart without the
// header ever revealing the key (an API key claim, a client address): HMAC
// is not reversible, and without the seed nobody can test a guessed key
// against it. The seed is the table's (SharedSeed), random per Envoy, so
// the same key has a different pk on another Envoy. Not safe for
// concurrent use: each VM owns one.
//
// The HMAC costs about twice a whole rate-limit decision inside wasm, so
// recent keys' values are remembered (pkCacheSize entries, direct-mapped;
// keys over maxCachedPKKey bytes are not kept, which bounds the memory).
type Partitioner struct {
	mac   hash.Hash
	sum   []byte
	out   []byte
	cache [pkCacheSize]struct{ key, pk string }
}

const (
	pkCacheSize    = 256
	maxCachedPKKey = 256
)

// NewPartitioner returns a Partitioner keyed by seed.
func NewPartitioner(seed uint64) *Partitioner {
	var k [8]byte
	binary.LittleEndian.PutUint64(k[:], seed)
	return &Partitioner{mac: hmac.New(sha256.New, k[:]), sum: make([]byte, 0, sha256.Size)}
}

// Key is key's pk value as a structured-field byte sequence, e.g.
// ":q0h1mCm4dF0b1vT2:" (base64 of PartitionKeyBytes bytes needs no padding).
func (p *Partitioner) Key(key string) string {
	c := &p.cache[shared.FNVString(shared.FNVOffset, key)%pkCacheSize]
	if c.pk != "" && c.key == key {
		return c.pk
	}
	p.mac.Reset()
	_, _ = p.mac.Write([]byte(key)) // a hash.Hash never fails to write
	p.sum = p.mac.Sum(p.sum[:0])
	p.out = append(p.out[:0], ':')
	p.out = base64.StdEncoding.AppendEncode(p.out, p.sum[:PartitionKeyBytes])
	p.out = append(p.out, ':')
	pk := string(p.out)
	if len(key) <= maxCachedPKKey {
		c.key, c.pk = strings.Clone(key), pk // key may be a slice of the request's headers
	}
	return pk
}
