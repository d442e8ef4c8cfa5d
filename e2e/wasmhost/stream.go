package wasmhost

import (
	"context"
	"fmt"

	"github.com/tetratelabs/wazero/api"
)

type phase int

const (
	phaseRequest phase = iota
	phaseResponse
)

// localReply is a proxy_send_local_response.
type localReply struct {
	status  int
	details string
	body    []byte
	headers headers
}

// stream is one HTTP context. The handler goroutine drives it; host
// functions touch it while the handler or a callout holds vm.mu, so every
// field below wake is guarded by vm.mu.
type stream struct {
	h    *Host
	in   *instance
	id   uint32
	wake chan struct{} // a continue, a local reply, a reset or a VM failure

	phase                     phase
	reqHeaders, reqTrailers   headers
	respHeaders, respTrailers headers
	reqBody, respBody         []byte
	// reqTrailersOpen and respTrailersOpen say whether the plugin can see
	// the trailer maps: as in Envoy, from the trailers callback on, or, when
	// the stream has no trailers, in the body callback that ends it, which
	// may add some (Envoy's addDecodedTrailers / addEncodedTrailers).
	reqTrailersOpen, respTrailersOpen bool
	props                             map[string][]byte
	local                             *localReply
	reset                             bool
}

// signal wakes the handler if it waits; it never blocks.
func (s *stream) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// InvalidActionError is a callback result that is no action the callback may
// return. The host answers the request with Options.FailStatus (Envoy instead
// treats it as the strongest pause and leaves the stream waiting) and records
// it as a *VMError; the VM keeps running, since it did not trap.
type InvalidActionError struct {
	Callback string // e.g. "proxy_on_request_headers"
	Action   uint64 // what it returned
	Max      uint64 // the largest action that callback may return
}

func (e *InvalidActionError) Error() string {
	return fmt.Sprintf("%s returned %d, which is no valid action (0 to %d)", e.Callback, e.Action, e.Max)
}

// callbackKind says which actions an HTTP callback may return: Envoy's
// FilterHeadersStatus, FilterDataStatus or FilterTrailersStatus.
type callbackKind int

const (
	headersCallback  callbackKind = iota // 0 Continue, 1 StopIteration, 2 ContinueAndDontEndStream, 3 StopAllIterationAndBuffer, 4 StopAllIterationAndWatermark
	bodyCallback                         // 0 Continue, 1 StopIterationAndBuffer, 2 StopIterationAndWatermark, 3 StopIterationNoBuffer
	trailersCallback                     // 0 Continue, 1 StopIteration
)

// classify maps an action to continue (true) or pause (false); ok is false
// for a value the callback may not return.
func (k callbackKind) classify(action uint64) (cont, ok bool) {
	switch k {
	case headersCallback:
		switch action {
		case 0, 2:
			return true, true
		case 1, 3, 4:
			return false, true
		}
	case bodyCallback:
		switch action {
		case 0:
			return true, true
		case 1, 2, 3:
			return false, true
		}
	case trailersCallback:
		switch action {
		case 0:
			return true, true
		case 1:
			return false, true
		}
	}
	return false, false
}

func (k callbackKind) max() uint64 { return [...]uint64{4, 3, 1}[k] }

// outcome is how a stream step ended.
type outcome int

const (
	proceed outcome = iota // Continue: go on with the next step
	buffer                 // Pause on a body chunk that is not the last: read more
	local                  // the plugin sent a local reply
	reset                  // the plugin closed the stream, or the client left
	failed                 // the VM failed, or the callback returned no valid action
)

// step runs one HTTP callback. On Pause it waits for proxy_continue_stream (or a
// local reply, a reset, a VM failure, the client leaving) unless the callback
// was a body chunk before the end of the stream, which only asks for more data.
func (s *stream) step(ctx context.Context, fn api.Function, name string, kind callbackKind, waitOnPause bool, args ...uint64) (outcome, error) {
	v := s.in.vm
	v.mu.Lock()
	s.in.active = s.id
	res, err := s.in.call(fn, name, append([]uint64{uint64(s.id)}, args...)...)
	o := s.stateLocked()
	v.mu.Unlock()
	if err != nil {
		return failed, err
	}
	if o != proceed {
		return o, nil
	}
	cont, valid := kind.classify(res)
	if !valid {
		e := &VMError{VM: v.index, Callback: name, Err: &InvalidActionError{Callback: name, Action: res, Max: kind.max()}}
		s.h.recordFailure(e)
		return failed, e
	}
	if cont {
		s.drain()
		return proceed, nil
	}
	if !waitOnPause {
		return buffer, nil
	}
	select {
	case <-s.wake:
	case <-ctx.Done():
		return reset, nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if s.in.dead != nil {
		return failed, s.in.dead
	}
	return s.stateLocked(), nil
}

// stateLocked reports a local reply, a reset or a dead VM; proceed otherwise.
func (s *stream) stateLocked() outcome {
	switch {
	case s.in.dead != nil:
		return failed
	case s.local != nil:
		return local
	case s.reset:
		return reset
	}
	return proceed
}

// drain forgets a wake-up that arrived while a callback that then continued ran.
func (s *stream) drain() {
	select {
	case <-s.wake:
	default:
	}
}

// takeLocal returns and clears the pending local reply.
func (s *stream) takeLocal() *localReply {
	s.in.vm.mu.Lock()
	defer s.in.vm.mu.Unlock()
	l := s.local
	s.local = nil
	return l
}

// enterResponse switches the stream to its response phase with the given
// response headers and properties.
func (s *stream) enterResponse(hdr headers, code int, details string, flags uint64) {
	s.in.vm.mu.Lock()
	defer s.in.vm.mu.Unlock()
	s.phase = phaseResponse
	s.respHeaders = hdr
	s.respTrailers = nil
	s.respTrailersOpen = false
	s.respBody = nil
	s.props["response.code"] = int64Property(int64(code))
	s.props["response.code_details"] = []byte(details)
	s.props["response.flags"] = int64Property(int64(flags))
}

// takeBody returns and clears the buffered response body.
func (s *stream) takeBody() []byte {
	s.in.vm.mu.Lock()
	defer s.in.vm.mu.Unlock()
	b := s.respBody
	s.respBody = nil
	return b
}

// appendBody adds a chunk to the buffered response body and returns its size.
func (s *stream) appendBody(p []byte) int {
	s.in.vm.mu.Lock()
	defer s.in.vm.mu.Unlock()
	s.respBody = append(s.respBody, p...)
	return len(s.respBody)
}

// finish runs proxy_on_log and proxy_on_delete and forgets the stream.
func (s *stream) finish() {
	v := s.in.vm
	v.mu.Lock()
	defer v.mu.Unlock()
	if s.in.dead == nil {
		s.in.active = s.id
		if _, err := s.in.call(s.in.fns.log, "proxy_on_log", uint64(s.id)); err == nil {
			_, _ = s.in.call(s.in.fns.delete, "proxy_on_delete", uint64(s.id))
		}
	}
	delete(s.in.streams, s.id)
	s.in.active = s.in.rootID
}
