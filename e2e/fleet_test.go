package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/e2e/harness"
	"github.com/portcullis/portcullis/filter/fleet"
	"github.com/portcullis/portcullis/internal/redistest"
)

// TestShippedDescriptorConfig starts envoyproxy/ratelimit on the descriptor
// config shipped in ratelimit/config and checks the limits it gives the
// descriptors the plugin sends.
func TestShippedDescriptorConfig(t *testing.T) {
	t.Parallel()
	svc := harness.StartRateLimitService(t, redistest.Start(t).Addr, harness.RepoRoot(t))
	for _, tc := range []struct {
		entry string
		limit int64
		cost  int64 // sent as hitsAddend: the service must charge that many
	}{
		{fleet.KeyEntry, 100, 1},
		{fleet.ClientAddressEntry, 60, 1},
		{fleet.HeaderEntry, 60, 7},
	} {
		body := fleet.RequestBody(nil, "portcullis", tc.entry, "someone", "api", tc.cost)
		resp, err := http.Post("http://"+svc.Addr+"/json", "application/json", strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		a, err := fleet.ParseAnswer(resp.StatusCode, raw)
		if err != nil {
			t.Fatalf("%s: %v", tc.entry, err)
		}
		if !a.Limited || a.Over || a.Limit != tc.limit || a.Window.Seconds() != 60 || a.Remaining != tc.limit-tc.cost {
			t.Errorf("%s: answer %+v, want %d per minute with %d remaining", tc.entry, a, tc.limit, tc.limit-tc.cost)
		}
	}
}
