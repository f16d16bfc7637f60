// Package wire is the load generator's lean side of the chat protocol: one
// connection with a small read buffer, frames read in place without copying
// when they fit, writes of pre-encoded frames, and the few fields a
// benchmark needs from MESSAGE and ACK parsed without allocating (see
// parse.go). It speaks TCP (host:port), TLS over TCP (tls://host:port)
// and WebSocket (ws://host:port/ws).
//
// It is deliberately not chat/client: that library keeps an outbox, an event
// queue and several goroutines per connection, which is right for an app and
// too heavy for thousands of benchmark receivers in one process.
package wire

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"chat/protocol"
)

// Conn is one protocol connection. ReadFrame must be called from one
// goroutine at a time; Write may be called concurrently with it and with
// itself.
type Conn struct {
	tcp  net.Conn // the socket (WebSocket too, after the upgrade), or TLS over it
	d    Deframer
	size int    // the read buffer's usual size
	rbuf []byte // bytes read: rbuf[off:n] are not yet returned
	off  int
	n    int

	closed atomic.Bool
	wmu    sync.Mutex
	wbuf   []byte // WebSocket: the masked frames of a Write
}

// Transport names the transport Dial uses for addr: "websocket", "tls"
// or "tcp".
func Transport(addr string) string {
	switch {
	case strings.HasPrefix(addr, "ws://"):
		return "websocket"
	case strings.HasPrefix(addr, "tls://"):
		return "tls"
	}
	return "tcp"
}

// Dial connects to addr: a ws:// URL over WebSocket, tls://host:port over
// TLS, anything else (host:port) over TCP. readBuf is the size of the read
// buffer (frames up to about that size are read in place).
func Dial(ctx context.Context, addr string, readBuf int) (*Conn, error) {
	readBuf = max(readBuf, 64)
	if host, ok := strings.CutPrefix(addr, "tls://"); ok {
		// The generator dials only loopback (load.Config checks), where a
		// server's certificate is self-signed: what is measured is the
		// server's TLS work, not a certificate chain.
		d := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}}
		c, err := d.DialContext(ctx, "tcp", host)
		if err != nil {
			return nil, err
		}
		return newConn(c, false, nil, readBuf), nil
	}
	if strings.HasPrefix(addr, "ws://") {
		c, buffered, err := dialWS(ctx, addr)
		if err != nil {
			return nil, err
		}
		return newConn(c, true, buffered, readBuf), nil
	}
	addr = strings.TrimPrefix(addr, "tcp://")
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return newConn(c, false, nil, readBuf), nil
}

func newConn(c net.Conn, ws bool, buffered []byte, size int) *Conn {
	rbuf := make([]byte, max(size, len(buffered)))
	return &Conn{tcp: c, d: Deframer{WS: ws}, size: size, rbuf: rbuf, n: copy(rbuf, buffered)}
}

// ErrFrame is returned for a frame the generator cannot make sense of.
var ErrFrame = errors.New("wire: malformed frame")

// ReadFrame returns the body (type byte and payload) of the next frame. The
// body is valid until the next call. After Close, the error is
// net.ErrClosed, whatever the transport made of it.
func (c *Conn) ReadFrame() ([]byte, error) {
	body, err := c.readFrame()
	if err != nil && c.closed.Load() {
		return nil, net.ErrClosed
	}
	return body, err
}

