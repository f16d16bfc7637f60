package session

import (
	"errors"
	"io"
	"time"

	"chat/protocol"
)

// errParked means the reader gave its goroutine up: the socket waits in
// the Poller and wake continues reading in a new one.
var errParked = errors.New("session: parked")

// read runs the reader until the session ends (then finishes it) or the
// reader parks.
func (s *Session) read() {
	if s.readLoop() {
		s.finish()
	}
}

// readLoop reads and handles frames. It reports true when the connection
// has ended, false when it parked.
func (s *Session) readLoop() bool {
	for {
		limit := protocol.MaxHelloFrame
		if s.ready.Load() {
			limit = s.cfg.MaxFrame
		}
		body, err := s.readFrame(limit)
		if err == errParked {
			return false
		}
		if err != nil {
			var de *protocol.DecodeError
			if errors.As(err, &de) {
				if de.Code == protocol.CodeFrameTooLarge {
					s.mgr.LimitHit(LimitFrameTooLarge, s.t.RemoteAddr(), de.Reason)
				}
				s.protocolError(protocol.NewError(de.Code, "", de.Reason))
				return true
			}
			if pc, ok := s.t.(PeerCloser); ok && errors.Is(err, io.EOF) && pc.Answering() {
				// The peer closed and its answer waits for the writer:
				// close as after BYE, reading to the end meanwhile.
				s.mu.Lock()
				if s.reason == "" {
					s.reason = readEndReason(err)
				}
				s.failLocked(nil)
				s.mu.Unlock()
				_ = s.t.Discard()
				return true
			}
			s.mu.Lock()
			if s.reason == "" {
				s.reason = readEndReason(err)
			}
			// Nothing more is queued for a connection whose reading ended;
			// a write failing now must not rewrite why it ended.
			s.closing = true
			s.cond.Broadcast()
			s.mu.Unlock()
			return true
		}
		s.lastRecv.Store(time.Now().UnixNano())
		if s.isClosing() {
			continue // after BYE or an error: read to the end, ignore
		}
		msg, err := protocol.Decode(body)
		if err != nil {
			var de *protocol.DecodeError
			errors.As(err, &de)
			s.protocolError(protocol.NewError(de.Code, "", de.Reason))
			return true
		}
		if !s.throttle(msg) {
			return true
		}
		if e := s.handle(msg); e != nil {
			if e.Closing() {
				s.protocolError(e)
				return true
			}
			s.Deliver(protocol.Encode(e))
		}
	}
}

// readFrame reads the next frame. On a Parker transport with a Poller,
// when nothing has arrived it parks instead of waiting (errParked).
func (s *Session) readFrame(max int) ([]byte, error) {
	if s.parker == nil || s.cfg.Poller == nil {
		return s.t.ReadFrame(max)
	}
	body, err := s.parker.TryReadFrame(max)
	if err != ErrWouldBlock {
		return body, err
	}
	s.mu.Lock()
	if s.closing {
		// Reading to the end of a closing session: wait for it here.
		s.mu.Unlock()
		return s.t.ReadFrame(max)
	}
	s.parked = true
	s.mu.Unlock()
	if err := s.cfg.Poller.Arm(s.parker.SyscallConn(), s.id, s.wake); err != nil {
		s.mu.Lock()
		stillParked := s.parked
		s.parked = false
		s.mu.Unlock()
		if !stillParked {
			return nil, errParked // woken meanwhile: that reader carries on
		}
		return s.t.ReadFrame(max)
	}
	s.mu.Lock()
	late := s.finished
	s.mu.Unlock()
	if late {
		// Woken and finished by another reader while this one was arming:
		// finish's Forget may have run before Arm, so undo it here, or the
		// Poller would keep the session forever.
		s.cfg.Poller.Forget(s.parker.SyscallConn(), s.id)
	}
	return nil, errParked
}

// wake is the Poller's call: input arrived for a parked session.
func (s *Session) wake() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unparkLocked()
}

// unparkLocked gives a parked session a reader again.
func (s *Session) unparkLocked() {
	if s.parked {
		s.parked = false
		go s.read()
	}
}

func readEndReason(err error) string {
	if errors.Is(err, protocol.ErrTruncated) {
		return "connection ended inside a frame"
	}
	return "read: " + err.Error()
}

// protocolError sends e, then reads and drops whatever else the client
// sends until it closes, so the ERROR is not lost to a TCP reset caused
// by unread input.
func (s *Session) protocolError(e *protocol.Error) {
	s.mgr.cfg.Logger.Info("protocol error", "remote", s.t.RemoteAddr(), "code", e.Code.String(), "detail", e.Text)
	s.Fail(e)
	_ = s.t.Discard()
}
