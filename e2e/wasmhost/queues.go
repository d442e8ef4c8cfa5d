package wasmhost

import (
	"sync"

	"github.com/tetratelabs/wazero/api"
)

// queues are proxy-wasm shared queues: registered by one VM's root context,
// resolved by name, and drained by the owner, which gets proxy_on_queue_ready
// after every enqueue.
type queues struct {
	mu     sync.Mutex
	byName map[string]uint32
	byID   []*queue
}

type queue struct {
	owner *instance
	items [][]byte
}

func newQueues() *queues { return &queues{byName: map[string]uint32{}} }

func (in *instance) registerSharedQueue(mod api.Module, s []uint64) status {
	name, ok := readString(mod, u32(s[0]), u32(s[1]))
	if !ok {
		return statusInvalidMemoryAccess
	}
	q := in.h.queues
	q.mu.Lock()
	key := in.h.opts.VMID + "\x00" + name
	id, found := q.byName[key]
	if !found {
		q.byID = append(q.byID, &queue{})
		id = uint32(len(q.byID))
		q.byName[key] = id
	}
	q.byID[id-1].owner = in
	q.mu.Unlock()
	return writeU32(mod, u32(s[2]), id)
}

func (in *instance) resolveSharedQueue(mod api.Module, s []uint64) status {
	vmID, ok1 := readString(mod, u32(s[0]), u32(s[1]))
	name, ok2 := readString(mod, u32(s[2]), u32(s[3]))
	if !ok1 || !ok2 {
		return statusInvalidMemoryAccess
	}
	q := in.h.queues
	q.mu.Lock()
	id, found := q.byName[vmID+"\x00"+name]
	q.mu.Unlock()
	if !found {
		return statusNotFound
	}
	return writeU32(mod, u32(s[4]), id)
}

func (in *instance) enqueueSharedQueue(mod api.Module, s []uint64) status {
	data, ok := read(mod, u32(s[1]), u32(s[2]))
	if !ok {
		return statusInvalidMemoryAccess
	}
	id := u32(s[0])
	q := in.h.queues
	q.mu.Lock()
	qu := q.lookupLocked(id)
	if qu == nil {
		q.mu.Unlock()
		return statusNotFound
	}
	qu.items = append(qu.items, data)
	owner := qu.owner
	q.mu.Unlock()
	// The owner may be this very VM, whose lock the caller holds: notify later.
	go func() {
		owner.vm.mu.Lock()
		defer owner.vm.mu.Unlock()
		if owner.dead == nil && owner.vm.inst == owner {
			owner.active = owner.rootID
			_, _ = owner.call(owner.fns.queueReady, "proxy_on_queue_ready", uint64(owner.rootID), uint64(id))
		}
	}()
	return statusOK
}

func (in *instance) dequeueSharedQueue(mod api.Module, s []uint64) status {
	id := u32(s[0])
	q := in.h.queues
	q.mu.Lock()
	qu := q.lookupLocked(id)
	if qu == nil {
		q.mu.Unlock()
		return statusNotFound
	}
	if len(qu.items) == 0 {
		q.mu.Unlock()
		return statusEmpty
	}
	item := qu.items[0]
	qu.items = qu.items[1:]
	q.mu.Unlock()
	return in.writeResult(in.ctx, mod, item, u32(s[1]), u32(s[2]))
}

// lookupLocked returns the queue with id, or nil; q.mu must be held.
func (q *queues) lookupLocked(id uint32) *queue {
	if id == 0 || int(id) > len(q.byID) {
		return nil
	}
	return q.byID[id-1]
}
