package client_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"chat/client"
	"chat/internal/clienttest"
	"chat/protocol"
)

// These tests play a server with protocol.WelcomeMessages (the fake of
// inbox_test.go) to pin down the frames the client sends for replies,
// changes, typing and search, and how it reads the answers. The same
// behaviour against the real server: messages_real_test.go.

func withMessages(f *fake) { f.welcome.Flags |= protocol.WelcomeMessages }

// skipTo returns the next frame of type T, skipping IDENTIFY (the
// first frame of every connection) and READ.
func skipTo[T protocol.Message](t *testing.T, f *fake) (T, *fakeConn) {
	t.Helper()
	for {
		fr := f.next(t)
		switch fr.msg.(type) {
		case *protocol.Identify, *protocol.Read:
			continue
		}
		m, ok := fr.msg.(T)
		if !ok {
			var zero T
			t.Fatalf("the client sent %T %+v, want %T", fr.msg, fr.msg, zero)
		}
		return m, fr.c
	}
}

// TestChangesGoThroughTheOutbox: a reply, an edit, a deletion, a reaction
// and its undoing go out as SEND (with its reply) and CHANGEs; the
// connection drops before any is acknowledged; after the re-join they go
// again, with the same ids, in the same order, and the ACKs settle them.
// What the client can tell is wrong is refused at once.
func TestChangesGoThroughTheOutbox(t *testing.T) {
	f := startFake(t, withMessages)
	var mu sync.Mutex
	seq := uint64(10)
	f.setHandle(func(c *fakeConn, m protocol.Message) bool {
		if c.n == 0 {
			return false // the first connection answers nothing
		}
		mu.Lock()
		defer mu.Unlock()
		switch m := m.(type) {
		case *protocol.Send:
			seq++
			c.write(&protocol.Ack{Room: m.Room, ID: m.ID, Seq: seq, Time: 1})
		case *protocol.Change:
			seq++
			c.write(&protocol.Ack{Room: m.Room, ID: m.ID, Seq: seq, Time: 1})
		}
		return false
	})
	alice := fastClient(t, f.addr(), "alice")
	alice.C.Join("general")
	alice.WaitJoined(t, "general")
	skipTo[*protocol.Join](t, f)

	for what, err := range map[string]error{
		"an empty edit":       second(alice.C.Edit("general", 3, "")),
		"an edit of seq 0":    second(alice.C.Edit("general", 0, "x")),
		"a delete of seq 0":   second(alice.C.Delete("general", 0)),
		"an unknown reaction": second(alice.C.React("general", 3, "🦄", true)),
		"an empty reply":      second(alice.C.SendReply("general", "", 3)),
	} {
		if err == nil {
			t.Errorf("%s: no error", what)
		}
	}
	if _, err := alice.C.Edit("random", 3, "x"); !errors.Is(err, client.ErrNotInRoom) {
		t.Errorf("an edit in a room not joined: %v", err)
	}

	reply, _ := alice.C.SendReply("General", "agreed", 7)
	edit, _ := alice.C.Edit("general", 3, "fixed")
	del, _ := alice.C.Delete("general", 4)
	react, _ := alice.C.React("general", 3, "👍", true)
	unreact, _ := alice.C.React("general", 3, "👍", false)
	want := []protocol.Message{
		&protocol.Send{Room: "general", ID: reply, Text: "agreed", Reply: 7},
		&protocol.Change{Room: "general", Kind: protocol.ChangeEdit, Target: 3, ID: edit, Text: "fixed"},
		&protocol.Change{Room: "general", Kind: protocol.ChangeDelete, Target: 4, ID: del},
		&protocol.Change{Room: "general", Kind: protocol.ChangeReact, Target: 3, ID: react, Text: "👍"},
		&protocol.Change{Room: "general", Kind: protocol.ChangeUnreact, Target: 3, ID: unreact, Text: "👍"},
	}
	expectFrames := func(conn int) {
		t.Helper()
		for _, w := range want {
			fr := f.next(t)
			if fr.c.n != conn || string(protocol.Encode(fr.msg)) != string(protocol.Encode(w)) {
				t.Fatalf("connection %d sent %T %+v, want %+v on connection %d", fr.c.n, fr.msg, fr.msg, w, conn)
			}
		}
	}
	expectFrames(0)
	if p := alice.C.Pending(); len(p) != 5 {
		t.Fatalf("pending %d, want 5", len(p))
	}
	f.drop()
	if j, _ := skipTo[*protocol.Join](t, f); !j.Resume {
		t.Fatalf("re-JOIN %+v", j)
	}
	expectFrames(1)
	for i, id := range []string{reply, edit, del, react, unreact} {
		a := waitEvent[client.Acked](t, alice, func(a client.Acked) bool { return a.ID == id })
		if a.Seq != uint64(11+i) {
			t.Errorf("Acked %d: seq %d, want %d", i, a.Seq, 11+i)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), clienttest.Timeout)
	defer cancel()
	if err := alice.C.Drain(ctx); err != nil {
		t.Fatal(err)
	}
}

