package istio_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/portcullis/portcullis/e2e/harness"
)

// Istio gets envoy.yaml's stats tags through a bootstrap override: a
// ConfigMap whose custom_bootstrap.json pilot-agent hands to Envoy as
// --config-yaml (README "Metrics", "In Istio").
const (
	statsConfigMapFile = "stats-bootstrap.yaml"
	statsConfigMapName = "portcullis-stats-bootstrap"
	statsBootstrapKey  = "custom_bootstrap.json"
	bootstrapOverride  = "sidecar.istio.io/bootstrapOverride"
)

// shippedStatsTags returns envoy.yaml's stats_config.stats_tags.
func shippedStatsTags(t *testing.T) []any {
	t.Helper()
	var root struct {
		StatsConfig struct {
			StatsTags []any `yaml:"stats_tags"`
		} `yaml:"stats_config"`
	}
	if err := yaml.Unmarshal(harness.ShippedEnvoyYAML(t), &root); err != nil {
		t.Fatalf("envoy.yaml: %v", err)
	}
	if len(root.StatsConfig.StatsTags) == 0 {
		t.Fatal("envoy.yaml has no stats_config.stats_tags")
	}
	return root.StatsConfig.StatsTags
}

// statsBootstrap is the bootstrap fragment: the tags alone, so that Envoy's
// merge appends them to Istio's own and changes nothing else.
func statsBootstrap(tags []any) ([]byte, error) {
	b, err := json.MarshalIndent(map[string]any{"stats_config": map[string]any{"stats_tags": tags}}, "", "  ")
	return append(b, '\n'), err
}

// statsConfigMap renders istio/stats-bootstrap.yaml.
func statsConfigMap(bootstrap []byte) ([]byte, error) {
	key := func(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: s} }
	mapping := func(kv ...*yaml.Node) *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode, Content: kv} }
	doc := mapping(
		key("apiVersion"), key("v1"),
		key("kind"), key("ConfigMap"),
		key("metadata"), mapping(
			key("name"), key(statsConfigMapName),
			key("namespace"), key("portcullis"),
		),
		key("data"), mapping(
			key(statsBootstrapKey),
			&yaml.Node{Kind: yaml.ScalarNode, Style: yaml.LiteralStyle, Value: string(bootstrap)},
		),
	)
	return generatedYAML("# GENERATED from envoy.yaml's stats_config.stats_tags by\n"+
		"#   go test ./istio -run TestStatsBootstrapIsEnvoyYAMLs -update\n"+
		"# Edit envoy.yaml, not this file. Pods annotated\n"+
		"# "+bootstrapOverride+": "+statsConfigMapName+"\n"+
		"# get it mounted; pilot-agent passes it to Envoy as --config-yaml, which\n"+
		"# appends these tags to Istio's (README \"Metrics\", \"In Istio\").\n", doc)
}

