package hub

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"chat/internal/testserver"
	"chat/protocol"
	"chat/server/internal/broker"
	"chat/server/internal/history"
	"chat/server/internal/session"
	"chat/server/internal/transport"
)

// serve runs sessions for h on a real TCP listener on 127.0.0.1 and
// returns its address and the session manager.
func serve(t *testing.T, h *Hub, cfg session.Config) (string, *session.Manager) {
	t.Helper()
	mgr := session.NewManager(cfg, func(m session.Member) session.Rooms { return h.Connect(m) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				mgr.Serve(transport.NewTCP(c))
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = mgr.Shutdown(ctx)
		wg.Wait()
	})
	return ln.Addr().String(), mgr
}

// closedHandler is a log handler that signals each "connection closed".
type closedHandler struct {
	closed chan struct{}
}

func (h *closedHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *closedHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "connection closed" {
		h.closed <- struct{}{}
	}
	return nil
}
func (h *closedHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *closedHandler) WithGroup(string) slog.Handler      { return h }

// slowOwners holds every name check until release is closed (or the
// join's context ends), like a database stuck behind a long write.
type slowOwners struct {
	started chan struct{} // gets a value when a check begins
	release chan struct{}
}

func (o *slowOwners) Claimed(context.Context, []string) ([]string, error) { return nil, nil }

func (o *slowOwners) Claim(ctx context.Context, _, _ string) (bool, error) {
	o.started <- struct{}{}
	select {
	case <-o.release:
	case <-ctx.Done():
	}
	return true, nil
}

// TestConnectionEndingDuringJoinLeavesNoGhost: a connection that ends
// (here: cut off by keepalive) while its JOIN waits for the name check
// leaves nothing behind: the room is not kept loaded and the name is free
// in it for the next person.
func TestConnectionEndingDuringJoinLeavesNoGhost(t *testing.T) {
	owners := &slowOwners{started: make(chan struct{}, 1), release: make(chan struct{})}
	h, _ := newHub(t, Config{Owners: owners})
	closed := make(chan struct{}, 4)
	addr, _ := serve(t, h, session.Config{PingInterval: 100 * time.Millisecond, MsgRate: 0,
		Logger: slog.New(&closedHandler{closed: closed})})

	c, _ := testserver.Handshake(t, addr)
	c.Send(&protocol.Join{Room: "r", Name: "ghost"})
	<-owners.started
	// Say nothing, not even PONG: the server gives up on the connection.
	if e := testserver.Expect[*protocol.Error](c); e.Code != protocol.CodeTimeout {
		t.Fatalf("got %v, want timeout", e)
	}
	close(owners.release)
	c.ExpectClosed()
	c.Conn.Close() // so that the server need not linger for our side
	// "connection closed" is logged once the session is over, its rooms
	// left.
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the session did not end")
	}

	// The next connection with that name gets in (its check is released
	// already); a ghost would hold the name with no secret: name-taken.
	next, joined := testserver.JoinRoom(t, addr, "r", "ghost")
	defer next.Conn.Close()
	if joined.Count != 1 {
		t.Fatalf("JOINED counts %d members; the ghost is still in the room", joined.Count)
	}
}

// TestJoinOvertakenByCloseIsUndone drives the same race in the hub alone,
// at each step of a join: a Close while the name check runs must leave
// no member, no presence and no loaded room.
func TestJoinOvertakenByCloseIsUndone(t *testing.T) {
	owners := &slowOwners{started: make(chan struct{}, 1), release: make(chan struct{})}
	h, _ := newHub(t, Config{Owners: owners})
	m := newMember()
	c := h.Connect(m)
	done := make(chan *protocol.Error)
	go func() { done <- c.Join(&protocol.Join{Room: "r", Name: "x"}) }()
	<-owners.started
	c.Close()
	if e := <-done; e != nil {
		t.Fatalf("join overtaken by close answered %v", e)
	}
	if n := c.Joined(); n != 0 {
		t.Fatalf("the connection still counts %d rooms", n)
	}
	h.mu.Lock()
	rooms := len(h.rooms)
	h.mu.Unlock()
	if rooms != 0 {
		t.Fatalf("%d rooms loaded", rooms)
	}
	if _, count, _ := h.b.PresenceList(context.Background(), "r", 10); count != 0 {
		t.Fatalf("presence counts %d in the room", count)
	}
	if got := m.decoded(t); len(got) != 0 {
		t.Fatalf("the closed connection got %v", got)
	}
	// After Close, a join is refused quietly.
	if e := c.Join(&protocol.Join{Room: "s", Name: "x"}); e != nil || c.Joined() != 0 {
		t.Fatalf("join after close: %v, %d rooms", e, c.Joined())
	}
}

// gatedMember holds every Replay until its gate opens and counts how many
// run at once.
type gatedMember struct {
	*fakeMember
	mu              sync.Mutex
	running, most   int
	arrived         chan struct{}
	gate            chan struct{}
	replayedBatches int
}

func (g *gatedMember) Replay(ctx context.Context, fs [][]byte) error {
	g.mu.Lock()
	g.running++
	g.most = max(g.most, g.running)
	g.mu.Unlock()
	g.arrived <- struct{}{}
	<-g.gate
	g.mu.Lock()
	g.running--
	g.replayedBatches++
	g.mu.Unlock()
	return g.fakeMember.Replay(ctx, fs)
}

