package client_test

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"

	"chat/client"
	"chat/internal/clienttest"
	"chat/internal/testserver"
	"chat/protocol"
)

// These tests run replies, edits, deletions, reactions, typing and search
// between clients through the real server.

// needMessages fails a test when the server does not act on messages
// (protocol.WelcomeMessages).
func needMessages(t *testing.T, srv *testserver.Server) {
	t.Helper()
	raw, w := testserver.Handshake(t, srv.Addr)
	raw.Conn.Close()
	if w.Flags&protocol.WelcomeMessages == 0 {
		t.Fatal("the server does not announce protocol.WelcomeMessages")
	}
}

// bothStores runs test on a single server (SQLite) and on a server in
// cluster mode (NATS JetStream).
func bothStores(t *testing.T, test func(*testing.T, testserver.Options)) {
	t.Run("single", func(t *testing.T) { test(t, testserver.Options{}) })
	t.Run("cluster", func(t *testing.T) { test(t, testserver.Options{Args: []string{"-nats", startNATS(t)}}) })
}

func waitUpdated(t *testing.T, r *clienttest.Recorder, match func(client.Updated) bool) client.Updated {
	t.Helper()
	return waitEvent(t, r, match)
}

func acked(t *testing.T, r *clienttest.Recorder, id string) client.Acked {
	t.Helper()
	return waitEvent(t, r, func(a client.Acked) bool { return a.ID == id })
}

func refused(t *testing.T, r *clienttest.Recorder, id string, code protocol.ErrorCode) {
	t.Helper()
	e := waitEvent(t, r, func(e client.RoomError) bool { return slices.Contains(e.Unsent, id) })
	if !e.Stays || len(e.Unsent) != 1 || e.Err == nil || e.Err.Code != code {
		t.Fatalf("RoomError %+v (%v), want %v for this change alone, the room kept", e, e.Err, code)
	}
}

