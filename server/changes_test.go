package main

// Acting on messages through real sockets: the server binary, raw
// protocol connections. Replies, edits, deletions and reactions reach the
// members live, a late joiner and a resumer in their final state; another
// name's message is refused; a deleted text leaves the database; typing
// indicators reach the others only; search keeps to the searcher's rooms.

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"chat/internal/testserver"
	"chat/protocol"
)

// msgJoin dials (from 127.0.0.1), checks WELCOME's messages flag and joins.
func msgJoin(t *testing.T, srv *testserver.Server, room, name, secret string) (*testserver.Raw, *protocol.Joined) {
	t.Helper()
	r, w := testserver.Handshake(t, srv.Addr)
	if w.Flags&protocol.WelcomeMessages == 0 {
		t.Fatalf("WELCOME flags %b: no messages bit", w.Flags)
	}
	r.Send(&protocol.Join{Room: room, Name: name, Secret: secret})
	return r, await[*protocol.Joined](t, r, name+" joined "+room, nil)
}

// sendAcked sends and waits for the ACK; it returns the seq.
func sendAcked(t *testing.T, r *testserver.Raw, m protocol.Message, id string) uint64 {
	t.Helper()
	r.Send(m)
	return await(t, r, "the ACK of "+id, func(a *protocol.Ack) bool { return a.ID == id }).Seq
}

// history reads a join's replay: every MESSAGE and UPDATE up to head.
func replay(t *testing.T, r *testserver.Raw, head uint64) (msgs []*protocol.Msg, ups []*protocol.Update) {
	t.Helper()
	for seq := uint64(0); seq < head; {
		m, err := r.Read()
		if err != nil {
			t.Fatalf("reading the replay: %v", err)
		}
		switch v := m.(type) {
		case *protocol.Msg:
			msgs, seq = append(msgs, v), v.Seq
		case *protocol.Update:
			ups, seq = append(ups, v), v.Seq
		case *protocol.Error:
			t.Fatalf("in the replay: %v", v)
		}
	}
	return msgs, ups
}

