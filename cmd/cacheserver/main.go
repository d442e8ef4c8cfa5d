// Command cacheserver is Portcullis's cache server: the store behind the
// plugin's cache cluster (README "Cache server"), in memory with a byte
// budget or in Redis.
//
//	cacheserver -listen 127.0.0.1:10002 -backend memory -memory-bytes 67108864
//	cacheserver -backend redis -redis-addr 127.0.0.1:6379
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
	"syscall"
	"time"

	"github.com/portcullis/portcullis/internal/cacheserver"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		log.Printf("cacheserver: %v", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("cacheserver", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:10002", "address to serve the cache protocol on")
	backend := fs.String("backend", "memory", "memory or redis")
	memoryBytes := fs.Int64("memory-bytes", 64<<20, "memory backend: byte budget (keys, values and per-entry overhead)")
	maxEntry := fs.Int64("max-entry-bytes", cacheserver.DefaultMaxEntryBytes, "largest value accepted (413 above)")
	defaultTTL := fs.Duration("default-ttl", cacheserver.DefaultTTL, "TTL of a PUT without x-cache-ttl")
	redisAddr := fs.String("redis-addr", "127.0.0.1:6379", "redis backend: host:port")
	redisPrefix := fs.String("redis-prefix", "portcullis:cache:", "redis backend: key prefix")
	redisTimeout := fs.Duration("redis-timeout", cacheserver.DefaultRedisTimeout, "redis backend: limit of each command")
	if err := fs.Parse(args); err != nil {
		return err
	}
	store, closeStore, err := openStore(*backend, *memoryBytes, *redisAddr, *redisPrefix, *redisTimeout)
	if err != nil {
		return err
	}
	defer closeStore()
	logger := log.New(os.Stderr, "", log.LstdFlags)
	srv := &http.Server{
		Addr:              *listen,
		Handler:           cacheserver.NewHandler(store, cacheserver.Options{MaxEntryBytes: *maxEntry, DefaultTTL: *defaultTTL, Log: logger}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errs := make(chan error, 1)
	go func() { errs <- srv.ListenAndServe() }()
	logger.Printf("cacheserver: serving on %s, backend %s", *listen, *backend)
	select {
	case err := <-errs:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

func openStore(backend string, memoryBytes int64, redisAddr, redisPrefix string, redisTimeout time.Duration) (cacheserver.Store, func(), error) {
	switch backend {
	case "memory":
		m, err := cacheserver.NewMemory(memoryBytes)
		return m, func() {}, err
	case "redis":
		r := cacheserver.NewRedis(redisAddr, redisPrefix, redisTimeout)
		return r, func() { _ = r.Close() }, nil
	}
	return nil, nil, fmt.Errorf("-backend %q: want memory or redis", backend)
}
