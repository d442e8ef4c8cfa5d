package istio_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/portcullis/portcullis/e2e/harness"
)

// The rate limiter's descriptor config has one source: ratelimit/config/portcullis.yaml.
const (
	descriptorFile = "ratelimit/config/portcullis.yaml"
	configMapFile  = "ratelimit-config.yaml"
	configMapName  = "ratelimit-config"
)

// ratelimitConfigMap renders istio/ratelimit-config.yaml: a ConfigMap whose
// one key is the descriptor file, byte for byte (a literal block keeps it
// readable in a diff).
func ratelimitConfigMap(descriptors []byte) ([]byte, error) {
	key := func(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: s} }
	mapping := func(kv ...*yaml.Node) *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode, Content: kv} }
	doc := mapping(
		key("apiVersion"), key("v1"),
		key("kind"), key("ConfigMap"),
		key("metadata"), mapping(
			key("name"), key(configMapName),
			key("namespace"), key("portcullis"),
		),
		key("data"), mapping(
			key(path.Base(descriptorFile)),
			&yaml.Node{Kind: yaml.ScalarNode, Style: yaml.LiteralStyle, Value: string(descriptors)},
		),
	)
	return generatedYAML("# GENERATED from "+descriptorFile+" by\n"+
		"#   go test ./istio -run TestRatelimitConfigMapIsTheDescriptorFile -update\n"+
		"# Edit that file, not this one. envoyproxy/ratelimit reads it from\n"+
		"# $RUNTIME_ROOT/$RUNTIME_SUBDIRECTORY/config/ (ratelimit.yaml mounts it there).\n", doc)
}

func TestRatelimitConfigMapIsTheDescriptorFile(t *testing.T) {
	descriptors, err := os.ReadFile(filepath.Join(harness.RepoRoot(t), descriptorFile))
	if err != nil {
		t.Fatal(err)
	}
	want, err := ratelimitConfigMap(descriptors)
	if err != nil {
		t.Fatal(err)
	}
	// The rendering must carry the file exactly (yaml may not fold, strip or
	// re-indent it).
	var back struct {
		Data map[string]string `yaml:"data"`
	}
	if err := yaml.Unmarshal(want, &back); err != nil {
		t.Fatal(err)
	}
	if back.Data[path.Base(descriptorFile)] != string(descriptors) {
		t.Fatalf("the ConfigMap rendering does not round-trip %s", descriptorFile)
	}

	target := filepath.Join(manifestDir(t), configMapFile)
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
		t.Fatalf("istio/%s does not embed %s as it is now; run:\n"+
			"  go test ./istio -run TestRatelimitConfigMapIsTheDescriptorFile -update", configMapFile, descriptorFile)
	}
}

// The Deployment mounts the ConfigMap where envoyproxy/ratelimit looks:
// $RUNTIME_ROOT/$RUNTIME_SUBDIRECTORY/config.
func TestRatelimitMountsItsConfig(t *testing.T) {
	var dep object
	for _, o := range objectsOfKind(t, "Deployment") {
		if o.name() == "ratelimit" {
			dep = o
		}
	}
	if dep.doc == nil {
		t.Fatal("no Deployment ratelimit")
	}
	spec := dig(dep.doc, "spec", "template", "spec")
	volume := ""
	for _, v := range list(dig(spec, "volumes")) {
		if str(v, "configMap", "name") == configMapName {
			volume = str(v, "name")
		}
	}
	if volume == "" {
		t.Fatalf("Deployment ratelimit has no volume of ConfigMap %s", configMapName)
	}
	containers := list(dig(spec, "containers"))
	if len(containers) != 1 {
		t.Fatalf("Deployment ratelimit has %d containers, want 1", len(containers))
	}
	env := map[string]string{}
	for _, e := range list(containers[0]["env"]) {
		env[str(e, "name")] = str(e, "value")
	}
	want := path.Join(env["RUNTIME_ROOT"], env["RUNTIME_SUBDIRECTORY"], "config")
	for _, m := range list(containers[0]["volumeMounts"]) {
		if str(m, "name") == volume {
			if got := str(m, "mountPath"); got != want {
				t.Errorf("ConfigMap %s is mounted at %s; the service reads %s", configMapName, got, want)
			}
			return
		}
	}
	t.Errorf("the ratelimit container does not mount volume %s", volume)
}

// Fleet mode in Istio limits as local mode in envoy.yaml does: the descriptor
// file's limit for a key on a route is envoy.yaml's default limit.
func TestFleetLimitIsTheLocalDefault(t *testing.T) {
	var local struct {
		RateLimit struct {
			Default []struct {
				Requests      int `json:"requests"`
				WindowSeconds int `json:"window_seconds"`
			} `json:"default"`
		} `json:"rate_limit"`
	}
	if err := json.Unmarshal([]byte(harness.ShippedPluginConfig(t)), &local); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(harness.RepoRoot(t), descriptorFile))
	if err != nil {
		t.Fatal(err)
	}
	var fleet struct {
		Descriptors []struct {
			Key         string `yaml:"key"`
			Descriptors []struct {
				Key       string `yaml:"key"`
				RateLimit struct {
					Unit            string `yaml:"unit"`
					RequestsPerUnit int    `yaml:"requests_per_unit"`
				} `yaml:"rate_limit"`
			} `yaml:"descriptors"`
		} `yaml:"descriptors"`
	}
	if err := yaml.Unmarshal(b, &fleet); err != nil {
		t.Fatalf("%s: %v", descriptorFile, err)
	}
	unitSeconds := map[string]int{"second": 1, "minute": 60, "hour": 3600, "day": 86400}
	var got []string
	for _, d := range fleet.Descriptors {
		for _, r := range d.Descriptors {
			if d.Key == "api_key" && r.Key == "route" {
				got = append(got, fmt.Sprintf("%d/%ds", r.RateLimit.RequestsPerUnit, unitSeconds[r.RateLimit.Unit]))
			}
		}
	}
	var want []string
	for _, l := range local.RateLimit.Default {
		want = append(want, fmt.Sprintf("%d/%ds", l.Requests, l.WindowSeconds))
	}
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Errorf("%s limits a key on a route to %v; envoy.yaml's local default is %v", descriptorFile, got, want)
	}
}

// generatedYAML is doc as YAML (2-space indent) after header, the comment
// that says where a generated manifest comes from.
func generatedYAML(header string, doc any) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(header)
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
