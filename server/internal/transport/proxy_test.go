package transport

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"chat/internal/testserver"
	"chat/protocol"
	"chat/server/internal/limit"
	"chat/server/internal/proxy"
	"chat/server/internal/session"
)

// proxied is a TCP listener on 127.0.0.1 serving with ServeTCP as the
// server does, handing each session's transport to the test and each
// refusal to refused.
type proxied struct {
	addr     string
	sessions chan session.Transport
	refused  chan [3]string // kind, remote, detail
}

func serveProxied(t *testing.T, trusted string, opts TCPOptions) *proxied {
	t.Helper()
	tr, err := proxy.ParseTrusted(trusted)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxied{addr: ln.Addr().String(), sessions: make(chan session.Transport, 16), refused: make(chan [3]string, 16)}
	opts.Trusted = tr
	opts.Logger = slog.New(slog.DiscardHandler)
	opts.Refused = func(kind, remote, detail string) { p.refused <- [3]string{kind, remote, detail} }
	if opts.HandshakeTimeout == 0 {
		opts.HandshakeTimeout = 5 * time.Second
	}
	var mu sync.Mutex
	var ends []func()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = ServeTCP(ln, func(tr session.Transport, onEnd func()) {
			mu.Lock()
			ends = append(ends, func() { tr.Close(); onEnd() })
			mu.Unlock()
			p.sessions <- tr
		}, opts)
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, end := range ends {
			end()
		}
	})
	return p
}

