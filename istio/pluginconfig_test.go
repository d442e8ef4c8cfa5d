package istio_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/portcullis/portcullis/e2e/harness"
)

// deploymentSpecific are the only plugin configuration fields allowed to
// differ between envoy.yaml and the WasmPlugins, with the value they take in
// Istio: the services the plugin calls. envoy.yaml names its own static
// clusters; in Istio the plugin calls the outbound cluster Istio creates for
// the Kubernetes Service (outbound|<port>||<service FQDN>). A field that
// envoy.yaml does not set stays unset.
var deploymentSpecific = map[string]string{
	"rate_limit.fleet.cluster":   "outbound|8081||ratelimit.portcullis.svc.cluster.local",
	"rate_limit.fleet.authority": "ratelimit.portcullis.svc.cluster.local:8081",
	"cache.cluster":              "outbound|10002||cache.portcullis.svc.cluster.local",
	"cache.authority":            "cache.portcullis.svc.cluster.local:10002",
}

// istioRateLimit replaces envoy.yaml's rate_limit block in the WasmPlugins:
// fleet mode against the envoyproxy/ratelimit Service the kustomization
// deploys (ratelimit.yaml), whose descriptor file
// (ratelimit/config/portcullis.yaml) sets the limit envoy.yaml's local default
// sets, 100 per minute per key. Local mode would count in each proxy: every
// gateway replica and every sidecar would admit the whole limit again. The
// deploymentSpecific values fill in its cluster and authority.
const istioRateLimit = `{"mode": "fleet", "fleet": {"cluster": "", "authority": ""}}`

// pluginConfigLine starts a WasmPlugin's pluginConfig, which must be the last
// field of its file so that -update can rewrite it to the end.
var pluginConfigLine = regexp.MustCompile(`(?m)^  pluginConfig:.*$`)

// expectedPluginConfig is envoy.yaml's plugin configuration with the
// deployment-specific fields set to their Istio values, as a YAML node in
// envoy.yaml's key order (what -update writes).
func expectedPluginConfig(t *testing.T) *yaml.Node {
	t.Helper()
	var doc yaml.Node // JSON is YAML: this keeps the key order
	if err := yaml.Unmarshal([]byte(harness.ShippedPluginConfig(t)), &doc); err != nil {
		t.Fatalf("envoy.yaml's plugin configuration: %v", err)
	}
	root := doc.Content[0]
	if n := lookup(root, []string{"rate_limit"}); n != nil {
		var fleet yaml.Node
		if err := yaml.Unmarshal([]byte(istioRateLimit), &fleet); err != nil {
			t.Fatal(err)
		}
		*n = *fleet.Content[0]
	}
	for p, v := range deploymentSpecific {
		if n := lookup(root, strings.Split(p, ".")); n != nil {
			*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v}
		}
	}
	restyle(root)
	return root
}

// lookup finds the value node at a path of mapping keys.
func lookup(n *yaml.Node, path []string) *yaml.Node {
	for _, key := range path {
		if n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				next = n.Content[i+1]
			}
		}
		if next == nil {
			return nil
		}
		n = next
	}
	return n
}

// restyle turns parsed JSON into plain block YAML; lists of scalars stay on
// one line ("methods: [GET, HEAD]").
func restyle(n *yaml.Node) {
	n.Style = 0
	if n.Kind == yaml.SequenceNode && !slices.ContainsFunc(n.Content, func(c *yaml.Node) bool { return c.Kind != yaml.ScalarNode }) {
		n.Style = yaml.FlowStyle
	}
	for _, c := range n.Content {
		restyle(c)
	}
}

// normalize returns v as encoding/json sees it (numbers as float64), so a
// YAML value and a JSON value compare equal when they mean the same.
func normalize(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// diffPaths lists the paths where a and b differ.
func diffPaths(prefix string, a, b any) []string {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		var out []string
		keys := map[string]bool{}
		for k := range am {
			keys[k] = true
		}
		for k := range bm {
			keys[k] = true
		}
		for k := range keys {
			out = append(out, diffPaths(strings.TrimPrefix(prefix+"."+k, "."), am[k], bm[k])...)
		}
		sort.Strings(out)
		return out
	}
	if !reflect.DeepEqual(a, b) {
		return []string{prefix}
	}
	return nil
}

