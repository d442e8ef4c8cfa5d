package redistest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Cluster is a Redis Cluster of masters without replicas, each a private
// redis-server on a free loopback port, its slots spread evenly.
type Cluster struct {
	Masters []*Server
}

// Addrs are the masters' addresses, the seeds a cluster client needs.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Masters))
	for i, m := range c.Masters {
		addrs[i] = m.Addr
	}
	return addrs
}

// StartCluster starts n (at least 3) cluster-enabled servers, joins them
// with redis-cli --cluster create and returns once every node reports
// cluster_state:ok; t's cleanup stops them. The nodes time a peer out after
// a second and keep serving their own slots while others are down
// (cluster-require-full-coverage no), as a cache's cluster should: one
// master's death then costs only its share of the keys.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	cli := tool(t, "redis-cli")
	c := &Cluster{}
	for range n {
		c.Masters = append(c.Masters, startWith(t, func(dir string) []string {
			return []string{"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"),
				"--cluster-node-timeout", "1000", "--cluster-require-full-coverage", "no"}
		}))
	}
	create := exec.Command(cli, append(append([]string{"--cluster", "create"}, c.Addrs()...), "--cluster-replicas", "0", "--cluster-yes")...)
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, m := range c.Masters {
		for {
			out, err := exec.Command(cli, "-p", strconv.Itoa(m.Port), "cluster", "info").Output()
			if err == nil && strings.Contains(string(out), "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("redistest: node %s never reported cluster_state:ok (%v):\n%s", m.Addr, err, out)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c
}

// Sentinel is one master watched by one Sentinel.
type Sentinel struct {
	Master   *Server
	Sentinel *Server
	// Name is the master's name at the Sentinel.
	Name string
}

// StartSentinel starts a master and a Sentinel (redis-server --sentinel)
// monitoring it under the name "portcullis", and returns once the Sentinel
// names its address; t's cleanup stops both.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	cli := tool(t, "redis-cli")
	s := &Sentinel{Master: Start(t), Name: "portcullis"}
	s.Sentinel = startWith(t, func(dir string) []string {
		conf := filepath.Join(dir, "sentinel.conf")
		text := fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 1\nsentinel down-after-milliseconds %[1]s 1000\n", s.Name, s.Master.Port)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatalf("redistest: %v", err)
		}
		return []string{conf, "--sentinel"}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := exec.Command(cli, "-p", strconv.Itoa(s.Sentinel.Port), "sentinel", "get-master-addr-by-name", s.Name).Output()
		if err == nil && strings.Contains(string(out), strconv.Itoa(s.Master.Port)) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: the Sentinel on %s never named the master (%v):\n%s", s.Sentinel.Addr, err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