func (c *Conn) readFrame() ([]byte, error) {
	for {
		k, body, used, need, err := c.d.Next(c.rbuf[c.off:c.n])
		if err != nil {
			return nil, err
		}
		c.off += used
		switch k {
		case Frame:
			return body, nil
		case WSPing:
			if err := c.writeRaw(AppendWSPong(nil, body), time.Now().Add(10*time.Second)); err != nil {
				return nil, err
			}
			continue
		case WSClose:
			// Answered as RFC 6455 asks; the server closes the socket.
			_ = c.writeRaw(AppendWSClose(nil, body), time.Now().Add(time.Second))
			return nil, io.EOF
		case Skipped:
			continue
		}
		// Incomplete: keep the partial unit at the start, in a buffer that
		// holds it whole.
		switch {
		case need > len(c.rbuf):
			nb := make([]byte, need)
			c.n = copy(nb, c.rbuf[c.off:c.n])
			c.rbuf = nb
		case c.off == c.n && len(c.rbuf) > 4*c.size:
			c.rbuf, c.n = make([]byte, c.size), 0 // let a rare huge frame's buffer go
		default:
			c.n = copy(c.rbuf, c.rbuf[c.off:c.n])
		}
		c.off = 0
		m, err := c.tcp.Read(c.rbuf[c.n:])
		c.n += m
		if err != nil {
			if errors.Is(err, io.EOF) && c.n > 0 {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}

// Write writes b, one or more complete frames back to back (length
// prefixes included), in one write: as they are over TCP, a masked
// WebSocket message per frame over WebSocket.
func (c *Conn) Write(b []byte, deadline time.Time) error {
	if !c.d.WS {
		return c.writeRaw(b, deadline)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var err error
	if c.wbuf, err = c.d.Wrap(c.wbuf[:0], b); err != nil {
		return err
	}
	return c.writeLocked(c.wbuf, deadline)
}

// writeRaw writes bytes as they are.
func (c *Conn) writeRaw(b []byte, deadline time.Time) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(b, deadline)
}

func (c *Conn) writeLocked(b []byte, deadline time.Time) error {
	if err := c.tcp.SetWriteDeadline(deadline); err != nil {
		return err
	}
	_, err := c.tcp.Write(b)
	return err
}

// Send encodes m and writes it.
func (c *Conn) Send(m protocol.Message, deadline time.Time) error {
	return c.Write(protocol.AppendFrame(make([]byte, 0, 64), m), deadline)
}

// Close closes the connection at once. It may be called from any goroutine
// and more than once; a blocked ReadFrame returns an error.
func (c *Conn) Close() error {
	c.closed.Store(true)
	return c.tcp.Close()
}

// LocalAddr is the connection's local address, for messages.
func (c *Conn) LocalAddr() string { return c.tcp.LocalAddr().String() }

// Handshake sends HELLO and waits for WELCOME, answering PINGs. It returns
// the server's ERROR as an error if the server refuses.
func (c *Conn) Handshake(client string) (*protocol.Welcome, error) {
	if err := c.Send(&protocol.Hello{Version: protocol.Version, Client: client}, time.Now().Add(10*time.Second)); err != nil {
		return nil, err
	}
	m, err := c.await(protocol.TypeWelcome)
	if err != nil {
		return nil, err
	}
	return m.(*protocol.Welcome), nil
}

// Join sends JOIN and waits for JOINED, skipping PRESENCE and answering
// PINGs. History MESSAGEs follow JOINED and are left for the caller.
func (c *Conn) Join(room, name string) (*protocol.Joined, error) {
	if err := c.Send(&protocol.Join{Room: room, Name: name}, time.Now().Add(10*time.Second)); err != nil {
		return nil, err
	}
	m, err := c.await(protocol.TypeJoined)
	if err != nil {
		return nil, err
	}
	return m.(*protocol.Joined), nil
}

// await reads until a frame of type want arrives. An ERROR is returned as
// the error; PINGs are answered; PRESENCE and MESSAGE are skipped.
func (c *Conn) await(want protocol.Type) (protocol.Message, error) {
	for {
		body, err := c.ReadFrame()
		if err != nil {
			return nil, err
		}
		switch t := protocol.Type(body[0]); t {
		case want:
			return protocol.Decode(body)
		case protocol.TypeError:
			m, err := protocol.Decode(body)
			if err != nil {
				return nil, err
			}
			return nil, m.(*protocol.Error)
		case protocol.TypePing:
			if err := c.Pong(body); err != nil {
				return nil, err
			}
		case protocol.TypePresence, protocol.TypeMessage:
		default:
			return nil, fmt.Errorf("waiting for %v, got %v", want, t)
		}
	}
}

// Pong answers the PING frame body ping.
func (c *Conn) Pong(ping []byte) error {
	nonce, n := binary.Uvarint(ping[1:])
	if n <= 0 {
		return fmt.Errorf("%w: PING", ErrFrame)
	}
	var b [16]byte
	return c.Write(protocol.AppendFrame(b[:0], &protocol.Pong{Nonce: nonce}), time.Now().Add(10*time.Second))
}

// Detach hands a TCP or WebSocket connection over to the caller's own
// polling: it returns a non-blocking descriptor of the socket that Go's
// runtime does not poll, the bytes already read from it but not yet
// returned by ReadFrame, and the Deframer that splits what follows. The
// Conn is closed; the socket stays open until the caller closes fd.
func (c *Conn) Detach() (fd int, buffered []byte, d Deframer, err error) {
	if _, ok := c.tcp.(*net.TCPConn); !ok {
		return -1, nil, d, errors.New("wire: only plain TCP connections can be detached")
	}
	sc, ok := c.tcp.(syscall.Conn)
	if !ok {
		return -1, nil, d, errors.New("wire: the connection has no descriptor")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return -1, nil, d, err
	}
	fd = -1
	var dupErr error
	if err := raw.Control(func(s uintptr) { fd, dupErr = dupCloexec(int(s)) }); err != nil {
		return -1, nil, d, err
	}
	if dupErr != nil {
		return -1, nil, d, dupErr
	}
	if c.off < c.n {
		buffered = append([]byte(nil), c.rbuf[c.off:c.n]...)
	}
	d = c.d
	c.Close() // the duplicate keeps the socket open
	return fd, buffered, d, nil
}
