package main

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"

	"gopkg.in/yaml.v3"
)

// envoyConfig is what the command takes from an envoy.yaml: the wasm
// filter's plugin configuration (envoy.extensions.wasm.v3.PluginConfig) and
// the node.
type envoyConfig struct {
	pluginConfig, vmConfig string
	name, rootID, vmID     string
	hostEnvKeys            []string
	keyValues              map[string]string
	nodeID, region         string
}

// readEnvoyYAML reads path and finds the first wasm plugin configuration in
// it (a mapping with a vm_config).
func readEnvoyYAML(path string) (*envoyConfig, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var root map[string]any
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	plugin := findMap(root, func(m map[string]any) bool { _, ok := m["vm_config"]; return ok })
	if plugin == nil {
		return nil, fmt.Errorf("%s: no wasm filter (no vm_config) found", path)
	}
	ec := &envoyConfig{keyValues: map[string]string{}}
	ec.name, _ = plugin["name"].(string)
	ec.rootID, _ = plugin["root_id"].(string)
	ec.pluginConfig = stringValue(plugin["configuration"])
	if ec.pluginConfig == "" {
		return nil, errors.New(path + ": the wasm filter has no configuration value")
	}
	vm, _ := plugin["vm_config"].(map[string]any)
	ec.vmID, _ = vm["vm_id"].(string)
	ec.vmConfig = stringValue(vm["configuration"])
	envs, _ := vm["environment_variables"].(map[string]any)
	keys, _ := envs["host_env_keys"].([]any)
	for _, k := range keys {
		if s, ok := k.(string); ok {
			ec.hostEnvKeys = append(ec.hostEnvKeys, s)
		}
	}
	kv, _ := envs["key_values"].(map[string]any)
	for k, v := range kv {
		ec.keyValues[k] = fmt.Sprint(v)
	}
	node, _ := root["node"].(map[string]any)
	ec.nodeID, _ = node["id"].(string)
	loc, _ := node["locality"].(map[string]any)
	ec.region, _ = loc["region"].(string)
	return ec, nil
}

// stringValue reads a google.protobuf.StringValue ({"@type": ..., value: ...}) or a plain string.
func stringValue(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case map[string]any:
		s, _ := v["value"].(string)
		return s
	}
	return ""
}

// findMap returns the first mapping under v (depth first) that match accepts.
func findMap(v any, match func(map[string]any) bool) map[string]any {
	switch v := v.(type) {
	case map[string]any:
		if match(v) {
			return v
		}
		for _, k := range sortedKeys(v) {
			if m := findMap(v[k], match); m != nil {
				return m
			}
		}
	case []any:
		for _, e := range v {
			if m := findMap(e, match); m != nil {
				return m
			}
		}
	}
	return nil
}

func sortedKeys(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }
