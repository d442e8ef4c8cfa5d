package host

import (
	"errors"
	"github.com/portcullis/portcullis/filter/wrap"
	"strconv"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/portcullis/portcullis/filter/shared"
)

// SharedData is a shared.Store over the proxy's shared data (one store per
// vm_id, shared by every worker's VM). Envoy serialises every call under one
// mutex, so Get and Set are linearizable.
type SharedData struct{}

var _ shared.Store = SharedData{}

var errCasMismatch = wrap.New("shared data set: "+shared.ErrCasMismatch.Error()+" ("+types.ErrorStatusCasMismatch.Error()+")",
	shared.ErrCasMismatch, types.ErrorStatusCasMismatch)

// Get reads key; a key never written is found=false with no error.
func (SharedData) Get(key string) ([]byte, uint32, bool, error) {
	value, cas, err := proxywasm.GetSharedData(key)
	switch {
	case err == nil:
		return value, cas, true, nil
	case errors.Is(err, types.ErrorStatusNotFound):
		return nil, 0, false, nil
	}
	return nil, 0, false, wrap.With("shared data get "+strconv.Quote(key), err)
}

// Set writes key with cas; a concurrent write since the read is an error
// wrapping shared.ErrCasMismatch.
func (SharedData) Set(key string, value []byte, cas uint32) error {
	err := proxywasm.SetSharedData(key, value, cas)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, types.ErrorStatusCasMismatch):
		return errCasMismatch // no allocation on the contended path
	}
	return wrap.With("shared data set "+strconv.Quote(key), err)
}
