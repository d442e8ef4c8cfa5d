package cacheserver

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a store in Redis, shared by every replica of the server and
// kept across their restarts. Keys are prefixed; Redis expires them.
type Redis struct {
	c      *redis.Client
	prefix string
}

// DefaultRedisTimeout bounds every Redis command, so a dead Redis answers an
// error quickly instead of hanging the plugin's callout (whose own timeout
// is tens of milliseconds).
const DefaultRedisTimeout = 100 * time.Millisecond

// NewRedis returns a store in the Redis at addr ("host:port"); timeout
// bounds each command (0: DefaultRedisTimeout). It does not connect: a Redis
// that is down at start is an error of each request until it comes up.
func NewRedis(addr, prefix string, timeout time.Duration) *Redis {
	if timeout <= 0 {
		timeout = DefaultRedisTimeout
	}
	return &Redis{
		c: redis.NewClient(&redis.Options{
			Addr:         addr,
			DialTimeout:  timeout,
			ReadTimeout:  timeout,
			WriteTimeout: timeout,
			// Waiting for a free connection is bounded too: under a burst
			// against a slow Redis, requests fail fast instead of queueing.
			PoolTimeout: timeout,
			// One retry on a network error (a connection Redis closed while
			// idle), and one dial per attempt rather than go-redis's five
			// 100 ms apart: a command takes at most about twice timeout.
			MaxRetries:    1,
			DialerRetries: 1,
			// A request whose client went away stops waiting for Redis.
			ContextTimeoutEnabled: true,
		}),
		prefix: prefix,
	}
}

// Close closes the client's connections.
func (r *Redis) Close() error { return r.c.Close() }

// Ping checks that Redis answers, for a start-up log line.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis ping: %w", err)
	}
	return nil
}

// Get implements Store.
func (r *Redis) Get(ctx context.Context, key string) ([]byte, bool, error) {
	v, err := r.c.Get(ctx, r.prefix+key).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("redis get: %w", err)
	}
	return v, true, nil
}

// Put implements Store: SET with the TTL as expiry (go-redis sends EX for
// whole seconds, PX otherwise).
func (r *Redis) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := r.c.Set(ctx, r.prefix+key, value, ttl).Err(); err != nil {
		return fmt.Errorf("redis set: %w", err)
	}
	return nil
}

// Delete implements Store.
func (r *Redis) Delete(ctx context.Context, key string) error {
	if err := r.c.Del(ctx, r.prefix+key).Err(); err != nil {
		return fmt.Errorf("redis del: %w", err)
	}
	return nil
}

// Usage implements Store with what Redis reports about the whole database:
// DBSIZE, used_memory and maxmemory (0 when Redis has no limit). They include
// keys of other users of the same Redis; counting only ours would take a
// SCAN of every key.
func (r *Redis) Usage(ctx context.Context) (Usage, error) {
	n, err := r.c.DBSize(ctx).Result()
	if err != nil {
		return Usage{}, fmt.Errorf("redis dbsize: %w", err)
	}
	info, err := r.c.Info(ctx, "memory").Result()
	if err != nil {
		return Usage{}, fmt.Errorf("redis info: %w", err)
	}
	u := Usage{Entries: n, Bytes: infoField(info, "used_memory"), BudgetBytes: infoField(info, "maxmemory")}
	return u, nil
}

// infoField returns the integer field name of an INFO answer, 0 when absent.
func infoField(info, name string) int64 {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}
