package istio_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/e2e/harness"
)

// istioctl returns $ISTIOCTL_BIN, the pinned istioctl that `make istioctl`
// installs and `make test` passes. Missing, it fails under CI=true and skips
// otherwise.
func istioctl(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("ISTIOCTL_BIN")
	if bin == "" {
		harness.Unavailable(t, "ISTIOCTL_BIN is not set: run `make test`, or ISTIOCTL_BIN=$(make -s istioctl) go test ./istio")
	}
	if _, err := os.Stat(bin); err != nil {
		harness.Unavailable(t, "ISTIOCTL_BIN=%s: %v; run `make istioctl`", bin, err)
	}
	return bin
}

// validate runs `istioctl validate -f file`. The command works offline: it
// checks the objects against the schemas and validation rules compiled into
// istioctl (istioctl/pkg/validate/validate.go) and never contacts a cluster.
// An empty HOME keeps the developer's kubeconfig out anyway (it would only
// choose the default namespace).
func validate(t *testing.T, bin, file string) (output string, err error) {
	t.Helper()
	cmd := exec.Command(bin, "validate", "-f", file)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// envoyFilterNotice is the warning istioctl gives every EnvoyFilter
// (pkg/config/validation: EnvoyFilter is an unstable API). local-replies.yaml
// needs EnvoyFilters, as Istio has no other API for local_reply_config, so
// this warning, and no other, is accepted.
const envoyFilterNotice = "EnvoyFilter exposes internal implementation details that may change at any time."

// unexpectedWarnings returns the lines of istioctl validate's output for
// file that are neither its "is valid" / "has warnings" line nor the
// EnvoyFilter notice.
func unexpectedWarnings(out, file string) []string {
	var extra []string
	for _, line := range strings.Split(out, "\n") {
		switch {
		case line == "", line == `"`+file+`" is valid`, strings.HasPrefix(line, `"`+file+`" has warnings:`):
		case strings.HasPrefix(line, "\t* EnvoyFilter/") && strings.Contains(line, envoyFilterNotice):
		default:
			extra = append(extra, line)
		}
	}
	return extra
}

// Every manifest passes Istio's own validation, without a warning (but the
// notice every EnvoyFilter gets).
func TestManifestsPassIstioctlValidate(t *testing.T) {
	bin := istioctl(t)
	for _, f := range manifestFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			out, err := validate(t, bin, f)
			t.Logf("istioctl validate -f %s:\n%s", filepath.Base(f), out)
			if err != nil {
				t.Fatalf("istioctl validate failed: %v", err)
			}
			if !strings.HasPrefix(out, `"`+f+`" `) {
				t.Errorf("istioctl validate did not report on %s", f)
			}
			if extra := unexpectedWarnings(out, f); len(extra) > 0 {
				t.Errorf("istioctl validate printed more than %q (warnings count as failures): %q", `"`+f+`" is valid`, extra)
			}
		})
	}
}

// The validation is real: a manifest with a wrong enum value or a misspelt
// field fails it, naming the problem.
func TestIstioctlValidateRejectsBrokenManifests(t *testing.T) {
	bin := istioctl(t)
	for _, tc := range []struct {
		name, file, old, new, want string
	}{
		{"wrong_phase", "wasmplugin-gateway.yaml", "phase: AUTHN", "phase: AUTHENTICATE", `unknown value "\"AUTHENTICATE\""`},
		{"wrong_fail_strategy", "wasmplugin-sidecar.yaml", "failStrategy: FAIL_RELOAD", "failStrategy: FAIL_SAFE", `unknown value "\"FAIL_SAFE\""`},
		{"env_from_secret", "wasmplugin-gateway.yaml", "      valueFrom: HOST", "      valueFrom: SECRET", `unknown value "\"SECRET\""`},
		{"misspelt_field", "cache.yaml", "consistentHash:", "consistentHsh:", `unknown field "consistentHsh"`},
		{"wrong_patch_operation", "local-replies.yaml", "operation: MERGE", "operation: MERGE_ALL", `unknown value "\"MERGE_ALL\""`},
		// istioctl decodes an EnvoyFilter's typed_config against Envoy's
		// protos, and reports what does not fit as a warning, not an error.
		{"misspelt_envoy_field", "local-replies.yaml", "mappers:", "mapperz:", `unknown field "mapperz"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orig, err := os.ReadFile(filepath.Join(manifestDir(t), tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(orig), tc.old) {
				t.Fatalf("istio/%s has no %q to break", tc.file, tc.old)
			}
			broken := filepath.Join(t.TempDir(), tc.file)
			if err := os.WriteFile(broken, []byte(strings.Replace(string(orig), tc.old, tc.new, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := validate(t, bin, broken)
			t.Logf("istioctl validate -f %s (with %q):\n%s", tc.file, tc.new, out)
			if err == nil && len(unexpectedWarnings(out, broken)) == 0 {
				t.Fatalf("istioctl validate accepted %q", tc.new)
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("istioctl validate did not say %s", tc.want)
			}
		})
	}
}