func second[T any](_ T, err error) error { return err }

// TestRefusalSettlesTheChangeItNames: the server refuses a change and a
// muted message by their ids (ERROR's id) while earlier ones are still
// unacknowledged: the client gives up exactly those, at once, and keeps
// the room; the others are acknowledged afterwards.
func TestRefusalSettlesTheChangeItNames(t *testing.T) {
	f := startFake(t, withMessages)
	var mu sync.Mutex
	var held []*protocol.Ack
	f.setHandle(func(c *fakeConn, m protocol.Message) bool {
		mu.Lock()
		defer mu.Unlock()
		switch m := m.(type) {
		case *protocol.Change:
			if m.Target == 99 {
				e := protocol.NewError(protocol.CodeNotFound, m.Room, "no message 99")
				e.ID = m.ID
				c.write(e)
			} else {
				held = append(held, &protocol.Ack{Room: m.Room, ID: m.ID, Seq: 50 + uint64(len(held)), Time: 1})
			}
		case *protocol.Send:
			if m.Text == "muted" {
				e := protocol.NewError(protocol.CodeMuted, m.Room, "you are muted")
				e.ID = m.ID
				c.write(e)
			} else {
				held = append(held, &protocol.Ack{Room: m.Room, ID: m.ID, Seq: 50 + uint64(len(held)), Time: 1})
			}
		case *protocol.List: // the test's signal: acknowledge what was held
			for _, a := range held {
				c.write(a)
			}
			c.write(&protocol.Rooms{Query: m.Query})
		}
		return false
	})
	alice := fastClient(t, f.addr(), "alice")
	alice.C.Join("general")
	alice.WaitJoined(t, "general")
	good, _ := alice.C.React("general", 3, "🎉", true)
	bad, _ := alice.C.Edit("general", 99, "no such")
	sent, _ := alice.C.Send("general", "fine")
	muted, _ := alice.C.Send("general", "muted")

	e := waitEvent[client.RoomError](t, alice, nil)
	if !e.Stays || !slices.Equal(e.Unsent, []string{bad}) || e.Err.Code != protocol.CodeNotFound {
		t.Fatalf("RoomError %+v, want the edit %q alone given up", e, bad)
	}
	e = waitEvent[client.RoomError](t, alice, func(e client.RoomError) bool { return e.Err.Code == protocol.CodeMuted })
	if !e.Stays || !slices.Equal(e.Unsent, []string{muted}) {
		t.Fatalf("RoomError %+v, want the muted message alone given up", e)
	}
	if p := alice.C.Pending(); len(p) != 2 || !slices.Contains(p, good) || !slices.Contains(p, sent) {
		t.Fatalf("pending %q, want the reaction and the first message", p)
	}
	alice.C.ListRooms("")
	waitEvent[client.Acked](t, alice, func(a client.Acked) bool { return a.ID == good })
	waitEvent[client.Acked](t, alice, func(a client.Acked) bool { return a.ID == sent })
	ctx, cancel := context.WithTimeout(context.Background(), clienttest.Timeout)
	defer cancel()
	if err := alice.C.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	for _, ev := range alice.Events() {
		if e, ok := ev.(client.RoomError); ok && !e.Stays {
			t.Errorf("the room was lost: %+v", e)
		}
	}
}

