package istio_test

import (
	"slices"
	"testing"
)

// failClosed are the failStrategy values under which a plugin that cannot
// load or run never lets a request through unauthenticated. FAIL_OPEN skips
// the plugin; an unset field is refused too, so that the choice stays visible.
var failClosed = []string{"FAIL_CLOSE", "FAIL_RELOAD"}

// The WasmPlugins authenticate before Istio's filters, fail closed, and take
// every environment variable (the JWT secret) from the proxy, never inline.
func TestWasmPluginPolicy(t *testing.T) {
	for _, wp := range objectsOfKind(t, "WasmPlugin") {
		t.Run(wp.name(), func(t *testing.T) {
			spec := dig(wp.doc, "spec")
			if got := str(wp.doc, "spec", "phase"); got != "AUTHN" {
				t.Errorf("phase %q, want AUTHN", got)
			}
			if got := str(wp.doc, "spec", "failStrategy"); !slices.Contains(failClosed, got) {
				t.Errorf("failStrategy %q, want one of %v", got, failClosed)
			}
			hostEnv := hostEnvNames(t, spec)
			for _, s := range list(dig(spec, "pluginConfig", "jwt", "secrets")) {
				if name := str(s, "env"); name != "" && !slices.Contains(hostEnv, name) {
					t.Errorf("pluginConfig reads the secret from %s, which vmConfig.env does not pass from the proxy (valueFrom: HOST)", name)
				}
			}
		})
	}
}

// hostEnvNames returns the vmConfig.env names, failing on any inline value.
func hostEnvNames(t *testing.T, spec any) []string {
	t.Helper()
	var names []string
	for _, e := range list(dig(spec, "vmConfig", "env")) {
		if str(e, "valueFrom") != "HOST" || e["value"] != nil {
			t.Errorf("vmConfig.env %s is not valueFrom: HOST without a value: secrets are never inline", str(e, "name"))
			continue
		}
		names = append(names, str(e, "name"))
	}
	return names
}

// Each WasmPlugin selects at least one workload here; each selected pod's
// istio-proxy container gets every vmConfig.env variable from a Secret; and a
// plugin in a sidecar (not a gateway) sees inbound traffic only.
func TestWasmPluginWorkloads(t *testing.T) {
	deployments := objectsOfKind(t, "Deployment")
	for _, wp := range objectsOfKind(t, "WasmPlugin") {
		t.Run(wp.name(), func(t *testing.T) {
			spec := dig(wp.doc, "spec")
			selector, _ := dig(spec, "selector", "matchLabels").(map[string]any)
			if len(selector) == 0 {
				t.Fatal("no spec.selector.matchLabels: the plugin would apply to the whole namespace")
			}
			env := hostEnvNames(t, spec)
			selected := 0
			for _, d := range deployments {
				pod := dig(d.doc, "spec", "template")
				if str(d.doc, "metadata", "namespace") != str(wp.doc, "metadata", "namespace") || !matches(selector, dig(pod, "metadata", "labels")) {
					continue
				}
				selected++
				checkProxyEnv(t, d.name(), dig(pod, "spec", "containers"), env)
				gateway := str(pod.(map[string]any), "metadata", "annotations", "inject.istio.io/templates") == "gateway"
				if !gateway && !inboundOnly(spec) {
					t.Errorf("Deployment %s is a sidecar workload: the WasmPlugin needs match [{mode: SERVER}], or it also checks the workload's outgoing calls", d.name())
				}
			}
			if selected == 0 {
				t.Errorf("selects no Deployment in istio/ (selector %v)", selector)
			}
		})
	}
}

func matches(selector map[string]any, labels any) bool {
	l, _ := labels.(map[string]any)
	for k, v := range selector {
		if l[k] != v {
			return false
		}
	}
	return true
}

func inboundOnly(spec any) bool {
	m := list(dig(spec, "match"))
	return len(m) > 0 && !slices.ContainsFunc(m, func(sel map[string]any) bool { return str(sel, "mode") != "SERVER" })
}

// checkProxyEnv: the pod declares an istio-proxy container ("image: auto",
// merged into the injected proxy) whose env sets each name from a Secret.
func checkProxyEnv(t *testing.T, deployment string, containers any, names []string) {
	t.Helper()
	for _, c := range list(containers) {
		if str(c, "name") != "istio-proxy" {
			continue
		}
		if got := str(c, "image"); got != "auto" {
			t.Errorf("Deployment %s: istio-proxy image %q, want auto (Istio injects the proxy)", deployment, got)
		}
		for _, name := range names {
			found := false
			for _, e := range list(c["env"]) {
				if str(e, "name") == name {
					found = true
					if e["value"] != nil || str(e, "valueFrom", "secretKeyRef", "name") == "" {
						t.Errorf("Deployment %s: istio-proxy env %s must come from a secretKeyRef, not a value", deployment, name)
					}
				}
			}
			if !found {
				t.Errorf("Deployment %s: istio-proxy has no env %s, which the plugin reads (vmConfig.env valueFrom: HOST)", deployment, name)
			}
		}
		return
	}
	t.Errorf("Deployment %s declares no istio-proxy container to carry %v from a Secret", deployment, names)
}
