//go:build !wasip1

package plugin

import (
	"strings"
	"testing"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// breakClock makes the plugin's clock panic once the plugin has started,
// standing in for any bug inside a request callback.
func breakClock(t *testing.T) {
	t.Cleanup(func() { clockNow = time.Now })
	clockNow = func() time.Time { panic("clock broke") }
}

func TestPanicInCallbackBecomes500(t *testing.T) {
	opt := proxytest.NewEmulatorOption().WithVMContext(&VM{}).WithPluginConfiguration([]byte(publicConfig))
	host, reset := proxytest.NewHostEmulator(opt)
	defer reset()
	if host.StartPlugin() != types.OnPluginStartStatusOK {
		t.Fatalf("start: %v", host.GetCriticalLogs())
	}
	breakClock(t)
	id, action := request{method: "GET", path: "/api/public/x"}.send(host)
	resp := host.GetSentLocalResponse(id)
	if action != types.ActionPause || resp == nil || resp.StatusCode != 500 {
		t.Fatalf("action %v reply %+v, want Pause and 500", action, resp)
	}
	if e := envelope(t, resp); e["error"] != "internal_error" || e["request_id"] != "req-1" {
		t.Errorf("envelope = %v", e)
	}
	if logs := host.GetErrorLogs(); len(logs) == 0 || !strings.Contains(logs[0], "clock broke") {
		t.Errorf("error logs = %q, want the recovered panic", logs)
	}
	// The VM survives: the next request is handled normally up to the clock.
	if id, _ := (request{method: "GET", path: "/nowhere"}).send(host); host.GetSentLocalResponse(id) == nil {
		t.Errorf("second request got no reply")
	}
}
