// Package transport carries protocol frames for the server's sessions:
// TCP streams (plain or TLS) and WebSocket messages. Each connection
// becomes a session.Transport.
package transport

import (
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"chat/protocol"
	"chat/server/internal/limit"
	"chat/server/internal/proxy"
	"chat/server/internal/session"
)

// TCP is the Transport for a stream connection (plain TCP or TLS): frames
// with their length prefix, back to back. On Linux it can read without
// blocking (session.Parker), so idle sessions need no goroutine; on a plain
// TCP socket it can also write without blocking (session.Direct), so
// fan-out needs no goroutine per write.
type TCP struct {
	c    net.Conn
	raw  syscall.RawConn // the TCP socket's (under TLS too); nil if unknown
	sock *tlsSocket      // the socket under c when c is TLS
	hdr  [protocol.LengthSize]byte
	body *[]byte // buffer of the last frame read, back to the pool on the next read
	// remote is the client's address when a trusted proxy's PROXY header
	// gave it; empty: the connection's own.
	remote string
}

// NewTCP wraps a stream connection.
func NewTCP(c net.Conn) *TCP {
	t := &TCP{c: c}
	t.raw = rawConn(c)
	return t
}

// newTLS wraps a TLS connection made over sock.
func newTLS(c *tls.Conn, sock *tlsSocket) *TCP {
	return &TCP{c: c, raw: sock.raw, sock: sock}
}

func rawConn(c net.Conn) syscall.RawConn {
	if tc, ok := c.(*net.TCPConn); ok {
		if raw, err := tc.SyscallConn(); err == nil {
			return raw
		}
	}
	return nil
}

// bodyPools hold read buffers by size class, so an idle connection holds
// none and a busy one does not allocate per frame.
var bodyPools = [...]struct {
	size int
	pool sync.Pool
}{{size: 512}, {size: 4 << 10}, {size: 16 << 10}, {size: 64 << 10}}

func getBody(n int) *[]byte {
	for i := range bodyPools {
		p := &bodyPools[i]
		if n <= p.size {
			if b, ok := p.pool.Get().(*[]byte); ok {
				return b
			}
			b := make([]byte, p.size)
			return &b
		}
	}
	b := make([]byte, n)
	return &b
}

func putBody(b *[]byte) {
	for i := range bodyPools {
		if p := &bodyPools[i]; cap(*b) == p.size {
			p.pool.Put(b)
			return
		}
	}
}

// ReadFrame implements session.Transport.
func (t *TCP) ReadFrame(max int) ([]byte, error) {
	t.release()
	if n, err := io.ReadFull(t.c, t.hdr[:]); err != nil {
		if n > 0 && errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, protocol.ErrTruncated
		}
		return nil, err
	}
	return t.readBody(max)
}

func (t *TCP) release() {
	if t.body != nil {
		putBody(t.body)
		t.body = nil
	}
}

func (t *TCP) readBody(max int) ([]byte, error) {
	n, err := protocol.BodyLength(t.hdr, max)
	if err != nil {
		return nil, err
	}
	t.body = getBody(n)
	body := (*t.body)[:n]
	if _, err := io.ReadFull(t.c, body); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, protocol.ErrTruncated
		}
		return nil, err
	}
	return body, nil
}

// WriteFrames implements session.Transport with one writev for all
// frames (more for very many). It may block; the session's watchdog ends
// writes that take too long.
func (t *TCP) WriteFrames(frames [][]byte) error {
	bufs := net.Buffers(frames)
	_, err := bufs.WriteTo(t.c)
	return err
}

// CloseWrite implements session.Transport.
func (t *TCP) CloseWrite(linger time.Time) error {
	if cw, ok := t.c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	return t.c.SetReadDeadline(linger)
}

// Discard implements session.Transport.
func (t *TCP) Discard() error {
	var buf [512]byte
	for {
		if _, err := t.c.Read(buf[:]); err != nil {
			return err
		}
	}
}

// Close implements session.Transport.
func (t *TCP) Close() error { return t.c.Close() }

// RemoteAddr implements session.Transport.
func (t *TCP) RemoteAddr() string {
	if t.remote != "" {
		return t.remote
	}
	return t.c.RemoteAddr().String()
}

// TCPOptions configure a TCP listener.
type TCPOptions struct {
	TLS              *tls.Config      // nil: plain TCP
	Limits           *limit.Addresses // nil: no per-address limits
	HandshakeTimeout time.Duration    // for the TLS handshake, and for a trusted proxy's PROXY header
	// Trusted are the proxies that must begin each connection with a
	// PROXY protocol header (v1 or v2) giving the client's address; nil:
	// none. A header from any other peer is not read as one.
	Trusted *proxy.Trusted
	// Refused is told about each connection turned away, for the logs.
	Refused func(kind, remote, detail string)
	Logger  *slog.Logger
}

// ServeTCP accepts connections on ln and starts a session on each with
// start (session.Manager.Start), until ln is closed.
func ServeTCP(ln net.Listener, start func(t session.Transport, onEnd func()), opts TCPOptions) error {
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of file descriptors and the like: back off, keep serving.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			opts.Logger.Warn("accept failed", "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		go serveConn(c, start, &opts)
	}
}

