package wasmhost

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
)

// encode runs the response callbacks and writes the response.
func (rw *responder) encode(ctx context.Context, resp *response) {
	s, fns := rw.s, &rw.s.in.fns
	defer resp.body.Close()
	s.enterResponse(resp.headers, resp.status, resp.details, resp.flags)
	hasTrailers := len(resp.trailers) > 0
	eos := resp.bodyless && !hasTrailers
	o, err := s.step(ctx, fns.respHeaders, "proxy_on_response_headers", true, uint64(len(resp.headers)), wasmBool(eos))
	if !rw.settle(o, err) {
		return
	}
	rw.commit()
	if !resp.bodyless {
		if !rw.streamBody(ctx, resp, hasTrailers) {
			return
		}
	}
	if hasTrailers {
		rw.locked(func() { s.respTrailers.fromHTTP(resp.trailers) })
		var n int
		rw.locked(func() { n = len(s.respTrailers) })
		o, err := s.step(ctx, fns.respTrailers, "proxy_on_response_trailers", true, uint64(n))
		if !rw.settle(o, err) {
			return
		}
		rw.write(s.takeBody())
		var trl headers
		rw.locked(func() { trl = s.respTrailers })
		for _, p := range trl {
			rw.w.Header().Add(http.TrailerPrefix+p[0], p[1])
		}
	}
}

// streamBody runs proxy_on_response_body for every chunk the upstream sends
// and writes what the plugin lets through; it reports whether to go on.
func (rw *responder) streamBody(ctx context.Context, resp *response, hasTrailers bool) bool {
	s := rw.s
	bp := bodyBuffers.Get().(*[]byte)
	defer bodyBuffers.Put(bp)
	buf := *bp
	var total int64
	for {
		n, err := resp.body.Read(buf)
		total += int64(n)
		if err != nil && err != io.EOF {
			rw.h.logs.hostf(s.in.vm.index, Warn, "wasmhost: upstream body: %v", err)
			rw.abort()
		}
		done := err == io.EOF || (resp.length >= 0 && total >= resp.length)
		if n == 0 && !done {
			continue
		}
		size := s.appendBody(buf[:n])
		eos := done && !hasTrailers
		o, err := s.step(ctx, s.in.fns.respBody, "proxy_on_response_body", eos, uint64(size), wasmBool(eos))
		switch o {
		case proceed:
			rw.write(s.takeBody())
		case buffer:
		default:
			if !rw.settle(o, err) {
				return false
			}
		}
		if done {
			return true
		}
	}
}

// settle handles a step that did not proceed; it reports whether to go on.
func (rw *responder) settle(o outcome, err error) bool {
	switch o {
	case proceed, buffer:
		return true
	case failed:
		rw.fail(err)
	case reset:
		rw.abort()
	case local:
		l := rw.s.takeLocal()
		if rw.committed {
			// Too late to answer differently: Envoy resets the stream.
			rw.h.logs.hostf(rw.s.in.vm.index, Warn, "wasmhost: local reply after the response started; resetting")
			rw.abort()
		}
		rw.writeDirect(localResponse(l))
	}
	return false
}

// commit writes the response headers as the plugin left them.
func (rw *responder) commit() {
	var hdr headers
	var id string
	rw.locked(func() {
		hdr = append(headers(nil), rw.s.respHeaders...)
		id, _ = rw.s.reqHeaders.get("x-request-id")
	})
	code, _ := hdr.get(":status")
	status, err := strconv.Atoi(code)
	if err != nil || status < 100 || status > 999 {
		rw.h.logs.hostf(rw.s.in.vm.index, Error, "wasmhost: invalid :status %q", code)
		status = http.StatusBadGateway
	}
	hdr.toHTTP(rw.w.Header())
	if id != "" { // always_set_request_id_in_response
		rw.w.Header().Set("X-Request-Id", id)
	}
	rw.w.WriteHeader(status)
	rw.committed = true
}

// writeDirect writes a response without running callbacks.
func (rw *responder) writeDirect(resp *response) {
	rw.locked(func() { rw.s.respHeaders = resp.headers })
	rw.commit()
	body, _ := io.ReadAll(resp.body)
	rw.write(body)
}

func (rw *responder) write(b []byte) {
	if len(b) == 0 {
		return
	}
	if _, err := rw.w.Write(b); err != nil {
		rw.h.logs.hostf(rw.s.in.vm.index, Warn, "wasmhost: writing the response: %v", err)
		return
	}
	if f, ok := rw.w.(http.Flusher); ok {
		f.Flush()
	}
}

// fail answers a stream whose callback failed, or resets it when the
// response already started.
func (rw *responder) fail(err error) {
	var vmErr *VMError
	if !errors.As(err, &vmErr) {
		rw.h.logs.hostf(rw.s.in.vm.index, Error, "%v", err)
	}
	if rw.committed {
		rw.abort()
	}
	var id string
	rw.locked(func() { id, _ = rw.s.reqHeaders.get("x-request-id") })
	rw.h.writeFailure(rw.w, id, err)
	rw.committed = true
}

// writeFailure writes Options.FailStatus with an empty body.
func (h *Host) writeFailure(w http.ResponseWriter, requestID string, err error) {
	if requestID != "" {
		w.Header().Set("X-Request-Id", requestID)
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(h.opts.FailStatus)
}

// abort resets the client's connection.
func (rw *responder) abort() { panic(http.ErrAbortHandler) }
