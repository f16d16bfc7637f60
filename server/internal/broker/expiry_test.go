package broker

import (
	"context"
	"testing"
	"time"

	"chat/protocol"
	"chat/server/internal/history"
)

type quietHandler struct{}

func (quietHandler) Published([]Result)                                {}
func (quietHandler) Messages([]protocol.Msg)                           {}
func (quietHandler) PresenceChanged(string, []protocol.PresenceChange) {}
func (quietHandler) Noted(*Note)                                       {}

// leftHandler reports every name that leaves.
type leftHandler struct {
	quietHandler
	left chan string
}

func (h leftHandler) PresenceChanged(_ string, cs []protocol.PresenceChange) {
	for _, c := range cs {
		if c.Kind == protocol.PresenceLeft {
			h.left <- c.Name
		}
	}
}

// TestLateRenewalOfALiveNodeKeepsItsEntries: a node whose lease ran out
// only because its renewal was late (the process was paused) keeps its
// presence; a crashed node's entries go in the same sweep.
func TestLateRenewalOfALiveNodeKeepsItsEntries(t *testing.T) {
	ctx := context.Background()
	l, err := NewLocal(func(sink history.Sink) (history.Log, error) { return history.NewMemory(sink), nil },
		LocalOptions{PresenceTTL: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// A node whose renewer is paused: attached, not crashed, its lease
	// long run out (made by hand, so that no renewal can rescue it).
	seen := leftHandler{left: make(chan string, 4)}
	late := &Node{l: l, h: seen, done: make(chan struct{})}
	l.mu.Lock()
	l.nodes[late] = true
	late.expires = time.Now().Add(-time.Hour)
	l.mu.Unlock()
	dead := l.Node(quietHandler{})
	if _, err := late.PresenceAdd(ctx, "r", Presence{Name: "alive", Conn: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := dead.PresenceAdd(ctx, "r", Presence{Name: "gone", Conn: 1}); err != nil {
		t.Fatal(err)
	}
	dead.Crash()
	if _, err := late.Subscribe(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	select {
	case name := <-seen.left: // the sweep that dropped the crashed node
		if name != "gone" {
			t.Fatalf("%q left, want the crashed node's member", name)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the crashed node's entry was not dropped")
	}
	if names, _, _ := late.PresenceList(ctx, "r", 10); len(names) != 1 || names[0] != "alive" {
		t.Fatalf("present after the sweep: %v; the live node's entry must stay", names)
	}
}
