// Command wasmhost runs the compiled plugin as a local gateway without Envoy,
// in the wazero proxy-wasm host of e2e/wasmhost:
//
//	go run ./e2e/cmd/wasmhost -wasm build/portcullis.wasm -config config.json \
//	    -workers 2 -listen 127.0.0.1:10000 \
//	    -cluster upstream=http://127.0.0.1:10001 -strip-prefix /api
//
// With -envoy-yaml envoy.yaml the plugin configuration, the node id and
// region, the plugin/root/vm names and the environment variables the VM
// receives (vm_config.environment_variables) come from the wasm filter of
// that file, as `make run` gives them to Envoy. Requests go to the cluster
// named by -route-cluster ("upstream" by default, or the only one given);
// every -cluster is also reachable by proxy_http_call.
//
// Like `make run`'s Envoy it serves an admin listener (-admin, by default
// 127.0.0.1:9901; "" disables it): GET /ready answers 200 "LIVE" once the VMs
// are up, GET /stats lists the plugin's metrics as Envoy does
// ("wasmcustom.<metric>: <value>", sorted; ?filter=<regex>).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/portcullis/portcullis/e2e/wasmhost"
)

// listFlag is a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	log.SetFlags(0)
	log.SetPrefix("wasmhost: ")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], nil)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		log.Fatal(err)
	}
}

// cmdFlags are the command's flags.
type cmdFlags struct {
	clusters, envs                            listFlag
	wasm, config, envoyYAML, listen, admin    *string
	routeCluster, stripPrefix, nodeID, region *string
	workers                                   *int
	timeout                                   *time.Duration
	quiet                                     *bool
}

func commandFlags() (*flag.FlagSet, *cmdFlags) {
	fs := flag.NewFlagSet("wasmhost", flag.ContinueOnError)
	f := &cmdFlags{}
	f.wasm = fs.String("wasm", "build/portcullis.wasm", "the compiled plugin")
	f.config = fs.String("config", "", "a file holding the plugin configuration (wins over -envoy-yaml)")
	f.envoyYAML = fs.String("envoy-yaml", "", "take the plugin configuration, node and VM environment from this envoy.yaml")
	f.workers = fs.Int("workers", 2, "number of VMs (Envoy's --concurrency)")
	f.listen = fs.String("listen", "127.0.0.1:10000", "listen address")
	f.admin = fs.String("admin", "127.0.0.1:9901", `admin listen address, as Envoy's: GET /ready ("LIVE" once the VMs are up) and GET /stats (wasmcustom.<metric>: <value>); "" disables it`)
	fs.Var(&f.clusters, "cluster", "name=URL of a cluster (repeatable): http://host:port, or h2c://host:port for HTTP/2 without TLS (a gRPC service)")
	f.routeCluster = fs.String("route-cluster", "", `the cluster requests are proxied to (default "upstream", or the only cluster)`)
	f.stripPrefix = fs.String("strip-prefix", "", "route only paths under this prefix, with the prefix removed (e.g. /api)")
	fs.Var(&f.envs, "env", "KEY passes the host's KEY to the VM, KEY=VALUE sets it (repeatable); JWT_SECRET is passed when set")
	f.nodeID = fs.String("node-id", "", "the node id property (default: envoy.yaml's, else wasmhost)")
	f.region = fs.String("region", "", "the node locality region property")
	f.timeout = fs.Duration("timeout", 15*time.Second, "upstream route timeout")
	f.quiet = fs.Bool("quiet", false, "do not print plugin and host log lines")
	return fs, f
}

