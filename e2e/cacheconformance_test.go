//go:build conformance

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/portcullis/portcullis/e2e/harness"
)

// TestCacheConformance runs the HTTP cache test suite (npm http-cache-tests,
// the suite behind cache-tests.fyi; `make cache-conformance` installs it and
// passes its directory in CACHE_TESTS_DIR) through the plugin in Envoy: the
// suite's own origin server behind the shipped envoy.yaml, with the plugin
// configuration of testdata/cacheconformance/plugin.json (one public route, a
// shared cache rule, no JWT or rate limit). It writes the suite's results
// JSON to CACHE_CONFORMANCE_OUT and fails when the counts fall behind the
// floor committed in testdata/cacheconformance/floor.json (README
// "Caching", conformance). Built only with -tags conformance: the suite takes
// longer than the e2e budget of `make test`.
func TestCacheConformance(t *testing.T) {
	suite := os.Getenv("CACHE_TESTS_DIR")
	out := os.Getenv("CACHE_CONFORMANCE_OUT")
	if suite == "" || out == "" {
		t.Fatal("CACHE_TESTS_DIR and CACHE_CONFORMANCE_OUT must be set (make cache-conformance sets them)")
	}
	root := harness.RepoRoot(t)
	pluginConfig, err := os.ReadFile(filepath.Join(root, "e2e/testdata/cacheconformance/plugin.json"))
	if err != nil {
		t.Fatal(err)
	}

	origin := startCacheTestsOrigin(t, suite)
	gw := harness.NewEnvoy(t).Start(t, harness.Options{PluginConfig: string(pluginConfig), Upstream: origin, EditConfig: routeEverything})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// As the suite's README runs it: npm passes --base and the package's
	// config (an empty test id: every test) to cli.mjs.
	cli := exec.CommandContext(ctx, "npm", "run", "--silent", "cli", "--base="+gw.BaseURL)
	cli.Dir = suite
	var stdout, stderr bytes.Buffer
	cli.Stdout, cli.Stderr = &stdout, &stderr
	began := time.Now()
	if err := cli.Run(); err != nil {
		t.Fatalf("the suite's CLI: %v\n%s", err, stderr.String())
	}
	var results map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &results); err != nil || len(results) == 0 {
		t.Fatalf("the suite's CLI printed no results (%v): %.2000s\n%s", err, stdout.String(), stderr.String())
	}
	t.Logf("suite: %d results in %v", len(results), time.Since(began).Round(time.Second))
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, stdout.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	got := conformanceCounts(t, root, suite, out)
	var floor struct {
		Pass             int `json:"pass"`
		RequiredFailures int `json:"required_failures"`
	}
	raw, err := os.ReadFile(filepath.Join(root, "e2e/testdata/cacheconformance/floor.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &floor); err != nil {
		t.Fatalf("floor.json: %v", err)
	}
	t.Logf("counts: %v (floor: pass ≥ %d, required failures ≤ %d)", got, floor.Pass, floor.RequiredFailures)
	if got["pass"] < floor.Pass {
		t.Errorf("passes fell to %d, below the committed floor %d", got["pass"], floor.Pass)
	}
	if got["fail"] > floor.RequiredFailures {
		t.Errorf("required failures rose to %d, above the committed floor %d", got["fail"], floor.RequiredFailures)
	}
}

// routeEverything replaces the shipped routes (/api/*, rewritten to /) with
// one route of every path to the upstream as it is: the origin writes
// Location and Content-Location with the paths it sees, which must be the
// client's for the suite's invalidation tests.
func routeEverything(root map[string]any) error {
	listeners, _ := root["static_resources"].(map[string]any)["listeners"].([]any)
	for _, l := range listeners {
		chains, _ := l.(map[string]any)["filter_chains"].([]any)
		for _, c := range chains {
			filters, _ := c.(map[string]any)["filters"].([]any)
			for _, f := range filters {
				hcm, _ := f.(map[string]any)["typed_config"].(map[string]any)
				rc, _ := hcm["route_config"].(map[string]any)
				hosts, _ := rc["virtual_hosts"].([]any)
				if len(hosts) != 1 {
					continue
				}
				hosts[0].(map[string]any)["routes"] = []any{map[string]any{
					"name":  "conformance",
					"match": map[string]any{"prefix": "/"},
					"route": map[string]any{"cluster": harness.UpstreamCluster, "timeout": "15s"},
				}}
				return nil
			}
		}
	}
	return errors.New("envoy.yaml: no listener with one virtual host to route")
}

// startCacheTestsOrigin starts the suite's origin server on a free loopback
// port and returns its "host:port".
func startCacheTestsOrigin(t *testing.T, suite string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	server := exec.Command("node", "--no-warnings", "server/server.mjs")
	server.Dir = suite
	server.Env = append(os.Environ(), "npm_config_protocol=http", "npm_config_port="+strconv.Itoa(port),
		"npm_config_pidfile="+filepath.Join(t.TempDir(), "server.pid"))
	var log bytes.Buffer
	server.Stdout, server.Stderr = &log, &log
	if err := server.Start(); err != nil {
		t.Fatalf("the suite's origin server: %v", err)
	}
	t.Cleanup(func() {
		_ = server.Process.Kill()
		_ = server.Wait()
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/state/ready-probe")
		if err == nil {
			resp.Body.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("the suite's origin server did not answer on %s: %v\n%s", addr, err, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// conformanceCounts counts a results file the way cache-tests.fyi shows it
// (scripts/cache-conformance-summary.mjs).
func conformanceCounts(t *testing.T, root, suite, results string) map[string]int {
	t.Helper()
	cmd := exec.Command("node", filepath.Join(root, "scripts/cache-conformance-summary.mjs"), suite, results, "--json")
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("cache-conformance-summary: %v", err)
	}
	var summary struct{ Counts map[string]int }
	if err := json.Unmarshal(raw, &summary); err != nil {
		t.Fatalf("cache-conformance-summary: %v", err)
	}
	return summary.Counts
}
