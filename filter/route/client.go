package route

import (
	"errors"

	"github.com/portcullis/portcullis/filter/netaddr"
)

var errNotAnAddress = errors.New("not an IP address or ip:port")

// ClientIP is the IP of a client at address ("ip:port", "[ip]:port" or a
// bare IP, as Envoy's source.address property gives it), IPv4-mapped IPv6
// addresses unmapped so that each client has one spelling.
func ClientIP(address string) (netaddr.Addr, error) {
	if ip, ok := netaddr.ParseAddrPort(address); ok {
		return ip.Unmap(), nil
	}
	if ip, ok := netaddr.ParseAddr(address); ok {
		return ip.Unmap(), nil
	}
	return netaddr.Addr{}, errNotAnAddress
}
