package session

import (
	"fmt"
	"time"

	"chat/protocol"
)

// tick runs the handshake deadline and keepalive.
func (s *Session) tick() {
	now := time.Now()
	s.mu.Lock()
	closing, closeAt, writeSince := s.closing, s.closeAt, s.writeSince
	if !writeSince.IsZero() && now.Sub(writeSince) > s.cfg.WriteTimeout && !closing {
		s.reason = fmt.Sprintf("a write took longer than %v: the client is not reading", s.cfg.WriteTimeout)
		s.closing, s.closeAt = true, now
	}
	s.mu.Unlock()
	if !writeSince.IsZero() && now.Sub(writeSince) > s.cfg.WriteTimeout {
		// The watchdog: no deadline is set per write, so that writing
		// costs no timer; a write stuck this long ends the connection.
		s.abort()
		return
	}
	if closing {
		// The writer and the peer get WriteTimeout + Linger to finish.
		if now.Sub(closeAt) > s.cfg.WriteTimeout+s.cfg.Linger {
			s.abort()
			return
		}
		s.timer.Reset(s.cfg.Linger)
		return
	}
	if !s.ready.Load() {
		s.Fail(protocol.NewError(protocol.CodeTimeout, "", fmt.Sprintf("no HELLO within %v", s.cfg.HandshakeTimeout)))
		s.timer.Reset(s.cfg.Linger)
		return
	}
	if s.rooms.Joined() > 0 || s.rooms.Identified() {
		// An identified connection waits for notices, in no room or not.
		s.noRoomSince = time.Time{}
	} else if s.noRoomSince.IsZero() {
		s.noRoomSince = now
	} else if now.Sub(s.noRoomSince) >= s.cfg.IdleTimeout {
		s.mgr.LimitHit(LimitIdle, s.t.RemoteAddr(), "in no room")
		// Without the reconnect flag: a client that reconnected would
		// sit in no room again and be closed again, forever. It should
		// connect when it has a room to join.
		s.Fail(&protocol.Error{Code: protocol.CodeTimeout, Flags: protocol.ErrorClosing,
			Text: fmt.Sprintf("in no room for %v; connect again to join a room", s.cfg.IdleTimeout)})
		s.timer.Reset(s.cfg.Linger)
		return
	}
	idle := now.Sub(time.Unix(0, s.lastRecv.Load()))
	p := s.cfg.PingInterval
	switch {
	case idle >= p*3/2:
		s.Fail(protocol.NewError(protocol.CodeTimeout, "", fmt.Sprintf("nothing received for %v", idle.Round(10*time.Millisecond))))
		s.timer.Reset(s.cfg.Linger)
		return
	case idle >= p:
		s.Deliver(protocol.Encode(&protocol.Ping{Nonce: s.nonce.Add(1)}))
	}
	next := s.tickInterval()
	if idle < p {
		// Wake when the PING is due, not at the next tick: a tick just
		// before it would leave the next one past 1.5 × ping, and the
		// client would be cut off without having been asked.
		next = min(next, p-idle)
	}
	s.timer.Reset(next)
}

// tickInterval is how often keepalive, the idle timeout and the write
// watchdog are checked.
func (s *Session) tickInterval() time.Duration {
	return min(s.cfg.PingInterval, s.cfg.IdleTimeout, s.cfg.WriteTimeout) / 2
}
