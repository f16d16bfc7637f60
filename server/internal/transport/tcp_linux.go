//go:build linux

package transport

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"chat/protocol"
	"chat/server/internal/session"
)

// Direct reports whether the socket can be written without blocking: a
// plain TCP socket (TLS must write whole records).
func (t *TCP) Direct() bool { return t.raw != nil && t.sock == nil }

// CanPark reports whether the reader can give its goroutine up while
// nothing arrives: plain TCP and TLS over it.
func (t *TCP) CanPark() bool { return t.raw != nil }

// SyscallConn gives the poller the socket.
func (t *TCP) SyscallConn() syscall.RawConn { return t.raw }

// TryReadFrame implements session.Parker: like ReadFrame, but when no byte
// of a next frame has arrived it returns session.ErrWouldBlock at once.
func (t *TCP) TryReadFrame(max int) ([]byte, error) {
	t.release()
	n, err := t.tryReadHeader()
	switch {
	case n == 0 && err == errWouldBlock:
		return nil, session.ErrWouldBlock
	case n == 0 && err != nil:
		return nil, err
	case n == 0:
		return nil, io.EOF
	}
	// A frame has begun: the rest follows promptly, or keepalive ends it.
	if _, err := io.ReadFull(t.c, t.hdr[n:]); err != nil {
		return nil, protocol.ErrTruncated
	}
	return t.readBody(max)
}

// tryReadHeader reads the start of a frame header without blocking.
func (t *TCP) tryReadHeader() (int, error) {
	if t.sock != nil {
		// TLS: what crypto/tls has buffered is read first; the socket only
		// when that holds no whole record. A read that returns bytes along
		// with errWouldBlock (TLS looking ahead for an alert) has bytes.
		t.sock.try = true
		n, err := t.c.Read(t.hdr[:])
		t.sock.try = false
		return n, err
	}
	return readNow(t.c, t.raw, t.hdr[:])
}

// tryRead reads what the socket has now, or returns errWouldBlock.
func (s *tlsSocket) tryRead(b []byte) (int, error) { return readNow(s.Conn, s.raw, b) }

// readNow reads what socket c (raw) has now without waiting: errWouldBlock
// when it has nothing, io.EOF at its end.
func readNow(c net.Conn, raw syscall.RawConn, b []byte) (int, error) {
	var n int
	var rerr error
	if err := raw.Read(func(fd uintptr) bool {
		for {
			n, rerr = unix.Read(int(fd), b)
			if rerr != unix.EINTR {
				return true // never wait here
			}
		}
	}); err != nil {
		return 0, err
	}
	switch {
	case rerr == unix.EAGAIN:
		return 0, errWouldBlock
	case rerr != nil:
		// As a blocking read reports it, for the log's end reason.
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("read", rerr)}
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// maxIOV is the most buffers one writev takes (Linux's IOV_MAX).
const maxIOV = 1024

// TryWrite implements session.Direct: it writes what the socket takes now
// and returns how many bytes that was; fewer than given means the socket
// is full.
func (t *TCP) TryWrite(frames [][]byte) (int, error) { return writevNow(t.raw, frames) }

// writevNow writes what socket raw takes now, with one writev per maxIOV
// buffers, and returns how many bytes that was.
func writevNow(raw syscall.RawConn, frames [][]byte) (int, error) {
	total := 0
	for len(frames) > 0 {
		chunk := frames[:min(len(frames), maxIOV)]
		var n int
		var werr error
		if err := raw.Write(func(fd uintptr) bool {
			for {
				n, werr = writev(fd, chunk)
				if werr != unix.EINTR {
					return true // never wait here
				}
			}
		}); err != nil {
			return total, err
		}
		if werr == unix.EAGAIN {
			return total, nil
		}
		if werr != nil {
			return total, werr
		}
		total += n
		if n < size(chunk) {
			return total, nil
		}
		frames = frames[len(chunk):]
	}
	return total, nil
}

// directConn is the socket of a WebSocket's connection when it can be
// used without blocking (a plain TCP one), else nil.
func directConn(c net.Conn) syscall.RawConn { return rawConn(c) }

// iovecs are writev's arrays, reused: unix.Writev would allocate one per
// call, on the path every fanned-out frame takes.
var iovecs = sync.Pool{New: func() any { v := make([]unix.Iovec, 0, 64); return &v }}

// writev is one writev(2) of bufs (at most maxIOV), without allocating.
func writev(fd uintptr, bufs [][]byte) (int, error) {
	p := iovecs.Get().(*[]unix.Iovec)
	iov := (*p)[:0]
	for _, b := range bufs {
		if len(b) > 0 {
			v := unix.Iovec{Base: &b[0]}
			v.SetLen(len(b))
			iov = append(iov, v)
		}
	}
	var n uintptr
	var errno syscall.Errno
	if len(iov) > 0 {
		n, _, errno = unix.Syscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
	}
	clear(iov) // hold no frames
	*p = iov[:0]
	iovecs.Put(p)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
