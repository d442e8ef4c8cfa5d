package harness

import (
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Names in the shipped envoy.yaml the renderer relies on.
const (
	ListenerName    = "gateway"
	UpstreamCluster = "demo_upstream"
	WasmFilterName  = "envoy.filters.http.wasm"
	hcmFilterName   = "envoy.filters.network.http_connection_manager"
)

// EnvoyParams are the parts of the shipped envoy.yaml a test replaces.
// Everything else (filters and their order, CORS, routes, retries, the wasm
// VM settings, failure_policy) is tested as shipped.
type EnvoyParams struct {
	// Upstream is the demo upstream's "host:port".
	Upstream string
	// Wasm is the absolute path of the plugin module.
	Wasm string
	// PluginConfig replaces the plugin configuration when non-empty.
	PluginConfig string
	// EnvKeys are added to vm_config.environment_variables.host_env_keys.
	EnvKeys []string
	// RouteTimeout replaces every route's timeout when non-zero.
	RouteTimeout time.Duration
	// NodeID replaces node.id when non-empty; Region sets node.locality.region when non-empty.
	NodeID, Region string
	// FailurePolicy replaces the wasm failure_policy when non-empty.
	FailurePolicy string
	// Clusters replace the endpoint of other shipped clusters, by name ("host:port").
	Clusters map[string]string
	// DropStatsConfig removes the shipped top-level stats_config.
	DropStatsConfig bool
	// Edit, when set, is applied last to the derived configuration.
	Edit func(root map[string]any) error
	// WithoutPlugin removes the wasm filter: bare Envoy with everything else as
	// shipped, the yardstick the plugin's footprint is measured against.
	WithoutPlugin bool
}

// RenderEnvoyConfig derives a test configuration from the shipped envoy.yaml:
// the listener and admin bind 127.0.0.1 port 0 (Envoy picks free ports, the
// harness asks Envoy which), and the fields in p are replaced. It returns JSON,
// which Envoy reads as YAML. An error means the shipped file no longer has the
// shape the harness expects — a test failure, not a skip.
func RenderEnvoyConfig(shipped []byte, p EnvoyParams) ([]byte, error) {
	var root map[string]any
	if err := yaml.Unmarshal(shipped, &root); err != nil {
		return nil, fmt.Errorf("envoy.yaml: %w", err)
	}
	if root == nil {
		return nil, fmt.Errorf("envoy.yaml is empty")
	}
	if err := render(root, p); err != nil {
		return nil, fmt.Errorf("envoy.yaml: %w", err)
	}
	return json.MarshalIndent(root, "", "  ")
}

func render(root map[string]any, p EnvoyParams) error {
	node, err := obj(root, "node")
	if err != nil {
		return err
	}
	if p.NodeID != "" {
		node["id"] = p.NodeID
	}
	if p.Region != "" {
		loc, _ := node["locality"].(map[string]any)
		if loc == nil {
			loc = map[string]any{}
			node["locality"] = loc
		}
		loc["region"] = p.Region
	}

	if p.DropStatsConfig {
		if _, ok := root["stats_config"]; !ok {
			return fmt.Errorf("no stats_config to drop")
		}
		delete(root, "stats_config")
	}

	admin, err := obj(root, "admin")
	if err != nil {
		return err
	}
	admin["address"] = socketAddress("127.0.0.1", 0)

	static, err := obj(root, "static_resources")
	if err != nil {
		return err
	}
	listener, err := named(static, "listeners", ListenerName)
	if err != nil {
		return err
	}
	listener["address"] = socketAddress("127.0.0.1", 0)
	hcm, err := hcmConfig(listener)
	if err != nil {
		return err
	}
	if err := renderWasm(hcm, p); err != nil {
		return err
	}
	if p.RouteTimeout > 0 {
		if err := setRouteTimeouts(hcm, p.RouteTimeout); err != nil {
			return err
		}
	}

	if err := setEndpoint(static, UpstreamCluster, p.Upstream); err != nil {
		return err
	}
	for name, addr := range p.Clusters {
		if err := setCluster(static, name, addr); err != nil {
			return err
		}
	}
	if p.Edit != nil {
		return p.Edit(root)
	}
	return nil
}

// setCluster points the named cluster at addr (see Options.Clusters): its
// endpoints, and its protocol when addr names one.
func setCluster(static map[string]any, name, addr string) error {
	scheme, addrs, hasScheme := strings.Cut(addr, "://")
	if !hasScheme {
		return setEndpoint(static, name, addr)
	}
	if err := setEndpoint(static, name, addrs); err != nil {
		return err
	}
	cluster, _ := named(static, "clusters", name)
	switch scheme {
	case "http":
		delete(cluster, "typed_extension_protocol_options")
	case "h2c":
		cluster["typed_extension_protocol_options"] = map[string]any{
			"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": map[string]any{
				"@type":                "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
				"explicit_http_config": map[string]any{"http2_protocol_options": map[string]any{}},
			},
		}
	default:
		return fmt.Errorf("cluster %s: scheme %q is neither http nor h2c", name, scheme)
	}
	return nil
}

// setEndpoint makes addrs ("host:port", several separated by commas) the
// endpoints of the named cluster; "" leaves it without any (Envoy then
// answers its routes 503 no_healthy_upstream).
func setEndpoint(static map[string]any, name, addrs string) error {
	cluster, err := named(static, "clusters", name)
	if err != nil {
		return err
	}
	endpoints := []any{}
	for _, addr := range strings.Split(addrs, ",") {
		if addr == "" {
			continue
		}
		host, portText, err := net.SplitHostPort(addr)
		if err != nil {
			return fmt.Errorf("cluster %s address %q: %w", name, addr, err)
		}
		port, err := strconv.Atoi(portText)
		if err != nil {
			return fmt.Errorf("cluster %s port %q: %w", name, portText, err)
		}
		endpoints = append(endpoints, map[string]any{"endpoint": map[string]any{"address": socketAddress(host, port)}})
	}
	cluster["load_assignment"] = map[string]any{
		"cluster_name": name,
		"endpoints":    []any{map[string]any{"lb_endpoints": endpoints}},
	}
	return nil
}

// gatewayHCM returns the HTTP connection manager config of the gateway
// listener in root.
func gatewayHCM(root map[string]any) (map[string]any, error) {
	static, err := obj(root, "static_resources")
	if err != nil {
		return nil, err
	}
	listener, err := named(static, "listeners", ListenerName)
	if err != nil {
		return nil, err
	}
	return hcmConfig(listener)
}

func hcmConfig(listener map[string]any) (map[string]any, error) {
	chains, _ := listener["filter_chains"].([]any)
	for _, c := range chains {
		chain, _ := c.(map[string]any)
		filters, _ := chain["filters"].([]any)
		for _, f := range filters {
			filter, _ := f.(map[string]any)
			if filter["name"] == hcmFilterName {
				return obj(filter, "typed_config")
			}
		}
	}
	return nil, fmt.Errorf("listener %q has no %s", ListenerName, hcmFilterName)
}

func renderWasm(hcm map[string]any, p EnvoyParams) error {
	filters, _ := hcm["http_filters"].([]any)
	for i, f := range filters {
		filter, _ := f.(map[string]any)
		if filter["name"] != WasmFilterName {
			continue
		}
		if p.WithoutPlugin {
			hcm["http_filters"] = slices.Delete(filters, i, i+1)
			return nil
		}
		config, err := path(filter, "typed_config", "config")
		if err != nil {
			return err
		}
		vm, err := obj(config, "vm_config")
		if err != nil {
			return err
		}
		local, err := path(vm, "code", "local")
		if err != nil {
			return err
		}
		local["filename"] = p.Wasm
		if len(p.EnvKeys) > 0 {
			env, _ := vm["environment_variables"].(map[string]any)
			if env == nil {
				env = map[string]any{}
				vm["environment_variables"] = env
			}
			keys, _ := env["host_env_keys"].([]any)
			for _, k := range p.EnvKeys {
				if !slices.Contains(keys, any(k)) {
					keys = append(keys, k)
				}
			}
			env["host_env_keys"] = keys
		}
		if p.PluginConfig != "" {
			cfg, err := obj(config, "configuration")
			if err != nil {
				return err
			}
			if cfg["@type"] != "type.googleapis.com/google.protobuf.StringValue" {
				return fmt.Errorf("wasm configuration is %v, want a google.protobuf.StringValue", cfg["@type"])
			}
			cfg["value"] = p.PluginConfig
		}
		if p.FailurePolicy != "" {
			config["failure_policy"] = p.FailurePolicy
		}
		return nil
	}
	return fmt.Errorf("no %s http filter", WasmFilterName)
}

// ShippedFailurePolicy returns the failure_policy of the shipped wasm filter
// ("" when it is not set).
func ShippedFailurePolicy(shipped []byte) (string, error) {
	config, err := wasmPluginConfig(shipped)
	if err != nil {
		return "", err
	}
	policy, _ := config["failure_policy"].(string)
	return policy, nil
}

// PluginConfigFrom returns the plugin configuration (the JSON text) shipped in envoy.yaml.
func PluginConfigFrom(shipped []byte) (string, error) {
	config, err := wasmPluginConfig(shipped)
	if err != nil {
		return "", err
	}
	cfg, err := obj(config, "configuration")
	if err != nil {
		return "", err
	}
	value, ok := cfg["value"].(string)
	if !ok || value == "" {
		return "", fmt.Errorf("the wasm filter's configuration has no string value")
	}
	return value, nil
}

// wasmPluginConfig returns the shipped wasm filter's PluginConfig.
func wasmPluginConfig(shipped []byte) (map[string]any, error) {
	var root map[string]any
	if err := yaml.Unmarshal(shipped, &root); err != nil {
		return nil, err
	}
	hcm, err := gatewayHCM(root)
	if err != nil {
		return nil, err
	}
	filters, _ := hcm["http_filters"].([]any)
	for _, f := range filters {
		filter, _ := f.(map[string]any)
		if filter["name"] == WasmFilterName {
			return path(filter, "typed_config", "config")
		}
	}
	return nil, fmt.Errorf("no %s http filter", WasmFilterName)
}

func setRouteTimeouts(hcm map[string]any, d time.Duration) error {
	rc, err := obj(hcm, "route_config")
	if err != nil {
		return err
	}
	hosts, _ := rc["virtual_hosts"].([]any)
	n := 0
	for _, h := range hosts {
		vh, _ := h.(map[string]any)
		routes, _ := vh["routes"].([]any)
		for _, r := range routes {
			rt, _ := r.(map[string]any)
			if action, ok := rt["route"].(map[string]any); ok {
				action["timeout"] = fmt.Sprintf("%.3fs", d.Seconds())
				n++
			}
		}
	}
	if n == 0 {
		return fmt.Errorf("route_config has no routes to the upstream")
	}
	return nil
}

func socketAddress(host string, port int) map[string]any {
	return map[string]any{"socket_address": map[string]any{"address": host, "port_value": port}}
}

func obj(m map[string]any, key string) (map[string]any, error) {
	v, ok := m[key].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("missing object %q", key)
	}
	return v, nil
}

func path(m map[string]any, keys ...string) (map[string]any, error) {
	var err error
	for _, k := range keys {
		if m, err = obj(m, k); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func named(m map[string]any, list, name string) (map[string]any, error) {
	items, _ := m[list].([]any)
	for _, it := range items {
		if o, ok := it.(map[string]any); ok && o["name"] == name {
			return o, nil
		}
	}
	return nil, fmt.Errorf("no %s named %q", list, name)
}
