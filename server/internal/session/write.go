package session

import (
	"runtime"
	"sync"
	"time"
)

// writeState says who writes a session's queue.
type writeState int

const (
	idle      writeState = iota // nothing to write, nobody writing
	scheduled                   // on a flusher's list
	flushing                    // a flusher is writing it
	writing                     // its writer goroutine is (socket full, or not a Direct transport)
)

// Waker is implemented by transports that write bytes of their own
// besides the session's frames (a WebSocket's PONG and CLOSE answers),
// which may only go at a frame boundary: they wait inside the transport
// for the session's writer. SetWake gives the transport a function that
// gets the writer to call TryWrite or WriteFrames soon, with no frame if
// none is queued. Pending reports whether bytes of the transport's own
// are still waiting (a TryWrite the socket did not take whole).
type Waker interface {
	SetWake(wake func())
	Pending() bool
}

// PeerCloser is a Transport whose peer can end it with a close of its
// own that must be answered in the stream (a WebSocket's CLOSE). When
// ReadFrame returns io.EOF and Answering reports true, the answer waits
// for a frame boundary: the session then closes as after BYE (the writer
// writes the rest of its frame, the answer, and ends the stream; the
// reader reads to the end or the linger) instead of finishing at once and
// cutting the answer off.
type PeerCloser interface {
	Answering() bool
}

// wakeWriter is the Waker's call: the transport has bytes to write.
func (s *Session) wakeWriter() {
	s.mu.Lock()
	s.extra = true
	s.kickLocked()
	s.mu.Unlock()
}

func (s *Session) enqueueLocked(frame []byte) {
	s.queue = append(s.queue, frame)
	s.queued += len(frame)
	s.kickLocked()
}

// kickLocked gets a queue that has frames written: by a flusher for a
// Direct transport, else by the session's writer goroutine.
func (s *Session) kickLocked() {
	if s.wstate != idle {
		return // whoever writes will see the new frames
	}
	if s.direct != nil {
		s.wstate = scheduled
		s.flusher.add(s)
		return
	}
	s.wstate = writing
	go s.writeLoop(nil)
}

// flusher writes the queues of Direct sessions without blocking, each
// session's whole queue in one writev. A fan-out to thousands of sessions
// thus costs one system call per session, no goroutine per write; under
// load, frames that arrive while a pass runs go out together in the next.
type flusher struct {
	mu     sync.Mutex
	list   []*Session
	wakeup chan struct{}
}

func newFlusher() *flusher { return &flusher{wakeup: make(chan struct{}, 1)} }

// add puts s on the list; called with s.mu held.
func (f *flusher) add(s *Session) {
	f.mu.Lock()
	f.list = append(f.list, s)
	f.mu.Unlock()
	select {
	case f.wakeup <- struct{}{}:
	default:
	}
}

func (f *flusher) run() {
	var batch []*Session
	for range f.wakeup {
		for {
			f.mu.Lock()
			batch, f.list = f.list, batch[:0]
			f.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			for i, s := range batch {
				s.flush()
				batch[i] = nil
				if i%32 == 31 {
					// Writes do not block, so nothing else would run on this
					// CPU until the pass ends: let the commit loop and the
					// readers in, or they wait a whole pass.
					runtime.Gosched()
				}
			}
		}
	}
}

// flush writes what the socket takes now; a remainder goes to the
// session's writer goroutine, which waits for the slow client.
func (s *Session) flush() {
	s.mu.Lock()
	batch := s.queue
	s.queue, s.queued, s.extra = nil, 0, false
	s.wstate = flushing
	s.mu.Unlock()

	n, err := s.direct.TryWrite(batch)

	s.mu.Lock()
	if err != nil {
		s.writeFailedLocked(err)
		s.mu.Unlock()
		return
	}
	rest := skip(batch, n)
	if len(rest) == 0 && s.waker != nil && s.waker.Pending() {
		rest = [][]byte{} // bytes of the transport's own remain: the writer waits for the socket
	}
	if rest != nil {
		// The socket is full: the client reads slower than we write. Its
		// writer goroutine waits for it, under the watchdog. The rest goes
		// to the writer, not back to the queue: it may begin with the tail
		// of a frame already partly on the wire, which an overflow of the
		// queue must not drop.
		s.wstate = writing
		s.mu.Unlock()
		go s.writeLoop(rest)
		return
	}
	clear(batch)
	s.cond.Broadcast()
	if len(s.queue) > 0 || s.extra {
		s.wstate = scheduled
		s.flusher.add(s)
		s.mu.Unlock()
		return
	}
	s.wstate = idle
	closeNow := s.closing && !s.wclosed
	s.wclosed = s.wclosed || closeNow
	s.mu.Unlock()
	if closeNow {
		_ = s.t.CloseWrite(time.Now().Add(s.cfg.Linger))
	}
}

// writeLoop writes pending, then the queue, with blocking writes until
// the queue is empty, then hands the session back (to the flushers, for
// a Direct transport).
func (s *Session) writeLoop(pending [][]byte) {
	for {
		s.mu.Lock()
		if pending == nil && len(s.queue) == 0 && !s.extra {
			s.wstate = idle
			s.queue = nil // idle sessions hold no buffers
			s.cond.Broadcast()
			closeNow := s.closing && !s.wclosed
			s.wclosed = s.wclosed || closeNow
			s.mu.Unlock()
			if closeNow {
				_ = s.t.CloseWrite(time.Now().Add(s.cfg.Linger))
			}
			return
		}
		batch := s.queue
		if pending != nil {
			// Still one writev for the rest of the partial write and what
			// was queued since.
			batch = append(pending, s.queue...)
		}
		s.queue, s.queued, pending, s.extra = nil, 0, nil, false
		s.writeSince = time.Now() // the watchdog (tick) ends writes that hang
		s.mu.Unlock()

		err := s.t.WriteFrames(batch)
		clear(batch)

		s.mu.Lock()
		s.writeSince = time.Time{}
		s.cond.Broadcast()
		if err != nil {
			s.writeFailedLocked(err)
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
	}
}

// writeFailedLocked ends a session whose connection cannot be written.
func (s *Session) writeFailedLocked(err error) {
	s.wstate = idle
	s.queue, s.queued = nil, 0
	if !s.closing {
		s.reason = "write failed: " + err.Error()
		s.closing, s.closeAt = true, time.Now()
	}
	s.cond.Broadcast()
	s.unparkLocked()
	go func() {
		_ = s.t.Close()
		s.leaveRooms()
	}()
}

// skip drops the first n bytes of frames (a partial write), without
// changing the frames themselves: they are shared with other sessions.
func skip(frames [][]byte, n int) [][]byte {
	for len(frames) > 0 && n >= len(frames[0]) {
		n -= len(frames[0])
		frames = frames[1:]
	}
	if len(frames) == 0 {
		return nil
	}
	rest := make([][]byte, len(frames))
	copy(rest, frames)
	rest[0] = rest[0][n:]
	return rest
}
