package wasmhost

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// Handler returns the http.Handler that runs every request through the
// plugin and, unless it answers itself, proxies it to Options.Upstream.
// A stream the plugin closes, or that fails after its response started, is
// aborted with http.ErrAbortHandler, which net/http turns into a reset.
func (h *Host) Handler() http.Handler { return http.HandlerFunc(h.serve) }

// response is what the encode phase runs through the plugin: an upstream
// response, an error Envoy would make itself, or a local reply.
type response struct {
	status   int
	headers  headers
	body     io.ReadCloser
	length   int64 // -1 when unknown
	bodyless bool
	trailers func() http.Header // the upstream's trailers, complete once body reached EOF; nil for none
	details  string
	flags    uint64
}

// responder drives one stream through the plugin and writes its answer.
type responder struct {
	h         *Host
	s         *stream
	w         http.ResponseWriter
	r         *http.Request
	committed bool
}

func (h *Host) serve(w http.ResponseWriter, r *http.Request) {
	// Envoy's codec refuses such headers before any filter (and any request id).
	if requestHeaderBytes(r) > maxRequestHeaderBytes {
		writeLocalReply(w, http.StatusRequestHeaderFieldsTooLarge, "http1.headers_too_large", "")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxRequestBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			// envoy.yaml's buffer filter: after the headers, so with a request id.
			writeLocalReply(w, http.StatusRequestEntityTooLarge, "request_payload_too_large", newRequestID())
		}
		return
	}
	v := h.pick()
	in, err := v.acquire()
	if err != nil {
		v.mu.Unlock()
		h.writeFailure(w, "", err)
		return
	}
	s := h.newStream(in, r, body)
	_, err = in.call(in.fns.contextCreate, "proxy_on_context_create", uint64(s.id), uint64(in.rootID))
	v.mu.Unlock()
	defer s.finish()
	rw := &responder{h: h, s: s, w: w, r: r}
	if err != nil {
		rw.fail(err)
		return
	}
	rw.run(r.Context())
}

// newStream registers a stream for r in in; the caller holds the vm lock.
func (h *Host) newStream(in *instance, r *http.Request, body []byte) *stream {
	s := &stream{h: h, in: in, id: in.nextID, wake: make(chan struct{}, 1), reqBody: body, props: map[string][]byte{}}
	in.nextID++
	in.streams[s.id] = s

	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	path := r.RequestURI
	if path == "" || !strings.HasPrefix(path, "/") {
		path = r.URL.RequestURI()
	}
	hdr := headers{{":authority", r.Host}, {":path", path}, {":method", r.Method}, {":scheme", scheme}}
	hdr.fromHTTP(r.Header)
	if _, ok := hdr.get("content-length"); !ok && r.ContentLength > 0 {
		hdr.add("content-length", strconv.FormatInt(r.ContentLength, 10))
	}
	clientIP, clientPort, _ := net.SplitHostPort(r.RemoteAddr)
	if xff, ok := hdr.get("x-forwarded-for"); ok && clientIP != "" {
		hdr.replace("x-forwarded-for", xff+","+clientIP)
	} else if clientIP != "" {
		hdr.add("x-forwarded-for", clientIP)
	}
	hdr.replace("x-forwarded-proto", scheme)
	id, ok := hdr.get("x-request-id")
	if !ok || id == "" || !h.opts.PreserveRequestID {
		id = newRequestID()
		hdr.replace("x-request-id", id)
	}
	s.reqHeaders = hdr
	if len(r.Trailer) > 0 {
		s.reqTrailers.fromHTTP(r.Trailer)
	}

	p := s.props
	p["request.id"] = []byte(id)
	p["request.path"] = []byte(path)
	p["request.url_path"] = []byte(r.URL.Path)
	p["request.host"] = []byte(r.Host)
	p["request.method"] = []byte(r.Method)
	p["request.scheme"] = []byte(scheme)
	p["request.protocol"] = []byte(r.Proto)
	if ua := r.UserAgent(); ua != "" {
		p["request.useragent"] = []byte(ua)
	}
	if ref := r.Referer(); ref != "" {
		p["request.referer"] = []byte(ref)
	}
	p["source.address"] = []byte(r.RemoteAddr)
	if port, err := strconv.Atoi(clientPort); err == nil {
		p["source.port"] = int64Property(int64(port))
	}
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		p["destination.address"] = []byte(la.String())
	}
	return s
}

// newRequestID returns a random UUID, as Envoy generates.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func wasmBool(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func (rw *responder) run(ctx context.Context) {
	o, err := rw.decode(ctx)
	switch o {
	case failed:
		rw.fail(err)
	case reset:
		rw.abort()
	case local:
		rw.encode(ctx, localResponse(rw.s.takeLocal()))
	default:
		resp := rw.forward(ctx)
		if resp == nil { // the client left
			return
		}
		rw.encode(ctx, resp)
	}
}

// decode runs the request callbacks. The body is buffered whole, so it is
// one proxy_on_request_body call; when trailers follow, that call is not the
// end of the stream and a pause there only buffers (as Envoy's
// StopIterationAndBuffer), and proxy_on_request_trailers decides. Without
// trailers, that body call may add some, which go upstream.
func (rw *responder) decode(ctx context.Context) (outcome, error) {
	s, fns := rw.s, &rw.s.in.fns
	var nHeaders, nTrailers, bodySize int
	rw.locked(func() { nHeaders, nTrailers, bodySize = len(s.reqHeaders), len(s.reqTrailers), len(s.reqBody) })
	eos := bodySize == 0 && nTrailers == 0
	o, err := s.step(ctx, fns.reqHeaders, "proxy_on_request_headers", headersCallback, true, uint64(nHeaders), wasmBool(eos))
	if o != proceed || eos {
		return o, err
	}
	if bodySize > 0 {
		rw.locked(func() { bodySize = len(s.reqBody) })
		last := nTrailers == 0
		rw.locked(func() { s.reqTrailersOpen = last }) // the plugin may add trailers
		o, err = s.step(ctx, fns.reqBody, "proxy_on_request_body", bodyCallback, last, uint64(bodySize), wasmBool(last))
		if o != proceed && o != buffer {
			return o, err
		}
	}
	if nTrailers > 0 {
		rw.locked(func() { s.reqTrailersOpen = true; nTrailers = len(s.reqTrailers) })
		o, err = s.step(ctx, fns.reqTrailers, "proxy_on_request_trailers", trailersCallback, true, uint64(nTrailers))
	}
	return o, err
}

func (rw *responder) locked(f func()) {
	rw.s.in.vm.mu.Lock()
	defer rw.s.in.vm.mu.Unlock()
	f()
}
