// Command crasher is a deliberately fragile proxy-wasm plugin used only by the
// failure-policy e2e test (e2e/envoy_test.go). It stands in for an
// authenticating gateway whose VM dies:
//
//   - a request with "x-crash: now" panics without recovering, which kills the VM;
//   - any other request without an Authorization header gets a local 401;
//   - a request with an Authorization header continues upstream.
//
// If Envoy's failure_policy let a dead VM's requests through, unauthenticated
// requests would reach the upstream; the test asserts they never do.
//
// Built by the test: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared.
package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() { proxywasm.SetVMContext(&vm{}) }

type vm struct{ types.DefaultVMContext }

func (*vm) NewPluginContext(uint32) types.PluginContext { return &plugin{} }

type plugin struct{ types.DefaultPluginContext }

func (*plugin) OnPluginStart(int) types.OnPluginStartStatus {
	proxywasm.LogInfo("crasher: started")
	return types.OnPluginStartStatusOK
}

func (*plugin) NewHttpContext(uint32) types.HttpContext { return &httpContext{} }

type httpContext struct{ types.DefaultHttpContext }

var crashes []int // a nil slice: indexing it panics at run time, not at compile time

func (*httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	if v, _ := proxywasm.GetHttpRequestHeader("x-crash"); v == "now" {
		proxywasm.LogCritical("crasher: crashing the VM on purpose")
		crashes[len(crashes)+1]++ // index out of range: an unrecovered Go panic
	}
	if v, _ := proxywasm.GetHttpRequestHeader("authorization"); v == "" {
		_ = proxywasm.SendHttpResponse(401, [][2]string{{"content-type", "application/json"}},
			[]byte(`{"error":"unauthorized","message":"crasher: missing token"}`), -1)
		return types.ActionPause
	}
	return types.ActionContinue
}
