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
	late := &Node{l: l, h: quietHandler{}, done: make(chan struct{})}
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
	deadline := time.Now().Add(5 * time.Second)
	for {
		names, _, _ := late.PresenceList(ctx, "r", 10)
		if len(names) == 1 {
			if names[0] != "alive" {
				t.Fatalf("present after the sweep: %v", names)
			}
			return
		}
		if len(names) == 0 {
			t.Fatal("the live node's entry was dropped with the crashed node's")
		}
		if time.Now().After(deadline) {
			t.Fatalf("the crashed node's entry is still there: %v", names)
		}
		time.Sleep(5 * time.Millisecond) // a bounded poll: the sweep signals nothing
	}
}
