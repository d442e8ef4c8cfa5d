package scenarios

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/e2e/harness"
)

// badConfig is a plugin configuration (or VM environment) the plugin must refuse.
type badConfig struct {
	name  string
	patch func(cfg map[string]any) // applied to the shipped configuration
	env   map[string]string        // the VM environment (nil: TestSecret)
	field string                   // the field the log line must name
	never string                   // a value that must not appear in the logs
}

// ShortSecret is 31 bytes: one byte under the HS256 minimum (RFC 7518 §3.2).
const ShortSecret = "short-secret-31-bytes-long-xxxx"

func badConfigs(t *testing.T, target harness.Target) {
	jwtObj := func(cfg map[string]any) map[string]any { return cfg["jwt"].(map[string]any) }
	for _, bc := range []badConfig{
		{name: "leeway_out_of_range", field: "jwt.leeway_seconds",
			patch: func(cfg map[string]any) { jwtObj(cfg)["leeway_seconds"] = 900 }},
		{name: "unknown_nested_field", field: "routes[1].pubic",
			patch: func(cfg map[string]any) { cfg["routes"].([]any)[1].(map[string]any)["pubic"] = true }},
		{name: "rate_limit_zero_window", field: "rate_limit.default[1].window_seconds",
			patch: func(cfg map[string]any) {
				cfg["rate_limit"] = map[string]any{"default": []any{
					map[string]any{"requests": 10, "window_seconds": 1},
					map[string]any{"requests": 100, "window_seconds": 0},
				}}
			}},
		{name: "secret_shorter_than_32_bytes", field: "jwt.secrets[0].env", never: ShortSecret,
			env: map[string]string{harness.SecretEnv: ShortSecret}},
		{name: "secret_variable_unset", field: "jwt.secrets[0].env",
			env: map[string]string{}},
	} {
		t.Run(bc.name, func(t *testing.T) {
			t.Parallel()
			opts := harness.Options{Env: bc.env}
			if bc.patch != nil {
				opts.PluginConfig = patchConfig(t, harness.ShippedPluginConfig(t), bc.patch)
			}
			logs := target.StartRefused(t, opts)
			want := "invalid plugin configuration: " + bc.field + ":"
			if !strings.Contains(logs, want) {
				t.Errorf("no log line names the field: want %q in the host log; plugin lines:\n%s", want, grep(logs, "wasm"))
			}
			// One line per refusal: every VM that refuses says the same single thing.
			if lines := refusalLines(logs); len(lines) > 0 {
				for _, l := range lines[1:] {
					if l != lines[0] {
						t.Errorf("different refusal lines:\n%s\n%s", lines[0], l)
					}
				}
			}
			if bc.never != "" && strings.Contains(logs, bc.never) {
				t.Errorf("the secret's value appears in the log")
			}
			if strings.Contains(logs, harness.TestSecret) {
				t.Errorf("the secret's value appears in the log")
			}
		})
	}
}

// refusalLines returns the message part of every refusal line.
func refusalLines(logs string) []string {
	var out []string
	for _, line := range strings.Split(logs, "\n") {
		if i := strings.Index(line, "invalid plugin configuration:"); i >= 0 {
			out = append(out, line[i:])
		}
	}
	return out
}

func patchConfig(t *testing.T, base string, patch func(map[string]any)) string {
	t.Helper()
	var cfg map[string]any
	if err := json.Unmarshal([]byte(base), &cfg); err != nil {
		t.Fatalf("the shipped plugin configuration is not JSON: %v", err)
	}
	patch(cfg)
	out, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func grep(s, sub string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
