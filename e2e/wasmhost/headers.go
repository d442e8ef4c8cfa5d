package wasmhost

import (
	"maps"
	"net/http"
	"slices"
	"strings"
)

// mapType is a proxy-wasm header map type.
type mapType uint32

const (
	mapRequestHeaders        mapType = 0
	mapRequestTrailers       mapType = 1
	mapResponseHeaders       mapType = 2
	mapResponseTrailers      mapType = 3
	mapHTTPCallResponseHeads mapType = 6
	mapHTTPCallResponseTrail mapType = 7
)

// headers is an ordered header map with lower-case keys, as Envoy keeps them.
type headers [][2]string

// get returns the first value of key, as Envoy's get_header_map_value does.
func (h headers) get(key string) (string, bool) {
	key = strings.ToLower(key)
	for _, p := range h {
		if p[0] == key {
			return p[1], true
		}
	}
	return "", false
}

// add appends a value.
func (h *headers) add(key, value string) {
	*h = append(*h, [2]string{strings.ToLower(key), value})
}

// replace sets the first value of key (Envoy's setCopy), adding it when absent.
func (h *headers) replace(key, value string) {
	key = strings.ToLower(key)
	for i, p := range *h {
		if p[0] == key {
			(*h)[i][1] = value
			return
		}
	}
	*h = append(*h, [2]string{key, value})
}

// remove drops every value of key.
func (h *headers) remove(key string) {
	key = strings.ToLower(key)
	out := (*h)[:0]
	for _, p := range *h {
		if p[0] != key {
			out = append(out, p)
		}
	}
	*h = out
}

// set replaces the whole map with pairs, lower-casing keys.
func (h *headers) set(pairs [][2]string) {
	out := make(headers, 0, len(pairs))
	for _, p := range pairs {
		out = append(out, [2]string{strings.ToLower(p[0]), p[1]})
	}
	*h = out
}

// hopByHop are the headers a proxy never forwards.
var hopByHop = map[string]bool{
	"connection": true, "keep-alive": true, "proxy-connection": true, "transfer-encoding": true,
	"upgrade": true, "te": true, "trailer": true,
}

// fromHTTP appends Go's header map (canonical keys) in a stable order.
func (h *headers) fromHTTP(hdr http.Header) {
	for _, k := range slices.Sorted(maps.Keys(hdr)) {
		vs := hdr[k]
		lk := strings.ToLower(k)
		if hopByHop[lk] {
			continue
		}
		for _, v := range vs {
			*h = append(*h, [2]string{lk, v})
		}
	}
}

// toHTTP copies the regular (non-pseudo, non-hop-by-hop) headers into dst.
func (h headers) toHTTP(dst http.Header) {
	for _, p := range h {
		if strings.HasPrefix(p[0], ":") || hopByHop[p[0]] {
			continue
		}
		dst[http.CanonicalHeaderKey(p[0])] = append(dst[http.CanonicalHeaderKey(p[0])], p[1])
	}
}
