// Package plugin wires the gateway's stages to the proxy-wasm SDK: the VM,
// plugin and HTTP contexts.
package plugin

import (
	"math/rand/v2"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/portcullis/portcullis/filter/cache"
	"github.com/portcullis/portcullis/filter/config"
	"github.com/portcullis/portcullis/filter/fleet"
	"github.com/portcullis/portcullis/filter/gateway"
	"github.com/portcullis/portcullis/filter/host"
	"github.com/portcullis/portcullis/filter/ratelimit"
	"github.com/portcullis/portcullis/filter/route"
)

// Version is the plugin version reported by /health; the build may override it
// with -ldflags "-X github.com/portcullis/portcullis/filter/plugin.Version=...".
var Version = "0.1.0-dev"

// VM is the VM context: one per Envoy worker thread.
type VM struct {
	types.DefaultVMContext
}

// NewPluginContext implements types.VMContext.
func (*VM) NewPluginContext(id uint32) types.PluginContext {
	return &Plugin{id: id}
}

// Plugin is one configured instance of the gateway inside a VM.
type Plugin struct {
	types.DefaultPluginContext
	id      uint32 // the root context's id
	cfg     *config.Config
	gw      *gateway.Gateway
	logs    *gateway.LogLimiter // bounds the error lines
	metrics *metrics
	bg      background
	// fillLocks coordinate concurrent cache misses across workers (nil when
	// caching is off).
	fillLocks *cache.FillLocks
	fills     int // cache fills buffering in this VM
	// localIndex (this Envoy's copies of index records, in shared data) and
	// hot (this VM's recently hit entries) are the in-proxy cache tier.
	localIndex *cache.LocalIndex
	hot        *cache.HotEntries
	heap       *heapPacer // collects the VM's garbage on the tick (gc.go)
	// accessBuf is the memory every request's access record is built in:
	// the host copies it when it is published, and a VM runs one callback
	// at a time, so one buffer serves every stream without an allocation.
	accessBuf []byte
}

// OnPluginStart parses the configuration; any problem refuses the plugin with
// one log line naming the field, so Envoy will not serve with it.
func (p *Plugin) OnPluginStart(int) types.OnPluginStartStatus {
	data, err := proxywasm.GetPluginConfiguration()
	if err != nil && err != types.ErrorStatusNotFound {
		host.Log(host.Critical, "portcullis: refusing to start: cannot read plugin configuration: "+err.Error())
		return types.OnPluginStartStatusFailed
	}
	cfg, err := config.Parse(data, host.LookupEnv)
	if err != nil {
		host.Log(host.Critical, "portcullis: refusing to start: invalid plugin configuration: "+err.Error())
		return types.OnPluginStartStatusFailed
	}
	p.cfg = cfg
	tables := gateway.Tables{}
	if rl := cfg.RateLimit; rl != nil && rl.PublicKey.Kind == config.KeyClientAddress {
		tables.ClientAddress = clientAddress
	}
	if rl := cfg.RateLimit; rl != nil {
		// The seed keys the table's placement and the headers' partition
		// keys (pk), the same in every worker of this Envoy.
		seed, err := ratelimit.SharedSeed(host.SharedData{}, randomUint64)
		if err != nil {
			host.Log(host.Critical, "portcullis: refusing to start: rate-limit seed: "+err.Error())
			return types.OnPluginStartStatusFailed
		}
		tables.Partitions = ratelimit.NewPartitioner(seed)
		if rl.Fleet != nil {
			tables.Blocklist = fleet.NewBlocklist(host.SharedData{}, rl.Fleet.BlockSlots)
			if rl.Fleet.Leasing {
				tables.Leases = fleet.NewLeases(host.SharedData{}, rl.Fleet.LeaseSlots)
			}
		}
		if rl.Local() {
			if tables.Limiter, err = newLimiter(rl, seed); err != nil {
				host.Log(host.Critical, "portcullis: refusing to start: invalid plugin configuration: rate_limit."+err.Error())
				return types.OnPluginStartStatusFailed
			}
		}
	}
	p.gw = gateway.New(cfg, tables)
	p.logs = gateway.NewLogLimiter(cfg.ErrorLinesPerSecond)
	if cfg.Cache != nil {
		p.fillLocks = cache.NewFillLocks(host.SharedData{}, cfg.Cache.FillLockSlots)
		p.localIndex = cache.NewLocalIndex(host.SharedData{}, cfg.Cache)
		p.hot = cache.NewHotEntries(cfg.Cache)
	}
	p.metrics = newMetrics(cfg.Routes.Rules())
	p.heap = newHeapPacer()
	// The tick flushes the counters (metrics.go); it runs for the plugin's life.
	if err := proxywasm.SetTickPeriodMilliSeconds(uint32(flushPeriod / time.Millisecond)); err != nil {
		host.Log(host.Critical, "portcullis: refusing to start: cannot set the tick: "+err.Error())
		return types.OnPluginStartStatusFailed
	}
	host.Log(host.Info, "portcullis: started, version "+Version)
	return types.OnPluginStartStatusOK
}

// newLimiter is the local and hybrid modes' limiter over this Envoy's
// shared data.
func newLimiter(rl *config.RateLimit, seed uint64) (*ratelimit.Limiter, error) {
	opts := rl.Options
	opts.Store, opts.Seed = host.SharedData{}, seed
	return ratelimit.New(opts)
}

// NewHttpContext implements types.PluginContext.
func (p *Plugin) NewHttpContext(id uint32) types.HttpContext {
	return &httpContext{id: id, plugin: p}
}

// randomUint64 is a random number from the runtime's ChaCha8 generator,
// which Go seeds per VM from the host's WASI random_get, as it seeds map
// hashing: unpredictable enough for a bucket seed and unique cache epochs.
// crypto/rand would add its FIPS DRBG and its AES, SHA-3 and SHA-512 to the
// module (31 KB, README "Performance"). The error result is the shape
// ratelimit.SharedSeed takes.
func randomUint64() (uint64, error) { return rand.Uint64(), nil }

// clientAddress is the downstream client's IP without its port ("" when
// the proxy does not say).
func clientAddress() string {
	if ip, err := route.ClientIP(host.Property("source", "address")); err == nil {
		return ip.String()
	}
	return ""
}

// clockNow is the plugin's clock, a variable so that tests can break it. It
// is not a field: a func() time.Time in Plugin, which the SDK holds as an
// interface, would make the linker keep time.Time's String, GoString and
// formatting for reflection (README "Performance", module footprint).
var clockNow = time.Now
