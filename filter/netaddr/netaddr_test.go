package netaddr

import (
	"net/netip"
	"testing"
)

var addrSeeds = []string{
	"192.0.2.1", "0.0.0.0", "255.255.255.255", "01.2.3.4", "1.2.3", "1.2.3.4.5", "1..2.3", "256.1.1.1", "1.2.3.4%eth0",
	"::", "::1", "2001:db8::1", "2001:db8:0:0:1:0:0:1", "fe80::1%eth0", "fe80::1%", "::ffff:192.0.2.1", "::ffff:c000:201",
	"1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7::", "::1:2:3:4:5:6:7:8", "1::2::3", "12345::", "1:2:3:4:5:6:1.2.3.4",
	"1:2:3:4:5:1.2.3.4", "::1.2.3.4", "0:0:0:0:0:ffff:1.2.3.4%z", ":1", "1:", "1:::2", "%eth0", "", "abcd", "::%x",
	"2001:DB8::A", "0:0:1:0:0:0:1:0", "1:0:0:2:0:0:0:3",
}

// FuzzParseAddr: ParseAddr accepts what net/netip accepts, and String,
// Unmap and Is4In6 agree with it.
func FuzzParseAddr(f *testing.F) {
	for _, s := range addrSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := ParseAddr(s)
		want, err := netip.ParseAddr(s)
		if ok != (err == nil) {
			t.Fatalf("ParseAddr(%q) ok = %v, net/netip says %v", s, ok, err)
		}
		if !ok {
			return
		}
		if got.String() != want.String() || got.Is4In6() != want.Is4In6() || got.Unmap().String() != want.Unmap().String() {
			t.Fatalf("ParseAddr(%q) = %s (4in6 %v, unmapped %s); net/netip %s (%v, %s)",
				s, got, got.Is4In6(), got.Unmap(), want, want.Is4In6(), want.Unmap())
		}
		if got.bitLen() != want.BitLen() {
			t.Fatalf("%q: %d bits, net/netip %d", s, got.bitLen(), want.BitLen())
		}
	})
}

func FuzzParseAddrPort(f *testing.F) {
	for _, s := range []string{"192.0.2.1:80", "[::1]:443", "[::1]", "::1:80", "[1.2.3.4]:80", "1.2.3.4:", ":80", "1.2.3.4:65536",
		"1.2.3.4:0080", "[fe80::1%eth0]:8080", "[::ffff:1.2.3.4]:1", "1.2.3.4:+1", "[:80", "[]:80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := ParseAddrPort(s)
		want, err := netip.ParseAddrPort(s)
		if ok != (err == nil) {
			t.Fatalf("ParseAddrPort(%q) ok = %v, net/netip says %v", s, ok, err)
		}
		if ok && got.String() != want.Addr().String() {
			t.Fatalf("ParseAddrPort(%q) = %s, net/netip %s", s, got, want.Addr())
		}
	})
}

// FuzzPrefix: ParsePrefix, Masked and Contains agree with net/netip.
func FuzzPrefix(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "10.1.2.3/8", "0.0.0.0/0", "::/0", "2001:db8::/32", "2001:db8::1/128", "1.2.3.4/33",
		"1.2.3.4/08", "1.2.3.4/-1", "1.2.3.4/", "fe80::1%eth0/64", "::ffff:10.0.0.0/104", "1.2.3.4/+8", "10.0.0.0/9"} {
		f.Add(s, "10.1.2.3")
		f.Add(s, "2001:db8:ffff::1")
	}
	f.Add("192.0.2.0/25", "192.0.2.127")
	f.Add("192.0.2.0/25", "192.0.2.128")
	f.Fuzz(func(t *testing.T, prefix, addr string) {
		got, ok := ParsePrefix(prefix)
		want, err := netip.ParsePrefix(prefix)
		if ok != (err == nil) {
			t.Fatalf("ParsePrefix(%q) ok = %v, net/netip says %v", prefix, ok, err)
		}
		if !ok {
			return
		}
		if got.String() != want.String() || got.Masked().String() != want.Masked().String() || got.Bits() != want.Bits() {
			t.Fatalf("ParsePrefix(%q) = %s masked %s; net/netip %s masked %s", prefix, got, got.Masked(), want, want.Masked())
		}
		a, aOK := ParseAddr(addr)
		wa, werr := netip.ParseAddr(addr)
		if !aOK || werr != nil {
			return
		}
		if got.Contains(a) != want.Contains(wa) || got.Masked().Contains(a) != want.Masked().Contains(wa) {
			t.Fatalf("%s contains %s: %v, net/netip %v", prefix, addr, got.Contains(a), want.Contains(wa))
		}
		if want.Addr().Is4In6() && want.Bits() >= 96 {
			u := PrefixFrom(got.Addr().Unmap(), got.Bits()-96)
			wu := netip.PrefixFrom(want.Addr().Unmap(), want.Bits()-96)
			if u.Masked().String() != wu.Masked().String() || u.Masked().Contains(a) != wu.Masked().Contains(wa) {
				t.Fatalf("unmapped %s: %s, net/netip %s", prefix, u.Masked(), wu.Masked())
			}
		}
	})
}

func TestZeroValues(t *testing.T) {
	if (Addr{}).IsValid() || (Addr{}).String() != "invalid IP" || (Prefix{}).String() != "invalid Prefix" {
		t.Error("zero values")
	}
	if (Prefix{}).Contains(Addr{}) {
		t.Error("the zero Prefix contains the zero Addr")
	}
}
