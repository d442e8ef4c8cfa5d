package wasmhost

import "sync"

// SharedData is the proxy-wasm shared key-value store of one Host: one store
// for all its VMs, with Envoy's semantics. Every write gives the key a new cas
// from one store-wide counter; a set with a cas that is not the key's current
// one fails with CasMismatch; cas 0 always writes; a key never goes away.
type SharedData struct {
	mu      sync.Mutex
	entries map[string]sharedEntry
	nextCas uint32
	contend func(key string) bool
}

type sharedEntry struct {
	value []byte
	cas   uint32
}

func newSharedData() *SharedData {
	return &SharedData{entries: map[string]sharedEntry{}, nextCas: 1}
}

// newCasLocked returns the next cas, never 0.
func (d *SharedData) newCasLocked() uint32 {
	c := d.nextCas
	d.nextCas++
	if d.nextCas == 0 {
		d.nextCas = 1
	}
	return c
}

// Get returns a copy of the value of key and its cas.
func (d *SharedData) Get(key string) (value []byte, cas uint32, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.entries[key]
	if !ok {
		return nil, 0, false
	}
	return append([]byte(nil), e.value...), e.cas, true
}

// Set stores value under key if cas is 0 or the key's current cas (a key
// that does not exist accepts any cas, as in Envoy). It reports false on a
// cas mismatch.
func (d *SharedData) Set(key string, value []byte, cas uint32) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if e, ok := d.entries[key]; ok && cas != 0 && cas != e.cas {
		return false
	}
	d.entries[key] = sharedEntry{value: append([]byte(nil), value...), cas: d.newCasLocked()}
	return true
}

// Keys returns the number of keys in the store.
func (d *SharedData) Keys() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.entries)
}

// Contend installs a fault hook: after a plugin reads a key for which
// contend returns true, the store rewrites that key with its current value and
// a new cas, so the plugin's following set with the cas it read fails with
// CasMismatch, as if another worker had won the race. nil removes the hook.
func (d *SharedData) Contend(contend func(key string) bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.contend = contend
}

// get is the guest's proxy_get_shared_data.
func (d *SharedData) get(key string) ([]byte, uint32, status) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.entries[key]
	if !ok {
		return nil, 0, statusNotFound
	}
	if d.contend != nil && d.contend(key) {
		d.entries[key] = sharedEntry{value: e.value, cas: d.newCasLocked()}
	}
	return e.value, e.cas, statusOK
}

// set is the guest's proxy_set_shared_data.
func (d *SharedData) set(key string, value []byte, cas uint32) status {
	if !d.Set(key, value, cas) {
		return statusCasMismatch
	}
	return statusOK
}
