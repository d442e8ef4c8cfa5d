package wasmhost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// calloutResponse is what proxy_on_http_call_response can read. A failed
// call (timeout, connection failure, reset) has no headers, as in Envoy.
type calloutResponse struct {
	headers, trailers headers
	body              []byte
}

// httpCall is proxy_http_call: a call to a named cluster, owned by the root
// context and answered later through proxy_on_http_call_response. As Envoy,
// it refuses an unknown cluster and a call without :method, :path or
// :authority with BadArgument.
func (in *instance) httpCall(mod api.Module, s []uint64) status {
	cluster, ok1 := readString(mod, u32(s[0]), u32(s[1]))
	rawHdr, ok2 := read(mod, u32(s[2]), u32(s[3]))
	body, ok3 := read(mod, u32(s[4]), u32(s[5]))
	rawTrl, ok4 := read(mod, u32(s[6]), u32(s[7]))
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return statusInvalidMemoryAccess
	}
	base, found := in.h.opts.Clusters[cluster]
	if !found {
		in.h.logs.hostf(in.vm.index, Warn, "wasmhost: http_call to unknown cluster %q", cluster)
		return statusBadArgument
	}
	hp, ok5 := decodePairs(rawHdr)
	tp, ok6 := decodePairs(rawTrl)
	if !ok5 || !ok6 {
		return statusBadArgument
	}
	var hdr, trl headers
	hdr.set(hp)
	trl.set(tp)
	for _, pseudo := range []string{":method", ":path", ":authority"} {
		if v, _ := hdr.get(pseudo); v == "" {
			in.h.logs.hostf(in.vm.index, Warn, "wasmhost: http_call to %s without %s", cluster, pseudo)
			return statusBadArgument
		}
	}
	in.nextCallout++
	id := in.nextCallout
	timeout := time.Duration(u32(s[8])) * time.Millisecond
	go in.runCallout(id, cluster, base, hdr, body, trl, timeout)
	return writeU32(mod, u32(s[9]), id)
}

// runCallout makes the call and delivers the response to the root context.
func (in *instance) runCallout(id uint32, cluster, base string, hdr headers, body []byte, trl headers, timeout time.Duration) {
	ctx := in.h.ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	resp, err := in.h.doCallout(ctx, cluster, base, hdr, body, trl)
	if err != nil {
		if in.h.ctx.Err() != nil {
			return // the host is closing
		}
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("timed out after %s (the call's timeout)", timeout)
		}
		in.h.logs.hostf(in.vm.index, Warn, "wasmhost: http_call %d to %s failed: %v", id, cluster, err)
		resp = &calloutResponse{}
	}
	v := in.vm
	v.mu.Lock()
	defer v.mu.Unlock()
	if in.dead != nil || v.inst != in {
		return
	}
	in.callout = resp
	in.active = in.rootID
	_, _ = in.call(in.fns.httpCallResponse, "proxy_on_http_call_response", uint64(in.rootID), uint64(id),
		uint64(len(resp.headers)), uint64(len(resp.body)), uint64(len(resp.trailers)))
	in.callout = nil
}

// doCallout performs one call, applying the cluster's injected fault.
func (h *Host) doCallout(ctx context.Context, cluster, base string, hdr headers, body []byte, trl headers) (*calloutResponse, error) {
	f := h.fault(cluster)
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
	if f.Reset {
		return nil, errInjectedReset
	}
	if f.Status > 0 {
		return &calloutResponse{headers: headers{{":status", strconv.Itoa(f.Status)}}}, nil
	}
	method, _ := hdr.get(":method")
	path, _ := hdr.get(":path")
	authority, _ := hdr.get(":authority")
	client := h.client
	if rest, ok := strings.CutPrefix(base, "h2c://"); ok {
		client, base = h.h2c, "http://"+rest
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(base, "/")+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Host = authority
	hdr.toHTTP(req.Header)
	req.Header.Del("Content-Length")
	if len(trl) > 0 {
		req.Trailer = http.Header{}
		trl.toHTTP(req.Trailer)
		req.ContentLength = -1
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := &calloutResponse{headers: headers{{":status", strconv.Itoa(resp.StatusCode)}}}
	out.headers.fromHTTP(resp.Header)
	if resp.ContentLength >= 0 {
		out.headers.replace("content-length", strconv.FormatInt(resp.ContentLength, 10))
	}
	if out.body, err = io.ReadAll(resp.Body); err != nil {
		return nil, err
	}
	out.trailers.fromHTTP(resp.Trailer)
	return out, nil
}

type calloutError string

func (e calloutError) Error() string { return string(e) }

const errInjectedReset = calloutError("injected reset")
