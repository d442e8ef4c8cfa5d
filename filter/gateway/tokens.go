package gateway

import "github.com/portcullis/portcullis/filter/jwt"

// MaxCachedTokenBytes is the largest token the token caches keep: a bigger
// one is verified every time, so that their memory stays bounded by their
// size times this.
const MaxCachedTokenBytes = 4096

// The gateway keeps two token caches, each keyed by the whole token (so a
// token that differs in any byte, its signature included, never hits), and
// each belonging to one Gateway, so to one configuration and one secret
// set: a new configuration starts with both empty.
//
// The verified cache holds what verifying a token gave: the caller and the
// identity headers. A hit is checked against the clock again (exp and nbf,
// with the leeway) before it is used.
//
// The refused cache holds the refusals that no clock or claim check can
// change (refusedForGood): a client retrying a bad token, or one spraying
// the same few forged tokens, costs a lookup instead of a signature check.
// Refused tokens never go into the verified cache, so however many a client
// sends they cannot push verified ones out.
type verdict struct {
	caller jwt.Verified
	set    [][2]string // the identity headers; shared, read only
}

// refusedForGood reports whether a refusal depends on the token and the
// secret set only: decided before any claim is read, so the same token is
// refused for the same reason at any time under this configuration.
// Refusals from the claims (exp, nbf, iss, aud, the key claim, or a
// malformed claim) are checked in an order that starts with the clock, so
// they are not kept.
func refusedForGood(r jwt.Reason) bool {
	switch r {
	case jwt.ReasonBadSignature, jwt.ReasonUnknownKey, jwt.ReasonUnsupportedAlg, jwt.ReasonUnsupportedCrit:
		return true
	}
	return false
}

// tokenCache maps tokens to V. Eviction is CLOCK: a fixed array of slots
// with a reference bit, swept by a hand; no allocation or list update on a
// hit.
type tokenCache[V any] struct {
	index map[string]int32
	slots []tokenSlot[V]
	hand  int
}

type tokenSlot[V any] struct {
	token string
	value V
	used  bool // referenced since the hand last passed
}

// newTokenCache returns a cache of size slots; nil (no caching) for 0.
func newTokenCache[V any](size int) *tokenCache[V] {
	if size <= 0 {
		return nil
	}
	return &tokenCache[V]{index: make(map[string]int32, size), slots: make([]tokenSlot[V], 0, size)}
}

// get returns token's value, or nil.
func (c *tokenCache[V]) get(token string) *V {
	i, ok := c.index[token]
	if !ok {
		return nil
	}
	s := &c.slots[i]
	s.used = true
	return &s.value
}

// put keeps token's value, evicting the first slot the hand finds unused.
func (c *tokenCache[V]) put(token string, value V) {
	if len(token) > MaxCachedTokenBytes {
		return
	}
	if len(c.slots) < cap(c.slots) {
		c.index[token] = int32(len(c.slots))
		c.slots = append(c.slots, tokenSlot[V]{token: token, value: value})
		return
	}
	for c.slots[c.hand].used {
		c.slots[c.hand].used = false
		c.hand = (c.hand + 1) % len(c.slots)
	}
	s := &c.slots[c.hand]
	delete(c.index, s.token)
	*s = tokenSlot[V]{token: token, value: value}
	c.index[token] = int32(c.hand)
	c.hand = (c.hand + 1) % len(c.slots)
}

// drop forgets token (it expired while cached).
func (c *tokenCache[V]) drop(token string) {
	if i, ok := c.index[token]; ok {
		delete(c.index, token)
		// The slot stays in the array, unreachable, until the hand reuses it.
		c.slots[i] = tokenSlot[V]{}
	}
}
