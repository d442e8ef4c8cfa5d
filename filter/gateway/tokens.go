package gateway

import "github.com/portcullis/portcullis/filter/jwt"

// MaxCachedTokenBytes is the largest token the token cache keeps: a bigger
// one is verified every time, so that the cache's memory stays bounded by
// its size times this.
const MaxCachedTokenBytes = 4096

// tokenCache remembers tokens that verified, keyed by the whole token (so a
// token that differs in any byte, its signature included, never hits), with
// what verifying it gave: the caller and the identity headers. It belongs to
// one Gateway, so to one configuration and one secret set: a new
// configuration starts with an empty cache. A hit is checked against the
// clock again (exp and nbf, with the leeway) before it is used. Only
// verified tokens go in: a refused token costs a verification every time,
// and cannot push verified ones out.
//
// Eviction is CLOCK: a fixed array of slots with a reference bit, swept by a
// hand; no allocation or list update on a hit.
type tokenCache struct {
	index map[string]int32
	slots []tokenSlot
	hand  int
}

type tokenSlot struct {
	token  string
	caller jwt.Verified
	set    [][2]string // the identity headers; shared, read only
	used   bool        // referenced since the hand last passed
}

// newTokenCache returns a cache of size slots; nil (no caching) for 0.
func newTokenCache(size int) *tokenCache {
	if size <= 0 {
		return nil
	}
	return &tokenCache{index: make(map[string]int32, size), slots: make([]tokenSlot, 0, size)}
}

// get returns the slot of token, or nil.
func (c *tokenCache) get(token string) *tokenSlot {
	i, ok := c.index[token]
	if !ok {
		return nil
	}
	s := &c.slots[i]
	s.used = true
	return s
}

// put keeps token's verdict, evicting the first slot the hand finds unused.
func (c *tokenCache) put(token string, caller jwt.Verified, set [][2]string) {
	if len(token) > MaxCachedTokenBytes {
		return
	}
	if len(c.slots) < cap(c.slots) {
		c.index[token] = int32(len(c.slots))
		c.slots = append(c.slots, tokenSlot{token: token, caller: caller, set: set})
		return
	}
	for c.slots[c.hand].used {
		c.slots[c.hand].used = false
		c.hand = (c.hand + 1) % len(c.slots)
	}
	s := &c.slots[c.hand]
	delete(c.index, s.token)
	*s = tokenSlot{token: token, caller: caller, set: set}
	c.index[token] = int32(c.hand)
	c.hand = (c.hand + 1) % len(c.slots)
}

// drop forgets token (it expired while cached).
func (c *tokenCache) drop(token string) {
	if i, ok := c.index[token]; ok {
		delete(c.index, token)
		// The slot stays in the array, unreachable, until the hand reuses it.
		c.slots[i] = tokenSlot{}
	}
}
