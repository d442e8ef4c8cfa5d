package redistest

import (
	"net"
	"testing"
	"time"
)

func TestStartAnswersAndStops(t *testing.T) {
	s := Start(t)
	if err := ping(s.Addr); err != nil {
		t.Fatalf("a started server does not answer PING: %v", err)
	}
	other := Start(t)
	if other.Addr == s.Addr {
		t.Fatalf("two servers on one address %s", s.Addr)
	}
	s.Stop()
	s.Stop() // twice is fine
	if c, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after Stop", s.Addr)
	}
	if err := ping(other.Addr); err != nil {
		t.Fatalf("stopping one server stopped the other: %v", err)
	}
}

func TestStartClusterAndSentinel(t *testing.T) {
	c := StartCluster(t, 3)
	if len(c.Addrs()) != 3 {
		t.Fatalf("addrs %q", c.Addrs())
	}
	s := StartSentinel(t)
	if err := ping(s.Sentinel.Addr); err != nil {
		t.Fatalf("the Sentinel does not answer PING: %v", err)
	}
}