// TestUpdatesAndTyping: UPDATEs become Updated events (the target's
// state as a Message, with its reactions marked ours where our name is
// among them) and move the resume point like messages; a replayed UPDATE
// without state has no Message. IS-TYPING becomes Typing, except for our
// own name.
func TestUpdatesAndTyping(t *testing.T) {
	f := startFake(t, withMessages)
	f.setHandle(func(c *fakeConn, m protocol.Message) bool {
		j, ok := m.(*protocol.Join)
		if !ok || c.n > 0 {
			return false
		}
		c.write(&protocol.Joined{Room: j.Room, Name: j.Name, Head: 3, Count: 2, Members: []string{"alice", "bob"}},
			&protocol.Msg{Room: j.Room, Seq: 1, Time: 1000, Sender: "bob", ID: "b1", Text: "helo", Edited: 2500, Reply: 0},
			&protocol.Update{Room: j.Room, Seq: 2, Time: 2000, Actor: "bob", Kind: protocol.ChangeEdit, Target: 1},
			&protocol.Update{Room: j.Room, Seq: 3, Time: 2500, Actor: "bob", Kind: protocol.ChangeEdit, Target: 1,
				State: &protocol.Msg{Seq: 1, Time: 1000, Sender: "bob", ID: "b1", Text: "hello", Edited: 2500}},
			// Live, after the join:
			&protocol.Update{Room: j.Room, Seq: 4, Time: 3000, Actor: "Alice", Kind: protocol.ChangeReact, Target: 1, Emoji: "👍",
				State: &protocol.Msg{Seq: 1, Time: 1000, Sender: "bob", ID: "b1", Text: "hello", Edited: 2500, Reply: 0,
					Reactions: []protocol.Reaction{{Emoji: "👍", Count: 2, Names: []string{"carol", "Alice"}}, {Emoji: "👀", Count: 1, Names: []string{"bob"}}}}},
			&protocol.IsTyping{Room: j.Room, Name: "bob"},
			&protocol.IsTyping{Room: j.Room, Name: "ALICE"}, // our own name, from another device
			&protocol.IsTyping{Room: j.Room, Name: "bob", Stopped: true},
			&protocol.Update{Room: j.Room, Seq: 5, Time: 4000, Actor: "bob", Kind: protocol.ChangeDelete, Target: 1,
				State: &protocol.Msg{Seq: 1, Time: 1000, Sender: "bob", ID: "b1", Edited: 4000}},
		)
		return true
	})
	alice := fastClient(t, f.addr(), "alice")
	alice.C.Join("general")
	m := alice.WaitText(t, "helo")
	if !m.History || m.Edited != time.UnixMilli(2500) || m.Deleted {
		t.Errorf("replayed message %+v", m)
	}
	u := waitEvent[client.Updated](t, alice, nil)
	if u.Seq != 2 || u.Target != 1 || !u.History || u.Message != nil || u.Own || u.Kind != protocol.ChangeEdit {
		t.Errorf("first replayed Updated %+v, want no state", u)
	}
	u = waitEvent[client.Updated](t, alice, func(u client.Updated) bool { return u.Seq == 3 })
	if u.Message == nil || u.Message.Text != "hello" || u.Message.Seq != 1 || u.Message.Room != "general" || u.Message.Edited != time.UnixMilli(2500) {
		t.Errorf("second replayed Updated %+v (message %+v)", u, u.Message)
	}
	u = waitEvent[client.Updated](t, alice, func(u client.Updated) bool { return u.Seq == 4 })
	want := []client.Reaction{{Emoji: "👍", Count: 2, Names: []string{"carol", "Alice"}, Mine: true}, {Emoji: "👀", Count: 1, Names: []string{"bob"}}}
	if u.History || !u.Own || u.Emoji != "👍" || u.Time != time.UnixMilli(3000) || u.Message == nil ||
		!slices.EqualFunc(u.Message.Reactions, want, func(a, b client.Reaction) bool {
			return a.Emoji == b.Emoji && a.Count == b.Count && a.Mine == b.Mine && slices.Equal(a.Names, b.Names)
		}) {
		t.Errorf("live reaction %+v, message %+v", u, u.Message)
	}
	u = waitEvent[client.Updated](t, alice, func(u client.Updated) bool { return u.Seq == 5 })
	if u.Message == nil || !u.Message.Deleted || u.Message.Text != "" || u.Message.Reactions != nil {
		t.Errorf("deletion %+v, message %+v", u, u.Message)
	}
	var typing []client.Typing
	for _, ev := range alice.Events() {
		if ty, ok := ev.(client.Typing); ok {
			typing = append(typing, ty)
		}
	}
	if !slices.Equal(typing, []client.Typing{{Room: "general", Name: "bob"}, {Room: "general", Name: "bob", Stopped: true}}) {
		t.Errorf("Typing events %+v", typing)
	}

	// The updates count as seen: the re-join resumes after the last one.
	f.drop()
	skipTo[*protocol.Join](t, f)
	if j, _ := skipTo[*protocol.Join](t, f); !j.Resume || j.After != 5 {
		t.Fatalf("re-JOIN %+v, want to resume after 5", j)
	}
}

