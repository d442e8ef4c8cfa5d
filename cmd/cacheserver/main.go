// Command cacheserver is Portcullis's cache server: the store behind the
// plugin's cache cluster, in memory with a byte budget or in Redis. The
// protocol and the flags are in README.md beside this file.
//
//	cacheserver -listen 127.0.0.1:10002 -backend memory -memory-bytes 67108864
//	cacheserver -backend redis -redis-addr 127.0.0.1:6379
//	cacheserver -backend redis -redis-mode cluster -redis-addr 10.0.0.1:6379,10.0.0.2:6379
//	cacheserver -backend redis -redis-mode sentinel -redis-master cache -redis-addr 10.0.0.1:26379,10.0.0.2:26379
//
// It logs one line when it starts, one per error and one when it stops;
// never an entry's contents.
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

	"github.com/redis/go-redis/v9"

	"github.com/portcullis/portcullis/internal/cacheserver"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := log.New(os.Stderr, "cacheserver: ", log.LstdFlags)
	if err := run(ctx, os.Args[1:], logger, nil); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return // -h: the flag package printed the usage
		}
		logger.Print(err)
		stop()
		os.Exit(1)
	}
}

// config is what the flags say.
type config struct {
	listen, backend        string
	memoryBytes, maxEntry  int64
	defaultTTL             time.Duration
	redisAddr, redisPrefix string
	redisMode, redisMaster string
	redisTimeout           time.Duration
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("cacheserver", flag.ContinueOnError)
	fs.StringVar(&c.listen, "listen", "127.0.0.1:10002", "address to serve the cache protocol on")
	fs.StringVar(&c.backend, "backend", "memory", "where entries live: memory or redis")
	fs.Int64Var(&c.memoryBytes, "memory-bytes", 64<<20, "memory backend: byte budget (keys, values and a per-entry overhead)")
	fs.Int64Var(&c.maxEntry, "max-entry-bytes", cacheserver.DefaultMaxEntryBytes, "largest value a PUT may store (413 above)")
	fs.DurationVar(&c.defaultTTL, "default-ttl", cacheserver.DefaultTTL, "TTL of a PUT without x-cache-ttl (1s to 24h)")
	fs.StringVar(&c.redisAddr, "redis-addr", "127.0.0.1:6379", "redis backend: host:port; for cluster and sentinel, a comma-separated list")
	fs.StringVar(&c.redisMode, "redis-mode", string(cacheserver.RedisStandalone), "redis backend: standalone, cluster (Redis Cluster; -redis-addr are seed nodes) or sentinel (-redis-addr are Sentinels)")
	fs.StringVar(&c.redisMaster, "redis-master", "", "redis backend, sentinel mode: the name of the master the Sentinels monitor")
	fs.StringVar(&c.redisPrefix, "redis-prefix", "portcullis:cache:", "redis backend: prefix of every key")
	fs.DurationVar(&c.redisTimeout, "redis-timeout", cacheserver.DefaultRedisTimeout, "redis backend: limit of each command")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	switch {
	case fs.NArg() > 0:
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	case c.backend != "memory" && c.backend != "redis":
		return c, fmt.Errorf("-backend %q: want memory or redis", c.backend)
	case c.maxEntry < 1:
		return c, fmt.Errorf("-max-entry-bytes %d: want at least 1", c.maxEntry)
	case c.defaultTTL < time.Second || c.defaultTTL > cacheserver.MaxTTL:
		return c, fmt.Errorf("-default-ttl %v: want 1s to %v", c.defaultTTL, cacheserver.MaxTTL)
	case c.redisTimeout <= 0:
		return c, fmt.Errorf("-redis-timeout %v: want more than 0", c.redisTimeout)
	}
	if c.backend == "redis" {
		if _, err := cacheserver.NewRedis(c.redisOptions()); err != nil {
			return c, fmt.Errorf("-redis-mode %s, -redis-addr %q, -redis-master %q: %w", c.redisMode, c.redisAddr, c.redisMaster, err)
		}
	} else if c.redisMode != string(cacheserver.RedisStandalone) || c.redisMaster != "" {
		return c, errors.New("-redis-mode and -redis-master need -backend redis")
	}
	return c, nil
}

// redisOptions are the Redis store's options the flags give.
func (c config) redisOptions() cacheserver.RedisOptions {
	var addrs []string
	for a := range strings.SplitSeq(c.redisAddr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	return cacheserver.RedisOptions{
		Mode: cacheserver.RedisMode(c.redisMode), Addrs: addrs, MasterName: c.redisMaster,
		Prefix: c.redisPrefix, Timeout: c.redisTimeout,
	}
}

// run serves until ctx ends, then shuts down gracefully. ready, when not nil,
// learns the address it listens on (for tests: -listen 127.0.0.1:0).
func run(ctx context.Context, args []string, logger *log.Logger, ready func(addr string)) error {
	c, err := parseFlags(args)
	if err != nil {
		return err
	}
	store, described, closeStore, err := openStore(ctx, c)
	if err != nil {
		return err
	}
	defer closeStore()

	l, err := net.Listen("tcp", c.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler: cacheserver.NewHandler(store, cacheserver.Options{
			MaxEntryBytes: c.maxEntry, DefaultTTL: c.defaultTTL, Log: logger,
		}),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          logger,
	}
	logger.Printf("serving on %s: %s; entries up to %d bytes, default TTL %v", l.Addr(), described, c.maxEntry, c.defaultTTL)
	if ready != nil {
		ready(l.Addr().String())
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	// Requests in flight get a few seconds; the plugin's own callout
	// timeouts are far shorter.
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Printf("stopped")
	return nil
}

// openStore opens the store c asks for and describes it for the start line.
func openStore(ctx context.Context, c config) (store cacheserver.Store, described string, closeStore func(), err error) {
	if c.backend == "memory" {
		m, err := cacheserver.NewMemory(c.memoryBytes)
		if err != nil {
			return nil, "", nil, fmt.Errorf("-memory-bytes: %w", err)
		}
		return m, fmt.Sprintf("memory store of %d bytes", c.memoryBytes), func() {}, nil
	}
	// go-redis logs every failed dial; the handler already logs each failed
	// request once.
	redis.SetLogger(discardRedisLogs{})
	r, err := cacheserver.NewRedis(c.redisOptions())
	if err != nil {
		return nil, "", nil, fmt.Errorf("-redis-mode: %w", err) // parseFlags checked these
	}
	described = fmt.Sprintf("redis store (%s) at %s, prefix %q", c.redisMode, c.redisAddr, c.redisPrefix)
	if c.redisMaster != "" {
		described += fmt.Sprintf(", master %q", c.redisMaster)
	}
	// A Redis that is down at start is not fatal: requests answer 503 until
	// it is up, as they would if it died later.
	if err := r.Ping(ctx); err != nil {
		described += fmt.Sprintf(" (not answering yet: %v)", err)
	}
	return r, described, func() { _ = r.Close() }, nil
}

type discardRedisLogs struct{}

func (discardRedisLogs) Printf(context.Context, string, ...any) {}
