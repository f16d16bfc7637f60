package client

import (
	"testing"
	"time"

	"chat/protocol"
)

// TestPacerStaysUnderTheServersBucket replays the server's accounting
// (limit.Bucket: full at the first counted frame, which is the PING sent
// with HELLO) against the pacer's schedule: the client never takes the
// server's bucket below zero, so the server never slows it down, and it
// still sends at 90% of the announced rate.
func TestPacerStaysUnderTheServersBucket(t *testing.T) {
	lim := protocol.Limits{SendIntervalMs: 200, SendBurst: 20}
	t0 := time.Unix(1e6, 0)
	p := newPacer(lim, t0)
	server, last := 20.0-1, t0 // the handshake PING took one
	now := t0
	const frames = 500
	for i := range frames {
		for {
			wait := p.take(now)
			if wait == 0 {
				break
			}
			now = now.Add(wait)
		}
		server = min(20, server+now.Sub(last).Seconds()*5)
		last = now
		server--
		if server < 0 {
			t.Fatalf("frame %d at %v: the server's bucket is at %.2f", i, now.Sub(t0), server)
		}
		if i == 0 && now != t0 {
			t.Fatalf("the first frame waited %v", now.Sub(t0))
		}
	}
	elapsed := now.Sub(t0)
	rate := float64(frames-19) / elapsed.Seconds()
	if rate < 4.4 || rate > 5 {
		t.Errorf("%d frames in %v: %.2f a second after the burst, want just under 5", frames, elapsed, rate)
	}
	// Idle for a minute: the burst is back, but only the client's share.
	now = now.Add(time.Minute)
	n := 0
	for p.take(now) == 0 {
		n++
	}
	if n != 19 {
		t.Errorf("%d frames at once after a pause, want 19", n)
	}
	if free := newPacer(protocol.Limits{}, t0); free.take(t0) != 0 {
		t.Error("no announced rate: the pacer must not wait")
	}
}
