package ratelimit_test

import (
	"fmt"
	"time"

	"github.com/portcullis/portcullis/filter/ratelimit"
)

// The plugin's side: a policy per plan or route at configuration time, one
// Limiter per VM over shared data, one Decide per request, and the headers.
func Example() {
	clock := newClock()
	store := newMemStore() // in the plugin: filter/host's shared-data Store

	policy, err := ratelimit.NewPolicy("default", []ratelimit.Limit{{Requests: 100, Window: time.Minute}})
	if err != nil {
		panic(err) // config.Parse reports it with the field path
	}
	limiter, err := ratelimit.New(ratelimit.Options{Store: store, Width: ratelimit.WidthFor(policy)})
	if err != nil {
		panic(err)
	}

	for range 99 {
		limiter.Decide(policy, "alice", 1, clock.Now())
	}
	d := limiter.Decide(policy, "alice", 1, clock.Now())
	for _, h := range d.AppendHeaders(nil, ratelimit.HeaderOptions{}) {
		fmt.Printf("%s: %s\n", h[0], h[1])
	}
	d = limiter.Decide(policy, "alice", 1, clock.Now())
	fmt.Println("allowed:", d.Allowed, "retry after:", d.RetryAfterSeconds(), "faults:", d.Faults)
	// Output:
	// x-ratelimit-limit: 100
	// x-ratelimit-remaining: 0
	// x-ratelimit-reset: 60
	// ratelimit-policy: "default";q=100;w=60
	// ratelimit: "default";r=0;t=60
	// allowed: false retry after: 1 faults: 0
}
