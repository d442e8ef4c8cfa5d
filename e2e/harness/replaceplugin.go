package harness

import "fmt"

// ReplacePlugin replaces the plugin's filter in the gateway listener's HTTP
// filter chain with filters, in order, keeping everything else of the derived
// configuration (CORS, router, routes, access log, clusters). No filters is
// the shipped chain without the plugin. It is an Options.EditConfig for
// comparisons with Envoy's own filters.
func ReplacePlugin(root map[string]any, filters ...map[string]any) error {
	static, err := obj(root, "static_resources")
	if err != nil {
		return err
	}
	listener, err := named(static, "listeners", ListenerName)
	if err != nil {
		return err
	}
	hcm, err := hcmConfig(listener)
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