// TestMessageActionsLiveLateAndResumed: reply, edit, delete, react and
// unreact between two clients, then a late joiner, a resumer from before
// the changes, and the same after a restart.
func TestMessageActionsLiveLateAndResumed(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	alice, _ := msgJoin(t, srv, "general", "alice", "alice-key")
	bob, _ := msgJoin(t, srv, "general", "bob", "bob-key")
	// The watcher only reads: what it gets live is checked in order
	// (the senders' reads skip frames while they wait for ACKs).
	watcher, _ := msgJoin(t, srv, "general", "watcher", "")

	one := sendAcked(t, alice, &protocol.Send{Room: "general", ID: "a1", Text: "hello wrld"}, "a1")
	// bob answers what he has seen: a reply to a message not yet
	// delivered to the room is refused (alice's ACK comes first).
	await(t, bob, "alice's message", func(m *protocol.Msg) bool { return m.Seq == one })
	two := sendAcked(t, bob, &protocol.Send{Room: "general", ID: "b1", Text: "hi alice", Reply: one}, "b1")
	if m := await(t, watcher, "bob's reply", func(m *protocol.Msg) bool { return m.Seq == two }); m.Reply != one {
		t.Fatalf("the reply arrived as %+v", m)
	}
	// Two edits, two reactions and one taken back, a message deleted.
	sendAcked(t, alice, &protocol.Change{Room: "general", Kind: protocol.ChangeEdit, Target: one, ID: "e1", Text: "hello wold"}, "e1")
	sendAcked(t, alice, &protocol.Change{Room: "general", Kind: protocol.ChangeEdit, Target: one, ID: "e2", Text: "hello world"}, "e2")
	sendAcked(t, bob, &protocol.Change{Room: "general", Kind: protocol.ChangeReact, Target: one, ID: "r1", Text: "👍"}, "r1")
	sendAcked(t, alice, &protocol.Change{Room: "general", Kind: protocol.ChangeReact, Target: one, ID: "r2", Text: "🎉"}, "r2")
	last := sendAcked(t, alice, &protocol.Change{Room: "general", Kind: protocol.ChangeUnreact, Target: one, ID: "r3", Text: "🎉"}, "r3")
	secret := sendAcked(t, bob, &protocol.Send{Room: "general", ID: "b2", Text: "my password is hunter2"}, "b2")
	del := sendAcked(t, bob, &protocol.Change{Room: "general", Kind: protocol.ChangeDelete, Target: secret, ID: "d1"}, "d1")

	// Live: every change as UPDATE with the target's new state.
	u := await(t, watcher, "the second edit", func(u *protocol.Update) bool {
		return u.Kind == protocol.ChangeEdit && u.State != nil && u.State.Text == "hello world"
	})
	if u.Actor != "alice" || u.Target != one || u.State.Edited == 0 || u.State.ID != "a1" {
		t.Fatalf("the edit's UPDATE %+v", u)
	}
	u = await(t, watcher, "alice's reaction", func(u *protocol.Update) bool { return u.Kind == protocol.ChangeReact && u.Actor == "alice" })
	if u.Emoji != "🎉" || len(u.State.Reactions) != 2 || u.State.Reactions[0].Emoji != "👍" || u.State.Reactions[1].Names[0] != "alice" {
		t.Fatalf("the reaction's UPDATE %+v", u)
	}
	u = await(t, watcher, "the unreaction", func(u *protocol.Update) bool { return u.Kind == protocol.ChangeUnreact })
	if u.Seq != last || len(u.State.Reactions) != 1 || u.State.Reactions[0].Count != 1 || u.State.Reactions[0].Names[0] != "bob" {
		t.Fatalf("the unreaction's UPDATE %+v", u)
	}
	u = await(t, watcher, "the delete", func(u *protocol.Update) bool { return u.Kind == protocol.ChangeDelete })
	if u.Seq != del || u.Target != secret || u.State == nil || u.State.Text != "" || u.State.Edited == 0 {
		t.Fatalf("the delete's UPDATE %+v", u)
	}

	final := func(what string, msgs []*protocol.Msg) {
		t.Helper()
		var m1, m2, m3 *protocol.Msg
		for _, m := range msgs {
			switch m.Seq {
			case one:
				m1 = m
			case two:
				m2 = m
			case secret:
				m3 = m
			}
		}
		if m1 == nil || m1.Text != "hello world" || m1.Edited == 0 || len(m1.Reactions) != 1 || m1.Reactions[0].Emoji != "👍" ||
			m1.Reactions[0].Count != 1 || fmt.Sprint(m1.Reactions[0].Names) != "[bob]" {
			t.Fatalf("%s: message 1 is %+v", what, m1)
		}
		if m2 == nil || m2.Reply != one || m2.Text != "hi alice" {
			t.Fatalf("%s: the reply is %+v", what, m2)
		}
		if m3 == nil || m3.Text != "" || m3.Edited == 0 {
			t.Fatalf("%s: the deleted message is %+v", what, m3)
		}
	}
	late := func(what string) {
		t.Helper()
		carol, j := msgJoin(t, srv, "general", "carol", "")
		msgs, ups := replay(t, carol, j.Head)
		final(what, msgs)
		if len(ups) != 6 {
			t.Fatalf("%s: %d UPDATEs, want 6", what, len(ups))
		}
		for _, u := range ups {
			if u.State != nil {
				t.Fatalf("%s: an UPDATE of a replayed message carries its state: %+v", what, u)
			}
		}
		carol.Send(&protocol.Leave{Room: "general"})
		await[*protocol.Left](t, carol, "LEFT", nil)
	}
	resume := func(what string) {
		t.Helper()
		dave, _ := testserver.Handshake(t, srv.Addr)
		dave.Send(&protocol.Join{Room: "general", Name: "dave", Resume: true, After: two})
		j := await[*protocol.Joined](t, dave, "dave's JOINED", nil)
		if j.After != two {
			t.Fatalf("%s: resumed after %d", what, j.After)
		}
		msgs, ups := replay(t, dave, j.Head)
		var stated []*protocol.Update
		for _, u := range ups {
			if u.State != nil {
				stated = append(stated, u)
			}
		}
		// Message 1's final state once, on its last change; the deleted
		// message is replayed itself, its delete without state.
		if len(ups) != 6 || len(stated) != 1 || stated[0].Seq != last || stated[0].State.Text != "hello world" ||
			len(stated[0].State.Reactions) != 1 || len(msgs) != 1 || msgs[0].Seq != secret || msgs[0].Text != "" {
			t.Fatalf("%s: the resume gave %d messages, UPDATEs %+v", what, len(msgs), ups)
		}
		dave.Send(&protocol.Leave{Room: "general"})
		await[*protocol.Left](t, dave, "LEFT", nil)
	}
	late("a late joiner")
	resume("a resumer")

	// A restart keeps every change; the replay is then read from the
	// database.
	srv.Restart()
	late("a late joiner after a restart")
	resume("a resumer after a restart")

	// HISTORY: pages hold messages only; full ones carry the rest.
	r, _ := msgJoin(t, srv, "general", "erin", "")
	r.Send(&protocol.History{Room: "general", Full: true})
	page := await[*protocol.Page](t, r, "PAGE", nil)
	var fromPage []*protocol.Msg
	for i := range page.Messages {
		fromPage = append(fromPage, &page.Messages[i])
	}
	if !page.Full || !page.First || len(fromPage) != 3 {
		t.Fatalf("the full page %+v", page)
	}
	final("the full page", fromPage)

	// The deleted text is gone from the database files.
	if _, err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(srv.Data, "chat.db*"))
	if len(files) == 0 {
		t.Fatal("no database files")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("hunter2")) {
			t.Fatalf("%s still holds the deleted text", f)
		}
		if filepath.Base(f) == "chat.db" && !bytes.Contains(b, []byte("hello world")) {
			t.Fatalf("%s does not hold the edited text: not the database?", f)
		}
	}
}

