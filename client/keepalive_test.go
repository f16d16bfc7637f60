package client

import (
	"testing"
	"time"

	"chat/protocol"
)

// TestKeepaliveAsksBeforeGivingUp: a tick that comes late may find 1.5 ×
// ping of silence before keepalive has sent any PING. The connection must
// then get a PING and time to answer it, not be dropped unasked. (That it
// is dropped when the PING goes unanswered is
// TestKeepaliveDetectsAHalfOpenConnection.)
func TestKeepaliveAsksBeforeGivingUp(t *testing.T) {
	l := newLoop(nil) // no Client: dropping the connection here would crash the test
	out := make(chan []byte, 4)
	l.conn = &connection{out: out, dead: make(chan struct{}), ping: 30 * time.Second}
	t0 := time.Now()
	l.lastRecv = t0

	l.keepalive(t0.Add(45*time.Second + time.Millisecond))
	if l.conn == nil {
		t.Fatal("the connection was dropped without being pinged")
	}
	select {
	case frame := <-out:
		body := frame[protocol.LengthSize:]
		if m, err := protocol.Decode(body); err != nil {
			t.Fatalf("keepalive wrote %x: %v", frame, err)
		} else if _, ok := m.(*protocol.Ping); !ok {
			t.Fatalf("keepalive wrote %T, want a PING", m)
		}
	default:
		t.Fatal("keepalive sent no PING")
	}
}