// TestReplaysPerConnectionAreCapped: a connection resuming many rooms at
// once runs at most MaxReplays history replays at a time; the others wait
// their turn and still complete, in order.
func TestReplaysPerConnectionAreCapped(t *testing.T) {
	h, _ := newHub(t, Config{History: 2, RingSize: 4, MaxReplays: 2})
	pm := newMember()
	poster := h.Connect(pm)
	const rooms = 6
	for i := range rooms {
		room := fmt.Sprint("room", i)
		mustJoin(t, poster, &protocol.Join{Room: room, Name: "poster"})
		for k := range 10 {
			if err := poster.Send(room, fmt.Sprint(k), "m"); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Fanned out, so the rooms' heads are at 10 when the reader joins.
	pm.waitFor(t, "the poster's messages", func(ms []protocol.Message) bool { return len(msgs(ms)) == rooms*10 })
	g := &gatedMember{fakeMember: newMember(), arrived: make(chan struct{}, rooms), gate: make(chan struct{})}
	c := h.Connect(g)
	for i := range rooms {
		mustJoin(t, c, &protocol.Join{Room: fmt.Sprint("room", i), Name: "reader", Resume: true})
	}
	// Two replays arrive and block; no third may start.
	<-g.arrived
	<-g.arrived
	select {
	case <-g.arrived:
		t.Fatal("a third replay started while two were running")
	case <-time.After(200 * time.Millisecond): // a bounded look for something that must not happen
	}
	close(g.gate)
	g.waitFor(t, "all rooms replayed", func(ms []protocol.Message) bool { return len(msgs(ms)) == rooms*10 })
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.most != 2 {
		t.Fatalf("%d replays ran at once, want 2", g.most)
	}
}

// TestMessagesFromAnotherNodeReachLocalMembers: two hubs on one broker
// store are two nodes of a cluster. A message published through one
// reaches the members on the other, in order, and presence crosses too.
func TestMessagesFromAnotherNodeReachLocalMembers(t *testing.T) {
	store := newStore(t, func(sink history.Sink) (history.Log, error) { return history.NewMemory(sink), nil }, broker.LocalOptions{})
	a, b := newNode(t, Config{}, store), newNode(t, Config{}, store)
	onA, onB := newMember(), newMember()
	ca := a.Connect(onA)
	mustJoin(t, ca, &protocol.Join{Room: "r", Name: "alice"})
	cb := b.Connect(onB)
	mustJoin(t, cb, &protocol.Join{Room: "r", Name: "bob"})
	onA.waitFor(t, "bob joined (through the other node)", func(ms []protocol.Message) bool {
		for _, m := range ms {
			if p, ok := m.(*protocol.Presence); ok && p.Count == 2 && p.Changes[0].Name == "bob" {
				return true
			}
		}
		return false
	})
	if e := b.Connect(newMember()).Join(&protocol.Join{Room: "r", Name: "ALICE"}); e == nil || e.Code != protocol.CodeNameTaken {
		t.Fatalf("alice's name on the other node: %v", e)
	}
	for i := range 5 {
		if err := ca.Send("r", fmt.Sprint("a", i), fmt.Sprint("from a ", i)); err != nil {
			t.Fatal(err)
		}
		if err := cb.Send("r", fmt.Sprint("b", i), fmt.Sprint("from b ", i)); err != nil {
			t.Fatal(err)
		}
	}
	gotA := msgs(onA.waitFor(t, "10 messages on a", func(ms []protocol.Message) bool { return len(msgs(ms)) == 10 }))
	gotB := msgs(onB.waitFor(t, "10 messages on b", func(ms []protocol.Message) bool { return len(msgs(ms)) == 10 }))
	for i := range gotA {
		if gotA[i].Seq != uint64(i+1) || gotB[i].Seq != uint64(i+1) || gotA[i].Text != gotB[i].Text {
			t.Fatalf("message %d: a has %d %q, b has %d %q", i, gotA[i].Seq, gotA[i].Text, gotB[i].Seq, gotB[i].Text)
		}
	}
	// Acks go only to the node that published.
	if n := count[*protocol.Ack](onA.decoded(t)); n != 5 {
		t.Fatalf("a got %d acks, want 5", n)
	}
	cb.Close()
	onA.waitFor(t, "bob left", func(ms []protocol.Message) bool {
		p, ok := ms[len(ms)-1].(*protocol.Presence)
		return ok && p.Count == 1 && p.Changes[0] == protocol.PresenceChange{Kind: protocol.PresenceLeft, Name: "bob"}
	})
}

// TestDeadNodesMembersLeave: a node that stops renewing its presence (a
// crashed process) loses its members for everyone else within the TTL.
func TestDeadNodesMembersLeave(t *testing.T) {
	store := newStore(t, func(sink history.Sink) (history.Log, error) { return history.NewMemory(sink), nil },
		broker.LocalOptions{PresenceTTL: 300 * time.Millisecond})
	a := newNode(t, Config{}, store)
	var bNode *broker.Node
	b, err := New(Config{}, func(hd broker.Handler) (broker.Broker, error) {
		bNode = store.Node(hd)
		return bNode, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	onA := newMember()
	mustJoin(t, a.Connect(onA), &protocol.Join{Room: "r", Name: "alice"})
	mustJoin(t, b.Connect(newMember()), &protocol.Join{Room: "r", Name: "bob"})
	bNode.Crash()
	start := time.Now()
	onA.waitFor(t, "bob left", func(ms []protocol.Message) bool {
		p, ok := ms[len(ms)-1].(*protocol.Presence)
		return ok && p.Count == 1 && p.Changes[0] == protocol.PresenceChange{Kind: protocol.PresenceLeft, Name: "bob"}
	})
	t.Logf("bob left %v after his node stopped", time.Since(start).Round(time.Millisecond))
	// Both nodes started together, so the sweep that took bob would have
	// taken alice too had her node not renewed its lease: count 1 above
	// says it did.
	if _, count, _ := a.b.PresenceList(context.Background(), "r", 10); count != 1 {
		t.Fatalf("presence counts %d, want alice alone", count)
	}
}
