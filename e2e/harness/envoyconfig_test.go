package harness

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The renderer runs on the real envoy.yaml, so a change there that the
// harness cannot follow fails here, without Envoy.
func TestRenderShippedConfig(t *testing.T) {
	shipped, err := os.ReadFile(filepath.Join(RepoRoot(t), "envoy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := RenderEnvoyConfig(shipped, EnvoyParams{
		Upstream:      "127.0.0.1:4321",
		Wasm:          "/abs/plugin.wasm",
		PluginConfig:  `{"routes":[]}`,
		EnvKeys:       []string{"JWT_SECRET", "OTHER"},
		RouteTimeout:  1500 * time.Millisecond,
		NodeID:        "node-x",
		Region:        "eu-test-1",
		FailurePolicy: "FAIL_OPEN",
	})
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	get := func(m any, keys ...any) any {
		for _, k := range keys {
			switch k := k.(type) {
			case string:
				m = m.(map[string]any)[k]
			case int:
				m = m.([]any)[k]
			}
		}
		return m
	}
	if get(cfg, "node", "id") != "node-x" || get(cfg, "node", "locality", "region") != "eu-test-1" {
		t.Errorf("node = %v", cfg["node"])
	}
	if get(cfg, "admin", "address", "socket_address", "port_value") != float64(0) {
		t.Errorf("admin address not rendered: %v", get(cfg, "admin"))
	}
	listener := get(cfg, "static_resources", "listeners", 0)
	if get(listener, "address", "socket_address", "port_value") != float64(0) ||
		get(listener, "address", "socket_address", "address") != "127.0.0.1" {
		t.Errorf("listener address = %v", get(listener, "address"))
	}
	hcm := get(listener, "filter_chains", 0, "filters", 0, "typed_config")
	filters := get(hcm, "http_filters").([]any)
	var names []string
	for _, f := range filters {
		names = append(names, f.(map[string]any)["name"].(string))
	}
	if strings.Join(names, ",") != "envoy.filters.http.cors,envoy.filters.http.wasm,envoy.filters.http.buffer,envoy.filters.http.router" {
		t.Errorf("http filters = %v", names)
	}
	wasm := get(filters[1], "typed_config", "config")
	if get(wasm, "vm_config", "code", "local", "filename") != "/abs/plugin.wasm" {
		t.Errorf("wasm filename not replaced")
	}
	if get(wasm, "configuration", "value") != `{"routes":[]}` {
		t.Errorf("plugin configuration not replaced")
	}
	if get(wasm, "failure_policy") != "FAIL_OPEN" {
		t.Errorf("failure_policy not replaced")
	}
	keys, _ := json.Marshal(get(wasm, "vm_config", "environment_variables", "host_env_keys"))
	if string(keys) != `["JWT_SECRET","OTHER"]` {
		t.Errorf("host_env_keys = %s", keys)
	}
	routes := get(hcm, "route_config", "virtual_hosts", 0, "routes").([]any)
	for _, r := range routes {
		if get(r, "route", "timeout") != "1.500s" {
			t.Errorf("route %v timeout = %v", get(r, "name"), get(r, "route", "timeout"))
		}
	}
	ep := get(cfg, "static_resources", "clusters", 0, "load_assignment", "endpoints", 0, "lb_endpoints", 0, "endpoint", "address", "socket_address")
	if get(ep, "port_value") != float64(4321) || get(ep, "address") != "127.0.0.1" {
		t.Errorf("upstream endpoint = %v", ep)
	}
}

// Bare Envoy is the shipped configuration with only the wasm filter removed.
func TestRenderWithoutPlugin(t *testing.T) {
	shipped, err := os.ReadFile(filepath.Join(RepoRoot(t), "envoy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := RenderEnvoyConfig(shipped, EnvoyParams{Upstream: "127.0.0.1:1", Wasm: "/x.wasm", WithoutPlugin: true})
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		StaticResources struct {
			Listeners []struct {
				FilterChains []struct {
					Filters []struct {
						TypedConfig struct {
							HTTPFilters []struct {
								Name string `json:"name"`
							} `json:"http_filters"`
						} `json:"typed_config"`
					} `json:"filters"`
				} `json:"filter_chains"`
			} `json:"listeners"`
		} `json:"static_resources"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range cfg.StaticResources.Listeners[0].FilterChains[0].Filters[0].TypedConfig.HTTPFilters {
		names = append(names, f.Name)
	}
	if strings.Join(names, ",") != "envoy.filters.http.cors,envoy.filters.http.buffer,envoy.filters.http.router" {
		t.Errorf("http filters = %v, want the shipped ones without the wasm filter", names)
	}
	if strings.Contains(string(out), "/x.wasm") {
		t.Errorf("the bare configuration still names the module")
	}
}

// The shipped file keeps the decisions the README and the tests rely on.
func TestShippedDecisions(t *testing.T) {
	shipped, err := os.ReadFile(filepath.Join(RepoRoot(t), "envoy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	policy, err := ShippedFailurePolicy(shipped)
	if err != nil {
		t.Fatal(err)
	}
	if policy != "FAIL_RELOAD" && policy != "FAIL_CLOSED" {
		t.Errorf("failure_policy = %q: an authenticating gateway must fail closed (FAIL_CLOSED or FAIL_RELOAD)", policy)
	}
	out, err := RenderEnvoyConfig(shipped, EnvoyParams{Upstream: "127.0.0.1:1", Wasm: "/x.wasm"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"normalize_path": true`, `"merge_slashes": true`, `"path_with_escaped_slashes_action": "KEEP_UNCHANGED"`, `"generate_request_id": true`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("rendered config lacks %s", want)
		}
	}
	if strings.Contains(string(out), `"exact": "*"`) || strings.Contains(string(out), `"prefix": ""`) {
		t.Errorf("CORS must list explicit origins")
	}
}

