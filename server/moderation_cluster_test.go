package main

// Moderation in cluster mode: two chat server processes on one NATS,
// the moderation state in JetStream (chat-moderation, chat-redactions,
// CHAT_AUDIT), raw protocol connections to each node.

import (
	"os/exec"
	"strings"
	"testing"

	"chat/internal/testserver"
	"chat/protocol"
)

// clusterModAwait reads frames until one of type T matches ok, skipping
// the others (answering PINGs); a closing ERROR fails the test.
func clusterModAwait[T protocol.Message](t *testing.T, r *testserver.Raw, what string, ok func(T) bool) T {
	t.Helper()
	for {
		m, err := r.Read()
		if err != nil {
			t.Fatalf("%s: waiting for %s: %v", r, what, err)
		}
		if p, is := m.(*protocol.Ping); is {
			r.Send(&protocol.Pong{Nonce: p.Nonce})
			continue
		}
		if v, is := m.(T); is && (ok == nil || ok(v)) {
			return v
		}
		if e, is := m.(*protocol.Error); is && e.Closing() {
			t.Fatalf("%s: waiting for %s: %v", r, what, e)
		}
	}
}

// clusterModJoin joins room on a new connection to addr.
func clusterModJoin(t *testing.T, addr, room, name, secret string) (*testserver.Raw, *protocol.Joined) {
	t.Helper()
	r, _ := testserver.Handshake(t, addr)
	r.Send(&protocol.Join{Room: room, Name: name, Secret: secret})
	return r, clusterModAwait[*protocol.Joined](t, r, name+" joins "+room, nil)
}

// clusterModRefused waits for a non-closing ERROR with code in room.
func clusterModRefused(t *testing.T, r *testserver.Raw, what string, code protocol.ErrorCode, room string) {
	t.Helper()
	e := clusterModAwait[*protocol.Error](t, r, what, nil)
	if e.Code != code || e.Room != room || e.Closing() {
		t.Fatalf("%s: got %v (room %q), want %v in %q, not closing", what, e, e.Room, code, room)
	}
}

// TestClusterModerationActsOnEveryNode: the room's operator is on node 0,
// the troll and a bystander on node 1. The operator deletes the troll's
// message: node 1 replays it without text, from NATS. The operator bans
// the troll: node 1 cuts its connection, and the name cannot join again
// on either node. `chat-server audit -nats` lists both actions, without
// the message's text.
func TestClusterModerationActsOnEveryNode(t *testing.T) {
	c := startCluster(t, 1, 2, "-operator-token", "cluster-operators-token")
	a, b := c.nodes[0].Addr, c.nodes[1].Addr

	alice, j := clusterModJoin(t, a, "general", "Alice", "alice-key")
	if j.Modes&protocol.ModeOperator == 0 {
		t.Fatalf("the room's first proven name: modes %b, want operator", j.Modes)
	}
	mallory, j := clusterModJoin(t, b, "General", "mallory", "mallory-key")
	if j.Modes != 0 {
		t.Fatalf("a second name on another node is an operator too: modes %b", j.Modes)
	}
	bob, _ := clusterModJoin(t, b, "general", "bob", "")

	const spam = "BUY CHEAP WATCHES at spam.example"
	mallory.Send(&protocol.Send{Room: "general", ID: "m1", Text: spam})
	ack := clusterModAwait[*protocol.Ack](t, mallory, "the ACK of the spam", nil)
	clusterModAwait(t, alice, "the spam on node 0", func(m *protocol.Msg) bool { return m.Seq == ack.Seq })

	// The deletion, on node 0, of a message stored through node 1.
	alice.Send(&protocol.Moderate{Room: "general", Action: protocol.ModDelete, Seq: ack.Seq})
	clusterModAwait[*protocol.Moderated](t, alice, "MODERATED delete", nil)
	ev := clusterModAwait(t, bob, "the delete event on node 1", func(ev *protocol.ModEvent) bool { return ev.Action == protocol.ModDelete })
	if ev.Seq != ack.Seq || ev.Actor != "Alice" {
		t.Fatalf("delete event %+v", ev)
	}
	for i, addr := range []string{a, b} {
		msgs := clusterHistory(t, addr, "general")
		if len(msgs) != 1 || msgs[0].Seq != ack.Seq || msgs[0].Sender != "mallory" || msgs[0].ID != "m1" || msgs[0].Text != "" {
			t.Fatalf("node %d replays %+v; want the spam without its text", i, msgs)
		}
	}

	// The ban, on node 0, of a name connected through node 1.
	alice.Send(&protocol.Moderate{Room: "general", Action: protocol.ModBan, Target: "Mallory", Text: "spam"})
	clusterModAwait[*protocol.Moderated](t, alice, "MODERATED ban", nil)
	clusterModAwait(t, mallory, "the ban event on node 1", func(ev *protocol.ModEvent) bool { return ev.Action == protocol.ModBan })
	clusterModRefused(t, mallory, "mallory removed on node 1", protocol.CodeBanned, "general")
	clusterModAwait(t, bob, "mallory left, as bob on node 1 sees it", func(p *protocol.Presence) bool {
		return len(p.Changes) > 0 && p.Changes[0] == protocol.PresenceChange{Kind: protocol.PresenceLeft, Name: "mallory"}
	})
	for i, addr := range []string{a, b} {
		r, _ := testserver.Handshake(t, addr)
		r.Send(&protocol.Join{Room: "general", Name: "MALLORY", Secret: "mallory-key"})
		clusterModRefused(t, r, "mallory's join on node "+string(rune('0'+i)), protocol.CodeBanned, "general")
	}
	// On the node it was cut from, on its same connection, too.
	mallory.Send(&protocol.Join{Room: "general", Name: "mallory", Secret: "mallory-key"})
	clusterModRefused(t, mallory, "mallory's join again on its connection", protocol.CodeBanned, "general")

	out, err := exec.Command(testserver.Binary(t), "audit", "-nats", c.nats.URLs(), "-room", "General").CombinedOutput()
	if err != nil {
		t.Fatalf("chat-server audit -nats: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 2 || !strings.Contains(lines[len(lines)-2], "action=delete") || !strings.Contains(lines[len(lines)-1], "action=ban") ||
		!strings.Contains(lines[len(lines)-1], `target="mallory"`) {
		t.Fatalf("the cluster's audit log does not end with the delete and the ban:\n%s", out)
	}
	if strings.Contains(string(out), spam) {
		t.Fatalf("the audit log holds the message's text:\n%s", out)
	}
}
