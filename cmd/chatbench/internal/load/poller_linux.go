package load

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"chat/cmd/chatbench/internal/wire"
	"chat/protocol"
)

// poller reads every TCP or WebSocket receiver of a worker from one
// goroutine: a level-triggered epoll set of the receivers' sockets, one
// read per ready socket, frames handled in place in the receiver's buffer
// (wire.Deframer strips WebSocket's headers without copying).
//
// A goroutine per connection costs the generator two read calls per
// delivery (the data, then the EAGAIN that parks it), a wake-up and a
// context switch; with thousands of receivers that was most of its CPU,
// and time a receiver spent waiting for the generator was counted as
// delivery latency. Here a delivery costs one read.
//
// The epoll descriptor itself is polled by Go's runtime (epoll nests), so
// waiting for events parks the goroutine like any network read instead of
// blocking a thread in epoll_wait.
type poller struct {
	w    *Worker
	epfd int
	file *os.File // epfd, for the runtime's poller
	raw  syscall.RawConn

	mu   sync.Mutex // receivers' socket state: add (join goroutines) against the loop
	lag  *Hist      // epoll_wait's return to each read; loop only
	from int64      // Unix ns: lag counts from here (the measured window)
	stop atomic.Bool
	done chan struct{}
}

func newPoller(w *Worker) (*poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if err := syscall.SetNonblock(epfd, true); err != nil {
		syscall.Close(epfd)
		return nil, err
	}
	f := os.NewFile(uintptr(epfd), "epoll")
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &poller{w: w, epfd: epfd, file: f, raw: raw, lag: NewHist(), from: math.MaxInt64, done: make(chan struct{})}, nil
}

// add takes over a joined receiver's socket from its wire.Conn.
func (p *poller) add(r *receiver) error {
	fd, buffered, d, err := r.conn.Detach()
	p.mu.Lock()
	defer p.mu.Unlock()
	r.conn, r.fd = nil, -1
	if err != nil {
		r.dead.Store(true)
		return err
	}
	r.fd, r.d = fd, d
	r.buf = make([]byte, max(p.w.spec.ReadBuffer, len(buffered)))
	r.n = copy(r.buf, buffered)
	if !p.process(r, time.Now()) {
		return nil // ended by a frame already buffered
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(r.local)}
	if err := syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		syscall.Close(fd)
		r.fd = -1
		r.dead.Store(true)
		return err
	}
	return nil
}

// run is the read loop; it returns after close.
func (p *poller) run() {
	defer close(p.done)
	events := make([]syscall.EpollEvent, 256)
	for !p.stop.Load() {
		var waitErr error
		err := p.raw.Read(func(uintptr) bool {
			n, err := syscall.EpollWait(p.epfd, events, 0)
			if err != nil {
				if errors.Is(err, syscall.EINTR) {
					return true
				}
				waitErr = err
				return true
			}
			if n == 0 {
				return false // nothing ready: park until the epoll descriptor is readable
			}
			ready := time.Now()
			p.mu.Lock()
			for i := range events[:n] {
				if r := p.w.rs[events[i].Fd]; r.fd >= 0 {
					p.readFrom(r, ready)
				}
			}
			p.mu.Unlock()
			return true
		})
		if err != nil || waitErr != nil {
			if !p.stop.Load() {
				p.w.errs.add(fmt.Sprintf("epoll: %v", errors.Join(err, waitErr)))
			}
			return
		}
		runtime.Gosched() // a busy loop still lets the join goroutines and timers run
	}
}

// readFrom reads what one receiver's socket has and handles whole frames.
func (p *poller) readFrom(r *receiver, ready time.Time) {
	n, err := syscall.Read(r.fd, r.buf[r.n:])
	now := time.Now()
	if now.UnixNano() >= p.from {
		p.lag.Record(now.Sub(ready))
	}
	switch {
	case errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR):
		return
	case err != nil:
		p.end(r, failure(err))
		return
	case n == 0:
		p.end(r, "closed by the server")
		return
	}
	r.n += n
	p.process(r, now)
}

// process handles the whole frames in r.buf, keeps a partial one at the
// start and makes sure the buffer can hold it. It reports whether the
// receiver is still open.
func (p *poller) process(r *receiver, now time.Time) bool {
	off, need := 0, 0
	for {
		k, body, used, n, err := r.d.Next(r.buf[off:r.n])
		if err != nil {
			p.end(r, "malformed frame: "+err.Error())
			return false
		}
		off += used
		switch k {
		case wire.Frame:
			err = p.w.handle(r, body, now)
		case wire.WSPing:
			err = p.write(r, wire.AppendWSPong(nil, body))
		case wire.WSClose:
			_ = p.write(r, wire.AppendWSClose(nil, body)) // the answer RFC 6455 asks for
			p.end(r, "closed by the server")
			return false
		}
		if err != nil {
			p.end(r, endReason(err))
			return false
		}
		if k == wire.Incomplete {
			need = n
			break
		}
	}
	r.n = copy(r.buf, r.buf[off:r.n])
	switch {
	case need > len(r.buf):
		nb := make([]byte, need)
		copy(nb, r.buf[:r.n])
		r.buf = nb
	case r.n < need && need <= p.w.spec.ReadBuffer && len(r.buf) > 4*p.w.spec.ReadBuffer:
		nb := make([]byte, p.w.spec.ReadBuffer) // let a big frame's buffer go
		copy(nb, r.buf[:r.n])
		r.buf = nb
	}
	return true
}

// pong answers a PING on a detached socket.
func (p *poller) pong(r *receiver, ping []byte) error {
	nonce, n := binary.Uvarint(ping[1:])
	if n <= 0 {
		return errors.New("malformed PING")
	}
	var b [16]byte
	frame, err := r.d.Wrap(nil, protocol.AppendFrame(b[:0], &protocol.Pong{Nonce: nonce}))
	if err != nil {
		return err
	}
	return p.write(r, frame)
}

// write sends a few bytes on a detached socket. They fit its send buffer
// (a pong), so a short write means the server stopped reading.
func (p *poller) write(r *receiver, b []byte) error {
	n, err := syscall.Write(r.fd, b)
	if err == nil && n < len(b) {
		err = errors.New("a pong did not fit the socket's send buffer")
	}
	return err
}

// end closes a receiver the server or the protocol ended.
func (p *poller) end(r *receiver, reason string) {
	_ = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, r.fd, nil)
	syscall.Close(r.fd)
	r.fd = -1
	r.endReason = reason
	r.dead.Store(true)
}

// close stops the loop and closes every socket still open.
func (p *poller) close() {
	p.stop.Store(true)
	p.file.Close() // wakes the loop if it is waiting
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.w.rs {
		if r.fd >= 0 {
			syscall.Close(r.fd)
			r.fd = -1
		}
	}
}
