package hub

import (
	"context"
	"fmt"
	"testing"
	"time"

	"chat/protocol"
	"chat/server/internal/broker"
	"chat/server/internal/history"
)

// hookBroker runs afterAdd once PresenceAdd has succeeded, before the hub
// sees its answer: the window in which a Close lands.
type hookBroker struct {
	*broker.Node
	afterAdd func()
}

func (b *hookBroker) PresenceAdd(ctx context.Context, room string, p broker.Presence) (bool, error) {
	first, err := b.Node.PresenceAdd(ctx, room, p)
	if b.afterAdd != nil {
		b.afterAdd()
	}
	return first, err
}

// TestCloseRightAfterPresenceAddLeavesNoGhost: a Close that lands right
// after PresenceAdd succeeded (before enterLocked checks its answer) must
// not leave the name in the room's presence.
func TestCloseRightAfterPresenceAddLeavesNoGhost(t *testing.T) {
	store := newStore(t, func(sink history.Sink) (history.Log, error) { return history.NewMemory(sink), nil }, broker.LocalOptions{})
	var hb *hookBroker
	h, err := New(Config{}, func(hd broker.Handler) (broker.Broker, error) {
		hb = &hookBroker{Node: store.Node(hd)}
		return hb, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	c := h.Connect(newMember())
	hb.afterAdd = func() { c.Close() } // takes c.mu only: the membership is still joining
	if e := c.Join(&protocol.Join{Room: "r", Name: "ghost"}); e != nil {
		t.Fatalf("join: %v", e)
	}
	hb.afterAdd = nil
	if n := c.Joined(); n != 0 {
		t.Fatalf("conn still counts %d rooms", n)
	}
	if _, count, _ := h.b.PresenceList(context.Background(), "r", 10); count != 0 {
		t.Fatalf("presence counts %d in r after the join was overtaken by Close: a ghost", count)
	}
	// A ghost would hold the name: the next person could not use it.
	if e := h.Connect(newMember()).Join(&protocol.Join{Room: "r", Name: "ghost"}); e != nil {
		t.Fatalf("next join with the name: %v", e)
	}
}

// TestAckPrecedesLeft: SEND then LEAVE at once: the ACK comes before
// LEFT (nothing of a room follows its LEFT), and a JOIN right after the
// LEAVE waits for that LEFT.
func TestAckPrecedesLeft(t *testing.T) {
	gate := make(chan struct{})
	store := newStore(t, func(sink history.Sink) (history.Log, error) {
		return history.NewMemory(func(rs []history.Result) { <-gate; sink(rs) }), nil
	}, broker.LocalOptions{})
	h := newNode(t, Config{}, store)
	m := newMember()
	c := h.Connect(m)
	mustJoin(t, c, &protocol.Join{Room: "r", Name: "x"})
	if err := c.Send("r", "1", "hi"); err != nil {
		t.Fatal(err)
	}
	if e := c.Leave("r"); e != nil {
		t.Fatal(e)
	}
	rejoined := make(chan *protocol.Error)
	go func() { rejoined <- c.Join(&protocol.Join{Room: "r", Name: "x"}) }()
	close(gate)
	if e := <-rejoined; e != nil {
		t.Fatalf("join after leave: %v", e)
	}
	got := m.waitFor(t, "the second JOINED", func(ms []protocol.Message) bool { return count[*protocol.Joined](ms) == 2 })
	var order []string
	for _, f := range got {
		switch f.(type) {
		case *protocol.Left:
			order = append(order, "LEFT")
		case *protocol.Ack:
			order = append(order, "ACK")
		case *protocol.Joined:
			order = append(order, "JOINED")
		}
	}
	if fmt.Sprint(order) != "[JOINED ACK LEFT JOINED]" {
		t.Fatalf("frames in the order %v, want [JOINED ACK LEFT JOINED]", order)
	}
}

// TestLeaveAfterTheNodeWasDroppedIsQuiet: once a crashed node's lease
// has run out and the store dropped it, its hub's last leave (which
// unsubscribes) does nothing harmful.
func TestLeaveAfterTheNodeWasDroppedIsQuiet(t *testing.T) {
	store := newStore(t, func(sink history.Sink) (history.Log, error) { return history.NewMemory(sink), nil },
		broker.LocalOptions{PresenceTTL: 100 * time.Millisecond})
	watcher := newNode(t, Config{}, store)
	onWatcher := newMember()
	mustJoin(t, watcher.Connect(onWatcher), &protocol.Join{Room: "r", Name: "watcher"})
	var node *broker.Node
	h, err := New(Config{}, func(hd broker.Handler) (broker.Broker, error) {
		node = store.Node(hd)
		return node, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	c := h.Connect(newMember())
	mustJoin(t, c, &protocol.Join{Room: "r", Name: "x"})
	node.Crash()
	onWatcher.waitFor(t, "x left with its crashed node", func(ms []protocol.Message) bool {
		p, ok := ms[len(ms)-1].(*protocol.Presence)
		return ok && p.Changes[0] == protocol.PresenceChange{Kind: protocol.PresenceLeft, Name: "x"}
	})
	if e := c.Leave("r"); e != nil {
		t.Fatal(e)
	}
	if err := c.Send("r", "1", "x"); err == nil {
		t.Fatal("sent to a room after leaving it")
	}
}