func serveConn(c net.Conn, start func(session.Transport, func()), opts *TCPOptions) {
	remote := c.RemoteAddr().String()
	client := "" // the client's address, when a trusted proxy's header gave it
	if opts.Trusted.ContainsAddr(c.RemoteAddr()) {
		var err error
		if client, err = readProxyHeader(c, opts); err != nil {
			c.Close()
			return
		}
		if client != "" {
			remote = client
		}
	}
	release := func() {}
	if opts.Limits != nil {
		var refused limit.Refused
		if release, refused = opts.Limits.Acquire(remote); refused != "" {
			opts.Refused(session.LimitConnections, remote, string(refused))
			refuse(c, protocol.NewError(protocol.CodeTooManyConnections, "", string(refused)))
			return
		}
	}
	if opts.TLS == nil {
		t := NewTCP(c)
		t.remote = client
		start(t, release)
		return
	}
	tc, sock, err := handshake(c, remote, opts)
	if err != nil {
		opts.Logger.Info("tls handshake failed", "remote", remote, "err", err)
		c.Close()
		release()
		return
	}
	t := newTLS(tc, sock)
	t.remote = client
	start(t, release)
}

// readProxyHeader reads the PROXY protocol header a trusted proxy must
// send first, within the handshake timeout, and returns the client's
// address ("" when the header carries none, as in a health check's LOCAL:
// the proxy's own address stands). A trusted peer that sends no header or
// a malformed one is refused (the error), with a log line: the PROXY
// protocol specification forbids guessing whether a header is there.
func readProxyHeader(c net.Conn, opts *TCPOptions) (string, error) {
	remote := c.RemoteAddr().String()
	_ = c.SetReadDeadline(time.Now().Add(opts.HandshakeTimeout))
	h, err := proxy.ReadHeader(c)
	if errors.Is(err, io.EOF) {
		// Connected and closed without a byte: a proxy's TCP health check.
		opts.Logger.Debug("trusted proxy closed before a PROXY header", "remote", remote)
		return "", err
	}
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = errors.New("the connection ended inside a PROXY protocol header")
		}
		opts.Refused(session.LimitProxyProtocol, remote, err.Error()+" (a trusted proxy must send one; see -trusted-proxies)")
		return "", err
	}
	_ = c.SetReadDeadline(time.Time{})
	if !h.Source.IsValid() {
		return "", nil
	}
	return netip.AddrPortFrom(h.Source.Addr().Unmap(), h.Source.Port()).String(), nil
}

// handshake completes the TLS handshake within the handshake timeout. A
// client that speaks the plain protocol to the TLS port gets an ERROR it
// can read, instead of a TLS alert it cannot.
func handshake(c net.Conn, remote string, opts *TCPOptions) (*tls.Conn, *tlsSocket, error) {
	_ = c.SetDeadline(time.Now().Add(opts.HandshakeTimeout))
	var first [1]byte
	if _, err := io.ReadFull(c, first[:]); err != nil {
		return nil, nil, err
	}
	const tlsHandshakeRecord = 0x16
	if first[0] != tlsHandshakeRecord {
		opts.Refused(session.LimitPlainOnTLS, remote, "not a TLS handshake")
		refuse(c, protocol.NewError(protocol.CodeTLSRequired, "",
			"this port needs TLS: connect with tls://HOST:PORT (not the plain protocol)"))
		return nil, nil, errors.New("not a TLS client")
	}
	sock := &tlsSocket{Conn: c, raw: rawConn(c), first: first[:]}
	tc := tls.Server(sock, opts.TLS)
	if err := tc.Handshake(); err != nil {
		return nil, nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return tc, sock, nil
}

// refuse writes e and closes, for connections turned away before a session.
func refuse(c net.Conn, e *protocol.Error) {
	_ = c.SetWriteDeadline(time.Now().Add(2 * time.Second))
	_, _ = c.Write(protocol.Encode(e))
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		_, _ = io.Copy(io.Discard, io.LimitReader(c, 64<<10)) // let the client read it, see EOF
	}
	c.Close()
}

// tlsSocket is the TCP connection under a TLS one. It puts back the byte
// read to tell TLS from plain. In try mode (set by the reader, around one
// TLS read), a read that would block fails at once with errWouldBlock:
// crypto/tls keeps what it has read and passes a temporary error up
// without breaking the connection, so TLS can be read without blocking.
type tlsSocket struct {
	net.Conn
	raw   syscall.RawConn // nil: no try mode
	first []byte
	try   bool // set and cleared by the reader; readers hand over under the session's lock
}

func (s *tlsSocket) Read(b []byte) (int, error) {
	if len(s.first) > 0 {
		n := copy(b, s.first)
		s.first = s.first[n:]
		return n, nil
	}
	if s.try {
		return s.tryRead(b)
	}
	return s.Conn.Read(b)
}

// errWouldBlock is a try-mode read's answer when the socket has nothing.
// It is a temporary net.Error: crypto/tls then keeps the connection.
var errWouldBlock net.Error = wouldBlock{}

// errNotDirect: non-blocking socket access is implemented for Linux and
// plain TCP sockets only.
var errNotDirect = errors.New("transport: non-blocking access needs Linux and a plain TCP socket")

type wouldBlock struct{}

func (wouldBlock) Error() string   { return "transport: no input yet" }
func (wouldBlock) Timeout() bool   { return true }
func (wouldBlock) Temporary() bool { return true }

// size is the bytes in frames.
func size(frames [][]byte) int {
	n := 0
	for _, f := range frames {
		n += len(f)
	}
	return n
}