// TestChangesOfAnotherNameRefused: edit and delete of another name's
// message are refused with forbidden and the change's id, the connection
// stays; a name without a key may not edit; a room operator deletes.
func TestChangesOfAnotherNameRefused(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	op, _ := msgJoin(t, srv, "general", "op", "op-key") // the first proven name: operator
	alice, _ := msgJoin(t, srv, "general", "alice", "alice-key")
	bob, _ := msgJoin(t, srv, "general", "bob", "bob-key")
	anon, _ := msgJoin(t, srv, "general", "anon", "")
	one := sendAcked(t, alice, &protocol.Send{Room: "general", ID: "a1", Text: "alice's own"}, "a1")
	mine := sendAcked(t, anon, &protocol.Send{Room: "general", ID: "n1", Text: "anon's"}, "n1")

	for _, c := range []*protocol.Change{
		{Room: "general", Kind: protocol.ChangeEdit, Target: one, ID: "x1", Text: "bob was here"},
		{Room: "general", Kind: protocol.ChangeDelete, Target: one, ID: "x2"},
	} {
		bob.Send(c)
		if e := refusal(t, bob, "bob's "+c.Kind.String(), protocol.CodeForbidden, "general"); e.ID != c.ID {
			t.Fatalf("the refusal of %s carries id %q", c.ID, e.ID)
		}
	}
	anon.Send(&protocol.Change{Room: "general", Kind: protocol.ChangeEdit, Target: mine, ID: "x3", Text: "edited"})
	if e := refusal(t, anon, "an edit without a name key", protocol.CodeForbidden, "general"); e.ID != "x3" {
		t.Fatalf("id %q", e.ID)
	}
	bob.Send(&protocol.Change{Room: "general", Kind: protocol.ChangeReact, Target: one, ID: "x4", Text: "🦄"})
	if e := refusal(t, bob, "an unknown reaction", protocol.CodeInvalid, "general"); e.ID != "x4" {
		t.Fatalf("id %q", e.ID)
	}
	bob.Send(&protocol.Change{Room: "general", Kind: protocol.ChangeEdit, Target: 99, ID: "x5", Text: "?"})
	if e := refusal(t, bob, "a change of no message", protocol.CodeNotFound, "general"); e.ID != "x5" {
		t.Fatalf("id %q", e.ID)
	}
	// Still connected, and the message unchanged.
	sendAcked(t, bob, &protocol.Send{Room: "general", ID: "b1", Text: "still here"}, "b1")
	// The room's operator may delete it.
	sendAcked(t, op, &protocol.Change{Room: "general", Kind: protocol.ChangeDelete, Target: one, ID: "o1"}, "o1")
	u := await(t, alice, "the operator's delete", func(u *protocol.Update) bool { return u.Kind == protocol.ChangeDelete })
	if u.Actor != "op" || u.Target != one || u.State == nil || u.State.Text != "" || u.State.Sender != "alice" {
		t.Fatalf("%+v", u)
	}
	srv.WaitLog("moderation", func(rec map[string]any) bool { return rec["action"] == "delete" && rec["actor"] == "op" })
}