// TestTypingIsPaced: Typing sends one TYPING per room every 3 seconds
// however often it is called, StopTyping sends stopped only after a
// TYPING, a message sent to the room lets the next Typing go at once, and
// a room above the server's typing size gets none.
func TestTypingIsPaced(t *testing.T) {
	f := startFake(t, withMessages)
	f.setHandle(func(c *fakeConn, m protocol.Message) bool {
		if j, ok := m.(*protocol.Join); ok && j.Room == "big" {
			c.write(&protocol.Joined{Room: j.Room, Name: j.Name, Count: 500, Members: []string{j.Name}, Modes: 8})
			return true
		}
		return false
	})
	alice := fastClient(t, f.addr(), "alice")
	alice.C.Join("general")
	alice.WaitJoined(t, "general")
	alice.C.Join("big")
	if j := alice.WaitJoined(t, "big"); !j.NoTyping {
		t.Errorf("Joined %+v, want NoTyping", j)
	}
	skipTo[*protocol.Join](t, f)
	skipTo[*protocol.Join](t, f)
	for range 5 {
		if err := alice.C.Typing("general"); err != nil {
			t.Fatal(err)
		}
	}
	alice.C.Typing("big")
	alice.C.StopTyping("general")
	alice.C.StopTyping("general")
	alice.C.Typing("general")
	alice.C.Send("general", "done")
	alice.C.Typing("general")
	alice.C.Typing("general")
	alice.C.ListRooms("end")
	want := []protocol.Message{
		&protocol.Typing{Room: "general"},
		&protocol.Typing{Room: "general", Stopped: true},
		&protocol.Typing{Room: "general"},
		&protocol.Send{Room: "general", Text: "done"},
		&protocol.Typing{Room: "general"},
		&protocol.List{Query: "end"},
	}
	for _, w := range want {
		fr := f.next(t)
		if s, ok := fr.msg.(*protocol.Send); ok {
			s.ID = ""
		}
		if string(protocol.Encode(fr.msg)) != string(protocol.Encode(w)) {
			t.Fatalf("the client sent %T %+v, want %+v", fr.msg, fr.msg, w)
		}
	}
	if err := alice.C.Typing("random"); !errors.Is(err, client.ErrNotInRoom) {
		t.Errorf("Typing in a room not joined: %v", err)
	}
}

