package hub

import (
	"fmt"
	"sync/atomic"
	"testing"

	"chat/protocol"
)

// observations counts what the hub observes as commit latencies.
type observations struct{ n, bad atomic.Int64 }

func (o *observations) Observe(seconds float64) {
	o.n.Add(1)
	if seconds < 0 || seconds > 60 {
		o.bad.Add(1)
	}
}

// TestStatsCountWhatHappened: joins, stored messages, live deliveries,
// commit latencies and the memory cache, whose bytes follow the frames it
// holds as old ones are evicted.
func TestStatsCountWhatHappened(t *testing.T) {
	lat := &observations{}
	h, _ := newHub(t, Config{History: 2, RingSize: 4, CommitLatency: lat})
	alice, bob := newMember(), newMember()
	ca, cb := h.Connect(alice), h.Connect(bob)
	mustJoin(t, ca, &protocol.Join{Room: "general", Name: "alice"})
	mustJoin(t, cb, &protocol.Join{Room: "general", Name: "bob"})
	const n = 6
	for i := range n {
		if err := ca.Send("general", fmt.Sprint(i), fmt.Sprintf("message %d %s", i, string(make([]byte, i*10)))); err != nil {
			t.Fatal(err)
		}
	}
	got := bob.waitFor(t, "bob gets every message", func(ms []protocol.Message) bool { return len(msgs(ms)) == n })
	alice.waitFor(t, "alice gets every message and ACK", func(ms []protocol.Message) bool {
		return len(msgs(ms)) == n && count[*protocol.Ack](ms) == n
	})
	// The ring holds the last 4 frames: their bytes exactly.
	want := 0
	bob.mu.Lock()
	var frames [][]byte
	for i, m := range got {
		if _, ok := m.(*protocol.Msg); ok {
			frames = append(frames, bob.frames[i])
		}
	}
	bob.mu.Unlock()
	for _, f := range frames[n-4:] {
		want += len(f)
	}
	st := h.Stats()
	if st.Joins != 2 || st.Stored != n || st.Deliveries != 2*n || st.PublishPending != 0 || st.Rooms != 1 ||
		st.CachedMessages != 4 || st.CachedBytes != want {
		t.Errorf("stats %+v; want 2 joins, %d stored, %d deliveries, 0 pending, 1 room, 4 cached messages of %d bytes",
			st, n, 2*n, want)
	}
	if lat.n.Load() != n || lat.bad.Load() != 0 {
		t.Errorf("%d commit latencies observed (%d out of range), want %d", lat.n.Load(), lat.bad.Load(), n)
	}
	// A re-send is acknowledged and timed, not stored again.
	if err := ca.Send("general", "0", "message 0 "); err != nil {
		t.Fatal(err)
	}
	alice.waitFor(t, "the re-send's ACK", func(ms []protocol.Message) bool { return count[*protocol.Ack](ms) == n+1 })
	if st := h.Stats(); st.Stored != n || lat.n.Load() != n+1 {
		t.Errorf("after a re-send: %d stored, %d latencies", st.Stored, lat.n.Load())
	}
	// Rooms nobody is in are dropped, and their cache with them.
	ca.Close()
	cb.Close()
	if st := h.Stats(); st.Rooms != 0 || st.CachedMessages != 0 || st.CachedBytes != 0 || st.Joins != 2 {
		t.Errorf("after everyone left: %+v", st)
	}
}
