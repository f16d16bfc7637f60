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
	"bufio"
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

	"github.com/coder/websocket"

	"chat/protocol"
)

// Conn is one protocol connection. ReadFrame must be called from one
// goroutine at a time; Write may be called concurrently with it and with
// itself.
type Conn struct {
	tcp net.Conn
	br  *bufio.Reader
	ws  *websocket.Conn
	buf []byte // body of a frame that did not fit the read buffer, or a WebSocket frame

	pending int // bytes of the last in-place frame still to discard from br

	closed atomic.Bool
	wmu    sync.Mutex
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
// buffer for TCP and TLS (frames up to that size are read in place).
func Dial(ctx context.Context, addr string, readBuf int) (*Conn, error) {
	if host, ok := strings.CutPrefix(addr, "tls://"); ok {
		// The generator dials only loopback (load.Config checks), where a
		// server's certificate is self-signed: what is measured is the
		// server's TLS work, not a certificate chain.
		d := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}}
		c, err := d.DialContext(ctx, "tcp", host)
		if err != nil {
			return nil, err
		}
		return &Conn{tcp: c, br: bufio.NewReaderSize(c, max(readBuf, 64))}, nil
	}
	if strings.HasPrefix(addr, "ws://") {
		ws, _, err := websocket.Dial(ctx, addr, nil)
		if err != nil {
			return nil, err
		}
		ws.SetReadLimit(protocol.LengthSize + protocol.MaxFrame)
		return &Conn{ws: ws}, nil
	}
	addr = strings.TrimPrefix(addr, "tcp://")
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &Conn{tcp: c, br: bufio.NewReaderSize(c, max(readBuf, 64))}, nil
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
	if c.ws != nil {
		return c.readWS()
	}
	if c.pending > 0 {
		_, _ = c.br.Discard(c.pending)
		c.pending = 0
	}
	hdr, err := c.br.Peek(protocol.LengthSize)
	if err != nil {
		return nil, err
	}
	n, err := protocol.BodyLength([protocol.LengthSize]byte(hdr), protocol.MaxFrame)
	if err != nil {
		return nil, err
	}
	if protocol.LengthSize+n <= c.br.Size() {
		// In place: the frame stays in the read buffer until the next call.
		b, err := c.br.Peek(protocol.LengthSize + n)
		if err != nil {
			return nil, unexpected(err)
		}
		c.pending = protocol.LengthSize + n
		return b[protocol.LengthSize:], nil
	}
	_, _ = c.br.Discard(protocol.LengthSize)
	if cap(c.buf) < n {
		c.buf = make([]byte, n)
	}
	body := c.buf[:n]
	if _, err := io.ReadFull(c.br, body); err != nil {
		return nil, unexpected(err)
	}
	if cap(c.buf) > 64<<10 {
		c.buf = nil // let a rare huge frame's buffer go
	}
	return body, nil
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

func (c *Conn) readWS() ([]byte, error) {
	typ, r, err := c.ws.Reader(context.Background())
	if err != nil {
		return nil, err
	}
	if typ != websocket.MessageBinary {
		return nil, fmt.Errorf("%w: a text WebSocket message", ErrFrame)
	}
	var hdr [protocol.LengthSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("%w: WebSocket message shorter than a length prefix", ErrFrame)
	}
	n, err := protocol.BodyLength(hdr, protocol.MaxFrame)
	if err != nil {
		return nil, err
	}
	if cap(c.buf) < n {
		c.buf = make([]byte, max(n, 512))
	}
	body := c.buf[:n]
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("%w: WebSocket message ends inside its frame", ErrFrame)
	}
	return body, nil
}

// Write writes b, one or more complete frames back to back (length
// prefixes included): in one write over TCP, one message per frame over
// WebSocket.
func (c *Conn) Write(b []byte, deadline time.Time) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.ws == nil {
		if err := c.tcp.SetWriteDeadline(deadline); err != nil {
			return err
		}
		_, err := c.tcp.Write(b)
		return err
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	for len(b) > 0 {
		if len(b) < protocol.LengthSize {
			return fmt.Errorf("%w: partial frame to write", ErrFrame)
		}
		n := protocol.LengthSize + int(binary.BigEndian.Uint32(b))
		if n > len(b) {
			return fmt.Errorf("%w: partial frame to write", ErrFrame)
		}
		if err := c.ws.Write(ctx, websocket.MessageBinary, b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// Send encodes m and writes it.
func (c *Conn) Send(m protocol.Message, deadline time.Time) error {
	return c.Write(protocol.AppendFrame(make([]byte, 0, 64), m), deadline)
}

// Close closes the connection at once. It may be called from any goroutine
// and more than once; a blocked ReadFrame returns an error.
func (c *Conn) Close() error {
	c.closed.Store(true)
	if c.ws != nil {
		return c.ws.CloseNow()
	}
	return c.tcp.Close()
}

// LocalAddr is the connection's local address, for messages.
func (c *Conn) LocalAddr() string {
	if c.tcp != nil {
		return c.tcp.LocalAddr().String()
	}
	return "websocket"
}

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

// Detach hands a TCP connection over to the caller's own polling: it
// returns a non-blocking descriptor of the socket that Go's runtime does not
// poll, and the bytes already read from it but not yet returned by
// ReadFrame. The Conn is closed; the socket stays open until the caller
// closes fd.
func (c *Conn) Detach() (fd int, buffered []byte, err error) {
	if _, ok := c.tcp.(*net.TCPConn); !ok {
		return -1, nil, errors.New("wire: only plain TCP connections can be detached")
	}
	sc, ok := c.tcp.(syscall.Conn)
	if !ok {
		return -1, nil, errors.New("wire: the connection has no descriptor")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return -1, nil, err
	}
	fd = -1
	var dupErr error
	if err := raw.Control(func(s uintptr) { fd, dupErr = dupCloexec(int(s)) }); err != nil {
		return -1, nil, err
	}
	if dupErr != nil {
		return -1, nil, dupErr
	}
	if c.pending > 0 {
		_, _ = c.br.Discard(c.pending)
		c.pending = 0
	}
	if n := c.br.Buffered(); n > 0 {
		b, _ := c.br.Peek(n)
		buffered = append([]byte(nil), b...)
	}
	c.Close() // the duplicate keeps the socket open
	return fd, buffered, nil
}
