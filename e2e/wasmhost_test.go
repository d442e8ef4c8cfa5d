package e2e

import (
	"testing"

	"github.com/portcullis/portcullis/e2e/harness"
	"github.com/portcullis/portcullis/e2e/scenarios"
)

// TestWasmHost runs the same scenarios as TestEnvoy against the compiled
// plugin in the wazero host. The same outcomes on both are the proof that the
// host is faithful. The Envoy-only checks (CORS, path normalisation, retries)
// stay with TestEnvoy: they test Envoy's own filters and router, which the
// wazero host does not emulate.
func TestWasmHost(t *testing.T) {
	t.Parallel()
	scenarios.Run(t, harness.NewWasmHost(t), scenarios.Extras{})
}