func TestRenderRejectsUnexpectedShape(t *testing.T) {
	for _, doc := range []string{"", "node: {}\n", "node: {}\nadmin: {}\nstatic_resources: {listeners: []}\n"} {
		if _, err := RenderEnvoyConfig([]byte(doc), EnvoyParams{Upstream: "127.0.0.1:1", Wasm: "/x"}); err == nil {
			t.Errorf("%q: no error", doc)
		}
	}
}

// The shipped stats_config reaches every test Envoy (the metrics e2e reads
// its families), unless DropStatsConfig takes it out for a bootstrap override.
func TestRenderStatsConfig(t *testing.T) {
	shipped, err := os.ReadFile(filepath.Join(RepoRoot(t), "envoy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, drop := range []bool{false, true} {
		out, err := RenderEnvoyConfig(shipped, EnvoyParams{Upstream: "127.0.0.1:1", Wasm: "/x.wasm", DropStatsConfig: drop})
		if err != nil {
			t.Fatal(err)
		}
		var cfg struct {
			StatsConfig *struct {
				StatsTags []any `json:"stats_tags"`
			} `json:"stats_config"`
		}
		if err := json.Unmarshal(out, &cfg); err != nil {
			t.Fatal(err)
		}
		if drop && cfg.StatsConfig != nil {
			t.Errorf("DropStatsConfig: stats_config is still there")
		}
		if !drop && (cfg.StatsConfig == nil || len(cfg.StatsConfig.StatsTags) == 0) {
			t.Errorf("the shipped stats_config.stats_tags did not reach the rendered config")
		}
	}
	if _, err := RenderEnvoyConfig([]byte("node: {}\nadmin: {}\nstatic_resources: {}\n"), EnvoyParams{DropStatsConfig: true}); err == nil || !strings.Contains(err.Error(), "stats_config") {
		t.Errorf("DropStatsConfig on a file without stats_config: err = %v, want one naming stats_config", err)
	}
}

// A cluster address's scheme sets the cluster's protocol: the shipped
// ratelimit cluster is HTTP/2, http:// makes it HTTP/1.1, h2c:// HTTP/2.
func TestRenderClusterProtocols(t *testing.T) {
	shipped, err := os.ReadFile(filepath.Join(RepoRoot(t), "envoy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		addr  string
		http2 bool
	}{
		{"127.0.0.1:1", true}, {HTTP1("127.0.0.1:1"), false}, {H2C("127.0.0.1:1"), true},
	} {
		out, err := RenderEnvoyConfig(shipped, EnvoyParams{Upstream: "127.0.0.1:2", Wasm: "/p.wasm", PluginConfig: `{}`,
			Clusters: map[string]string{RateLimitCluster: tc.addr, CacheCluster: HTTP1("127.0.0.1:3")}})
		if err != nil {
			t.Fatalf("%s: %v", tc.addr, err)
		}
		var cfg struct {
			StaticResources struct {
				Clusters []struct {
					Name           string
					Protocol       map[string]any `json:"typed_extension_protocol_options"`
					LoadAssignment struct {
						Endpoints []struct {
							LBEndpoints []struct {
								Endpoint struct {
									Address struct {
										SocketAddress struct {
											PortValue int `json:"port_value"`
										} `json:"socket_address"`
									}
								} `json:"endpoint"`
							} `json:"lb_endpoints"`
						}
					} `json:"load_assignment"`
				}
			} `json:"static_resources"`
		}
		if err := json.Unmarshal(out, &cfg); err != nil {
			t.Fatal(err)
		}
		for _, c := range cfg.StaticResources.Clusters {
			if c.Name != RateLimitCluster {
				continue
			}
			if got := strings.Contains(string(mustJSON(t, c.Protocol)), `"http2_protocol_options":{}`); got != tc.http2 {
				t.Errorf("%s: HTTP/2 %v, want %v (%v)", tc.addr, got, tc.http2, c.Protocol)
			}
			if port := c.LoadAssignment.Endpoints[0].LBEndpoints[0].Endpoint.Address.SocketAddress.PortValue; port != 1 {
				t.Errorf("%s: endpoint port %d, want 1", tc.addr, port)
			}
		}
	}
	if _, err := RenderEnvoyConfig(shipped, EnvoyParams{Upstream: "127.0.0.1:2", Wasm: "/p.wasm", PluginConfig: `{}`,
		Clusters: map[string]string{RateLimitCluster: "https://127.0.0.1:1"}}); err == nil {
		t.Error("an https:// cluster address was accepted")
	}
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
