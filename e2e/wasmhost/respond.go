package wasmhost

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// encode runs the response callbacks and writes the response. Trailers are
// known only once the body has been read (an upstream need not announce them
// in a Trailer header), so the last body chunk is the end of the stream only
// when none came; otherwise proxy_on_response_trailers runs on them, and what
// the plugin left of them is sent to the client as HTTP trailers.
func (rw *responder) encode(ctx context.Context, resp *response) {
	s, fns := rw.s, &rw.s.in.fns
	defer resp.body.Close()
	s.enterResponse(resp.headers, resp.status, resp.details, resp.flags)
	o, err := s.step(ctx, fns.respHeaders, "proxy_on_response_headers", headersCallback, true,
		uint64(len(resp.headers)), wasmBool(resp.bodyless))
	if !rw.settle(o, err) {
		return
	}
	rw.commit()
	if resp.bodyless {
		return
	}
	trl, ok := rw.streamBody(ctx, resp)
	if !ok {
		return
	}
	if len(trl) > 0 {
		rw.locked(func() { s.respTrailers, s.respTrailersOpen = trl, true })
		o, err = s.step(ctx, fns.respTrailers, "proxy_on_response_trailers", trailersCallback, true, uint64(len(trl)))
		if !rw.settle(o, err) {
			return
		}
		rw.write(s.takeBody()) // what the plugin buffered by pausing the last chunk
	}
	// The upstream's trailers as the plugin left them, or those it added in
	// the last body callback.
	rw.locked(func() { trl = append(headers(nil), s.respTrailers...) })
	for _, p := range trl {
		if strings.HasPrefix(p[0], ":") || hopByHop[p[0]] {
			continue
		}
		rw.w.Header().Add(http.TrailerPrefix+http.CanonicalHeaderKey(p[0]), p[1])
	}
}

// streamBody runs proxy_on_response_body for every chunk the upstream sends
// and writes what the plugin lets through. It returns the upstream's trailers
// and whether to go on.
func (rw *responder) streamBody(ctx context.Context, resp *response) (headers, bool) {
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
		var trl headers
		if done && resp.trailers != nil {
			trl.fromHTTP(resp.trailers()) // filled once the body reached EOF
		}
		size := s.appendBody(buf[:n])
		eos := done && len(trl) == 0
		if eos {
			rw.locked(func() { s.respTrailersOpen = true }) // the plugin may add trailers
		}
		o, err := s.step(ctx, s.in.fns.respBody, "proxy_on_response_body", bodyCallback, eos, uint64(size), wasmBool(eos))
		switch o {
		case proceed:
			rw.write(s.takeBody())
		case buffer:
		default:
			if !rw.settle(o, err) {
				return nil, false
			}
		}
		if done {
			return trl, true
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
