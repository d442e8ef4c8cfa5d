// Package deploy_test checks the operator-facing files in deploy/ with the
// real tools: Prometheus's promtool (Debian's prometheus package) for the
// alert rules, and the README for their runbook. e2e/metrics_test.go runs
// the same rules and the Grafana dashboard in a real Prometheus against a
// real Envoy.
package deploy_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/portcullis/portcullis/e2e/harness"
)

func promtool(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(harness.PrometheusTool(t, "promtool"), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
	return string(out), err
}

func rulesDir(t *testing.T) string {
	return filepath.Join(harness.RepoRoot(t), "deploy", "prometheus")
}

// promtool check rules: the file parses, every expression is valid PromQL,
// every template renders.
func TestAlertRulesCheck(t *testing.T) {
	out, err := promtool(t, rulesDir(t), "check", "rules", "alerts.yaml")
	if err != nil {
		t.Fatalf("promtool check rules alerts.yaml: %v", err)
	}
	if n := len(alertNames(t)); !strings.Contains(out, fmt.Sprintf("SUCCESS: %d rules found", n)) {
		t.Errorf("promtool did not find the %d rules of alerts.yaml", n)
	}
}

// promtool test rules: each alert fires on the series of its test case, at
// the documented threshold and duration, and stays silent below them.
func TestAlertRulesUnitTests(t *testing.T) {
	if _, err := promtool(t, rulesDir(t), "test", "rules", "alerts_test.yaml"); err != nil {
		t.Fatalf("promtool test rules alerts_test.yaml: %v", err)
	}
}

// Every alert has a unit test in which it fires (promtool does not require one).
func TestEveryAlertFiresInAUnitTest(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(rulesDir(t), "alerts_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	fires := map[string]bool{}
	for _, tc := range doc.Tests {
		for _, a := range tc.AlertRuleTest {
			fires[a.Alertname] = fires[a.Alertname] || len(a.ExpAlerts) > 0
		}
	}
	for _, name := range alertNames(t) {
		if !fires[name] {
			t.Errorf("alerts_test.yaml has no case where %s fires", name)
		}
	}
}

// The README's runbook has one entry per alert, and none for an alert that
// does not exist.
func TestEveryAlertHasARunbookLine(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(harness.RepoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, runbook, ok := strings.Cut(string(b), "\nRunbook:\n")
	if !ok {
		t.Fatal(`README.md has no "Runbook:" list`)
	}
	runbook, _, _ = strings.Cut(runbook, "\n## ")
	var documented []string
	for _, m := range regexp.MustCompile(`(?m)^- \*\*(\w+)\*\*`).FindAllStringSubmatch(runbook, -1) {
		documented = append(documented, m[1])
	}
	names := alertNames(t)
	for _, name := range names {
		if !slices.Contains(documented, name) {
			t.Errorf("README runbook has no entry for %s", name)
		}
	}
	for _, name := range documented {
		if !slices.Contains(names, name) {
			t.Errorf("README runbook has an entry for %s, which alerts.yaml does not define", name)
		}
	}
}

// alertNames are the alerts of alerts.yaml, in order.
func alertNames(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(rulesDir(t), "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range doc.Groups {
		for _, r := range g.Rules {
			names = append(names, r.Alert)
		}
	}
	if len(names) == 0 {
		t.Fatal("alerts.yaml defines no alert")
	}
	return names
}
