// Package cacheserver is the cache cluster's server: an opaque store of
// byte values under SHA-256 hex keys, with a TTL hint, behind the HTTP
// protocol the plugin speaks (handler.go). The plugin encodes its entries
// and decides freshness itself; the server only keeps bytes and evicts.
package cacheserver

import (
	"context"
	"errors"
	"time"
)

// Store keeps values by key until their TTL passes or eviction takes them.
type Store interface {
	// Get returns the value of key; found is false when there is none. The
	// caller must not modify value.
	Get(ctx context.Context, key string) (value []byte, found bool, err error)
	// Put stores value under key for at most ttl. The caller may reuse value
	// once Put returns.
	Put(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Delete removes key; a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// Usage reports what the store holds, as far as it knows.
	Usage(ctx context.Context) (Usage, error)
	// AddToTags files member under each of tags, a set each, which lives
	// at least ttl from now (a later, shorter ttl does not shorten it). A
	// set that would hold more than MaxTagMembers is ErrTooLarge.
	AddToTags(ctx context.Context, member string, tags []string, ttl time.Duration) error
	// PurgeTag removes from tag's set the members of scope ("" for all),
	// deletes the keys they name, and returns those keys.
	PurgeTag(ctx context.Context, tag, scope string) ([]string, error)
}

// A tag member is a key, the separator and a scope id (MemberLen
// characters): the plugin files an index key with its scope, so that a
// purge for one scope leaves the others' members.
const (
	ScopeLen        = 16
	MemberLen       = KeyLen + 1 + ScopeLen
	memberSeparator = '-'
	// MaxTagMembers bounds one tag set (the plugin reads a purge's answer
	// up to it); MaxTagsPerPut the tags one PUT files a member under.
	MaxTagMembers = 65536
	MaxTagsPerPut = 64
)

// memberScope splits a tag member (validated) into its key and scope.
func memberScope(member string) (key, scope string) {
	return member[:KeyLen], member[KeyLen+1:]
}

// Usage is a store's size.
type Usage struct {
	Entries int64 `json:"entries"`
	Bytes   int64 `json:"bytes"`
	// BudgetBytes is the memory the store may use (0: no budget of its own,
	// e.g. Redis, whose maxmemory policy decides).
	BudgetBytes int64 `json:"budget_bytes"`
}

// ErrTooLarge is what Put returns for a value the store will never hold.
var ErrTooLarge = errors.New("value larger than the store can hold")
