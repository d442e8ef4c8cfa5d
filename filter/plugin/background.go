package plugin

import (
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"

	"github.com/portcullis/portcullis/filter/gateway"
	"github.com/portcullis/portcullis/filter/host"
)

// Background work runs on the plugin's tick, in the root context: callouts
// that belong to no request (cache writes and invalidations, which must
// outlive the stream that asked for them — Envoy cancels a stream's pending
// callouts when the stream ends), requests waiting for another's cache
// fill, and the flush of the counters. The tick runs every tickPeriod while
// there is work, and every flushPeriod otherwise.

// tickPeriod is how often background work runs while there is some.
const tickPeriod = 10 * time.Millisecond

// maxPendingCalls bounds the queue of background callouts; past it new ones
// are dropped (and counted): a cache that cannot keep up loses writes, the
// VM does not grow.
const maxPendingCalls = 1024

// backgroundCall is a callout to make from the root context.
type backgroundCall struct {
	what, cluster string
	headers       [][2]string
	body          []byte
	timeout       time.Duration
	// done, when set, gets the answer's status (0: none arrived).
	done func(status int)
}

// waiter is a paused request polled on every tick until it may go on.
type waiter interface {
	// poll is called on each tick, with the stream's context made the
	// effective one, and returns true when the waiter is done.
	poll(now time.Time) bool
	// streamID is the waiting stream's context id.
	streamID() uint32
}

type background struct {
	calls   []backgroundCall
	waiters []waiter
	busy    bool // ticking every tickPeriod
}

// enqueue schedules c; it reports false when the queue is full.
func (p *Plugin) enqueue(c backgroundCall) bool {
	if len(p.bg.calls) >= maxPendingCalls {
		return false
	}
	p.bg.calls = append(p.bg.calls, c)
	p.setBusy(true)
	return true
}

// wait adds w to the waiters polled on every tick.
func (p *Plugin) wait(w waiter) {
	p.bg.waiters = append(p.bg.waiters, w)
	p.setBusy(true)
}

// setBusy sets the tick to tickPeriod while there is background work, to
// flushPeriod when there is none.
func (p *Plugin) setBusy(busy bool) {
	if p.bg.busy == busy {
		return
	}
	period := flushPeriod
	if busy {
		period = tickPeriod
	}
	if err := proxywasm.SetTickPeriodMilliSeconds(uint32(period / time.Millisecond)); err != nil {
		host.Log(host.Warn, "portcullis: cannot set the tick: "+err.Error())
		return
	}
	p.bg.busy = busy
}

// OnTick implements types.PluginContext: it makes the queued callouts,
// polls the waiters and flushes the counters, then slows the tick down
// when nothing is left.
func (p *Plugin) OnTick() {
	defer p.metrics.flush()
	calls := p.bg.calls
	p.bg.calls = nil
	for _, c := range calls {
		done := c.done
		_, err := proxywasm.DispatchHttpCall(c.cluster, c.headers, c.body, nil, uint32(c.timeout/time.Millisecond),
			func(numHeaders, _, _ int) {
				if done != nil {
					done(readAnswer(numHeaders, 0, 0).status)
				}
			})
		if err != nil {
			host.Log(host.Warn, "portcullis: cannot call the "+c.what+" (cluster "+c.cluster+"): "+err.Error())
			if done != nil {
				done(0)
			}
		}
	}
	now := p.now()
	p.logs.Overdue(now, func(reason string, n int) { host.Log(host.Info, gateway.SuppressedLine(reason, n)) })
	polled := len(p.bg.waiters) > 0
	kept := p.bg.waiters[:0]
	for _, w := range p.bg.waiters {
		// A stream that is gone cannot be made effective: drop its waiter.
		if proxywasm.SetEffectiveContext(w.streamID()) != nil || w.poll(now) {
			continue
		}
		kept = append(kept, w)
	}
	clear(p.bg.waiters[len(kept):])
	p.bg.waiters = kept
	if polled {
		_ = proxywasm.SetEffectiveContext(p.id) // back to the root context for what follows
	}
	if len(p.bg.calls) == 0 && len(p.bg.waiters) == 0 {
		p.setBusy(false)
	}
	collected, inRequests := p.heap.onTick()
	if collected {
		p.metrics.gcOnTick.Inc()
	}
	p.metrics.gcInRequest.pending += inRequests
}
