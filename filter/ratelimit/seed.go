package ratelimit

import (
	"encoding/binary"
	"errors"
	"github.com/portcullis/portcullis/filter/wrap"
	"strconv"

	"github.com/portcullis/portcullis/filter/shared"
)

// SeedKey is the shared-data key of the table's seed.
const SeedKey = "pc:rl:seed"

// SharedSeed returns the seed every VM of one proxy uses (Options.Seed): the
// first VM to start stores random() under SeedKey, the others read it. A
// seed that an attacker cannot know keeps chosen keys (a public route's
// header, say) from being aimed at one bucket to crowd out other keys.
// The seed lives as long as the proxy's shared data, so a restart of the
// plugin keeps its counters.
func SharedSeed(store shared.Store, random func() (uint64, error)) (uint64, error) {
	for range 3 {
		val, _, found, err := store.Get(SeedKey)
		if err != nil {
			return 0, wrap.With("read seed", err)
		}
		if found {
			if len(val) != 8 {
				return 0, errors.New("seed record has " + strconv.Itoa(len(val)) + " bytes, want 8")
			}
			return binary.LittleEndian.Uint64(val), nil
		}
		seed, err := random()
		if err != nil {
			return 0, wrap.With("random seed", err)
		}
		var buf [8]byte
		binary.LittleEndian.PutUint64(buf[:], seed)
		// shared.CreateCAS fails if another VM stored its seed since the Get; then
		// read theirs.
		switch err := store.Set(SeedKey, buf[:], shared.CreateCAS); {
		case err == nil:
			return seed, nil
		case !errors.Is(err, shared.ErrCasMismatch):
			return 0, wrap.With("store seed", err)
		}
	}
	return 0, errors.New("seed: every attempt met a concurrent write")
}
