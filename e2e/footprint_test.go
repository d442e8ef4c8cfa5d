package e2e

import (
	"os"
	"strings"
	"testing"

	"github.com/tetratelabs/wabin/binary"
	"github.com/tetratelabs/wabin/wasm"

	"github.com/portcullis/portcullis/e2e/harness"
)

// costlyPackages must not be linked into the plugin: Go on wasm copies every
// linked package's data into each VM, and V8 compiles all of its code, so
// they cost Envoy memory and start-up (README "Performance", module
// footprint). The SDK imports fmt, and fmt imports reflect, so importing is
// not linking: the test reads what the linker kept, by the function names
// Go writes into the module (a package path with "/" written "_"). An
// imported package's init always stays (reflect's is 388 bytes).
var costlyPackages = []string{"fmt", "encoding_json", "reflect", "github.com_tidwall_gjson",
	// Protobuf's runtime: the fleet calls are encoded by hand (filter/fleet).
	"google.golang.org_protobuf_proto", "google.golang.org_protobuf_internal_impl",
	"google.golang.org_protobuf_reflect_protoreflect", "github.com_envoyproxy_go-control-plane_envoy_service_ratelimit_v3"}

func TestModuleLeavesOutCostlyPackages(t *testing.T) {
	raw, err := os.ReadFile(harness.GoWasmPath(t))
	if err != nil {
		t.Fatal(err)
	}
	m, err := binary.DecodeModule(raw, wasm.CoreFeaturesV2)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if m.NameSection == nil || len(m.NameSection.FunctionNames) == 0 {
		t.Fatal("the module has no function names")
	}
	linked := map[string]int{}
	for _, na := range m.NameSection.FunctionNames {
		for _, pkg := range costlyPackages {
			if na.Name == pkg+".init" {
				continue
			}
			if strings.HasPrefix(na.Name, pkg+".") || strings.HasPrefix(na.Name, "type:.eq."+pkg+".") {
				if linked[pkg]++; linked[pkg] == 1 {
					t.Errorf("the module links %s (first: %s)", pkg, na.Name)
				}
			}
		}
	}
	if !hasFunction(m, "runtime.poll_oneoff") {
		t.Error("no runtime.poll_oneoff: the names are not Go's, so the check above proves nothing")
	}
}

func hasFunction(m *wasm.Module, name string) bool {
	for _, na := range m.NameSection.FunctionNames {
		if na.Name == name {
			return true
		}
	}
	return false
}
