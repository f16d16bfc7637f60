package hub

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"chat/protocol"
)

// ringBytes returns the bytes held by each loaded room's ring and their
// sum.
func ringBytes(h *Hub) (per map[string]int, total int) {
	per = map[string]int{}
	h.mu.Lock()
	defer h.mu.Unlock()
	for name, r := range h.rooms {
		r.mu.Lock()
		if r.loaded {
			per[name] = r.ring.bytes
			total += r.ring.bytes
		}
		r.mu.Unlock()
	}
	return per, total
}

// TestHistoryCacheByteBudgets: many rooms receiving big messages hold at
// most RingBytes each and CacheBytes together, the hub's count agrees
// with what the rings hold, a join still gets its full history (from the
// log where the cache was trimmed), and dropped rooms give their bytes
// back.
func TestHistoryCacheByteBudgets(t *testing.T) {
	const (
		roomCount  = 40
		perRoom    = 30
		text       = 4000
		roomBudget = 48 << 10
		cacheBytes = 256 << 10
	)
	h, _ := newHub(t, Config{History: 20, RingBytes: roomBudget, CacheBytes: cacheBytes})
	members := make([]*fakeMember, roomCount)
	conns := make([]*Conn, roomCount)
	for i := range roomCount {
		members[i] = newMember()
		conns[i] = h.Connect(members[i])
		mustJoin(t, conns[i], &protocol.Join{Room: fmt.Sprint("room", i), Name: "m"})
	}
	big := strings.Repeat("x", text)
	for k := range perRoom {
		for i := range roomCount {
			if err := conns[i].Send(fmt.Sprint("room", i), fmt.Sprint(k), big); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range roomCount {
		members[i].waitFor(t, "every message", func(ms []protocol.Message) bool { return len(msgs(ms)) == perRoom })
	}
	// The last delivery has been fanned out; its budget check ran on the
	// same goroutine before the next delivery: a barrier orders it.
	if err := h.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	per, total := ringBytes(h)
	if used := h.cacheUsed.Load(); used != int64(total) {
		t.Fatalf("hub counts %d bytes, rings hold %d", used, total)
	}
	if total > cacheBytes {
		t.Fatalf("rings hold %d bytes, budget %d", total, cacheBytes)
	}
	held := 0
	for room, b := range per {
		if b > roomBudget {
			t.Fatalf("%s holds %d bytes, per-room budget %d", room, b, roomBudget)
		}
		if b > 0 {
			held++
		}
	}
	if held < roomCount/2 {
		t.Fatalf("only %d of %d rooms kept anything in memory: the budget is not shared", held, roomCount)
	}
	t.Logf("%d rooms × %d messages of %d bytes: %d bytes cached (budget %d), %d rooms keep some", roomCount, perRoom, text, total, cacheBytes, held)
}

// TestTrimmedRoomsStillReplayFullHistory: a join of a room whose cache
// was trimmed to nothing gets its History messages, read from the log.
func TestTrimmedRoomsStillReplayFullHistory(t *testing.T) {
	h, _ := newHub(t, Config{History: 10, RingBytes: 5000, CacheBytes: 1 << 20})
	m := newMember()
	c := h.Connect(m)
	mustJoin(t, c, &protocol.Join{Room: "r", Name: "a"})
	big := strings.Repeat("y", 6000) // bigger than the room's budget
	for k := range 12 {
		if err := c.Send("r", fmt.Sprint(k), big); err != nil {
			t.Fatal(err)
		}
	}
	m.waitFor(t, "12 messages", func(ms []protocol.Message) bool { return len(msgs(ms)) == 12 })
	if _, total := ringBytes(h); total != 0 {
		t.Fatalf("ring holds %d bytes over a budget of 5000 with 6000-byte frames", total)
	}
	late := newMember()
	lc := h.Connect(late)
	mustJoin(t, lc, &protocol.Join{Room: "r", Name: "b"})
	got := late.waitFor(t, "10 messages of history", func(ms []protocol.Message) bool { return len(msgs(ms)) == 10 })
	if first := msgs(got)[0].Seq; first != 3 {
		t.Fatalf("history starts at %d, want 3", first)
	}
	// A small message is kept; when everyone has left, the room is
	// dropped and its bytes given back. (Every SEND has its ACK, so the
	// leaves are not deferred.)
	if err := c.Send("r", "small", "hi"); err != nil {
		t.Fatal(err)
	}
	late.waitFor(t, "the small message", func(ms []protocol.Message) bool { return len(msgs(ms)) == 11 })
	if used := h.cacheUsed.Load(); used == 0 {
		t.Fatal("a message within the budget was not kept")
	}
	c.Close()
	lc.Close()
	if used := h.cacheUsed.Load(); used != 0 {
		t.Fatalf("%d bytes counted after the room was dropped", used)
	}
}
