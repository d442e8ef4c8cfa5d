package fleet

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/portcullis/portcullis/filter/shared/sharedtest"
)

func TestBlocklist(t *testing.T) {
	store := sharedtest.New()
	bl := NewBlocklist(store, 64)
	now := time.UnixMilli(1_800_000_000_000)
	if _, ok := bl.Blocked("alice", "api", now); ok {
		t.Fatal("empty table blocks")
	}
	blk := Block{Until: now.Add(14 * time.Second), Limit: 3, Window: time.Minute}
	if err := bl.Add("alice", "api", blk); err != nil {
		t.Fatal(err)
	}
	got, ok := bl.Blocked("alice", "api", now.Add(13*time.Second))
	if !ok || !got.Until.Equal(blk.Until) || got.Limit != 3 || got.Window != time.Minute {
		t.Fatalf("Blocked = %+v, %v; want %+v", got, ok, blk)
	}
	if _, ok := bl.Blocked("alice", "api", blk.Until); ok {
		t.Fatal("still blocked at the reset")
	}
	if _, ok := bl.Blocked("alice", "other", now); ok {
		t.Fatal("another route of the key is blocked")
	}
	if _, ok := bl.Blocked("bob", "api", now); ok {
		t.Fatal("another key is blocked")
	}
	// Another VM sees the same table (the store is the shared data).
	if _, ok := NewBlocklist(store, 64).Blocked("alice", "api", now); !ok {
		t.Fatal("a second blocklist over the same store does not see the block")
	}
}

func TestBlocklistIsBounded(t *testing.T) {
	store := sharedtest.New()
	bl := NewBlocklist(store, 16)
	now := time.UnixMilli(1_800_000_000_000)
	for i := range 10_000 {
		if err := bl.Add("key-"+strconv.Itoa(i), "api", Block{Until: now.Add(time.Minute), Limit: 1, Window: time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
	if store.Keys() > 16 {
		t.Fatalf("10000 blocks use %d keys; want at most 16", store.Keys())
	}
	// A displaced key is simply not blocked any more.
	blocked := 0
	for i := range 10_000 {
		if _, ok := bl.Blocked("key-"+strconv.Itoa(i), "api", now); ok {
			blocked++
		}
	}
	if blocked == 0 || blocked > 16 {
		t.Fatalf("%d keys still blocked; want between 1 and 16", blocked)
	}
}

func TestBlocklistIgnoresUnreadableRecords(t *testing.T) {
	store := sharedtest.New()
	bl := NewBlocklist(store, 1)
	now := time.UnixMilli(1_800_000_000_000)
	if err := bl.Add("alice", "api", Block{Until: now.Add(time.Minute), Limit: 1, Window: time.Minute}); err != nil {
		t.Fatal(err)
	}
	good, _, _, _ := store.Get("pc:rlb:0")
	for name, v := range map[string][]byte{
		"short":       good[:RecordSize-1],
		"long":        append(append([]byte(nil), good...), 0),
		"new version": append([]byte{2}, good[1:]...),
	} {
		_ = store.Set("pc:rlb:0", v, 0)
		if _, ok := bl.Blocked("alice", "api", now); ok {
			t.Errorf("%s record blocks", name)
		}
	}
}

type failingStore struct{}

var errDown = errors.New("down")

func (failingStore) Get(string) ([]byte, uint32, bool, error) { return nil, 0, false, errDown }
func (failingStore) Set(string, []byte, uint32) error         { return errDown }

func TestBlocklistStoreFailure(t *testing.T) {
	bl := NewBlocklist(failingStore{}, 0)
	if _, ok := bl.Blocked("alice", "api", time.Now()); ok {
		t.Fatal("a failing store blocks")
	}
	if err := bl.Add("alice", "api", Block{Until: time.Now().Add(time.Second)}); !errors.Is(err, errDown) {
		t.Fatalf("Add = %v", err)
	}
}