func must(t *testing.T) func(string, error) string {
	return func(id string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
}

// TestActingOnMessagesBetweenTwoClients: alice writes, bob replies to it;
// alice edits her message and both see the new text marked edited; bob's
// edit and deletion of it are refused (another name's), his reaction
// counts once however often he reacts and goes when he takes it back;
// alice deletes it and both see it deleted; a change of a deleted or
// unknown message is refused with not-found. A late joiner sees the final
// state in the history and in a page of it, the reply pointing at it.
func TestActingOnMessagesBetweenTwoClients(t *testing.T) {
	bothStores(t, testActingOnMessagesBetweenTwoClients)
}

func testActingOnMessagesBetweenTwoClients(t *testing.T, opts testserver.Options) {
	srv := testserver.Start(t, opts)
	needMessages(t, srv)
	ok := must(t)
	alice, _ := inRoom(t, client.Config{Addr: srv.Addr, Name: "alice"}, "acts")
	bob, _ := inRoom(t, client.Config{Addr: srv.Addr, Name: "bob"}, "acts")

	ok(alice.C.Send("acts", "first draft"))
	first := bob.WaitText(t, "first draft").Seq
	ok(bob.C.SendReply("acts", "what draft?", first))
	if m := alice.WaitText(t, "what draft?"); m.Reply != first {
		t.Fatalf("reply %+v, want Reply %d", m, first)
	}

	edit := ok(alice.C.Edit("acts", first, "final text"))
	a := acked(t, alice, edit)
	for name, r := range map[string]*clienttest.Recorder{"alice": alice, "bob": bob} {
		u := waitUpdated(t, r, func(u client.Updated) bool { return u.Kind == protocol.ChangeEdit })
		if u.Seq != a.Seq || u.Target != first || u.Actor != "alice" || u.Own != (name == "alice") || u.History ||
			u.Message == nil || u.Message.Text != "final text" || u.Message.Edited.IsZero() || u.Message.Sender != "alice" {
			t.Errorf("%s: Updated %+v (message %+v)", name, u, u.Message)
		}
	}

	refused(t, bob, ok(bob.C.Edit("acts", first, "hijacked")), protocol.CodeForbidden)
	refused(t, bob, ok(bob.C.Delete("acts", first)), protocol.CodeForbidden)

	for range 2 { // idempotent, not a toggle
		acked(t, bob, ok(bob.C.React("acts", first, "👍", true)))
	}
	acked(t, alice, ok(alice.C.React("acts", first, "🎉", true)))
	u := waitUpdated(t, bob, func(u client.Updated) bool { return u.Kind == protocol.ChangeReact && u.Emoji == "🎉" })
	want := []client.Reaction{{Emoji: "👍", Count: 1, Names: []string{"bob"}, Mine: true}, {Emoji: "🎉", Count: 1, Names: []string{"alice"}}}
	if u.Message == nil || !sameReactions(u.Message.Reactions, want) {
		t.Fatalf("bob's view of the reactions: %+v", u.Message)
	}
	acked(t, bob, ok(bob.C.React("acts", first, "👍", false)))
	u = waitUpdated(t, alice, func(u client.Updated) bool { return u.Kind == protocol.ChangeUnreact })
	if u.Message == nil || !sameReactions(u.Message.Reactions, []client.Reaction{{Emoji: "🎉", Count: 1, Names: []string{"alice"}, Mine: true}}) {
		t.Fatalf("after bob took his back: %+v", u.Message)
	}

	acked(t, alice, ok(alice.C.Delete("acts", first)))
	for _, r := range []*clienttest.Recorder{alice, bob} {
		u := waitUpdated(t, r, func(u client.Updated) bool { return u.Kind == protocol.ChangeDelete })
		if u.Message == nil || !u.Message.Deleted || u.Message.Text != "" || len(u.Message.Reactions) != 0 {
			t.Errorf("deletion %+v (message %+v)", u, u.Message)
		}
	}
	refused(t, alice, ok(alice.C.Edit("acts", first, "back from the dead")), protocol.CodeNotFound)
	refused(t, alice, ok(alice.C.React("acts", 9999, "👀", true)), protocol.CodeNotFound)

	carol, _ := inRoom(t, client.Config{Addr: srv.Addr, Name: "carol"}, "acts")
	reply := carol.WaitText(t, "what draft?")
	var gone *client.Message
	for _, m := range carol.Messages() {
		if m.Seq == first {
			gone = &m
		}
	}
	if gone == nil || !gone.Deleted || gone.Text != "" || gone.Edited.IsZero() || !gone.History || reply.Reply != first {
		t.Errorf("carol's history: %+v, reply %+v\n%s", gone, reply, carol.Dump())
	}
	if err := carol.C.History("acts", 0, 50); err != nil {
		t.Fatal(err)
	}
	p := waitEvent[client.Page](t, carol, nil)
	var seqs []uint64
	for _, m := range p.Messages {
		seqs = append(seqs, m.Seq)
		switch m.Seq {
		case first:
			if !m.Deleted || m.Edited.IsZero() {
				t.Errorf("page: %+v", m)
			}
		case reply.Seq:
			if m.Reply != first {
				t.Errorf("page: %+v", m)
			}
		}
	}
	if !slices.Equal(seqs, []uint64{first, reply.Seq}) {
		t.Errorf("page seqs %v, want the two messages and no change entries", seqs)
	}
}

func sameReactions(a, b []client.Reaction) bool {
	return slices.EqualFunc(a, b, func(x, y client.Reaction) bool {
		return x.Emoji == y.Emoji && x.Count == y.Count && x.Mine == y.Mine && slices.Equal(x.Names, y.Names)
	})
}

// TestResumeGetsTheFinalState: bob is away while alice edits her message
// twice and reacts to it. Back, bob hears of each change (they count as
// seen), one of them (normally the last) carrying the message's final
// state, the others none; a change whose connection dropped before its ACK is sent again
// with its id after the reconnect and applied once.
func TestResumeGetsTheFinalState(t *testing.T) {
	bothStores(t, testResumeGetsTheFinalState)
}

func testResumeGetsTheFinalState(t *testing.T, opts testserver.Options) {
	srv := testserver.Start(t, opts)
	needMessages(t, srv)
	ok := must(t)
	var cut atomic.Bool
	atp := &tap{cutAfter: func(m protocol.Message) bool {
		ch, isChange := m.(*protocol.Change)
		return isChange && ch.Text == "v3" && cut.CompareAndSwap(false, true)
	}}
	alice, _ := inRoom(t, client.Config{Addr: srv.Addr, Name: "alice", Dial: atp.dial}, "resume")
	btp := &tap{}
	bob, _ := inRoom(t, client.Config{Addr: srv.Addr, Name: "bob", Dial: btp.dial}, "resume")
	ok(alice.C.Send("resume", "v1"))
	first := bob.WaitText(t, "v1").Seq

	btp.holdDials()
	btp.last().Close()
	bob.WaitState(t, client.Reconnecting)
	acked(t, alice, ok(alice.C.Edit("resume", first, "v2")))
	v3 := ok(alice.C.Edit("resume", first, "v3")) // its connection is cut as it goes
	alice.WaitState(t, client.Reconnecting)
	a := acked(t, alice, v3)
	acked(t, alice, ok(alice.C.React("resume", first, "🎉", true)))
	ok(alice.C.Send("resume", "after"))
	alice.WaitText(t, "after")

	btp.releaseDials()
	bob.WaitText(t, "after")
	var ups []client.Updated
	for _, ev := range bob.Events() {
		if u, isUp := ev.(client.Updated); isUp {
			ups = append(ups, u)
		}
	}
	if len(ups) != 3 {
		t.Fatalf("bob got %d Updated, want 3 (edit, edit applied once, react): %+v", len(ups), ups)
	}
	if ups[1].Seq != a.Seq {
		t.Errorf("the re-sent edit: Updated seq %d, ACK seq %d", ups[1].Seq, a.Seq)
	}
	// One of them (normally the last) carries the message as it is now.
	var final *client.Message
	for i, u := range ups {
		if !u.History || u.Target != first {
			t.Errorf("Updated %d: %+v", i, u)
		}
		if u.Message != nil {
			if final != nil {
				t.Errorf("Updated %d carries a state too: %+v", i, u.Message)
			}
			final = u.Message
		}
	}
	if m := final; m == nil || m.Text != "v3" || m.Edited.IsZero() ||
		!sameReactions(m.Reactions, []client.Reaction{{Emoji: "🎉", Count: 1, Names: []string{"alice"}}}) {
		t.Errorf("final state %+v", m)
	}
}

// TestTypingReachesTheOthers: alice's typing reaches bob as Typing, and
// her stop; never her own other device, nor herself.
func TestTypingReachesTheOthers(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	needMessages(t, srv)
	alice, _ := inRoom(t, client.Config{Addr: srv.Addr, Name: "alice", Secret: "alice's key"}, "typing")
	phone, _ := inRoom(t, client.Config{Addr: srv.Addr, Name: "alice", Secret: "alice's key"}, "typing")
	bob, _ := inRoom(t, client.Config{Addr: srv.Addr, Name: "bob"}, "typing")
	if err := alice.C.Typing("typing"); err != nil {
		t.Fatal(err)
	}
	if ty := waitEvent[client.Typing](t, bob, nil); ty != (client.Typing{Room: "typing", Name: "alice"}) {
		t.Fatalf("Typing %+v", ty)
	}
	alice.C.StopTyping("typing")
	waitEvent(t, bob, func(ty client.Typing) bool { return ty.Stopped && ty.Name == "alice" })
	// bob's message after it: alice's devices have had every frame before it.
	bob.C.Send("typing", "marker")
	alice.WaitText(t, "marker")
	phone.WaitText(t, "marker")
	for name, r := range map[string]*clienttest.Recorder{"alice": alice, "alice's phone": phone} {
		for _, ev := range r.Events() {
			if ty, isTyping := ev.(client.Typing); isTyping {
				t.Errorf("%s got %+v", name, ty)
			}
		}
	}
}

// TestSearchOnTheRealServer: alice finds messages of her rooms only,
// newest first, with the matched word's place; a deleted message is not
// found, an edited one only by its new text; a room she is not in is
// forbidden, a query without words invalid; a limit pages back.
func TestSearchOnTheRealServer(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	needMessages(t, srv)
	ok := must(t)
	alice, _ := inRoom(t, client.Config{Addr: srv.Addr, Name: "alice"}, "found")
	bob, _ := inRoom(t, client.Config{Addr: srv.Addr, Name: "bob"}, "hidden")
	ok(bob.C.Send("hidden", "the needle is here too"))
	bob.WaitText(t, "the needle is here too")

	ok(alice.C.Send("found", "an old needle"))
	ok(alice.C.Send("found", "a haystack"))
	ok(alice.C.Send("found", "a deleted needle"))
	ok(alice.C.Send("found", "a newer needle"))
	del := alice.WaitText(t, "a deleted needle").Seq
	hay := alice.WaitText(t, "a haystack").Seq
	alice.WaitText(t, "a newer needle")
	acked(t, alice, ok(alice.C.Delete("found", del)))
	acked(t, alice, ok(alice.C.Edit("found", hay, "a haystack with a needle")))

	ctx, cancel := context.WithTimeout(context.Background(), clienttest.Timeout)
	defer cancel()
	res, err := alice.C.Search(ctx, "needle", client.SearchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range res.Hits {
		got = append(got, h.Text)
		if h.Room != "found" || len(h.Matches) != 1 || h.Text[h.Matches[0].Start:h.Matches[0].End] != "needle" {
			t.Errorf("hit %+v", h)
		}
	}
	if want := []string{"a newer needle", "a haystack with a needle", "an old needle"}; !slices.Equal(got, want) {
		t.Errorf("hits %q, want %q (newest first; the edited one by its new text, the deleted one not at all)", got, want)
	}
	if r, _ := alice.C.Search(ctx, "haystack", client.SearchOptions{}); len(r.Hits) != 1 {
		t.Errorf("haystack: %+v", r)
	}

	page, err := alice.C.Search(ctx, "needle", client.SearchOptions{Room: "found", Limit: 1})
	if err != nil || len(page.Hits) != 1 || !page.More {
		t.Fatalf("a page of 1: %+v, %v", page, err)
	}
	// Before is exclusive, in milliseconds: the next page has only older
	// messages (those of the same millisecond are skipped).
	next, err := alice.C.Search(ctx, "needle", client.SearchOptions{Room: "found", Before: page.Hits[0].Time})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range next.Hits {
		if !h.Time.Before(page.Hits[0].Time) {
			t.Errorf("the next page has %+v, not older than %v", h, page.Hits[0].Time)
		}
	}

	_, err = alice.C.Search(ctx, "needle", client.SearchOptions{Room: "hidden"})
	wantCode(t, err, protocol.CodeForbidden)
	_, err = alice.C.Search(ctx, "!!! ...", client.SearchOptions{})
	wantCode(t, err, protocol.CodeInvalid)
	var perr *protocol.Error
	if errors.As(err, &perr) && perr.Closing() {
		t.Errorf("a refused search closes the connection: %v", perr)
	}
	if alice.C.State() != client.Connected {
		t.Errorf("state %v", alice.C.State())
	}
}
