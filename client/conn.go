package client

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"chat/protocol"
)

// Conn carries frames to and from a server. Implementations exist for TCP
// (DialTCP) and, in the browser, WebSocket.
type Conn interface {
	// ReadFrame returns the body (type + payload) of the next frame. The
	// body is valid until the next call.
	ReadFrame() ([]byte, error)
	// WriteFrames writes complete frames, length prefix included.
	WriteFrames(frames [][]byte, deadline time.Time) error
	Close() error
}

// Dialer opens a Conn to addr.
type Dialer func(ctx context.Context, addr string) (Conn, error)

// DialTCP connects over TCP. addr is host:port, or tcp://host:port.
func DialTCP(ctx context.Context, addr string) (Conn, error) {
	addr = strings.TrimPrefix(addr, "tcp://")
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("server address %q: %w (want host:port)", addr, err)
	}
	d := net.Dialer{KeepAlive: 15 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return NewStreamConn(c), nil
}

// StreamConn is a Conn over a byte stream such as TCP or TLS.
type StreamConn struct {
	c   net.Conn
	r   *bufio.Reader
	buf []byte
}

// NewStreamConn wraps an established stream connection.
func NewStreamConn(c net.Conn) *StreamConn {
	return &StreamConn{c: c, r: bufio.NewReaderSize(c, 4096)}
}

// ReadFrame implements Conn.
func (s *StreamConn) ReadFrame() ([]byte, error) {
	body, err := protocol.ReadFrame(s.r, protocol.MaxFrame, s.buf)
	if err == nil && cap(body) <= 64<<10 {
		s.buf = body // keep modest buffers for reuse, let huge ones go
	}
	return body, err
}

// WriteFrames implements Conn with one writev.
func (s *StreamConn) WriteFrames(frames [][]byte, deadline time.Time) error {
	if err := s.c.SetWriteDeadline(deadline); err != nil {
		return err
	}
	bufs := net.Buffers(frames)
	_, err := bufs.WriteTo(s.c)
	return err
}

// Close implements Conn.
func (s *StreamConn) Close() error { return s.c.Close() }