// TestTypingReachesOthersOnly: IS-TYPING reaches the other names in the
// room, not the typist's own devices; a second TYPING within 2 s is
// dropped; rooms above -typing-max-members get none, and JOINED says so.
func TestTypingReachesOthersOnly(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"-typing-max-members", "2"}})
	alice, j := msgJoin(t, srv, "small", "alice", "alice-key")
	if j.Modes&protocol.ModeNoTyping != 0 {
		t.Fatalf("modes %b in a room of one", j.Modes)
	}
	alice2, _ := msgJoin(t, srv, "small", "alice", "alice-key")
	bob, _ := msgJoin(t, srv, "small", "bob", "bob-key")
	alice.Send(&protocol.Typing{Room: "small"})
	alice.Send(&protocol.Typing{Room: "small"}) // within 2 s: dropped
	alice.Send(&protocol.Typing{Room: "small", Stopped: true})
	// bob types after alice: once alice's other device has bob's
	// IS-TYPING, it would have had alice's own before, had there been any.
	bob.Send(&protocol.Typing{Room: "small"})
	first := await[*protocol.IsTyping](t, bob, "alice typing", nil)
	second := await[*protocol.IsTyping](t, bob, "alice stopping", nil)
	if first.Name != "alice" || first.Stopped || second.Name != "alice" || !second.Stopped || first.Room != "small" {
		t.Fatalf("bob got %+v then %+v", first, second)
	}
	if it := await[*protocol.IsTyping](t, alice2, "bob typing", nil); it.Name != "bob" {
		t.Fatalf("alice's other device got %+v", it)
	}
	// Notes reach a node in the order they were sent: alice's own
	// would come before bob's.
	if it := await[*protocol.IsTyping](t, alice, "bob typing at alice", nil); it.Name != "bob" {
		t.Fatalf("alice got her own typing: %+v", it)
	}

	// Three names: above the size.
	carol, _ := msgJoin(t, srv, "big", "carol", "")
	dave, _ := msgJoin(t, srv, "big", "dave", "")
	erin, j := msgJoin(t, srv, "big", "erin", "")
	if j.Modes&protocol.ModeNoTyping == 0 {
		t.Fatalf("modes %b in a room of three, above -typing-max-members 2", j.Modes)
	}
	erin.Send(&protocol.Typing{Room: "big"})
	sendAcked(t, erin, &protocol.Send{Room: "big", ID: "e1", Text: "hello"}, "e1")
	for _, r := range []*testserver.Raw{carol, dave} {
		for {
			m, err := r.Read()
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := m.(*protocol.IsTyping); ok {
				t.Fatalf("%s got a typing indicator in a room above the size", r)
			}
			if msg, ok := m.(*protocol.Msg); ok && msg.ID == "e1" {
				break
			}
		}
	}
}

