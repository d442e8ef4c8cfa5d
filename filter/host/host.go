// Package host reaches the proxy through the proxy-wasm SDK: properties,
// environment, metrics and logs. Together with plugin/ it is the only code
// that imports the SDK; everything else is plain Go.
package host

import (
	"os"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
)

// Property returns an Envoy attribute (e.g. "node", "id") as a string, or ""
// when the proxy does not have it.
func Property(path ...string) string {
	raw, err := proxywasm.GetProperty(path)
	if err != nil {
		return ""
	}
	return string(raw)
}

// LookupEnv reads the VM's environment, which Envoy fills from
// vm_config.environment_variables through WASI.
func LookupEnv(name string) (string, bool) { return os.LookupEnv(name) }

// Level is a log severity.
type Level int

const (
	Debug Level = iota
	Info
	Warn
	Error
	Critical
)

// Log writes msg at level to the proxy's log.
func Log(level Level, msg string) {
	switch level {
	case Debug:
		proxywasm.LogDebug(msg)
	case Info:
		proxywasm.LogInfo(msg)
	case Warn:
		proxywasm.LogWarn(msg)
	case Error:
		proxywasm.LogError(msg)
	default:
		proxywasm.LogCritical(msg)
	}
}
