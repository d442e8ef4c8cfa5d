package harness

import "fmt"

// ReplacePlugin replaces the plugin's filter in the gateway listener's HTTP
// filter chain with filters, in order, keeping everything else of the derived
// configuration (CORS, router, routes, access log, clusters). No filters is
// the shipped chain without the plugin. It is an Options.EditConfig for
// comparisons with Envoy's own filters.
func ReplacePlugin(root map[string]any, filters ...map[string]any) error {
	hcm, err := gatewayHCM(root)
	if err != nil {
		return err
	}
	chain, _ := hcm["http_filters"].([]any)
	for i, f := range chain {
		if filter, _ := f.(map[string]any); filter["name"] == WasmFilterName {
			out := append([]any{}, chain[:i]...)
			for _, r := range filters {
				out = append(out, r)
			}
			hcm["http_filters"] = append(out, chain[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("no %s http filter to replace", WasmFilterName)
}

// VirtualHosts returns the virtual hosts of the gateway listener's route
// config in a rendered configuration, for edits such as route-level
// rate_limits actions.
func VirtualHosts(root map[string]any) ([]map[string]any, error) {
	hcm, err := gatewayHCM(root)
	if err != nil {
		return nil, err
	}
	rc, err := obj(hcm, "route_config")
	if err != nil {
		return nil, err
	}
	var out []map[string]any
	hosts, _ := rc["virtual_hosts"].([]any)
	for _, h := range hosts {
		if vh, ok := h.(map[string]any); ok {
			out = append(out, vh)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("route_config has no virtual hosts")
	}
	return out, nil
}
