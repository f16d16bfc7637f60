//go:build linux

package transport

import (
	"io"
	"syscall"

	"golang.org/x/sys/unix"

	"chat/protocol"
	"chat/server/internal/session"
)

// Direct reports whether the socket can be read and written without
// blocking (a plain TCP socket; TLS keeps its own buffers).
func (t *TCP) Direct() bool { return t.raw != nil }

// SyscallConn gives the poller the socket.
func (t *TCP) SyscallConn() syscall.RawConn { return t.raw }

// TryReadFrame implements session.Direct: like ReadFrame, but when no byte
// of a next frame has arrived it returns session.ErrWouldBlock at once.
func (t *TCP) TryReadFrame(max int) ([]byte, error) {
	t.release()
	var n int
	var rerr error
	if err := t.raw.Read(func(fd uintptr) bool {
		n, rerr = unix.Read(int(fd), t.hdr[:])
		return true // never wait here
	}); err != nil {
		return nil, err
	}
	switch {
	case rerr == unix.EAGAIN:
		return nil, session.ErrWouldBlock
	case rerr != nil:
		return nil, rerr
	case n == 0:
		return nil, io.EOF
	}
	// A frame has begun: the rest follows promptly, or keepalive ends it.
	if _, err := io.ReadFull(t.c, t.hdr[n:]); err != nil {
		return nil, protocol.ErrTruncated
	}
	return t.readBody(max)
}

// maxIOV is the most buffers one writev takes (Linux's IOV_MAX).
const maxIOV = 1024

// TryWrite implements session.Direct: it writes what the socket takes now
// and returns how many bytes that was; fewer than given means the socket
// is full.
func (t *TCP) TryWrite(frames [][]byte) (int, error) {
	total := 0
	for len(frames) > 0 {
		chunk := frames[:min(len(frames), maxIOV)]
		var n int
		var werr error
		if err := t.raw.Write(func(fd uintptr) bool {
			n, werr = unix.Writev(int(fd), chunk)
			return true // never wait here
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

func size(frames [][]byte) int {
	n := 0
	for _, f := range frames {
		n += len(f)
	}
	return n
}
