package client

import (
	"math"
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

// TestAbsurdAnnouncedDurationsAreClamped: milliseconds from WELCOME used
// to be multiplied into a time.Duration unchecked; absurd values overflow
// into negative or tiny intervals, so the pacer let everything through (or
// never did), and a negative ping panicked the ticker. They are clamped to
// an hour now.
func TestAbsurdAnnouncedDurationsAreClamped(t *testing.T) {
	t0 := time.Unix(1e6, 0)
	for _, ms := range []uint64{1e13, 1 << 62, 1<<63 + 5, math.MaxUint64, uint64(maxAnnounced / time.Millisecond)} {
		if d := millis(ms); d != maxAnnounced {
			t.Errorf("millis(%d) = %v, want %v", ms, d, maxAnnounced)
		}
		p := newPacer(protocol.Limits{SendIntervalMs: ms, SendBurst: 3}, t0)
		if p.interval <= 0 || p.interval > 2*maxAnnounced {
			t.Errorf("interval %d ms: pacer interval %v", ms, p.interval)
		}
		// The burst's token goes at once; the next waits about an interval.
		if w := p.take(t0); w != 0 {
			t.Errorf("interval %d ms: first take waits %v", ms, w)
		}
		if w := p.take(t0); w < maxAnnounced || w > 2*maxAnnounced {
			t.Errorf("interval %d ms: second take waits %v, want about an hour", ms, w)
		}
	}
	if d := millis(1500); d != 1500*time.Millisecond {
		t.Errorf("millis(1500) = %v", d)
	}
}
