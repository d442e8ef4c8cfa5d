package wasmhost

import (
	"fmt"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
)

// statPrefix is the prefix Envoy puts before every metric a plugin defines.
const statPrefix = "wasmcustom."

// Admin is the part of Envoy's admin interface the tests and `make run` use,
// for one Host:
//
//   - GET /ready: 200 "LIVE" once the VMs are up (SetHost), else 503 with the
//     server state ("PRE_INITIALIZING" before SetHost, "DRAINING" once the
//     Host is closed), as Envoy's /ready.
//   - GET /stats: every plugin metric as a line "wasmcustom.<name>: <value>"
//     in Envoy's text /stats order: counters and gauges sorted by name, then
//     histograms sorted by name; ?filter=<RE2> keeps the names it matches. A
//     histogram prints Envoy's quantile line ("P0(nan,v) P25(nan,v) …
//     P100(nan,v)", exact nearest-rank quantiles of every sample, where Envoy
//     approximates) or "No recorded values".
//
// Envoy's /stats also lists Envoy's own statistics (server.*, cluster.*, …);
// this one has only the plugin's. The zero Admin is ready to serve.
type Admin struct {
	host atomic.Pointer[Host]
}

// SetHost makes a the admin of h, whose VMs are up.
func (a *Admin) SetHost(h *Host) { a.host.Store(h) }

// AdminHandler returns an Admin for h.
func (h *Host) AdminHandler() *Admin {
	a := &Admin{}
	a.SetHost(h)
	return a
}

func (a *Admin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch r.URL.Path {
	case "/ready":
		a.ready(w)
	case "/stats":
		a.stats(w, r)
	default:
		http.Error(w, "wasmhost admin: GET /ready or /stats", http.StatusNotFound)
	}
}

func (a *Admin) ready(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	h := a.host.Load()
	switch {
	case h == nil:
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "PRE_INITIALIZING")
	case h.isClosed():
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "DRAINING")
	default:
		fmt.Fprintln(w, "LIVE")
	}
}

func (a *Admin) stats(w http.ResponseWriter, r *http.Request) {
	var filter *regexp.Regexp
	if f := r.URL.Query().Get("filter"); f != "" {
		var err error
		if filter, err = regexp.Compile(f); err != nil {
			http.Error(w, "Invalid re2 regex", http.StatusBadRequest)
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	h := a.host.Load()
	if h == nil {
		return
	}
	for _, l := range h.metrics.statLines() {
		if filter == nil || filter.MatchString(l.name) {
			fmt.Fprintf(w, "%s: %s\n", l.name, l.value)
		}
	}
}

type statLine struct {
	name, value string
	histogram   bool
}

// statLines renders every metric as Envoy's text /stats does, in its order.
func (m *metrics) statLines() []statLine {
	m.mu.Lock()
	lines := make([]statLine, 0, len(m.byID))
	for _, mt := range m.byID {
		l := statLine{name: statPrefix + mt.name, histogram: mt.typ == Histogram}
		if mt.typ == Histogram {
			l.value = quantileLine(slices.Clone(mt.samples))
		} else {
			l.value = fmt.Sprint(mt.value)
		}
		lines = append(lines, l)
	}
	m.mu.Unlock()
	slices.SortFunc(lines, func(a, b statLine) int {
		if a.histogram != b.histogram {
			if a.histogram {
				return 1
			}
			return -1
		}
		return strings.Compare(a.name, b.name)
	})
	return lines
}

// envoyQuantiles are the quantiles Envoy's /stats prints for a histogram.
var envoyQuantiles = []struct {
	label string
	q     float64
}{
	{"P0", 0}, {"P25", .25}, {"P50", .5}, {"P75", .75}, {"P90", .9},
	{"P95", .95}, {"P99", .99}, {"P99.5", .995}, {"P99.9", .999}, {"P100", 1},
}

// quantileLine is Envoy's "P0(interval,cumulative) …" line; the host keeps no
// flush intervals, so the interval values are nan, as Envoy's are before its
// first stats flush.
func quantileLine(samples []uint64) string {
	if len(samples) == 0 {
		return "No recorded values"
	}
	slices.Sort(samples)
	parts := make([]string, len(envoyQuantiles))
	for i, q := range envoyQuantiles {
		rank := min(max(int(math.Ceil(q.q*float64(len(samples)))), 1), len(samples)) // nearest rank, 1-based
		parts[i] = fmt.Sprintf("%s(nan,%d)", q.label, samples[rank-1])
	}
	return strings.Join(parts, " ")
}
