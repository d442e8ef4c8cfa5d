package harness

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// PrometheusTool finds Debian's prometheus package tools ("prometheus",
// "promtool") on PATH; .ci/run and `make prometheus` install them. Missing,
// it fails t under CI=true and skips it otherwise.
func PrometheusTool(t testing.TB, name string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		Unavailable(t, "%s is not on PATH: apt-get install prometheus (or `make prometheus`)", name)
	}
	return bin
}

// Prometheus is a real Prometheus server scraping one Envoy's admin
// /stats/prometheus every second and evaluating rule files every second.
type Prometheus struct {
	// URL is its HTTP API, e.g. "http://127.0.0.1:41234".
	URL  string
	cmd  *exec.Cmd
	log  *bytes.Buffer
	once sync.Once
	done chan struct{}
}

// StartPrometheus starts Prometheus on a free loopback port, with its data in
// a temporary directory, scraping the Envoy admin address adminAddr
// ("host:port") as job "envoy" and loading ruleFiles (absolute paths). It
// waits until Prometheus is ready; it is stopped when t ends.
func StartPrometheus(t testing.TB, adminAddr string, ruleFiles ...string) *Prometheus {
	t.Helper()
	bin := PrometheusTool(t, "prometheus")
	dir := t.TempDir()
	cfg := map[string]any{
		"global":     map[string]any{"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
		"rule_files": ruleFiles,
		"scrape_configs": []any{map[string]any{
			"job_name":       "envoy",
			"metrics_path":   "/stats/prometheus",
			"static_configs": []any{map[string]any{"targets": []string{adminAddr}}},
		}},
	}
	// Prometheus reads YAML, and JSON is YAML.
	body, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, body, 0o600); err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(freePorts(t, 1)[0])
	p := &Prometheus{URL: "http://" + addr, log: &bytes.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	dieWithParent(p.cmd)
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("harness: start prometheus: %v", err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("--- prometheus log ---\n%s", p.log)
		}
	})
	if err := p.waitReady(30 * time.Second); err != nil {
		t.Fatalf("harness: prometheus did not become ready: %v\n%s", err, p.log)
	}
	return p
}

func (p *Prometheus) waitReady(limit time.Duration) error {
	return pollReady(p.done, limit, 100*time.Millisecond, func(c *http.Client) (*http.Response, error) {
		return c.Get(p.URL + "/-/ready")
	})
}

func (p *Prometheus) stop() {
	p.once.Do(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
}

// Sample is one series of an instant vector.
type Sample struct {
	Metric map[string]string
	Value  float64
}

// Query evaluates expr now (GET /api/v1/query). An error is Prometheus
// refusing the expression (a parse or evaluation error) or the API failing.
// A result that is not an instant vector is an error too.
func (p *Prometheus) Query(expr string) ([]Sample, error) {
	var data struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	}
	if err := p.api("/api/v1/query?query="+url.QueryEscape(expr), &data); err != nil {
		return nil, fmt.Errorf("query %q: %w", expr, err)
	}
	if data.ResultType != "vector" {
		return nil, fmt.Errorf("query %q: result type %q, want vector", expr, data.ResultType)
	}
	out := make([]Sample, 0, len(data.Result))
	for _, r := range data.Result {
		text, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return nil, fmt.Errorf("query %q: value %v: %w", expr, r.Value[1], err)
		}
		out = append(out, Sample{Metric: r.Metric, Value: v})
	}
	return out, nil
}

// Series returns the label sets (with __name__) of every series matching
// selector that Prometheus has stored (GET /api/v1/series).
func (p *Prometheus) Series(selector string) ([]map[string]string, error) {
	var data []map[string]string
	if err := p.api("/api/v1/series?match[]="+url.QueryEscape(selector), &data); err != nil {
		return nil, fmt.Errorf("series %q: %w", selector, err)
	}
	return data, nil
}

// RuleHealth is one loaded rule as GET /api/v1/rules reports it.
type RuleHealth struct {
	Name      string `json:"name"`
	Health    string `json:"health"` // "ok", "err" or "unknown" (not evaluated yet)
	LastError string `json:"lastError"`
}

// Rules returns every rule Prometheus loaded, with the health of its last evaluation.
func (p *Prometheus) Rules() ([]RuleHealth, error) {
	var data struct {
		Groups []struct {
			Rules []RuleHealth `json:"rules"`
		} `json:"groups"`
	}
	if err := p.api("/api/v1/rules", &data); err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	var out []RuleHealth
	for _, g := range data.Groups {
		out = append(out, g.Rules...)
	}
	return out, nil
}

// api GETs path and decodes the "data" of Prometheus's success envelope.
func (p *Prometheus) api(path string, data any) error {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(p.URL + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	if env.Status != "success" {
		return fmt.Errorf("%s", env.Error)
	}
	return json.Unmarshal(env.Data, data)
}