// The WasmPlugins configure the plugin exactly as envoy.yaml does, except the
// deploymentSpecific fields. With -update, it rewrites their pluginConfig.
func TestPluginConfigMatchesEnvoy(t *testing.T) {
	want := expectedPluginConfig(t)
	var wantValue any
	if err := want.Decode(&wantValue); err != nil {
		t.Fatal(err)
	}
	wantValue = normalize(t, wantValue)

	for _, wp := range objectsOfKind(t, "WasmPlugin") {
		t.Run(wp.name(), func(t *testing.T) {
			if *update {
				rewritePluginConfig(t, wp.file, want)
				return
			}
			got := normalize(t, dig(wp.doc, "spec", "pluginConfig"))
			if d := diffPaths("", got, wantValue); len(d) > 0 {
				t.Errorf("%s: spec.pluginConfig differs from envoy.yaml's plugin configuration at %s\n"+
					"(only rate_limit, in fleet mode, and %s may differ, and take their Istio values); run:\n"+
					"  go test ./istio -run TestPluginConfigMatchesEnvoy -update",
					wp.file, strings.Join(d, ", "), strings.Join(sortedKeys(deploymentSpecific), ", "))
			}
		})
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// rewritePluginConfig replaces everything from "  pluginConfig:" to the end
// of file with cfg.
func rewritePluginConfig(t *testing.T, file string, cfg *yaml.Node) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	loc := pluginConfigLine.FindIndex(b)
	if loc == nil || bytes.Count(b[loc[0]:], []byte("\n---")) > 0 {
		t.Fatalf("%s: no %q line ending the file's last document; -update needs it", file, "  pluginConfig:")
	}
	var body bytes.Buffer
	enc := yaml.NewEncoder(&body)
	enc.SetIndent(2)
	if err := enc.Encode(cfg); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	out.Write(b[:loc[0]])
	out.WriteString("  pluginConfig:\n")
	for _, line := range strings.SplitAfter(body.String(), "\n") {
		if line != "" {
			out.WriteString("    " + line)
		}
	}
	if err := os.WriteFile(file, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// pluginConfigJSON is the configuration the plugin receives from a
// WasmPlugin: Istio stores pluginConfig as a google.protobuf.Struct and hands
// the plugin its JSON (pilot/pkg/model/extensions.go, buildWasmConfig:
// protomarshal.ToJSON). Struct numbers are doubles, as encoding/json's here.
func pluginConfigJSON(t *testing.T, wp object) string {
	t.Helper()
	b, err := json.Marshal(normalize(t, dig(wp.doc, "spec", "pluginConfig")))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The compiled plugin (the wazero host of e2e/) accepts each WasmPlugin's
// configuration, Istio cluster names included, and refuses a broken copy
// naming the field.
func TestPluginConfigAcceptedByPlugin(t *testing.T) {
	host := harness.NewWasmHost(t)
	for _, wp := range objectsOfKind(t, "WasmPlugin") {
		t.Run(wp.name(), func(t *testing.T) {
			cfg := pluginConfigJSON(t, wp)
			gw := host.Start(t, harness.Options{PluginConfig: cfg})
			resp, err := http.Get(gw.BaseURL + "/health")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET /health: %d, want 200", resp.StatusCode)
			}

			broken := patch(t, cfg, func(c map[string]any) {
				c["jwt"].(map[string]any)["leeway_seconds"] = 900
			})
			logs := host.StartRefused(t, harness.Options{PluginConfig: broken})
			if want := "invalid plugin configuration: jwt.leeway_seconds:"; !strings.Contains(logs, want) {
				t.Errorf("a WasmPlugin configuration with leeway_seconds 900 was not refused naming the field (want %q):\n%s", want, logs)
			}
		})
	}
}

// The WasmPlugins rate-limit in fleet mode against the deployed service,
// named by Istio's cluster name ("outbound|8081||ratelimit..."), which the
// plugin accepts as a cluster name.
func TestPluginAcceptsIstioClusterNames(t *testing.T) {
	host := harness.NewWasmHost(t)
	for _, wp := range objectsOfKind(t, "WasmPlugin") {
		t.Run(wp.name(), func(t *testing.T) {
			rl, _ := dig(wp.doc, "spec", "pluginConfig", "rate_limit").(map[string]any)
			if str(rl, "mode") != "fleet" || str(rl, "fleet", "cluster") != deploymentSpecific["rate_limit.fleet.cluster"] {
				t.Fatalf("rate_limit %v: want fleet mode against %s", rl, deploymentSpecific["rate_limit.fleet.cluster"])
			}
			host.Start(t, harness.Options{PluginConfig: pluginConfigJSON(t, wp)})
		})
	}
}

func patch(t *testing.T, cfg string, f func(map[string]any)) string {
	t.Helper()
	var c map[string]any
	if err := json.Unmarshal([]byte(cfg), &c); err != nil {
		t.Fatal(err)
	}
	f(c)
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
