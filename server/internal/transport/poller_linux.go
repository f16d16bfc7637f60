//go:build linux

package transport

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Poller waits for input on idle connections with one epoll instance, so
// an idle connection needs no goroutine of its own (a goroutine's stack
// alone is several kilobytes; a server holds tens of thousands of idle
// connections). Each Arm reports readiness once.
type Poller struct {
	epfd int
	// file is epfd seen by Go's own netpoller: the poller goroutine waits
	// there like any network read. Blocking in epoll_wait instead would
	// hold the goroutine's P inside a system call, and with one CPU the
	// whole process could stall until the runtime noticed (up to 10 ms).
	file *os.File

	mu      sync.Mutex
	waiting map[uint64]func() // by id: what to call when that connection is readable
}

// NewPoller starts a poller.
func NewPoller() (*Poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil, err
	}
	// A non-blocking descriptor handed to os.NewFile joins Go's netpoller.
	p := &Poller{epfd: epfd, file: os.NewFile(uintptr(epfd), "chat-poller"), waiting: map[uint64]func(){}}
	raw, err := p.file.SyscallConn()
	if err != nil {
		p.file.Close()
		return nil, err
	}
	go p.loop(raw)
	return p, nil
}

// Arm calls ready once the connection has input (or hung up). id must
// be unique among the connections armed at a time; it identifies stale
// events of a connection already forgotten.
func (p *Poller) Arm(conn syscall.RawConn, id uint64, ready func()) error {
	p.mu.Lock()
	p.waiting[id] = ready
	p.mu.Unlock()
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: int32(id), Pad: int32(id >> 32)}
	var err error
	cerr := conn.Control(func(fd uintptr) {
		err = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, int(fd), &ev)
		if errors.Is(err, unix.ENOENT) {
			err = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev)
		}
	})
	if err = errors.Join(cerr, err); err != nil {
		p.mu.Lock()
		delete(p.waiting, id)
		p.mu.Unlock()
	}
	return err
}

// Forget removes a connection that is about to be closed.
func (p *Poller) Forget(conn syscall.RawConn, id uint64) {
	p.mu.Lock()
	delete(p.waiting, id)
	p.mu.Unlock()
	_ = conn.Control(func(fd uintptr) {
		_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, int(fd), nil)
	})
}

func (p *Poller) loop(raw syscall.RawConn) {
	events := make([]unix.EpollEvent, 256)
	for {
		var n int
		var werr error
		// Read calls the func again whenever Go's netpoller says epfd is
		// readable (it has events); returning false parks this goroutine.
		err := raw.Read(func(fd uintptr) bool {
			n, werr = unix.EpollWait(int(fd), events, 0)
			return !(werr == nil && n == 0) && werr != unix.EINTR
		})
		if err != nil || werr != nil {
			panic(fmt.Sprintf("transport: epoll_wait: %v %v", err, werr)) // the epoll fd is ours and never closed
		}
		for _, ev := range events[:n] {
			id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			p.mu.Lock()
			ready := p.waiting[id]
			delete(p.waiting, id)
			p.mu.Unlock()
			if ready != nil {
				ready()
			}
		}
	}
}
