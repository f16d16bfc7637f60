package proxy

import (
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

// ClientAddr returns the address of the client of an HTTP request that
// came from peer. When peer is a trusted proxy, the address is read from
// X-Forwarded-For or, when the request has none, from Forwarded: the
// rightmost address there that is not itself a trusted proxy. Entries to
// its left were written by whoever sent the request to that hop (the
// client itself, perhaps) and are not believed. When the rightmost
// untrusted entry is not an address (Forwarded's "unknown" or an
// obfuscated name, or garbage), the last trusted hop stands: nothing
// further out can be vouched for. A request from an untrusted peer, or
// with neither header, is the peer's own.
//
// X-Forwarded-For is preferred because it is what nginx, Caddy, HAProxy
// and most load balancers set, and they pass a Forwarded header from the
// client through untouched; a proxy that sets Forwarded must therefore
// remove any X-Forwarded-For the client sent.
func ClientAddr(h http.Header, peer netip.AddrPort, trusted *Trusted) netip.AddrPort {
	if !trusted.Contains(peer.Addr()) {
		return peer
	}
	var hops []string
	if xff := h.Values("X-Forwarded-For"); len(xff) > 0 {
		hops = splitList(xff)
	} else if fwd := h.Values("Forwarded"); len(fwd) > 0 {
		for _, elem := range splitList(fwd) {
			hops = append(hops, forwardedFor(elem))
		}
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		hop, ok := parseHop(hops[i])
		if !ok {
			break
		}
		client = hop
		if !trusted.Contains(hop.Addr()) {
			break
		}
	}
	return client
}

// splitList splits header lines that are comma-separated lists into
// their elements, in order. Commas inside quoted strings (Forwarded)
// do not split.
func splitList(lines []string) []string {
	var out []string
	for _, line := range lines {
		start, quoted := 0, false
		for i := 0; i < len(line); i++ {
			switch c := line[i]; {
			case c == '"':
				quoted = !quoted
			case c == '\\' && quoted:
				i++
			case c == ',' && !quoted:
				out = append(out, strings.TrimSpace(line[start:i]))
				start = i + 1
			}
		}
		out = append(out, strings.TrimSpace(line[start:]))
	}
	return out
}

// forwardedFor returns the value of the for= parameter of one Forwarded
// element (RFC 7239 section 4), unquoted, or "" if it has none.
func forwardedFor(elem string) string {
	for pair := range strings.SplitSeq(elem, ";") {
		name, value, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(name), "for") {
			continue
		}
		value = strings.TrimSpace(value)
		if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
			value = strings.ReplaceAll(value[1:len(value)-1], `\`, "")
		}
		return value
	}
	return ""
}

// parseHop reads one hop's address: "192.0.2.1", "2001:db8::1",
// "[2001:db8::1]", "192.0.2.1:4711" or "[2001:db8::1]:4711". A hop
// without a port gets port 0.
func parseHop(s string) (netip.AddrPort, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, ap.Addr().Zone() == ""
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a, 0), true
}

// Handler sets each request's RemoteAddr to its client's address
// (ClientAddr) before next sees it, so that limits and logs count the
// client and not the proxy. A client address without a port (as
// X-Forwarded-For gives it) has port 0. With no trusted proxies it is
// next itself.
func Handler(trusted *Trusted, next http.Handler) http.Handler {
	if !trusted.Any() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer, err := netip.ParseAddrPort(r.RemoteAddr)
		if err == nil {
			if client := ClientAddr(r.Header, peer, trusted); client != peer {
				r2 := *r
				r2.RemoteAddr = net.JoinHostPort(client.Addr().Unmap().String(), strconv.Itoa(int(client.Port())))
				r = &r2
			}
		}
		next.ServeHTTP(w, r)
	})
}
