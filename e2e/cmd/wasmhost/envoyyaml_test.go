package main

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestReadShippedEnvoyYAML(t *testing.T) {
	ec, err := readEnvoyYAML("../../../envoy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal([]byte(ec.pluginConfig), &cfg); err != nil || cfg["jwt"] == nil {
		t.Errorf("plugin configuration %q: %v, want the JSON with a jwt section", ec.pluginConfig, err)
	}
	if !slices.Contains(ec.hostEnvKeys, "JWT_SECRET") {
		t.Errorf("host_env_keys %v lack JWT_SECRET", ec.hostEnvKeys)
	}
	if ec.nodeID == "" || ec.rootID == "" || ec.vmID == "" {
		t.Errorf("node id %q, root id %q, vm id %q: want all set", ec.nodeID, ec.rootID, ec.vmID)
	}
}

func TestPickUpstream(t *testing.T) {
	two := map[string]string{"upstream": "http://a", "svc": "http://b"}
	for _, c := range []struct {
		clusters map[string]string
		name     string
		want     string
		err      bool
	}{
		{two, "", "http://a", false},
		{two, "svc", "http://b", false},
		{two, "nope", "", true},
		{map[string]string{"demo": "http://c"}, "", "http://c", false},
		{map[string]string{"x": "http://a", "y": "http://b"}, "", "", true},
		{map[string]string{}, "", "", false},
	} {
		got, err := pickUpstream(c.clusters, c.name)
		if got != c.want || (err != nil) != c.err {
			t.Errorf("pickUpstream(%v, %q) = %q, %v", c.clusters, c.name, got, err)
		}
	}
}
