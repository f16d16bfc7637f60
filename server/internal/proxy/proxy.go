// Package proxy finds a client's real address when it reaches the server
// through a reverse proxy or load balancer the operator trusts: from the
// PROXY protocol header (v1 or v2) such a proxy writes at the start of a
// TCP stream, and from the X-Forwarded-For or Forwarded (RFC 7239) header
// it adds to an HTTP request. Only peers in the trusted list are believed;
// anyone else may write any header they like, and it is never read as an
// address.
package proxy

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Trusted is the set of peers whose PROXY headers and forwarding headers
// are believed. The zero value and nil trust nobody.
type Trusted struct {
	prefixes []netip.Prefix
}

// ParseTrusted reads a comma-separated list of CIDR prefixes and single
// addresses ("10.0.0.0/8,127.0.0.1,::1"). An empty list trusts nobody.
func ParseTrusted(list string) (*Trusted, error) {
	t := &Trusted{}
	for item := range strings.SplitSeq(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		var p netip.Prefix
		var err error
		if strings.Contains(item, "/") {
			p, err = netip.ParsePrefix(item)
		} else {
			var a netip.Addr
			if a, err = netip.ParseAddr(item); err == nil {
				if a.Zone() != "" {
					return nil, fmt.Errorf("%q: addresses with a zone are not supported", item)
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%q is not an address or CIDR prefix (like 10.0.0.0/8 or 127.0.0.1)", item)
		}
		p = p.Masked()
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			// ::ffff:10.0.0.0/104 is 10.0.0.0/8: peers are compared unmapped.
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		t.prefixes = append(t.prefixes, p)
	}
	return t, nil
}

// Any reports whether some peer is trusted.
func (t *Trusted) Any() bool { return t != nil && len(t.prefixes) > 0 }

// Contains reports whether the peer at a is trusted.
func (t *Trusted) Contains(a netip.Addr) bool {
	if t == nil || !a.IsValid() {
		return false
	}
	a = a.Unmap().WithZone("")
	for _, p := range t.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ContainsAddr is Contains for a net.Addr (a connection's RemoteAddr):
// only TCP and UDP addresses can be trusted.
func (t *Trusted) ContainsAddr(a net.Addr) bool {
	ap, ok := addrPort(a)
	return ok && t.Contains(ap.Addr())
}

// String lists the trusted prefixes, for the log.
func (t *Trusted) String() string {
	if t == nil {
		return ""
	}
	s := make([]string, len(t.prefixes))
	for i, p := range t.prefixes {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

func addrPort(a net.Addr) (netip.AddrPort, bool) {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort(), true
	case *net.UDPAddr:
		return a.AddrPort(), true
	}
	return netip.AddrPort{}, false
}
