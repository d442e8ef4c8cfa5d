package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/portcullis/portcullis/e2e/harness"
	"github.com/portcullis/portcullis/e2e/scenarios"
)

// errorRateAlert is the alert the test drives above and below its threshold.
const errorRateAlert = "PortcullisErrorRateHigh"

// TestEnvoyMetrics runs a real Prometheus against a real Envoy started from
// the shipped envoy.yaml (so with its stats_config), loading the shipped
// alerts. It checks that the series Envoy exports are exactly the README
// metrics table, that every series the alerts and the Grafana dashboard use
// exists with documented labels and values, that every dashboard query is
// valid PromQL, and that the error-rate alert's expression is silent with
// gateway errors at 0.7 % of requests and fires (the alert goes pending) at 7 %.
func TestEnvoyMetrics(t *testing.T) {
	t.Parallel()
	envoy := harness.NewEnvoy(t)
	harness.PrometheusTool(t, "prometheus")
	root := harness.RepoRoot(t)
	documented := readmeMetrics(t, filepath.Join(root, "README.md"))
	alertsFile := filepath.Join(root, "deploy", "prometheus", "alerts.yaml")
	alerts := alertExprs(t, alertsFile)
	dashboard := dashboardExprs(t, filepath.Join(root, "deploy", "grafana", "portcullis.json"))

	gw := envoy.Start(t, harness.Options{})
	if gw.Admin == "" {
		t.Fatal("the Envoy gateway reports no admin address")
	}
	prom := harness.StartPrometheus(t, gw.Admin, alertsFile)
	// The first scrape sees every counter at 0, so rates over the test's
	// traffic are its exact ratios.
	waitScraped(t, prom, gw, 0)

	// Forwarded requests, or 429s should the shipped configuration limit
	// public routes: the alert leaves 429s out, so either way only the 404s
	// below are errors, and every request counts in the denominator.
	const good = 300
	send := func(n int, path string, statuses ...int) {
		for range n {
			if resp := scenarios.Send(t, gw, scenarios.Request{Path: path}); !slices.Contains(statuses, resp.Status) {
				t.Fatalf("GET %s: want one of %v, got:\n%s", path, statuses, resp)
			}
		}
	}
	send(good, "/api/public/items", http.StatusOK, http.StatusTooManyRequests)
	send(2, "/nope", http.StatusNotFound)
	waitScraped(t, prom, gw, good+2)
	// Two evaluations after the data arrived.
	time.Sleep(2500 * time.Millisecond)
	if got := query(t, prom, alerts[errorRateAlert]); len(got) != 0 {
		t.Errorf("%s at 2 errors in %d requests: the expression fires: %v", errorRateAlert, good+2, got)
	}
	if got := query(t, prom, `ALERTS{alertname="`+errorRateAlert+`"}`); len(got) != 0 {
		t.Errorf("%s at 2 errors in %d requests: %v", errorRateAlert, good+2, got)
	}

	send(20, "/nope", http.StatusNotFound)
	waitScraped(t, prom, gw, good+22)
	got := query(t, prom, alerts[errorRateAlert])
	if len(got) != 1 || got[0].Value < 0.06 || got[0].Value > 0.08 {
		t.Errorf("%s at 22 errors in %d requests: want one series at about 0.068, got %v", errorRateAlert, good+22, got)
	}
	// Its `for` is minutes, so the real rule engine can only show it pending.
	waitFor(t, "the "+errorRateAlert+" alert to be pending", func() (bool, string) {
		got := query(t, prom, `ALERTS{alertname="`+errorRateAlert+`",alertstate="pending"}`)
		return len(got) == 1, fmt.Sprint(got)
	})
	waitFor(t, "every rule to evaluate without error", func() (bool, string) {
		rules, err := prom.Rules()
		if err != nil {
			return false, err.Error()
		}
		ok := len(rules) == len(alerts)
		for _, r := range rules {
			ok = ok && r.Health == "ok"
		}
		return ok, fmt.Sprintf("%+v", rules)
	})

	checkExported(t, prom, documented)
	for name, expr := range alerts {
		checkSelectors(t, prom, "alert "+name, expr, documented)
	}
	for title, expr := range dashboard {
		expr = grafanaVariables.Replace(expr)
		if _, err := prom.Query(expr); err != nil {
			t.Errorf("dashboard panel %q: %v", title, err)
		}
		checkSelectors(t, prom, "dashboard panel "+title, expr, documented)
	}
}

// grafanaVariables stand in for the dashboard's variables in its queries.
var grafanaVariables = strings.NewReplacer("$__rate_interval", "1m", "$instance", ".+")

// family is one documented Prometheus series name: its labels and, for
// each, the values it takes (none: a series without labels).
type family map[string][]string

// targetLabels are added by Prometheus to every scraped series.
var targetLabels = []string{"__name__", "job", "instance"}

