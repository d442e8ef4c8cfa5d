package istio_test

import (
	"reflect"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/portcullis/portcullis/e2e/harness"
)

// shippedLocalReplyConfig is the local_reply_config of envoy.yaml's HTTP
// connection manager, YAML aliases resolved.
func shippedLocalReplyConfig(t *testing.T) any {
	t.Helper()
	var root map[string]any
	if err := yaml.Unmarshal(harness.ShippedEnvoyYAML(t), &root); err != nil {
		t.Fatalf("envoy.yaml: %v", err)
	}
	for _, l := range list(dig(root, "static_resources", "listeners")) {
		for _, c := range list(l["filter_chains"]) {
			for _, f := range list(c["filters"]) {
				if f["name"] == "envoy.filters.network.http_connection_manager" {
					if lrc := dig(f, "typed_config", "local_reply_config"); lrc != nil {
						return lrc
					}
				}
			}
		}
	}
	t.Fatal("envoy.yaml's HTTP connection manager has no local_reply_config")
	return nil
}

// Each WasmPlugin's workloads get envoy.yaml's local_reply_config, key for
// key, on the listeners the plugin runs in: the gateway's, and the sidecars'
// inbound ones.
func TestLocalRepliesMatchEnvoy(t *testing.T) {
	want := normalize(t, shippedLocalReplyConfig(t))
	contexts := map[string]string{"portcullis-gateway": "GATEWAY", "portcullis-sidecar": "SIDECAR_INBOUND"}
	filters := objectsOfKind(t, "EnvoyFilter")
	for _, wp := range objectsOfKind(t, "WasmPlugin") {
		t.Run(wp.name(), func(t *testing.T) {
			context, ok := contexts[wp.name()]
			if !ok {
				t.Fatalf("no listener context known for WasmPlugin %s", wp.name())
			}
			selector := normalize(t, dig(wp.doc, "spec", "selector", "matchLabels"))
			found := 0
			for _, ef := range filters {
				if !reflect.DeepEqual(normalize(t, dig(ef.doc, "spec", "workloadSelector", "labels")), selector) {
					continue
				}
				for _, p := range list(dig(ef.doc, "spec", "configPatches")) {
					found++
					if p["applyTo"] != "NETWORK_FILTER" || str(p, "match", "context") != context ||
						str(p, "match", "listener", "filterChain", "filter", "name") != "envoy.filters.network.http_connection_manager" ||
						str(p, "patch", "operation") != "MERGE" {
						t.Errorf("EnvoyFilter %s: a patch that is not a MERGE into the %s HTTP connection managers: %v", ef.name(), context, p)
					}
					got := normalize(t, dig(p, "patch", "value", "typed_config", "local_reply_config"))
					if d := diffPaths("local_reply_config", got, want); len(d) > 0 {
						t.Errorf("EnvoyFilter %s: local_reply_config differs from envoy.yaml's at %v", ef.name(), d)
					}
				}
			}
			if found != 1 {
				t.Errorf("%d EnvoyFilter patches select the workloads of WasmPlugin %s, want 1", found, wp.name())
			}
		})
	}
}
