package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"chat/protocol"
)

// Bounds on the servers a client tries: a long list or a name with
// hundreds of records must not turn one reconnect round into an hour
// of handshake timeouts.
const (
	// MaxAddrs is the most server addresses a Config may list.
	MaxAddrs = 16
	// maxPerName is the most IP addresses of one host name tried in a
	// round; the resolver's first ones (it sorts them by preference).
	maxPerName = 16
	// maxPerRound is the most connection attempts in one round.
	maxPerRound = 64
)

// SplitAddrs splits a comma-separated list of server addresses, as
// typed in a -server flag or a settings field, trimming spaces and
// dropping empty items. The library itself does not split Config.Addr:
// a WebSocket URL may contain commas (in its query), so only places
// where a person types a list split it, with this.
func SplitAddrs(list string) []string {
	var out []string
	for a := range strings.SplitSeq(list, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// addresses returns the server addresses of cfg: Addr first, then Addrs,
// without empty or repeated ones.
func (cfg *Config) addresses() []string {
	var out []string
	for _, a := range append([]string{cfg.Addr}, cfg.Addrs...) {
		if a = strings.TrimSpace(a); a != "" && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// target is one connection attempt's destination: a configured address
// and, when the client resolved its host, one of the host's IP
// addresses. The host name stays in addr, for TLS (SNI and certificate
// verification), the WebSocket Host header and certificate pins.
type target struct {
	addr string
	ip   netip.Addr // invalid: dialled by name (the dialer resolves)
	port string
}

// remote is the IP address and port dialled, "" when dialled by name.
func (t target) remote() string {
	if !t.ip.IsValid() {
		return ""
	}
	return net.JoinHostPort(t.ip.String(), t.port)
}

func (t target) String() string {
	if r := t.remote(); r != "" && !strings.Contains(t.addr, r) {
		return t.addr + " (" + r + ")"
	}
	return t.addr
}

type targetKey struct{}

// TargetIP returns the IP address the client chose for this dial: it
// resolves the host of each server address itself, so that every
// address a name has is tried in turn, and hands each to the Dialer in
// the context, with the address unchanged. Dialers connect to this IP
// when it is set, and keep the host name of the address for TLS and
// HTTP; DialTCP, the TLS and the WebSocket dialers do. A Dialer that
// ignores it connects by name, as before.
func TargetIP(ctx context.Context) (netip.Addr, bool) {
	ip, ok := ctx.Value(targetKey{}).(netip.Addr)
	return ip, ok && ip.IsValid()
}

func withTarget(ctx context.Context, t target) context.Context {
	if !t.ip.IsValid() {
		return ctx
	}
	return context.WithValue(ctx, targetKey{}, t.ip)
}

// dialHostPort is hostport with its host replaced by the target IP of
// ctx, if there is one.
func dialHostPort(ctx context.Context, hostport string) string {
	ip, ok := TargetIP(ctx)
	if !ok {
		return hostport
	}
	_, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport
	}
	return net.JoinHostPort(ip.String(), port)
}

// hostPort returns the host and port an address names, with ok false
// for a malformed one (the dialer then says what is wrong with it) and
// for a WebSocket URL that the platform or a proxy resolves itself.
func hostPort(addr string) (host, port string, ok bool) {
	if strings.HasPrefix(addr, "ws://") || strings.HasPrefix(addr, "wss://") {
		u, err := url.Parse(addr)
		if err != nil || u.Hostname() == "" || resolvesItself(u) {
			return "", "", false
		}
		port = u.Port()
		if port == "" {
			port = "80"
			if u.Scheme == "wss" {
				port = "443"
			}
		}
		return u.Hostname(), port, true
	}
	host, port, err := net.SplitHostPort(strings.TrimPrefix(strings.TrimPrefix(addr, "tls://"), "tcp://"))
	return host, port, err == nil && host != ""
}

// targets resolves addr into the targets to try, at most maxPerName: one
// per IP address of its host. An IP literal is one target; an address
// that cannot be resolved here (malformed, a lookup failure, a
// WebSocket URL behind a proxy) is one target dialled by name, so that
// the dialer reports the error in its own words or resolves in its own
// way.
func targets(ctx context.Context, cfg *Config, addr string) []target {
	host, port, ok := hostPort(addr)
	if !ok {
		return []target{{addr: addr}}
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return []target{{addr: addr, ip: ip, port: port}}
	}
	lookup := cfg.LookupHost
	if lookup == nil {
		lookup = net.DefaultResolver.LookupHost
	}
	lctx, cancel := context.WithTimeout(ctx, cfg.HandshakeTimeout)
	ips, err := lookup(lctx, host)
	cancel()
	var out []target
	if err == nil {
		for _, s := range ips {
			ip, err := netip.ParseAddr(s)
			if err != nil || slices.ContainsFunc(out, func(t target) bool { return t.ip == ip }) {
				continue
			}
			out = append(out, target{addr: addr, ip: ip, port: port})
			if len(out) == maxPerName {
				break
			}
		}
	}
	if len(out) == 0 {
		return []target{{addr: addr}}
	}
	return out
}

// terminal reports whether err ends the client rather than a round: a
// certificate only a person can trust, a web port where the chat port
// belongs, a refusal that every server of the service would repeat
// (a wrong key, a protocol version it does not speak). The server's
// timeout without the reconnect flag is not: connectionLost treats it
// as idleness.
func terminal(err error) bool {
	var perr *protocol.Error
	var cerr *CertificateError
	return errors.As(err, &cerr) || errors.Is(err, ErrWebPort) ||
		errors.As(err, &perr) && perr.Closing() && !perr.Reconnect() && perr.Code != protocol.CodeTimeout
}

// roundError is the failure of every target of a round.
type roundError []error

func (e roundError) Error() string {
	msgs := make([]string, len(e))
	for i, err := range e {
		msgs[i] = err.Error()
	}
	return "no server answered: " + strings.Join(msgs, "; ")
}

func (e roundError) Unwrap() []error { return e }

// connect is one round of connection attempts: it tries the targets of
// every configured address in turn, each with its own handshake
// timeout, until one completes the handshake. The round starts after
// lost, the target of the connection that was just lost, if any: the
// other servers first (one that closed with server-restarting or
// unavailable, or died, is likely to fail again at once), lost itself
// last. A terminal error ends the round at once.
func connect(ctx context.Context, cfg Config, lost *target) (Conn, *protocol.Welcome, target, error) {
	addrs := cfg.addresses()
	start := 0
	if lost != nil {
		if i := slices.Index(addrs, lost.addr); i >= 0 {
			start = i
		}
	}
	var errs []error
	tried := 0
	try := func(t target) (Conn, *protocol.Welcome, error) {
		tried++
		tctx, cancel := context.WithTimeout(ctx, cfg.HandshakeTimeout)
		defer cancel()
		conn, w, err := handshake(withTarget(tctx, t), cfg, t.addr)
		if err != nil {
			errs = append(errs, fmt.Errorf("%v: %w", t, err))
		}
		return conn, w, err
	}
	var last []target // lost, and the targets of its address before it
	for i := range addrs {
		addr := addrs[(start+i)%len(addrs)]
		ts := targets(ctx, &cfg, addr)
		if i == 0 && lost != nil && addr == lost.addr {
			for k, t := range ts {
				if t.ip == lost.ip {
					ts, last = ts[k+1:], ts[:k+1]
					break
				}
			}
		}
		for _, t := range ts {
			if tried == maxPerRound {
				break
			}
			conn, w, err := try(t)
			if err == nil {
				return conn, w, t, nil
			}
			if terminal(err) || ctx.Err() != nil {
				return nil, nil, t, err
			}
		}
	}
	for _, t := range last {
		if tried == maxPerRound {
			break
		}
		conn, w, err := try(t)
		if err == nil || terminal(err) || ctx.Err() != nil {
			return conn, w, t, err
		}
	}
	switch tried {
	case 0:
		return nil, nil, target{}, errors.New("no server address")
	case 1:
		return nil, nil, target{}, errors.Unwrap(errs[0]) // one server: its error, in its words
	}
	return nil, nil, target{}, roundError(errs)
}
