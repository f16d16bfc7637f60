package client

import (
	"testing"
	"time"

	"chat/protocol"
)

// TestFilePacerKeepsUnderTheFileRate replays the pacer's schedule for
// 16 MiB of 16 KiB chunks at an announced 8 MiB/s: it never runs ahead
// of the rate (beyond its burst of 64 KiB) and still gets 90% of it;
// PART bytes received count too.
func TestFilePacerKeepsUnderTheFileRate(t *testing.T) {
	const rate = 8 << 20
	t0 := time.Unix(1e6, 0)
	p := newFilePacer(protocol.Limits{FileBytesPerSec: rate}, t0)
	now, sent := t0, 0
	for sent < 16<<20 {
		if wait := p.take(16<<10, now); wait > 0 {
			now = now.Add(wait)
			continue
		}
		sent += 16 << 10
		if ahead := float64(sent) - now.Sub(t0).Seconds()*rate; ahead > 64<<10 {
			t.Fatalf("%d bytes by %v: %.0f bytes ahead of the rate", sent, now.Sub(t0), ahead)
		}
	}
	if got := float64(sent) / now.Sub(t0).Seconds(); got < 0.85*rate {
		t.Errorf("%.0f bytes/s; want about 90%% of %d", got, rate)
	}
	// A second of downloads takes the next second of the budget.
	p.spend(rate, now)
	if wait := p.take(16<<10, now); wait < 900*time.Millisecond {
		t.Errorf("after a second's worth of parts, an upload chunk waits %v", wait)
	}
	if (&filePacer{}).take(1<<30, now) != 0 {
		t.Error("without an announced rate the pacer holds chunks back")
	}
}
