// Command noopgo is a proxy-wasm module built with the plugin's toolchain
// and SDK that does nothing: every callback takes the SDK's defaults (start,
// configure, continue). BenchmarkCompare measures it beside the
// hand-written do-nothing module (noop.wat) to show what the Go runtime and
// the SDK cost per request before the plugin does any work.
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

func (*plugin) NewHttpContext(uint32) types.HttpContext { return &types.DefaultHttpContext{} }
