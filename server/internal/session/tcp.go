package session

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"chat/protocol"
)

// TCP is the Transport for a stream connection (plain TCP or TLS): frames
// with their length prefix, back to back.
type TCP struct {
	c    net.Conn
	hdr  [protocol.LengthSize]byte
	body *[]byte // buffer of the last frame read, back to the pool on the next read
}

// NewTCP wraps a stream connection.
func NewTCP(c net.Conn) *TCP { return &TCP{c: c} }

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

// ReadFrame implements Transport.
func (t *TCP) ReadFrame(max int) ([]byte, error) {
	if t.body != nil {
		putBody(t.body)
		t.body = nil
	}
	if n, err := io.ReadFull(t.c, t.hdr[:]); err != nil {
		if n > 0 && errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, protocol.ErrTruncated
		}
		return nil, err
	}
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

// WriteFrames implements Transport with one writev for all frames.
func (t *TCP) WriteFrames(frames [][]byte, deadline time.Time) error {
	if err := t.c.SetWriteDeadline(deadline); err != nil {
		return err
	}
	bufs := net.Buffers(frames)
	_, err := bufs.WriteTo(t.c)
	return err
}

// CloseWrite implements Transport.
func (t *TCP) CloseWrite(linger time.Time) error {
	if cw, ok := t.c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	return t.c.SetReadDeadline(linger)
}

// Discard implements Transport.
func (t *TCP) Discard() error {
	var buf [512]byte
	for {
		if _, err := t.c.Read(buf[:]); err != nil {
			return err
		}
	}
}

// Close implements Transport.
func (t *TCP) Close() error { return t.c.Close() }

// RemoteAddr implements Transport.
func (t *TCP) RemoteAddr() string { return t.c.RemoteAddr().String() }

// ServeTCP accepts connections on ln and serves each in its own goroutine
// until ln is closed.
func (m *Manager) ServeTCP(ln net.Listener) error {
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of file descriptors and the like: back off, keep serving.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			m.cfg.Logger.Warn("accept failed", "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		go m.Serve(NewTCP(c))
	}
}
