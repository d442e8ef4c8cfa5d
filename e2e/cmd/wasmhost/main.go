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
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
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
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	var clusters, envs listFlag
	wasmPath := flag.String("wasm", "build/portcullis.wasm", "the compiled plugin")
	configPath := flag.String("config", "", "a file holding the plugin configuration (wins over -envoy-yaml)")
	envoyYAML := flag.String("envoy-yaml", "", "take the plugin configuration, node and VM environment from this envoy.yaml")
	workers := flag.Int("workers", 2, "number of VMs (Envoy's --concurrency)")
	listen := flag.String("listen", "127.0.0.1:10000", "listen address")
	flag.Var(&clusters, "cluster", "name=URL of a cluster (repeatable)")
	routeCluster := flag.String("route-cluster", "", `the cluster requests are proxied to (default "upstream", or the only cluster)`)
	stripPrefix := flag.String("strip-prefix", "", "route only paths under this prefix, with the prefix removed (e.g. /api)")
	flag.Var(&envs, "env", "KEY passes the host's KEY to the VM, KEY=VALUE sets it (repeatable); JWT_SECRET is passed when set")
	nodeID := flag.String("node-id", "", "the node id property (default: envoy.yaml's, else wasmhost)")
	region := flag.String("region", "", "the node locality region property")
	timeout := flag.Duration("timeout", 15*time.Second, "upstream route timeout")
	quiet := flag.Bool("quiet", false, "do not print plugin and host log lines")
	flag.Parse()

	wasm, err := os.ReadFile(*wasmPath)
	if err != nil {
		return err
	}
	opts := wasmhost.Options{
		Workers: *workers, StripPrefix: *stripPrefix, UpstreamTimeout: *timeout,
		Env: map[string]string{}, Clusters: map[string]string{},
		PluginName: "portcullis", RootID: "portcullis", VMID: "portcullis", NodeID: "wasmhost",
	}
	if !*quiet {
		opts.LogOutput = os.Stderr
	}
	envKeys := []string{"JWT_SECRET"}
	if *envoyYAML != "" {
		ec, err := readEnvoyYAML(*envoyYAML)
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
	if *configPath != "" {
		b, err := os.ReadFile(*configPath)
		if err != nil {
			return err
		}
		opts.PluginConfig = string(b)
	}
	for _, e := range envs {
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
	if *nodeID != "" {
		opts.NodeID = *nodeID
	}
	if *region != "" {
		opts.Region = *region
	}
	for _, c := range clusters {
		name, u, ok := strings.Cut(c, "=")
		if !ok || name == "" || u == "" {
			return fmt.Errorf("-cluster %q: want name=URL", c)
		}
		opts.Clusters[name] = u
	}
	if opts.Upstream, err = pickUpstream(opts.Clusters, *routeCluster); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	h, err := wasmhost.New(ctx, wasm, opts)
	if err != nil {
		return err
	}
	defer h.Close()
	srv := &http.Server{Addr: *listen, Handler: h.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Printf("%s in %d VMs on http://%s → %s", *wasmPath, *workers, *listen, orNone(opts.Upstream))
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
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

func orNone(s string) string {
	if s == "" {
		return "no upstream (404 for everything the plugin forwards)"
	}
	return s
}