// TestSearchWaitsForResults: Search sends SEARCH with the room's key, the
// time to page back from and the limit, and returns the RESULTS with its
// query (even when the server answers two searches out of order); a
// refusal is the server's *protocol.Error.
func TestSearchWaitsForResults(t *testing.T) {
	f := startFake(t, withMessages)
	var mu sync.Mutex
	var first *protocol.Search
	f.setHandle(func(c *fakeConn, m protocol.Message) bool {
		s, ok := m.(*protocol.Search)
		if !ok {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		switch {
		case s.Room == "secret":
			c.write(protocol.NewError(protocol.CodeForbidden, s.Room, "not a room of yours"))
		case s.Query == "first":
			first = s // answered after the second
		default:
			c.write(&protocol.Results{Query: s.Query, More: true, Hits: []protocol.Hit{
				{Room: "general", Seq: 9, Time: 5000, Sender: "bob", Text: "a second look", Matches: []protocol.Span{{Start: 2, End: 8}}}}})
			if first != nil {
				c.write(&protocol.Results{Query: first.Query})
			}
		}
		return false
	})
	alice := fastClient(t, f.addr(), "alice")
	alice.C.Join("general")
	alice.WaitJoined(t, "general")
	skipTo[*protocol.Join](t, f)
	ctx, cancel := context.WithTimeout(context.Background(), clienttest.Timeout)
	defer cancel()

	firstDone := make(chan client.SearchResults, 1)
	go func() {
		res, err := alice.C.Search(ctx, "first", client.SearchOptions{})
		if err != nil {
			t.Error(err)
		}
		firstDone <- res
	}()
	if s, _ := skipTo[*protocol.Search](t, f); *s != (protocol.Search{Query: "first"}) {
		t.Fatalf("SEARCH %+v", s)
	}
	res, err := alice.C.Search(ctx, "second", client.SearchOptions{Room: "General", Before: time.UnixMilli(7000), Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := skipTo[*protocol.Search](t, f); *s != (protocol.Search{Query: "second", Room: "general", Before: 7000, Limit: 5}) {
		t.Fatalf("SEARCH %+v", s)
	}
	if res.Query != "second" || !res.More || len(res.Hits) != 1 {
		t.Fatalf("results %+v", res)
	}
	h := res.Hits[0]
	if h.Room != "general" || h.Seq != 9 || h.Time != time.UnixMilli(5000) || h.Sender != "bob" || h.Text[h.Matches[0].Start:h.Matches[0].End] != "second" {
		t.Errorf("hit %+v", h)
	}
	if r := <-firstDone; r.Query != "first" || len(r.Hits) != 0 {
		t.Errorf("the first search got %+v", r)
	}

	_, err = alice.C.Search(ctx, "anything", client.SearchOptions{Room: "secret"})
	wantCode(t, err, protocol.CodeForbidden)
	if _, err := alice.C.Search(ctx, "", client.SearchOptions{}); err == nil {
		t.Error("an empty query is sent")
	}
}

// TestOldServerGetsNoChanges: a server without protocol.WelcomeMessages
// gets none of the new frames: edits, reactions, typing and search fail
// with ErrUnsupported, a reply goes as a plain message, HISTORY asks
// without full records (a server with them gets the flag), and a change
// queued before the first connection is given up once the server turns
// out to be older.
func TestOldServerGetsNoChanges(t *testing.T) {
	f := startFake(t) // WelcomeInbox only
	tp := &tap{}
	tp.holdDials()
	alice := fastClient(t, f.addr(), "alice", tp.dial)
	alice.C.Join("general")
	queued, err := alice.C.Edit("general", 1, "before we knew")
	if err != nil {
		t.Fatal(err)
	}
	tp.releaseDials()
	e := waitEvent[client.RoomError](t, alice, nil)
	if !e.Stays || !slices.Equal(e.Unsent, []string{queued}) {
		t.Fatalf("RoomError %+v", e)
	}
	alice.WaitJoined(t, "general")
	ctx, cancel := context.WithTimeout(context.Background(), clienttest.Timeout)
	defer cancel()
	_, searchErr := alice.C.Search(ctx, "x", client.SearchOptions{})
	for what, err := range map[string]error{
		"Edit":       second(alice.C.Edit("general", 1, "x")),
		"Delete":     second(alice.C.Delete("general", 1)),
		"React":      second(alice.C.React("general", 1, "👍", true)),
		"Typing":     alice.C.Typing("general"),
		"StopTyping": alice.C.StopTyping("general"),
		"Search":     searchErr,
	} {
		if !errors.Is(err, client.ErrUnsupported) {
			t.Errorf("%s: %v, want ErrUnsupported", what, err)
		}
	}
	alice.C.SendReply("general", "plain", 3)
	alice.C.History("general", 0, 10)
	skipTo[*protocol.Join](t, f)
	if s, _ := skipTo[*protocol.Send](t, f); s.Reply != 0 || s.Text != "plain" {
		t.Errorf("SEND %+v to an older server", s)
	}
	if h, _ := skipTo[*protocol.History](t, f); h.Full {
		t.Errorf("HISTORY %+v to an older server", h)
	}

	g := startFake(t, withMessages)
	bob := fastClient(t, g.addr(), "bob")
	bob.C.Join("general")
	bob.WaitJoined(t, "general")
	bob.C.History("general", 0, 10)
	skipTo[*protocol.Join](t, g)
	if h, _ := skipTo[*protocol.History](t, g); !h.Full {
		t.Errorf("HISTORY %+v, want full records", h)
	}
}

// TestResetGivesUpQueuedChanges: an edit, a deletion and a reply are
// queued for seqs of the room's history; the connection drops and the
// server comes back with another epoch (the history was reset), so
// those seqs name other messages now. The changes are given up as a
// RoomError that keeps the room, never sent; the message goes without
// its reply target.
func TestResetGivesUpQueuedChanges(t *testing.T) {
	f := startFake(t, withMessages)
	f.setHandle(func(c *fakeConn, m protocol.Message) bool {
		switch m := m.(type) {
		case *protocol.Join:
			if c.n == 0 {
				c.write(&protocol.Joined{Room: m.Room, Name: m.Name, Head: 20, Count: 1, Members: []string{m.Name}, Epoch: 1})
			} else {
				c.write(&protocol.Joined{Room: m.Room, Name: m.Name, After: 0, Head: 15, Count: 1, Members: []string{m.Name}, Epoch: 2})
			}
			return true
		case *protocol.Send:
			if c.n > 0 {
				c.write(&protocol.Ack{Room: m.Room, ID: m.ID, Seq: 16, Time: 1})
			}
		}
		return false // the first connection acknowledges nothing
	})
	alice := fastClient(t, f.addr(), "alice")
	alice.C.Join("general")
	alice.WaitJoined(t, "general")
	skipTo[*protocol.Join](t, f)
	edit, _ := alice.C.Edit("general", 15, "fixed")
	del, _ := alice.C.Delete("general", 15)
	reply, _ := alice.C.SendReply("general", "agreed", 15)
	skipTo[*protocol.Change](t, f)
	skipTo[*protocol.Change](t, f)
	if s, _ := skipTo[*protocol.Send](t, f); s.Reply != 15 {
		t.Fatalf("SEND %+v, want reply 15", s)
	}
	f.drop()
	if j, _ := skipTo[*protocol.Join](t, f); !j.Resume || j.Epoch != 1 {
		t.Fatalf("re-JOIN %+v", j)
	}
	// The next frame is the message, without its reply: no CHANGE goes.
	if s, c := skipTo[*protocol.Send](t, f); c.n != 1 || s.ID != reply || s.Reply != 0 || s.Text != "agreed" {
		t.Fatalf("re-sent %+v on connection %d, want the message %q without reply on connection 1", s, c.n, reply)
	}
	waitEvent[client.Joined](t, alice, func(j client.Joined) bool { return j.Reset })
	e := waitEvent[client.RoomError](t, alice, nil)
	if !e.Stays || !slices.Equal(e.Unsent, []string{edit, del}) || e.Err.Code != protocol.CodeNotFound || e.Room != "general" {
		t.Fatalf("RoomError %+v, want the edit and the deletion given up", e)
	}
	waitEvent[client.Acked](t, alice, func(a client.Acked) bool { return a.ID == reply })
	ctx, cancel := context.WithTimeout(context.Background(), clienttest.Timeout)
	defer cancel()
	if err := alice.C.Drain(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestSearchRefusalsFindTheirSearch: refusals come in the order of the
// frames they answer. A forbidden JOIN (a direct-message room of others)
// still on its way when a SEARCH of the room is sent is refused first:
// that refusal is the JOIN's, the next one the SEARCH's. A search of
// every room waiting for the store does not keep a later SEARCH's
// refusal from its caller.
func TestSearchRefusalsFindTheirSearch(t *testing.T) {
	f := startFake(t, withMessages)
	var mu sync.Mutex
	var join *protocol.Join
	f.setHandle(func(c *fakeConn, m protocol.Message) bool {
		mu.Lock()
		defer mu.Unlock()
		switch m := m.(type) {
		case *protocol.Join:
			if m.Room == "secret" {
				join = m // refused when the SEARCH comes
				return true
			}
		case *protocol.Search:
			switch {
			case m.Room == "secret" && join != nil:
				c.write(protocol.NewError(protocol.CodeForbidden, "secret", "the JOIN's refusal"),
					protocol.NewError(protocol.CodeForbidden, "secret", "the SEARCH's refusal"))
				join = nil
			case m.Room == "secret":
				c.write(protocol.NewError(protocol.CodeForbidden, "secret", "the second SEARCH's refusal"))
			}
			return true // a search of every room: no answer (the store is slow)
		}
		return false
	})
	alice := fastClient(t, f.addr(), "alice")
	alice.C.Join("general")
	alice.WaitJoined(t, "general")
	skipTo[*protocol.Join](t, f)
	alice.C.Join("secret")
	skipTo[*protocol.Join](t, f)
	ctx, cancel := context.WithTimeout(context.Background(), clienttest.Timeout)
	defer cancel()

	_, err := alice.C.Search(ctx, "anything", client.SearchOptions{Room: "secret"})
	wantCode(t, err, protocol.CodeForbidden)
	if perr := err.(*protocol.Error); perr.Text != "the SEARCH's refusal" {
		t.Errorf("the search got %q", perr.Text)
	}
	e := waitEvent[client.RoomError](t, alice, func(e client.RoomError) bool { return e.Room == "secret" })
	if e.Err.Text != "the JOIN's refusal" {
		t.Errorf("the JOIN got %q", e.Err.Text)
	}

	slow := make(chan error, 1)
	go func() {
		_, err := alice.C.Search(ctx, "everywhere", client.SearchOptions{})
		slow <- err
	}()
	skipTo[*protocol.Search](t, f)
	_, err = alice.C.Search(ctx, "anything", client.SearchOptions{Room: "secret"})
	wantCode(t, err, protocol.CodeForbidden)
	alice.C.Close()
	if err := <-slow; err == nil {
		t.Error("the search of every room was answered")
	}
}