// dialFrom connects to addr from the loopback address local (127.0.0.1
// is the trusted proxy in these tests, 127.0.0.2 a stranger).
func dialFrom(t *testing.T, local, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (p *proxied) session(t *testing.T) session.Transport {
	t.Helper()
	select {
	case s := <-p.sessions:
		return s
	case r := <-p.refused:
		t.Fatalf("refused (%s from %s: %s), want a session", r[0], r[1], r[2])
	case <-time.After(10 * time.Second):
		t.Fatal("no session within 10s")
	}
	return nil
}

func (p *proxied) refusal(t *testing.T) [3]string {
	t.Helper()
	select {
	case r := <-p.refused:
		return r
	case s := <-p.sessions:
		t.Fatalf("a session from %s, want a refusal", s.RemoteAddr())
	case <-time.After(10 * time.Second):
		t.Fatal("no refusal within 10s")
	}
	return [3]string{}
}

func v2TCP4(src, dst netip.AddrPort) []byte {
	b := []byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c")
	s, d := src.Addr().As4(), dst.Addr().As4()
	b = append(append(b, s[:]...), d[:]...)
	b = binary.BigEndian.AppendUint16(b, src.Port())
	return binary.BigEndian.AppendUint16(b, dst.Port())
}

func v2TCP6(src, dst netip.AddrPort) []byte {
	b := []byte("\r\n\r\n\x00\r\nQUIT\n\x21\x21\x00\x24")
	s, d := src.Addr().As16(), dst.Addr().As16()
	b = append(append(b, s[:]...), d[:]...)
	b = binary.BigEndian.AppendUint16(b, src.Port())
	return binary.BigEndian.AppendUint16(b, dst.Port())
}

// TestProxyHeaderGivesTheClientAddress: after a trusted proxy's header the
// session knows the client by the header's address, and the frame after
// the header arrives whole.
func TestProxyHeaderGivesTheClientAddress(t *testing.T) {
	p := serveProxied(t, "127.0.0.1", TCPOptions{})
	ping := protocol.Encode(&protocol.Ping{})
	for _, tc := range []struct {
		name, want string
		header     []byte
	}{
		{"v1 TCP4", "192.0.2.7:5555", []byte("PROXY TCP4 192.0.2.7 127.0.0.1 5555 7878\r\n")},
		{"v1 TCP6", "[2001:db8::7]:5555", []byte("PROXY TCP6 2001:db8::7 2001:db8::1 5555 7878\r\n")},
		{"v2 TCP4", "192.0.2.8:6000", v2TCP4(netip.MustParseAddrPort("192.0.2.8:6000"), netip.MustParseAddrPort("127.0.0.1:7878"))},
		{"v2 TCP6", "[2001:db8::8]:6000", v2TCP6(netip.MustParseAddrPort("[2001:db8::8]:6000"), netip.MustParseAddrPort("[::1]:7878"))},
		{"v1 UNKNOWN: the proxy's own", "", []byte("PROXY UNKNOWN\r\n")},
		{"v2 LOCAL (a health check): the proxy's own", "", []byte("\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialFrom(t, "127.0.0.1", p.addr)
			if _, err := c.Write(append(tc.header, ping...)); err != nil {
				t.Fatal(err)
			}
			s := p.session(t)
			want := tc.want
			if want == "" {
				want = c.LocalAddr().String()
			}
			if got := s.RemoteAddr(); got != want {
				t.Errorf("session from %s, want %s", got, want)
			}
			body, err := s.ReadFrame(protocol.MaxFrame)
			if err != nil {
				t.Fatal(err)
			}
			if m, err := protocol.Decode(body); err != nil || m.Type() != protocol.TypePing {
				t.Errorf("read %v %v after the header, want the PING sent after it", m, err)
			}
		})
	}
}

// TestProxyHeaderRequiredFromTrustedPeers: the specification forbids
// guessing whether a header is there, so a trusted peer without one, or
// with a malformed one, is refused with a log line, and never gets a
// session under any address.
func TestProxyHeaderRequiredFromTrustedPeers(t *testing.T) {
	p := serveProxied(t, "127.0.0.0/30", TCPOptions{HandshakeTimeout: 300 * time.Millisecond})
	for _, tc := range []struct {
		name, send, detail string
	}{
		{"the chat protocol without a header", string(protocol.Encode(&protocol.Ping{})) + strings.Repeat("x", 20), "did not start with a PROXY protocol header"},
		{"a malformed v1 header", "PROXY TCP4 192.0.2.7 nowhere 1 2\r\n", "malformed PROXY protocol v1 header"},
		{"an oversized v1 header", "PROXY TCP4 " + strings.Repeat("1", 200), "no CRLF within 107 bytes"},
		{"a header cut short", "PROXY TCP4 192.0.2.7", "ended inside a PROXY protocol header"},
		// The deadline passing is the behaviour under test: the peer says nothing.
		{"nothing within the deadline", "", "i/o timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialFrom(t, "127.0.0.1", p.addr)
			if tc.send != "" {
				if _, err := c.Write([]byte(tc.send)); err != nil {
					t.Fatal(err)
				}
			}
			if tc.name == "a header cut short" {
				_ = c.(*net.TCPConn).CloseWrite()
			}
			r := p.refusal(t)
			if r[0] != "proxy-protocol" || r[1] != c.LocalAddr().String() || !strings.Contains(r[2], tc.detail) {
				t.Errorf("refused %q, want proxy-protocol from %s saying %q", r, c.LocalAddr(), tc.detail)
			}
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadAll(c); err != nil && !isReset(err) {
				t.Errorf("the refused connection was not closed: %v", err)
			}
		})
	}
}

