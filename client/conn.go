package client

import (
	"bufio"
	"context"
	"errors"
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

// DialTCP connects over TCP. addr is host:port, or tcp://host:port; the
// connection goes to the IP address of TargetIP(ctx) instead of host
// when that is set.
func DialTCP(ctx context.Context, addr string) (Conn, error) {
	addr = strings.TrimPrefix(addr, "tcp://")
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("server address %q: %w (want host:port)", addr, err)
	}
	d := net.Dialer{KeepAlive: 15 * time.Second}
	c, err := d.DialContext(ctx, "tcp", dialHostPort(ctx, addr))
	if err != nil {
		return nil, err
	}
	return NewStreamConn(c), nil
}

// ErrWebPort means the address answered in HTTP: it is a web server —
// most likely the chat server's own web port (8080 by default) — not the
// port the chat protocol is spoken on.
var ErrWebPort = errors.New("this is the server's web port; the apps use port 7878 (or a ws:// URL)")

// webSocketHint names the WebSocket URL of a web port given as addr, the
// other way to reach the same server.
func webSocketHint(addr string) string {
	scheme := "ws://"
	if strings.HasPrefix(addr, "tls://") {
		scheme = "wss://"
	}
	hostport := strings.TrimPrefix(strings.TrimPrefix(addr, "tls://"), "tcp://")
	if _, _, err := net.SplitHostPort(hostport); err != nil {
		return ""
	}
	return ": " + scheme + hostport + "/ws"
}

// StreamConn is a Conn over a byte stream such as TCP or TLS.
type StreamConn struct {
	c      net.Conn
	r      *bufio.Reader
	buf    []byte
	reread bool // the first frame has been read
}

// NewStreamConn wraps an established stream connection.
func NewStreamConn(c net.Conn) *StreamConn {
	return &StreamConn{c: c, r: bufio.NewReaderSize(c, 4096)}
}

// ReadFrame implements Conn.
func (s *StreamConn) ReadFrame() ([]byte, error) {
	if !s.reread {
		s.reread = true
		// A web server answers HELLO with an HTTP error, whose first bytes
		// read as an absurd frame length. Say what happened instead.
		if b, _ := s.r.Peek(5); string(b) == "HTTP/" {
			return nil, ErrWebPort
		}
	}
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
