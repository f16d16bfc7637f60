package main

// Acting on messages in cluster mode: two chat server processes on one
// NATS, raw protocol connections to each node.

import (
	"testing"
	"time"

	"chat/internal/testserver"
	"chat/protocol"
)

// TestClusterEditReactAndSearch: a message stored through node 1 is
// edited there and reacted to through node 0; both nodes' members get the
// UPDATEs, a late joiner on node 0 (whose memory has the room) and a
// resumer on node 1 see the final state; typing crosses nodes; a search
// on node 0 finds the edited text in the rooms of the searcher only.
func TestClusterEditReactAndSearch(t *testing.T) {
	c := startCluster(t, 1, 2)
	a, b := c.nodes[0].Addr, c.nodes[1].Addr
	alice, _ := clusterModJoin(t, a, "general", "alice", "alice-key")
	bob, _ := clusterModJoin(t, b, "general", "bob", "bob-key")
	other, _ := clusterModJoin(t, b, "elsewhere", "bob", "bob-key")

	bob.Send(&protocol.Send{Room: "general", ID: "b1", Text: "cluster hello wrld"})
	one := clusterModAwait(t, bob, "the ACK", func(a *protocol.Ack) bool { return a.ID == "b1" }).Seq
	other.Send(&protocol.Send{Room: "elsewhere", ID: "o1", Text: "cluster hello from elsewhere"})
	clusterModAwait(t, other, "the ACK elsewhere", func(a *protocol.Ack) bool { return a.ID == "o1" })
	clusterModAwait(t, alice, "the message on node 0", func(m *protocol.Msg) bool { return m.Seq == one })

	bob.Send(&protocol.Change{Room: "general", Kind: protocol.ChangeEdit, Target: one, ID: "e1", Text: "cluster hello world"})
	clusterAcked(t, bob, "e1")
	u := clusterModAwait(t, alice, "the edit on node 0", func(u *protocol.Update) bool { return u.Kind == protocol.ChangeEdit })
	if u.Actor != "bob" || u.State == nil || u.State.Text != "cluster hello world" || u.State.Edited == 0 {
		t.Fatalf("the edit's UPDATE on node 0: %+v", u)
	}
	alice.Send(&protocol.Change{Room: "general", Kind: protocol.ChangeReact, Target: one, ID: "r1", Text: "❤️"})
	last := clusterAcked(t, alice, "r1")
	u = clusterModAwait(t, bob, "the reaction on node 1", func(u *protocol.Update) bool { return u.Kind == protocol.ChangeReact })
	if u.Seq != last || u.State == nil || u.State.Text != "cluster hello world" || len(u.State.Reactions) != 1 ||
		u.State.Reactions[0].Emoji != "❤️" || u.State.Reactions[0].Names[0] != "alice" {
		t.Fatalf("the reaction's UPDATE on node 1: %+v", u)
	}
	// Another name's message, through the other node: refused.
	alice.Send(&protocol.Change{Room: "general", Kind: protocol.ChangeEdit, Target: one, ID: "x1", Text: "alice was here"})
	clusterModRefused(t, alice, "alice's edit of bob's message", protocol.CodeForbidden, "general")

	late, j := clusterModJoin(t, a, "general", "carol", "")
	m := clusterModAwait(t, late, "message 1 on node 0", func(m *protocol.Msg) bool { return m.Seq == one })
	if m.Text != "cluster hello world" || len(m.Reactions) != 1 || j.Head < last {
		t.Fatalf("the late joiner's message 1: %+v (head %d)", m, j.Head)
	}
	res, _ := clusterModJoinResume(t, b, "general", "dave", one)
	var stated int
	for seq := one; seq < last; {
		u := clusterModAwait[*protocol.Update](t, res, "the resume's UPDATEs", nil)
		seq = u.Seq
		if u.State != nil {
			stated++
			if u.Seq != last || u.State.Text != "cluster hello world" || len(u.State.Reactions) != 1 {
				t.Fatalf("the resumer's stated UPDATE: %+v", u)
			}
		}
	}
	if stated != 1 {
		t.Fatalf("the resumer got the state %d times, want once", stated)
	}

	// Typing from node 0 reaches node 1.
	alice.Send(&protocol.Typing{Room: "general"})
	if it := clusterModAwait[*protocol.IsTyping](t, bob, "alice typing on node 1", nil); it.Name != "alice" || it.Room != "general" {
		t.Fatalf("%+v", it)
	}

	// Search on node 0: the edited text, in alice's rooms only. Each
	// node indexes the stream on its own, a moment behind: the search is
	// asked again (at the server's search rate) until the edit is in.
	deadline := time.Now().Add(15 * time.Second)
	for {
		alice.Send(&protocol.Search{Query: "cluster world"})
		r := clusterModAwait[*protocol.Results](t, alice, "RESULTS", nil)
		if len(r.Hits) == 1 && r.Hits[0].Room == "general" && r.Hits[0].Seq == one {
			break
		}
		if len(r.Hits) > 1 || time.Now().After(deadline) {
			t.Fatalf("alice's search on node 0: %+v", r)
		}
	}
	alice.Send(&protocol.Search{Query: "elsewhere"})
	if r := clusterModAwait[*protocol.Results](t, alice, "RESULTS", nil); len(r.Hits) != 0 {
		t.Fatalf("alice found a room she is not in: %+v", r)
	}
}

// clusterModJoinResume joins room on a new connection to addr, resuming
// after seq after.
func clusterModJoinResume(t *testing.T, addr, room, name string, after uint64) (*testserver.Raw, *protocol.Joined) {
	t.Helper()
	r, _ := testserver.Handshake(t, addr)
	r.Send(&protocol.Join{Room: room, Name: name, Resume: true, After: after})
	return r, clusterModAwait[*protocol.Joined](t, r, name+" resumes "+room, nil)
}

// clusterAcked waits for the ACK of id; an ERROR with the id fails.
func clusterAcked(t *testing.T, r *testserver.Raw, id string) uint64 {
	t.Helper()
	_ = r.Conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	defer r.Conn.SetReadDeadline(time.Time{})
	for {
		m := clusterModAwait(t, r, "the ACK of "+id, func(m protocol.Message) bool {
			switch v := m.(type) {
			case *protocol.Ack:
				return v.ID == id
			case *protocol.Error:
				return v.ID == id
			}
			return false
		})
		if a, ok := m.(*protocol.Ack); ok {
			return a.Seq
		}
		t.Fatalf("%s refused: %v", id, m)
	}
}
