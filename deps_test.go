package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/portcullis/portcullis"

// sdkPackages may import the proxy-wasm SDK: the entry point, the plugin
// glue and the host adapter. Every other package is plain Go that tests
// natively.
var sdkPackages = map[string]bool{module: true, module + "/filter/plugin": true, module + "/filter/host": true}

// linkable are the modules the plugin may link besides the standard
// library and its own packages: the SDK only.
var linkable = []string{"github.com/proxy-wasm/proxy-wasm-go-sdk/"}

// unlinkable are standard packages the plugin must not import: each costs
// Envoy memory in every VM (README "Performance", module footprint), and
// filter/jsonread, filter/jsonobj and filter/wrap do their work. The SDK
// imports fmt (so reflect) without linking it for the functions the plugin
// calls; e2e.TestModuleLeavesOutCostlyPackages checks what is linked.
var unlinkable = []string{"encoding/json"}

// unimportable are packages the plugin's own packages must not import
// (tests may): fmt would be linked through them.
var unimportable = []string{"fmt", "encoding/json", "reflect"}

// goList runs `go list` for the plugin's target (wasip1) and returns one
// line per package: import path, whether it is standard, its imports.
func goList(t *testing.T, args ...string) [][]string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-f", "{{.ImportPath}}|{{.Standard}}|{{join .Imports \" \"}}"}, args...)...)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v", args, err)
	}
	var pkgs [][]string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkgs = append(pkgs, strings.SplitN(line, "|", 3))
	}
	return pkgs
}

func TestThePluginImportsNoFmt(t *testing.T) {
	for _, pkg := range goList(t, "-deps", ".") {
		path, imports := pkg[0], strings.Fields(pkg[2])
		if !strings.HasPrefix(path, module) {
			continue
		}
		for _, imp := range imports {
			for _, banned := range unimportable {
				if imp == banned {
					t.Errorf("%s imports %s; see unimportable", path, imp)
				}
			}
		}
	}
}

func TestOnlyTheGlueImportsTheSDK(t *testing.T) {
	for _, pkg := range goList(t, "-deps", "./...") {
		path, imports := pkg[0], strings.Fields(pkg[2])
		if !strings.HasPrefix(path, module) || sdkPackages[path] {
			continue
		}
		for _, imp := range imports {
			if strings.HasPrefix(imp, "github.com/proxy-wasm/") {
				t.Errorf("%s imports %s: only main, filter/plugin and filter/host may talk to the SDK", path, imp)
			}
		}
	}
}

func TestThePluginLinksOnlyTheSDK(t *testing.T) {
	for _, pkg := range goList(t, "-deps", ".") {
		path, standard := pkg[0], pkg[1] == "true"
		for _, banned := range unlinkable {
			if path == banned {
				t.Errorf("the plugin links %s; see unlinkable", path)
			}
		}
		if standard || strings.HasPrefix(path, module) {
			continue
		}
		allowed := false
		for _, prefix := range linkable {
			allowed = allowed || path == strings.TrimSuffix(prefix, "/") || strings.HasPrefix(path, prefix)
		}
		if !allowed {
			t.Errorf("the plugin links %s; it may link only the standard library and the SDK", path)
		}
	}
}
