package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/e2e/harness"
	"github.com/portcullis/portcullis/e2e/scenarios"
)

// TestWasmHostPollOneoffENOSYS is the regression test for Envoy 1.36–1.38
// that needs no old Envoy: the wazero host answers WASI poll_oneoff with
// ENOSYS, as they do. The module as the Go toolchain builds it dies in the Go
// runtime ("poll_oneoff failed") during a GC-heavy run; build/portcullis.wasm
// (cmd/pollfix) serves several times as many requests with every one
// answered 200 and never calls the host's poll_oneoff.
func TestWasmHostPollOneoffENOSYS(t *testing.T) {
	t.Parallel()
	goWasm, rewritten := harness.GoWasmPath(t), harness.WasmPath(t)
	host := harness.NewWasmHost(t)
	host.PollOneoffENOSYS = true

	// The toolchain's module: requests until a VM dies, at most maxRequests.
	const maxRequests = 20_000
	gw := host.Start(t, harness.Options{Wasm: goWasm})
	sent, failed := gcHeavyRun(t, gw, maxRequests, true)
	failures, _ := gw.HostStat(harness.WasmHostVMFailures)
	calls, _ := gw.HostStat(harness.WasmHostPollOneoffCalls)
	if failures == 0 || calls == 0 {
		t.Fatalf("the toolchain's module survived %d requests on an ENOSYS poll_oneoff (%d VM failures, %d host poll_oneoff calls): "+
			"this test no longer shows the crash it guards against", sent, failures, calls)
	}
	if !strings.Contains(gw.HostLogs(), "poll_oneoff failed") {
		t.Errorf("the VM died for another reason than poll_oneoff:\n%s", gw.HostLogs())
	}
	t.Logf("the toolchain's module: a VM died after %d requests (%d not 200), %d host poll_oneoff calls", sent, failed, calls)

	// The rewritten module: five times as many requests, and at least 2,000.
	n := max(5*sent, 2000)
	gw = host.Start(t, harness.Options{Wasm: rewritten})
	_, failed = gcHeavyRun(t, gw, n, false)
	failures, _ = gw.HostStat(harness.WasmHostVMFailures)
	calls, _ = gw.HostStat(harness.WasmHostPollOneoffCalls)
	if failed != 0 || failures != 0 || calls != 0 {
		t.Errorf("build/portcullis.wasm on an ENOSYS poll_oneoff: %d of %d requests not 200, %d VM failures, %d host poll_oneoff calls; want 0, 0, 0\n%s",
			failed, n, failures, calls, gw.HostLogs())
	}
	t.Logf("build/portcullis.wasm: %d requests, all 200, no host poll_oneoff call", n)
}

// gcHeavyRun sends up to n requests with rotating tokens and paths (each
// verification, cache key and callout allocates, so the Go heap turns over
// and collects many times). With stopAtFailure it stops at the first answer
// that is not 200. It returns how many it sent and how many were not 200.
func gcHeavyRun(t *testing.T, gw *harness.Gateway, n int, stopAtFailure bool) (sent, failed int) {
	t.Helper()
	tokens := make([]map[string][]string, 64)
	for i := range tokens {
		tokens[i] = scenarios.Bearer(scenarios.Token(harness.TestSecret, fmt.Sprintf("gc-%d", i), nil))
	}
	for sent < n {
		resp := scenarios.Send(t, gw, scenarios.Request{Path: fmt.Sprintf("/api/gc/%d", sent%997), Header: tokens[sent%len(tokens)]})
		sent++
		if resp.Status != http.StatusOK {
			failed++
			if stopAtFailure {
				break
			}
		}
	}
	return sent, failed
}
