package session

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"chat/protocol"
	"chat/server/internal/limit"
)

// Session is one client connection.
type Session struct {
	mgr    *Manager
	cfg    *Config
	t      Transport
	direct Direct // t, when it can be written without blocking; else nil
	parker Parker // t, when its reader can park; else nil
	waker  Waker  // t, when it writes bytes of its own; else nil
	id     uint64 // for the Poller
	rooms  Rooms
	start  time.Time
	timer  *time.Timer
	onEnd  func()
	client string // from HELLO; reader only

	ready    atomic.Bool  // HELLO done
	lastRecv atomic.Int64 // Unix nanoseconds of the last complete frame
	nonce    atomic.Uint64

	// Rate limiting, reader only.
	bucket       *limit.Bucket
	searches     *limit.Bucket // SEARCHes, besides bucket
	files        *byteBudget   // file bytes (UPLOAD, FETCH), instead of bucket
	limitedSince time.Time     // when the client started sending too fast; zero if it is not
	// noRoomSince is when the session was last seen in no room; zero while
	// it is in one. Timer only.
	noRoomSince time.Time

	leaveOnce sync.Once
	endOnce   sync.Once

	mu         sync.Mutex
	cond       sync.Cond // signalled when the queue shrinks or the session closes
	queue      [][]byte
	queued     int // bytes in queue
	wstate     writeState
	extra      bool      // the transport has bytes of its own to write (Waker): the writer calls it even with no frame
	writeSince time.Time // a blocking write started then; zero when none is under way
	wclosed    bool      // CloseWrite done
	flusher    *flusher
	parked     bool      // no reader goroutine: the socket waits in the Poller
	finished   bool      // finish has run: an Arm that ends after it must be undone
	closing    bool      // no more frames are queued; the write side closes when the queue is written
	closeAt    time.Time // when closing began
	reason     string    // why the session ended, for the log
}

func newSession(m *Manager, t Transport, onEnd func()) *Session {
	s := &Session{mgr: m, cfg: &m.cfg, t: t, start: time.Now(), onEnd: onEnd, id: m.ids.Add(1)}
	if d, ok := t.(Direct); ok && d.Direct() {
		s.direct = d
	}
	if p, ok := t.(Parker); ok && p.CanPark() {
		s.parker = p
	}
	if w, ok := t.(Waker); ok {
		s.waker = w
		w.SetWake(s.wakeWriter)
	}
	s.flusher = m.flushers[s.id%uint64(len(m.flushers))]
	s.cond.L = &s.mu
	s.lastRecv.Store(s.start.UnixNano())
	s.rooms = m.connect(s)
	return s
}

// startTimer starts the handshake deadline, then keepalive (tick).
func (s *Session) startTimer() {
	// Made stopped and then started, so s.timer is set before tick can run.
	s.timer = time.AfterFunc(math.MaxInt64, s.tick)
	s.timer.Reset(s.cfg.HandshakeTimeout)
}

// Deliver implements Member: it queues a frame without blocking. When the
// queue is full the client is not keeping up: what is queued is dropped
// (the client resumes it after reconnecting) and the session ends with
// slow-consumer.
func (s *Session) Deliver(frame []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return
	}
	if len(s.queue) >= s.cfg.QueueFrames || s.queued+len(frame) > s.cfg.QueueBytes {
		clear(s.queue)
		s.queue, s.queued = s.queue[:0], 0
		s.failLocked(protocol.NewError(protocol.CodeSlowConsumer, "",
			fmt.Sprintf("more than %d frames waiting to be read; reconnect to resume", s.cfg.QueueFrames)))
		return
	}
	s.enqueueLocked(frame)
}

// Replay implements Member: it queues history, pacing itself to the
// client's reading speed instead of overflowing the queue. It stops once
// ctx is cancelled (the client left the room), checking it under s.mu, so
// no frame it queues can follow a LEFT queued after the cancel.
func (s *Session) Replay(ctx context.Context, frames [][]byte) error {
	stop := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range frames {
		for !s.closing && ctx.Err() == nil && (len(s.queue) >= s.cfg.QueueFrames/2 || s.queued+len(f) > s.cfg.QueueBytes/2) {
			s.cond.Wait()
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if s.closing {
			return errors.New("session closed")
		}
		s.enqueueLocked(f)
	}
	return nil
}

// Fail implements Member: e is the last frame the client gets.
func (s *Session) Fail(e *protocol.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failLocked(e)
}

// failLocked starts closing: queue e (nil for a quiet close, as after
// BYE), let the queue be written and the write side closed.
func (s *Session) failLocked(e *protocol.Error) {
	if s.closing {
		return
	}
	if e != nil {
		if e.Code == protocol.CodeSlowConsumer {
			s.mgr.slowCuts.Add(1)
		}
		s.queue = append(s.queue, protocol.Encode(e))
		s.reason = e.Error()
	} else if s.reason == "" {
		s.reason = "client said bye"
	}
	s.closing, s.closeAt = true, time.Now()
	s.cond.Broadcast()
	s.kickLocked()
	s.unparkLocked() // someone must read to the end and finish the session
	// Leave the rooms now, not when the socket is finally closed, so the
	// name is free and others see the member go. Not inline: Fail may be
	// called by the hub with a room locked.
	go s.leaveRooms()
}

func (s *Session) leaveRooms() { s.leaveOnce.Do(s.rooms.Close) }

func (s *Session) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// abort closes the connection now; the reader sees it fail and finishes
// the session.
func (s *Session) abort() {
	_ = s.t.Close()
	s.mu.Lock()
	s.unparkLocked()
	s.mu.Unlock()
}

// finish ends the session once its reading has ended.
func (s *Session) finish() {
	s.timer.Stop()
	s.leaveRooms()
	s.mu.Lock()
	s.finished = true
	s.mu.Unlock()
	if s.parker != nil && s.cfg.Poller != nil {
		s.cfg.Poller.Forget(s.parker.SyscallConn(), s.id)
	}
	_ = s.t.Close()
	s.mu.Lock()
	reason := s.reason
	s.mu.Unlock()
	// Unregistered first: once "connection closed" is logged, the
	// connection no longer counts against any limit.
	s.ended()
	s.mgr.cfg.Logger.Info("connection closed", "remote", s.t.RemoteAddr(), "client", s.client,
		"duration", time.Since(s.start).Round(time.Millisecond), "reason", reason)
}

// ended unregisters the session and tells whoever started it.
func (s *Session) ended() {
	s.endOnce.Do(func() {
		s.mgr.remove(s)
		if s.onEnd != nil {
			s.onEnd()
		}
	})
}

// RemoteAddr is the peer's address, for the hub's address bans, audit
// log and per-address limit on room creations.
func (s *Session) RemoteAddr() string { return s.t.RemoteAddr() }