func TestStatsBootstrapIsEnvoyYAMLs(t *testing.T) {
	bootstrap, err := statsBootstrap(shippedStatsTags(t))
	if err != nil {
		t.Fatal(err)
	}
	want, err := statsConfigMap(bootstrap)
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(manifestDir(t), statsConfigMapFile)
	if *update {
		if err := os.WriteFile(target, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(target)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("istio/%s is not envoy.yaml's stats tags; run: go test ./istio -run TestStatsBootstrapIsEnvoyYAMLs -update", statsConfigMapFile)
	}
}

// Every Deployment whose pods a WasmPlugin selects carries the override, in
// the ConfigMap's namespace (a pod can only mount a ConfigMap of its own).
func TestPluginPodsUseTheStatsBootstrap(t *testing.T) {
	var selectors []map[string]any
	for _, wp := range objectsOfKind(t, "WasmPlugin") {
		sel, _ := dig(wp.doc, "spec", "selector", "matchLabels").(map[string]any)
		if len(sel) == 0 {
			t.Fatalf("%s: WasmPlugin %s selects every pod; the test cannot tell which need the override", wp.file, wp.name())
		}
		selectors = append(selectors, sel)
	}
	var cmNamespace string
	for _, cm := range objectsOfKind(t, "ConfigMap") {
		if cm.name() == statsConfigMapName {
			cmNamespace = str(cm.doc, "metadata", "namespace")
		}
	}
	if cmNamespace == "" {
		t.Fatalf("no ConfigMap %s with a namespace", statsConfigMapName)
	}
	selected := 0
	for _, d := range objectsOfKind(t, "Deployment") {
		labels := dig(d.doc, "spec", "template", "metadata", "labels")
		if !slices.ContainsFunc(selectors, func(sel map[string]any) bool { return matches(sel, labels) }) {
			continue
		}
		selected++
		if got := str(d.doc, "spec", "template", "metadata", "annotations", bootstrapOverride); got != statsConfigMapName {
			t.Errorf("%s: Deployment %s runs the plugin but its pods' %s is %q, want %q", d.file, d.name(), bootstrapOverride, got, statsConfigMapName)
		}
		if ns := str(d.doc, "metadata", "namespace"); ns != cmNamespace {
			t.Errorf("%s: Deployment %s is in namespace %q, the ConfigMap %s in %q", d.file, d.name(), ns, statsConfigMapName, cmNamespace)
		}
	}
	if selected == 0 {
		t.Fatal("no Deployment runs the plugin")
	}
}

// The override does in Envoy what envoy.yaml's stats_config does: an Envoy
// started without stats_config and with the ConfigMap's file as --config-yaml
// (what pilot-agent runs) exports the same portcullis families, labels and
// values as one started from envoy.yaml. That Envoy also gets the two parts of
// Istio's own stats_config that could hide or change them: no default tags,
// and a stats matcher whose only pattern is the "wasm" prefix Istio always
// includes (pkg/bootstrap/config.go), so the test shows that this prefix is
// what lets the plugin's counters and Envoy's VM reload counters through.
func TestStatsBootstrapOverrideInEnvoy(t *testing.T) {
	t.Parallel()
	envoy := harness.NewEnvoy(t)
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	b, err := os.ReadFile(filepath.Join(manifestDir(t), statsConfigMapFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &cm); err != nil {
		t.Fatal(err)
	}
	var override struct {
		StatsConfig map[string]any `json:"stats_config"`
	}
	if err := json.Unmarshal([]byte(cm.Data[statsBootstrapKey]), &override); err != nil || override.StatsConfig == nil {
		t.Fatalf("istio/%s: %s is not a bootstrap with stats_config: %v", statsConfigMapFile, statsBootstrapKey, err)
	}
	override.StatsConfig["use_all_default_tags"] = false
	override.StatsConfig["stats_matcher"] = map[string]any{"inclusion_list": map[string]any{"patterns": []any{map[string]any{"prefix": "wasm"}}}}
	asIstio, err := json.Marshal(override)
	if err != nil {
		t.Fatal(err)
	}
	shipped := pluginSeries(t, envoy.Start(t, harness.Options{}))
	istio := pluginSeries(t, envoy.Start(t, harness.Options{BootstrapOverride: string(asIstio)}))
	if !slices.Contains(shipped, `portcullis_rejected{reason="jwt_missing"}`) {
		t.Fatalf("envoy.yaml's Envoy exports no portcullis_rejected{reason=...}: %v", shipped)
	}
	if !slices.Equal(shipped, istio) {
		t.Errorf("with the override Envoy exports\n%s\nwith envoy.yaml\n%s", strings.Join(istio, "\n"), strings.Join(shipped, "\n"))
	}
}

// pluginSeries returns the sorted series (name and labels) of the plugin's
// counters and Envoy's VM reload counter on the gateway's /stats/prometheus.
func pluginSeries(t *testing.T, gw *harness.Gateway) []string {
	t.Helper()
	resp, err := http.Get("http://" + gw.Admin + "/stats/prometheus")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/stats/prometheus: %d %v", resp.StatusCode, err)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "portcullis_") && !strings.HasPrefix(line, "envoy_wasm_vm_reload") {
			continue
		}
		series, _, _ := strings.Cut(line, " ")
		out = append(out, series)
	}
	slices.Sort(out)
	return out
}
