package health_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/portcullis/portcullis/filter/health"
	"github.com/portcullis/portcullis/filter/netaddr"
)

func TestAllows(t *testing.T) {
	list := health.Allowlist{
		netaddr.MustParsePrefix("10.0.0.0/8"),
		netaddr.MustParsePrefix("192.0.2.7/32"),
		netaddr.MustParsePrefix("2001:db8::/32"),
		netaddr.MustParsePrefix("::1/128"),
	}
	for _, tc := range []struct {
		address string
		want    bool
	}{
		{"10.1.2.3:5555", true},
		{"10.1.2.3", true},
		{"10.255.255.255:1", true},
		{"11.0.0.1:80", false},
		{"11.0.0.1", false},
		{"192.0.2.7:443", true},
		{"192.0.2.8:443", false},
		{"[2001:db8::1]:443", true},
		{"2001:db8::1", true},
		{"[2001:db9::1]:443", false},
		{"2001:db9::1", false},
		{"[::1]:8080", true},
		{"::1", true},
		{"::ffff:10.1.2.3", true},      // IPv4-mapped IPv6 is read as IPv4
		{"[::ffff:10.1.2.3]:80", true}, // with a port
		{"::ffff:11.0.0.1", false},     // mapped, outside
		{"[::ffff:192.0.2.7]:1", true}, // mapped, exact host
		{"fe80::1%eth0", false},        // a zoned address never matches a prefix
		{"", false},                    // unparseable: refused while the list is non-empty
		{"not-an-ip", false},
		{"10.1.2.3:", false},
		{"10.1.2.3:port", false},
		{"10.1.2", false},
		{"[10.1.2.3]:80", false},
		{"2001:db8::1:443", true}, // a bare IPv6 address, not an address with a port
	} {
		t.Run(tc.address, func(t *testing.T) {
			if got := list.Allows(tc.address); got != tc.want {
				t.Fatalf("Allows(%q) = %v, want %v", tc.address, got, tc.want)
			}
		})
	}
}

func TestAllowsEmptyListAllowsAll(t *testing.T) {
	for _, list := range []health.Allowlist{nil, {}} {
		for _, address := range []string{"10.1.2.3:5555", "[2001:db8::1]:443", "", "not-an-ip"} {
			if !list.Allows(address) {
				t.Errorf("empty allowlist %#v refused %q", list, address)
			}
		}
	}
}

func TestAllowsIPv4OnlyList(t *testing.T) {
	all4 := health.Allowlist{netaddr.MustParsePrefix("0.0.0.0/0")}
	for address, want := range map[string]bool{
		"203.0.113.5:1":          true,
		"[::ffff:203.0.113.5]:1": true,
		"[2001:db8::1]:1":        false,
		"::1":                    false,
	} {
		if got := all4.Allows(address); got != want {
			t.Errorf("0.0.0.0/0 Allows(%q) = %v, want %v", address, got, want)
		}
	}
}

func TestNewReport(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name, node, region, wantRegion string
	}{
		{"region given", "gateway-1", "eu-west-1", "eu-west-1"},
		{"no locality", "gateway-1", "", "unknown"},
		{"hostile node id", `"node","status":"down"<script>`, "r", "r"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := health.NewReport(tc.node, tc.region, "1.2.3", now).JSON()
			var got map[string]any
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("body %s is not JSON: %v", body, err)
			}
			want := map[string]any{
				"status":    "ok",
				"node":      tc.node,
				"region":    tc.wantRegion,
				"version":   "1.2.3",
				"timestamp": now.UTC().Format(time.RFC3339),
			}
			if len(got) != len(want) {
				t.Errorf("body %s has fields %v, want exactly %v", body, got, want)
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s = %#v, want %#v", k, got[k], v)
				}
			}
		})
	}
}

func TestReportTimestampIsUTC(t *testing.T) {
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	now := time.Now().In(zone)
	r := health.NewReport("n", "r", "v", now)
	ts, err := time.Parse(time.RFC3339, r.Timestamp)
	if err != nil {
		t.Fatalf("timestamp %q is not RFC 3339: %v", r.Timestamp, err)
	}
	if r.Timestamp[len(r.Timestamp)-1] != 'Z' {
		t.Errorf("timestamp %q is not in UTC", r.Timestamp)
	}
	if !ts.Equal(now.Truncate(time.Second)) {
		t.Errorf("timestamp %q is not %v", r.Timestamp, now)
	}
}
