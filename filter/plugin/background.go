package plugin

import (
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"

	"github.com/portcullis/portcullis/filter/host"
)

// Background work runs on the plugin's tick, in the root context: callouts
// that belong to no request (cache writes and invalidations, which must
// outlive the stream that asked for them — Envoy cancels a stream's pending
// callouts when the stream ends) and requests waiting for another's cache
// fill. The tick runs only while there is work.

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
	ticking bool
}

// enqueue schedules c; it reports false when the queue is full.
func (p *Plugin) enqueue(c backgroundCall) bool {
	if len(p.bg.calls) >= maxPendingCalls {
		return false
	}
	p.bg.calls = append(p.bg.calls, c)
	p.startTicking()
	return true
}

// wait adds w to the waiters polled on every tick.
func (p *Plugin) wait(w waiter) {
	p.bg.waiters = append(p.bg.waiters, w)
	p.startTicking()
}

func (p *Plugin) startTicking() {
	if !p.bg.ticking {
		if err := proxywasm.SetTickPeriodMilliSeconds(uint32(tickPeriod / time.Millisecond)); err != nil {
			host.Log(host.Warn, "portcullis: cannot start the tick: "+err.Error())
			return
		}
		p.bg.ticking = true
	}
}

// OnTick implements types.PluginContext: it makes the queued callouts and
// polls the waiters, then stops the tick when nothing is left.
func (p *Plugin) OnTick() {
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
	if len(p.bg.calls) == 0 && len(p.bg.waiters) == 0 && p.bg.ticking {
		if err := proxywasm.SetTickPeriodMilliSeconds(0); err == nil {
			p.bg.ticking = false
		}
	}
}
