package route

import "net/netip"

// ClientIP is the IP of a client at address ("ip:port", "[ip]:port" or a
// bare IP, as Envoy's source.address property gives it), IPv4-mapped IPv6
// addresses unmapped so that each client has one spelling.
func ClientIP(address string) (netip.Addr, error) {
	if ap, err := netip.ParseAddrPort(address); err == nil {
		return ap.Addr().Unmap(), nil
	}
	ip, err := netip.ParseAddr(address)
	return ip.Unmap(), err
}
