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
// kept across their restarts. Keys are prefixed; Redis expires them (PX).
type Redis struct {
	c      *redis.Client
	prefix string
}

// DefaultRedisTimeout bounds every Redis command, so a dead Redis answers an
// error quickly instead of hanging the plugin's callout (whose own timeout
// is tens of milliseconds).
const DefaultRedisTimeout = 100 * time.Millisecond

// NewRedis returns a store in the Redis at addr ("host:port"); timeout
// bounds each command (0: DefaultRedisTimeout).
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
			MaxRetries:   1,
		}),
		prefix: prefix,
	}
}

// Close closes the client's connections.
func (r *Redis) Close() error { return r.c.Close() }

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

// Put implements Store.
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

// Usage implements Store: the database's key count and used memory (INFO),
// which include keys of other users of the same Redis.
func (r *Redis) Usage(ctx context.Context) (Usage, error) {
	n, err := r.c.DBSize(ctx).Result()
	if err != nil {
		return Usage{}, fmt.Errorf("redis dbsize: %w", err)
	}
	info, err := r.c.Info(ctx, "memory").Result()
	if err != nil {
		return Usage{}, fmt.Errorf("redis info: %w", err)
	}
	u := Usage{Entries: n}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			u.Bytes, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return u, nil
}
