package cacheserver

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a store in Redis, shared by every replica of the server and
// kept across their restarts. Keys are prefixed; Redis expires them. The
// Redis is one server, a Redis Cluster or a master found through Sentinel
// (RedisOptions.Mode); every command names one key, so none crosses a
// cluster's hash slots.
type Redis struct {
	c      redis.UniversalClient
	prefix string
}

// DefaultRedisTimeout bounds every Redis command, so a dead Redis answers an
// error quickly instead of hanging the plugin's callout (whose own timeout
// is tens of milliseconds).
const DefaultRedisTimeout = 100 * time.Millisecond

// RedisMode says what kind of Redis deployment RedisOptions.Addrs name.
type RedisMode string

// The modes.
const (
	// RedisStandalone: one server, Addrs[0].
	RedisStandalone RedisMode = "standalone"
	// RedisCluster: Redis Cluster; Addrs are seed nodes, the client learns
	// the others and the slot map from them and follows MOVED/ASK.
	RedisCluster RedisMode = "cluster"
	// RedisSentinel: Addrs are Sentinels; the client asks them for
	// MasterName's master and follows failovers.
	RedisSentinel RedisMode = "sentinel"
)

// RedisOptions configure NewRedis.
type RedisOptions struct {
	Mode  RedisMode // "" is RedisStandalone
	Addrs []string  // "host:port"; at least one
	// MasterName is the Sentinel master's name (RedisSentinel only).
	MasterName string
	Prefix     string
	// Timeout bounds each command (0: DefaultRedisTimeout).
	Timeout time.Duration
}

// NewRedis returns a store in the Redis that o describes. It does not
// connect: a Redis that is down at start is an error of each request until
// it comes up.
func NewRedis(o RedisOptions) (*Redis, error) {
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultRedisTimeout
	}
	if len(o.Addrs) == 0 {
		return nil, errors.New("redis store: no address")
	}
	u := &redis.UniversalOptions{
		Addrs:        o.Addrs,
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
	}
	switch o.Mode {
	case RedisStandalone, "":
		if len(o.Addrs) != 1 {
			return nil, fmt.Errorf("redis store: standalone takes one address, got %d", len(o.Addrs))
		}
	case RedisCluster:
		u.IsClusterMode = true
		// A MOVED or ASK answer (a resharding, a failover) is followed
		// once; more would multiply the time a request can take.
		u.MaxRedirects = 1
	case RedisSentinel:
		if o.MasterName == "" {
			return nil, errors.New("redis store: sentinel needs the master's name")
		}
		u.MasterName = o.MasterName
	default:
		return nil, fmt.Errorf("redis store: mode %q: want standalone, cluster or sentinel", o.Mode)
	}
	return &Redis{c: redis.NewUniversalClient(u), prefix: o.Prefix}, nil
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

// Usage implements Store with what Redis reports about the whole database
// (of a cluster: summed over its masters): DBSIZE, used_memory and
// maxmemory (0 when Redis has no limit). They include keys of other users of
// the same Redis; counting only ours would take a SCAN of every key.
func (r *Redis) Usage(ctx context.Context) (Usage, error) {
	cluster, ok := r.c.(*redis.ClusterClient)
	if !ok {
		return nodeUsage(ctx, r.c)
	}
	var mu sync.Mutex
	var sum Usage
	err := cluster.ForEachMaster(ctx, func(ctx context.Context, master *redis.Client) error {
		u, err := nodeUsage(ctx, master)
		mu.Lock()
		defer mu.Unlock()
		sum.Entries, sum.Bytes, sum.BudgetBytes = sum.Entries+u.Entries, sum.Bytes+u.Bytes, sum.BudgetBytes+u.BudgetBytes
		return err
	})
	if err != nil {
		return Usage{}, fmt.Errorf("redis cluster: %w", err)
	}
	return sum, nil
}

// nodeUsage is Usage of one Redis server.
func nodeUsage(ctx context.Context, c redis.Cmdable) (Usage, error) {
	n, err := c.DBSize(ctx).Result()
	if err != nil {
		return Usage{}, fmt.Errorf("redis dbsize: %w", err)
	}
	info, err := c.Info(ctx, "memory").Result()
	if err != nil {
		return Usage{}, fmt.Errorf("redis info: %w", err)
	}
	return Usage{Entries: n, Bytes: infoField(info, "used_memory"), BudgetBytes: infoField(info, "maxmemory")}, nil
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

// tagKey is where tag's set lives: one Redis key per set, so each command
// on it names one key and never crosses a cluster's hash slots.
func (r *Redis) tagKey(tag string) string { return r.prefix + "tag:" + tag }

// AddToTags implements Store: per tag, SADD, then EXPIRE NX (a new set) and
// EXPIRE GT (never shorten), and SCARD for the bound, pipelined (a cluster
// client splits the pipeline by slot; every command names one key).
func (r *Redis) AddToTags(ctx context.Context, member string, tags []string, ttl time.Duration) error {
	cards := make([]*redis.IntCmd, len(tags))
	_, err := r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, tag := range tags {
			k := r.tagKey(tag)
			p.SAdd(ctx, k, member)
			p.ExpireNX(ctx, k, ttl)
			p.ExpireGT(ctx, k, ttl)
			cards[i] = p.SCard(ctx, k)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis tag: %w", err)
	}
	for i, c := range cards {
		if c.Val() > MaxTagMembers {
			if err := r.c.SRem(ctx, r.tagKey(tags[i]), member).Err(); err != nil {
				return fmt.Errorf("redis tag: %w", err)
			}
			return ErrTooLarge
		}
	}
	return nil
}

// PurgeTag implements Store: SMEMBERS, DEL of each key the scope's members
// name, then SREM of exactly the members taken (one filed meanwhile stays).
func (r *Redis) PurgeTag(ctx context.Context, tag, scope string) ([]string, error) {
	k := r.tagKey(tag)
	members, err := r.c.SMembers(ctx, k).Result()
	if err != nil {
		return nil, fmt.Errorf("redis purge: %w", err)
	}
	var taken []any
	var keys []string
	for _, m := range members {
		if len(m) != MemberLen {
			continue // not ours
		}
		key, sc := memberScope(m)
		if scope == "" || sc == scope {
			taken = append(taken, m)
			keys = append(keys, key)
		}
	}
	if len(taken) == 0 {
		return nil, nil
	}
	// The keys first: should that fail, the members stay for a retry.
	_, err = r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, key := range keys {
			p.Del(ctx, r.prefix+key)
		}
		return nil
	})
	if err == nil {
		err = r.c.SRem(ctx, k, taken...).Err()
	}
	if err != nil {
		return nil, fmt.Errorf("redis purge: %w", err)
	}
	return keys, nil
}