// run parses args, starts the admin listener, the VMs and the gateway, and
// serves until ctx ends. Once both listeners serve and the VMs are up it
// calls listening (when not nil) with their addresses; admin is "" when
// -admin is empty.
func run(ctx context.Context, args []string, listening func(gateway, admin string)) error {
	fs, f := commandFlags()
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	wasm, err := os.ReadFile(*f.wasm)
	if err != nil {
		return err
	}
	opts := wasmhost.Options{
		Workers: *f.workers, StripPrefix: *f.stripPrefix, UpstreamTimeout: *f.timeout,
		Env: map[string]string{}, Clusters: map[string]string{},
		PluginName: "portcullis", RootID: "portcullis", VMID: "portcullis", NodeID: "wasmhost",
	}
	if !*f.quiet {
		opts.LogOutput = os.Stderr
	}
	envKeys := []string{"JWT_SECRET"}
	if *f.envoyYAML != "" {
		ec, err := readEnvoyYAML(*f.envoyYAML)
		if err != nil {
			return err
		}
		opts.PluginConfig, opts.VMConfig = ec.pluginConfig, ec.vmConfig
		opts.NodeID, opts.Region = ec.nodeID, ec.region
		opts.PluginName, opts.RootID, opts.VMID = ec.name, ec.rootID, ec.vmID
		envKeys = append(envKeys, ec.hostEnvKeys...)
		for k, v := range ec.keyValues {
			opts.Env[k] = v
		}
	}
	if *f.config != "" {
		b, err := os.ReadFile(*f.config)
		if err != nil {
			return err
		}
		opts.PluginConfig = string(b)
	}
	for _, e := range f.envs {
		if k, v, ok := strings.Cut(e, "="); ok {
			opts.Env[k] = v
		} else {
			envKeys = append(envKeys, e)
		}
	}
	for _, k := range envKeys {
		if v, ok := os.LookupEnv(k); ok {
			opts.Env[k] = v
		} else if _, set := opts.Env[k]; !set {
			log.Printf("warning: %s is not set in the environment; the plugin may refuse to start", k)
		}
	}
	if *f.nodeID != "" {
		opts.NodeID = *f.nodeID
	}
	if *f.region != "" {
		opts.Region = *f.region
	}
	for _, c := range f.clusters {
		name, u, ok := strings.Cut(c, "=")
		if !ok || name == "" || u == "" {
			return fmt.Errorf("-cluster %q: want name=URL", c)
		}
		opts.Clusters[name] = u
	}
	if opts.Upstream, err = pickUpstream(opts.Clusters, *f.routeCluster); err != nil {
		return err
	}

	errc := make(chan error, 2)
	// The admin listener comes up first, as Envoy's: /ready answers 503
	// PRE_INITIALIZING while the VMs start.
	admin := &wasmhost.Admin{}
	adminSrv, adminURL, err := serve(*f.admin, admin, errc)
	if err != nil {
		return fmt.Errorf("admin listener: %w", err)
	}
	defer shutdown(adminSrv)

	h, err := wasmhost.New(ctx, wasm, opts)
	if err != nil {
		return err
	}
	defer h.Close()
	srv, gatewayURL, err := serve(*f.listen, h.Handler(), errc)
	if err != nil {
		return err
	}
	admin.SetHost(h)
	log.Printf("%s in %d VMs on http://%s → %s; admin %s", *f.wasm, *f.workers, gatewayURL, orNone(opts.Upstream), orOff(adminURL))
	if listening != nil {
		listening(gatewayURL, adminURL)
	}
	select {
	case err := <-errc:
		shutdown(srv)
		return err
	case <-ctx.Done():
	}
	return shutdown(srv)
}

// serve serves handler on addr until shutdown; "" serves nothing. It returns
// the address it listens on. A failure to serve goes to errc.
func serve(addr string, handler http.Handler, errc chan<- error) (*http.Server, string, error) {
	if addr == "" {
		return nil, "", nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	return srv, ln.Addr().String(), nil
}

// shutdown stops srv (nil: nothing), waiting up to 5 s for requests in flight.
func shutdown(srv *http.Server) error {
	if srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		srv.Close()
		return err
	}
	return nil
}

// pickUpstream returns the URL of the cluster requests are proxied to.
func pickUpstream(clusters map[string]string, name string) (string, error) {
	if name != "" {
		u, ok := clusters[name]
		if !ok {
			return "", fmt.Errorf("-route-cluster %s: no such -cluster", name)
		}
		return u, nil
	}
	if u, ok := clusters["upstream"]; ok {
		return u, nil
	}
	if len(clusters) == 1 {
		for _, u := range clusters {
			return u, nil
		}
	}
	if len(clusters) > 1 {
		return "", errors.New("several clusters and no -route-cluster")
	}
	return "", nil
}

func orOff(addr string) string {
	if addr == "" {
		return "off"
	}
	return "http://" + addr
}

func orNone(s string) string {
	if s == "" {
		return "no upstream (404 for everything the plugin forwards)"
	}
	return s
}