// readmeMetrics reads the README's metrics table: rows whose first cell is a
// series name, whose second lists `label`: `value`, `value`, ...
func readmeMetrics(t *testing.T, path string) map[string]family {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Metrics\n")
	if !ok {
		t.Fatal("README.md has no ## Metrics section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	out := map[string]family{}
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 {
			continue
		}
		name := seriesCellRE.FindStringSubmatch(strings.TrimSpace(cells[1]))
		if name == nil {
			continue
		}
		f := family{}
		if tokens := codeSpanRE.FindAllStringSubmatch(cells[2], -1); len(tokens) > 0 {
			values := make([]string, 0, len(tokens)-1)
			for _, v := range tokens[1:] {
				values = append(values, v[1])
			}
			f[tokens[0][1]] = values
		}
		if _, dup := out[name[1]]; dup {
			t.Errorf("README metrics table: %s twice", name[1])
		}
		out[name[1]] = f
	}
	if len(out) == 0 {
		t.Fatal("README.md: no rows in the metrics table")
	}
	return out
}

// alertExprs returns each alert's expression, by alert name.
func alertExprs(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	out := map[string]string{}
	for _, g := range doc.Groups {
		for _, r := range g.Rules {
			out[r.Alert] = r.Expr
		}
	}
	if out[errorRateAlert] == "" {
		t.Fatalf("%s has no %s", path, errorRateAlert)
	}
	return out
}

// dashboardExprs returns the PromQL of every panel target, by "panel title #n".
func dashboardExprs(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	out := map[string]string{}
	for _, p := range doc.Panels {
		for i, target := range p.Targets {
			if target.Expr == "" {
				t.Errorf("%s: panel %q target %d has no expr", path, p.Title, i)
			}
			out[fmt.Sprintf("%s #%d", p.Title, i+1)] = target.Expr
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no panel queries", path)
	}
	return out
}

// checkExported compares the portcullis_* series Prometheus scraped with the
// table, both ways, and requires each documented Envoy series to exist.
func checkExported(t *testing.T, prom *harness.Prometheus, documented map[string]family) {
	t.Helper()
	series, err := prom.Series(`{__name__=~"portcullis_.+|envoy_.+"}`)
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, s := range series {
		name := s["__name__"]
		labels := maps.Clone(s)
		for _, l := range targetLabels {
			delete(labels, l)
		}
		key := seriesKey(name, labels)
		exported[key] = true
		f, ok := documented[name]
		if !strings.HasPrefix(name, "portcullis_") {
			continue
		}
		if !ok {
			t.Errorf("%s is exported but not in the README metrics table", key)
			continue
		}
		for l, v := range labels {
			if !slices.Contains(f[l], v) {
				t.Errorf("%s is exported but the README metrics table does not list %s=%q for %s", key, l, v, name)
			}
		}
	}
	for name, f := range documented {
		for _, key := range f.keys(name) {
			if !exported[key] {
				t.Errorf("the README metrics table lists %s, which Envoy does not export", key)
			}
		}
	}
}

// keys are the series a documented family must have.
func (f family) keys(name string) []string {
	if len(f) == 0 {
		return []string{seriesKey(name, nil)}
	}
	var out []string
	for l, values := range f {
		for _, v := range values {
			out = append(out, seriesKey(name, map[string]string{l: v}))
		}
	}
	return out
}

func seriesKey(name string, labels map[string]string) string {
	parts := make([]string, 0, len(labels))
	for _, l := range slices.Sorted(maps.Keys(labels)) {
		parts = append(parts, fmt.Sprintf("%s=%q", l, labels[l]))
	}
	return name + "{" + strings.Join(parts, ",") + "}"
}

var (
	// seriesCellRE is a metrics table row's first cell: one series name.
	seriesCellRE = regexp.MustCompile("^`((?:portcullis|envoy)_\\w+)`$")
	codeSpanRE   = regexp.MustCompile("`([^`]+)`")
	selectorRE   = regexp.MustCompile(`\b((?:portcullis|envoy)_\w+)(\{[^}]*\})?`)
	matcherRE    = regexp.MustCompile(`(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"`)
)

// checkSelectors requires every series selector in expr to name a documented
// series, to match only documented labels (and, for = and !=, documented
// values), and to select at least one series Prometheus scraped.
func checkSelectors(t *testing.T, prom *harness.Prometheus, where, expr string, documented map[string]family) {
	t.Helper()
	found := selectorRE.FindAllStringSubmatch(expr, -1)
	if len(found) == 0 {
		t.Errorf("%s uses no portcullis_ or envoy_ series: %s", where, expr)
	}
	for _, m := range found {
		name, matchers := m[1], m[2]
		f, ok := documented[name]
		if !ok {
			t.Errorf("%s uses %s, which the README metrics table does not list", where, name)
			continue
		}
		for _, mm := range matcherRE.FindAllStringSubmatch(matchers, -1) {
			label, op, value := mm[1], mm[2], mm[3]
			if slices.Contains(targetLabels, label) {
				continue
			}
			values, ok := f[label]
			if !ok {
				t.Errorf("%s: %s has no documented label %q", where, name, label)
			} else if (op == "=" || op == "!=") && !slices.Contains(values, value) {
				t.Errorf("%s: %s{%s%s%q}: %q is not a documented value of %s", where, name, label, op, value, value, label)
			}
		}
		if got := query(t, prom, "count("+m[0]+")"); len(got) == 0 {
			t.Errorf("%s: %s selects no series Envoy exported", where, m[0])
		}
	}
}

func query(t *testing.T, prom *harness.Prometheus, expr string) []harness.Sample {
	t.Helper()
	got, err := prom.Query(expr)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// waitScraped waits until Prometheus has scraped Envoy's request counter at
// want, and checks that Envoy's own /stats agrees.
func waitScraped(t *testing.T, prom *harness.Prometheus, gw *harness.Gateway, want int) {
	t.Helper()
	if n, ok := gw.Counter("portcullis.requests"); !ok || n != int64(want) {
		t.Fatalf("Envoy's portcullis.requests is %d (ok %v), want %d", n, ok, want)
	}
	waitFor(t, fmt.Sprintf("Prometheus to scrape portcullis_requests = %d", want), func() (bool, string) {
		got := query(t, prom, "portcullis_requests")
		return len(got) == 1 && got[0].Value == float64(want), fmt.Sprint(got)
	})
}

func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last: %s", what, last)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
