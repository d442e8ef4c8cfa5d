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
// ENOSYS, as they do. The Go runtime calls poll_oneoff after a GC once a
// runtime timer exists, and then dies ("poll_oneoff failed"). The plugin
// armed one on every cache fill while it used crypto/rand (whose Read arms a
// 60-second warning timer); since it draws from math/rand/v2 the request path
// arms none, and the module as the toolchain builds it survives the run too.
// The runtime still has timers of its own (the scavenger's), so pollfix stays:
// when the toolchain's module does call poll_oneoff it must die of it, and
// build/portcullis.wasm (cmd/pollfix) must serve every request with 200 and
// never call the host's poll_oneoff.
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
	switch {
	case calls == 0 && failures == 0 && failed == 0:
		t.Logf("the toolchain's module: %d requests, all 200, no host poll_oneoff call (no runtime timer was armed)", sent)
	case calls == 0 || failures == 0:
		t.Fatalf("the toolchain's module: %d requests, %d not 200, %d VM failures, %d host poll_oneoff calls: "+
			"either it calls poll_oneoff and dies of it, or it does neither\n%s", sent, failed, failures, calls, gw.HostLogs())
	case !strings.Contains(gw.HostLogs(), "poll_oneoff failed"):
		t.Errorf("the VM died for another reason than poll_oneoff:\n%s", gw.HostLogs())
	default:
		t.Logf("the toolchain's module: a VM died after %d requests (%d not 200), %d host poll_oneoff calls", sent, failed, calls)
	}

	// The rewritten module: five times as many requests, at least 2,000, at
	// most maxRequests (beyond it the callers reach their rate limit).
	n := min(max(5*sent, 2000), maxRequests)
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
	// Enough callers that none reaches the rate limit (100 at once) in 20,000 requests.
	tokens := make([]map[string][]string, 256)
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
