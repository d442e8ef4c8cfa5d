package wasmhost

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// Envoy's response flags (the response.flags property) the host produces.
const (
	flagUpstreamRequestTimeout    = 0x4   // UT
	flagUpstreamConnectionFailure = 0x20  // UF
	flagUpstreamConnectionTermin  = 0x40  // UC
	flagNoRouteFound              = 0x100 // NR
)

// route applies the routing of envoy.yaml: with a strip prefix, only the
// prefix itself and paths under it are routed, with the prefix removed.
func (h *Host) route(path string) (string, bool) {
	p := h.opts.StripPrefix
	if p == "" || p == "/" {
		return path, true
	}
	p = strings.TrimSuffix(p, "/")
	rest, ok := strings.CutPrefix(path, p)
	switch {
	case !ok:
		return "", false
	case rest == "" || rest[0] == '?':
		return "/" + rest, true
	case rest[0] == '/':
		return rest, true
	}
	return "", false
}

// forward proxies the request upstream. It returns nil when the client left.
func (rw *responder) forward(ctx context.Context) *response {
	h, s := rw.h, rw.s
	var hdr, trl headers
	var body []byte
	rw.locked(func() {
		hdr = append(headers(nil), s.reqHeaders...)
		trl = append(headers(nil), s.reqTrailers...)
		body = s.reqBody
	})
	path, _ := hdr.get(":path")
	requestID, _ := hdr.get("x-request-id")
	upPath, routed := h.route(path)
	if h.upstream == nil || !routed {
		return envoyError(http.StatusNotFound, "route_not_found", requestID, flagNoRouteFound)
	}
	method, _ := hdr.get(":method")
	authority, _ := hdr.get(":authority")
	tctx, cancel := context.WithTimeout(ctx, h.opts.UpstreamTimeout)
	req, err := http.NewRequestWithContext(tctx, method, strings.TrimSuffix(h.upstream.String(), "/")+upPath, bytes.NewReader(body))
	if err != nil {
		cancel()
		return envoyError(http.StatusBadRequest, "wasmhost_bad_request", requestID, 0)
	}
	req.Host = authority
	hdr.toHTTP(req.Header)
	req.Header.Del("Content-Length")
	req.ContentLength = int64(len(body))
	if len(body) == 0 {
		req.Body = http.NoBody
	}
	if len(trl) > 0 {
		// Trailers need a chunked body: one of unknown length that is not
		// http.NoBody. (Go still drops them for a GET or HEAD whose body is
		// empty, as it then sends no body at all.)
		req.Trailer = http.Header{}
		trl.toHTTP(req.Trailer)
		req.ContentLength = -1
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	resp, err := h.client.Do(req)
	if err != nil {
		cancel()
		h.logs.hostf(s.in.vm.index, Warn, "wasmhost: upstream %s %s: %v", method, upPath, err)
		var op *net.OpError
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(tctx.Err(), context.DeadlineExceeded):
			return envoyError(http.StatusGatewayTimeout, "upstream_response_timeout", requestID, flagUpstreamRequestTimeout)
		case errors.As(err, &op) && op.Op == "dial":
			return envoyError(http.StatusServiceUnavailable,
				"upstream_reset_before_response_started{connection_failure}", requestID, flagUpstreamConnectionFailure)
		default:
			return envoyError(http.StatusServiceUnavailable,
				"upstream_reset_before_response_started{connection_termination}", requestID, flagUpstreamConnectionTermin)
		}
	}
	out := &response{
		status:   resp.StatusCode,
		headers:  headers{{":status", strconv.Itoa(resp.StatusCode)}},
		body:     cancelOnClose{resp.Body, cancel},
		length:   resp.ContentLength,
		trailers: func() http.Header { return resp.Trailer },
		details:  "via_upstream",
	}
	out.headers.fromHTTP(resp.Header)
	if resp.ContentLength >= 0 {
		out.headers.replace("content-length", strconv.FormatInt(resp.ContentLength, 10))
	}
	out.bodyless = method == http.MethodHead || resp.StatusCode == http.StatusNoContent ||
		resp.StatusCode == http.StatusNotModified || (resp.ContentLength == 0 && len(resp.Trailer) == 0)
	return out
}

// bodyBuffers are the chunk buffers response bodies are read with.
var bodyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// localResponse is a plugin's local reply as the encode phase sees it.
func localResponse(l *localReply) *response {
	hdr := headers{{":status", strconv.Itoa(l.status)}}
	hdr = append(hdr, l.headers...)
	if len(l.body) > 0 {
		if _, ok := hdr.get("content-type"); !ok {
			hdr.add("content-type", "text/plain")
		}
	}
	hdr.replace("content-length", strconv.Itoa(len(l.body)))
	return &response{
		status: l.status, headers: hdr, body: io.NopCloser(bytes.NewReader(l.body)),
		length: int64(len(l.body)), bodyless: len(l.body) == 0, details: l.details,
	}
}