// TestSearchKeepsToTheSearchersRooms: SEARCH finds the rooms the
// connection joined and its name's direct messages, never a room it is
// not in nor a deleted message; an edited message matches its new text.
func TestSearchKeepsToTheSearchersRooms(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	alice, _ := msgJoin(t, srv, "general", "alice", "alice-key")
	alice.Send(&protocol.Identify{Name: "alice", Secret: "alice-key"})
	await[*protocol.Identified](t, alice, "IDENTIFIED", nil)
	bob, _ := msgJoin(t, srv, "general", "bob", "bob-key")
	bob.Send(&protocol.Join{Room: "secret", Name: "bob", Secret: "bob-key"})
	await[*protocol.Joined](t, bob, "bob in secret", nil)
	bob.Send(&protocol.Join{Room: "@alice@bob", Name: "bob", Secret: "bob-key"})
	await[*protocol.Joined](t, bob, "bob in the DM", nil)

	g1 := sendAcked(t, bob, &protocol.Send{Room: "general", ID: "g1", Text: "the pineapple pizza is here"}, "g1")
	sendAcked(t, bob, &protocol.Send{Room: "secret", ID: "s1", Text: "secret pineapple stash"}, "s1")
	d1 := sendAcked(t, bob, &protocol.Send{Room: "@alice@bob", ID: "d1", Text: "Pineapple for you"}, "d1")
	g2 := sendAcked(t, bob, &protocol.Send{Room: "general", ID: "g2", Text: "pineapple regrets"}, "g2")
	g3 := sendAcked(t, bob, &protocol.Send{Room: "general", ID: "g3", Text: "pineapple typo"}, "g3")
	sendAcked(t, bob, &protocol.Change{Room: "general", Kind: protocol.ChangeDelete, Target: g2, ID: "x1"}, "x1")
	sendAcked(t, bob, &protocol.Change{Room: "general", Kind: protocol.ChangeEdit, Target: g3, ID: "x2", Text: "mango typo"}, "x2")

	search := func(q *protocol.Search) *protocol.Results {
		t.Helper()
		alice.Send(q)
		return await[*protocol.Results](t, alice, "RESULTS for "+q.Query, nil)
	}
	res := search(&protocol.Search{Query: "pineapple"})
	var found []string
	for _, h := range res.Hits {
		found = append(found, fmt.Sprint(h.Room, "/", h.Seq))
		if h.Room == "general" && (len(h.Matches) != 1 || h.Text[h.Matches[0].Start:h.Matches[0].End] != "pineapple") {
			t.Fatalf("hit %+v: the match is not the word", h)
		}
	}
	slices.Sort(found)
	if want := fmt.Sprint([]string{fmt.Sprint("@alice@bob/", d1), fmt.Sprint("general/", g1)}); fmt.Sprint(found) != want {
		t.Fatalf("alice found %v, want %v", found, want)
	}
	if res := search(&protocol.Search{Query: "mango", Room: "General"}); len(res.Hits) != 1 || res.Hits[0].Seq != g3 {
		t.Fatalf("the edited message: %+v", res)
	}
	if res := search(&protocol.Search{Query: "regrets"}); len(res.Hits) != 0 {
		t.Fatalf("the deleted message was found: %+v", res)
	}
	alice.Send(&protocol.Search{Query: "stash", Room: "secret"})
	refusal(t, alice, "a search of a room not joined", protocol.CodeForbidden, "secret")
	alice.Send(&protocol.Search{Query: "  "})
	refusal(t, alice, "a search without words", protocol.CodeInvalid, "")
	// Still connected.
	if res := search(&protocol.Search{Query: "pizza", Limit: 1}); len(res.Hits) != 1 {
		t.Fatalf("%+v", res)
	}
}