// TestProxyHeaderRefusedAtItsFirstByte: a trusted peer that speaks the
// chat protocol (a frame shorter than any header) is refused at once, not
// when the header's deadline passes.
func TestProxyHeaderRefusedAtItsFirstByte(t *testing.T) {
	p := serveProxied(t, "127.0.0.1", TCPOptions{HandshakeTimeout: time.Minute})
	c := dialFrom(t, "127.0.0.1", p.addr)
	if _, err := c.Write(protocol.Encode(&protocol.Ping{})); err != nil {
		t.Fatal(err)
	}
	if r := p.refusal(t); r[0] != "proxy-protocol" || !strings.Contains(r[2], "did not start with a PROXY protocol header") {
		t.Errorf("refused %q, want proxy-protocol: no header", r)
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && strings.Contains(op.Err.Error(), "reset")
}

// TestProxyHeaderFromAStrangerIsGarbage: a PROXY header from a peer that
// is not trusted is not read as one: the session is the peer's own and
// its "frame" is refused as the protocol refuses garbage.
func TestProxyHeaderFromAStrangerIsGarbage(t *testing.T) {
	p := serveProxied(t, "127.0.0.1", TCPOptions{})
	c := dialFrom(t, "127.0.0.2", p.addr)
	if _, err := c.Write([]byte("PROXY TCP4 192.0.2.7 127.0.0.1 5555 7878\r\n")); err != nil {
		t.Fatal(err)
	}
	s := p.session(t)
	if got := s.RemoteAddr(); got != c.LocalAddr().String() {
		t.Errorf("session from %s, want the stranger's own %s", got, c.LocalAddr())
	}
	if _, err := s.ReadFrame(protocol.DefaultMaxClientFrame); err == nil {
		t.Error("the header was read as a frame")
	}
}

// TestProxyLimitsCountClients: the per-address limit counts each client
// behind the proxy on its own: two clients each get their connection,
// a second from one of them is refused under its address.
func TestProxyLimitsCountClients(t *testing.T) {
	p := serveProxied(t, "127.0.0.1", TCPOptions{Limits: limit.NewAddresses(1, 0, false)})
	for i, src := range []string{"192.0.2.7:1000", "192.0.2.8:1000"} {
		c := dialFrom(t, "127.0.0.1", p.addr)
		if _, err := c.Write(v2TCP4(netip.MustParseAddrPort(src), netip.MustParseAddrPort("127.0.0.1:7878"))); err != nil {
			t.Fatal(err)
		}
		if got := p.session(t).RemoteAddr(); got != src {
			t.Errorf("client %d: session from %s, want %s", i, got, src)
		}
	}
	c := dialFrom(t, "127.0.0.1", p.addr)
	if _, err := c.Write([]byte("PROXY TCP4 192.0.2.7 127.0.0.1 1001 7878\r\n")); err != nil {
		t.Fatal(err)
	}
	if r := p.refusal(t); r[0] != "connections" || r[1] != "192.0.2.7:1001" {
		t.Errorf("refused %q, want connections from 192.0.2.7:1001", r)
	}
}

// TestProxyHeaderBeforeTLS: on the TLS port the header comes before the
// TLS handshake (nginx stream passing TLS through), and a stranger's
// header is answered as plain protocol on the TLS port is.
func TestProxyHeaderBeforeTLS(t *testing.T) {
	certFile, keyFile, cert := testserver.SelfSigned(t, t.TempDir())
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	p := serveProxied(t, "127.0.0.1", TCPOptions{TLS: &tls.Config{Certificates: []tls.Certificate{pair}}})
	c := dialFrom(t, "127.0.0.1", p.addr)
	if _, err := c.Write([]byte("PROXY TCP4 192.0.2.7 127.0.0.1 5555 7878\r\n")); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	tc := tls.Client(c, &tls.Config{ServerName: "localhost", RootCAs: pool})
	go func() { _, _ = tc.Write(protocol.Encode(&protocol.Ping{})) }() // handshakes first
	s := p.session(t)
	if got := s.RemoteAddr(); got != "192.0.2.7:5555" {
		t.Errorf("TLS session from %s, want 192.0.2.7:5555", got)
	}
	if body, err := s.ReadFrame(protocol.MaxFrame); err != nil || len(body) == 0 {
		t.Errorf("read %x %v, want the PING", body, err)
	}

	stranger := dialFrom(t, "127.0.0.2", p.addr)
	if _, err := stranger.Write([]byte("PROXY TCP4 192.0.2.7 127.0.0.1 5555 7878\r\n")); err != nil {
		t.Fatal(err)
	}
	if r := p.refusal(t); r[0] != "plain-on-tls" || r[1] != stranger.LocalAddr().String() {
		t.Errorf("refused %q, want plain-on-tls from the stranger's own %s", r, stranger.LocalAddr())
	}
}
