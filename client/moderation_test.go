package client_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"chat/client"
	"chat/internal/clienttest"
	"chat/internal/testserver"
	"chat/protocol"
)

// inRoom starts a client of name in room and waits for its Joined.
func inRoom(t *testing.T, cfg client.Config, room string) (*clienttest.Recorder, client.Joined) {
	t.Helper()
	r := clienttest.New(t, fast(cfg))
	if err := r.C.Join(room); err != nil {
		t.Fatal(err)
	}
	return r, r.WaitJoined(t, room)
}

func waitModEvent(t *testing.T, r *clienttest.Recorder, action protocol.ModAction) client.ModEvent {
	t.Helper()
	return r.Wait(t, "MODEVENT "+action.String(), func(ev client.Event) bool {
		e, ok := ev.(client.ModEvent)
		return ok && e.Action == action
	}).(client.ModEvent)
}

func waitRoomError(t *testing.T, r *clienttest.Recorder, room string, code protocol.ErrorCode) client.RoomError {
	t.Helper()
	return r.Wait(t, room+" "+code.String(), func(ev client.Event) bool {
		e, ok := ev.(client.RoomError)
		return ok && e.Room == room && e.Err != nil && e.Err.Code == code
	}).(client.RoomError)
}

// nth matches the n-th event that match matches (Wait tries each event
// once, in order).
func nth(n int, match func(client.Event) bool) func(client.Event) bool {
	seen := 0
	return func(ev client.Event) bool {
		if match(ev) {
			seen++
		}
		return seen == n
	}
}

func moderate(t *testing.T, c *client.Client, room string, m client.Moderation) (client.Moderated, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return c.Moderate(ctx, room, m)
}

func wantCode(t *testing.T, err error, code protocol.ErrorCode) {
	t.Helper()
	var perr *protocol.Error
	if !errors.As(err, &perr) || perr.Code != code {
		t.Fatalf("error %v; want %v", err, code)
	}
}

// TestRoomOperatorModerates: the first name in a room is its operator. It
// sets the topic (JOINED carries it later), deletes a message (its text
// is gone from history too), mutes a member (whose message is refused,
// given up and not sent again: Drain does not wait for it), kicks it (the
// room is lost without a reconnect, and joined again at once); a member
// that is not an operator is refused, a target that is not there is
// not-found.
func TestRoomOperatorModerates(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	alice, aj := inRoom(t, client.Config{Addr: srv.Addr, Name: "alice"}, "mods")
	if !aj.Operator || aj.Muted || aj.InviteOnly {
		t.Fatalf("the room's first name: %+v", aj)
	}
	bob, bj := inRoom(t, client.Config{Addr: srv.Addr, Name: "bob"}, "mods")
	if bj.Operator {
		t.Fatal("bob is an operator of a room alice made")
	}

	ans, err := moderate(t, alice.C, "mods", client.Moderation{Action: protocol.ModTopic, Text: "Friday: release"})
	if err != nil || ans.Room != "mods" || ans.Action != protocol.ModTopic {
		t.Fatalf("topic: %+v, %v", ans, err)
	}
	for _, r := range []*clienttest.Recorder{alice, bob} {
		if e := waitModEvent(t, r, protocol.ModTopic); e.Text != "Friday: release" || e.Actor != "alice" {
			t.Fatalf("topic event %+v", e)
		}
	}

	// Not an operator: forbidden, and nothing happens.
	_, err = moderate(t, bob.C, "mods", client.Moderation{Action: protocol.ModKick, Target: "alice"})
	wantCode(t, err, protocol.CodeForbidden)
	_, err = moderate(t, alice.C, "mods", client.Moderation{Action: protocol.ModKick, Target: "nobody"})
	wantCode(t, err, protocol.CodeNotFound)

	// Delete bob's message.
	id, _ := bob.C.Send("mods", "buy cheap watches")
	acked := bob.Wait(t, "ack", func(ev client.Event) bool { a, ok := ev.(client.Acked); return ok && a.ID == id }).(client.Acked)
	alice.WaitText(t, "buy cheap watches")
	if _, err := moderate(t, alice.C, "mods", client.Moderation{Action: protocol.ModDelete, Seq: acked.Seq}); err != nil {
		t.Fatal(err)
	}
	if e := waitModEvent(t, bob, protocol.ModDelete); e.Seq != acked.Seq {
		t.Fatalf("delete event %+v", e)
	}
	if err := bob.C.History("mods", 0, 0); err != nil {
		t.Fatal(err)
	}
	page := bob.Wait(t, "page", func(ev client.Event) bool { _, ok := ev.(client.Page); return ok }).(client.Page)
	var found bool
	for _, m := range page.Messages {
		if m.Seq == acked.Seq {
			found = true
			if !m.Deleted || m.Text != "" || m.Sender != "bob" {
				t.Fatalf("deleted message in history: %+v", m)
			}
		}
	}
	if !found {
		t.Fatalf("message %d not in the page %+v", acked.Seq, page)
	}

	// Mute: the SEND is refused, given up, not re-sent.
	if _, err := moderate(t, alice.C, "mods", client.Moderation{Action: protocol.ModMute, Target: "bob", For: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if e := waitModEvent(t, bob, protocol.ModMute); !e.Self || e.Until.Before(time.Now().Add(50*time.Minute)) {
		t.Fatalf("mute event %+v", e)
	}
	id, err = bob.C.Send("mods", "am I muted?")
	if err != nil {
		t.Fatal(err)
	}
	re := waitRoomError(t, bob, "mods", protocol.CodeMuted)
	if !re.Stays || len(re.Unsent) != 1 || re.Unsent[0] != id {
		t.Fatalf("muted: %+v", re)
	}
	if p := bob.C.Pending(); len(p) != 0 {
		t.Fatalf("pending after muted: %q", p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := bob.C.Drain(ctx); err != nil {
		t.Fatalf("Drain waits for a refused message: %v", err)
	}

	// Kick: bob's membership ends, without a reconnect; he comes back.
	if _, err := moderate(t, alice.C, "mods", client.Moderation{Action: protocol.ModKick, Target: "bob", Text: "spam"}); err != nil {
		t.Fatal(err)
	}
	if e := waitModEvent(t, bob, protocol.ModKick); !e.Self || e.Text != "spam" || e.Actor != "alice" {
		t.Fatalf("kick event %+v", e)
	}
	waitRoomError(t, bob, "mods", protocol.CodeKicked)
	if _, err := bob.C.Send("mods", "still here?"); !errors.Is(err, client.ErrNotInRoom) {
		t.Fatalf("send after the kick: %v", err)
	}
	if bob.C.State() != client.Connected {
		t.Fatalf("state after a kick: %v", bob.C.State())
	}
	if err := bob.C.Join("mods"); err != nil {
		t.Fatal(err)
	}
	back := bob.Wait(t, "joined again", func(ev client.Event) bool {
		j, ok := ev.(client.Joined)
		return ok && j.Room == "mods" && j.Muted
	}).(client.Joined)
	if back.Topic != "Friday: release" {
		t.Fatalf("JOINED topic %q", back.Topic)
	}
	for _, ev := range bob.Events() {
		if s, ok := ev.(client.StateChanged); ok && s.State == client.Reconnecting {
			t.Fatalf("the kick made the client reconnect: %+v", s)
		}
	}
}

// TestBanAndInviteOnly: a banned name loses the room and cannot come
// back until unbanned; an invite-only room refuses a name without a code
// and takes it with one.
func TestBanAndInviteOnly(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	alice, _ := inRoom(t, client.Config{Addr: srv.Addr, Name: "alice"}, "club")
	bob, _ := inRoom(t, client.Config{Addr: srv.Addr, Name: "bob"}, "club")

	if _, err := moderate(t, alice.C, "club", client.Moderation{Action: protocol.ModBan, Target: "bob", Text: "trolling"}); err != nil {
		t.Fatal(err)
	}
	waitRoomError(t, bob, "club", protocol.CodeBanned)
	bob.C.Join("club")
	bob.Wait(t, "join refused", nth(2, func(ev client.Event) bool {
		e, ok := ev.(client.RoomError)
		return ok && e.Err.Code == protocol.CodeBanned
	}))
	if _, err := moderate(t, alice.C, "club", client.Moderation{Action: protocol.ModUnban, Target: "bob"}); err != nil {
		t.Fatal(err)
	}
	bob.C.Join("club")
	bob.Wait(t, "joined again", nth(2, func(ev client.Event) bool { j, ok := ev.(client.Joined); return ok && j.Room == "club" }))

	if _, err := moderate(t, alice.C, "club", client.Moderation{Action: protocol.ModInviteOnlyOn}); err != nil {
		t.Fatal(err)
	}
	if e := waitModEvent(t, bob, protocol.ModInviteOnlyOn); e.Actor != "alice" {
		t.Fatalf("invite-only event %+v", e)
	}
	carol := clienttest.New(t, fast(client.Config{Addr: srv.Addr, Name: "carol"}))
	carol.C.Join("club")
	waitRoomError(t, carol, "club", protocol.CodeInviteOnly)

	ans, err := moderate(t, alice.C, "club", client.Moderation{Action: protocol.ModInvite, For: time.Hour})
	if err != nil || ans.Invite == "" {
		t.Fatalf("invite: %+v, %v", ans, err)
	}
	if err := carol.C.JoinWith("club", client.JoinOptions{Invite: ans.Invite}); err != nil {
		t.Fatal(err)
	}
	if j := carol.WaitJoined(t, "club"); !j.InviteOnly {
		t.Fatalf("JOINED of an invite-only room: %+v", j)
	}
}

// TestServerOperatorAcrossReconnects: Oper with the server's token makes
// a client a server operator, who moderates a room it is not in; a wrong
// token is forbidden. After the connection drops the client is an
// operator again on the next one, without being asked.
func TestServerOperatorAcrossReconnects(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"-operator-token", "op-token-1"}})
	alice, _ := inRoom(t, client.Config{Addr: srv.Addr, Name: "alice"}, "lobby")
	bob, _ := inRoom(t, client.Config{Addr: srv.Addr, Name: "bob"}, "lobby")

	tp := &tap{}
	root := clienttest.New(t, fast(client.Config{Addr: srv.Addr, Name: "root", Dial: tp.dial}))
	root.WaitState(t, client.Connected)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	wantCode(t, root.C.Oper(ctx, "wrong"), protocol.CodeForbidden)
	if _, err := moderate(t, root.C, "lobby", client.Moderation{Action: protocol.ModTopic, Text: "x"}); !errors.Is(err, client.ErrNotInRoom) {
		t.Fatalf("moderating a room not joined, before oper: %v", err)
	}
	if err := root.C.Oper(ctx, "op-token-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := moderate(t, root.C, "lobby", client.Moderation{Action: protocol.ModTopic, Text: "by the operator"}); err != nil {
		t.Fatal(err)
	}
	if e := waitModEvent(t, alice, protocol.ModTopic); e.Actor != "operator" || e.Text != "by the operator" {
		t.Fatalf("topic event %+v", e)
	}

	tp.last().Close() // the network drops
	root.Wait(t, "reconnected", nth(2, func(ev client.Event) bool {
		s, ok := ev.(client.StateChanged)
		return ok && s.State == client.Connected
	}))
	if _, err := moderate(t, root.C, "lobby", client.Moderation{Action: protocol.ModKick, Target: "bob"}); err != nil {
		t.Fatalf("kick after the reconnect: %v", err)
	}
	waitRoomError(t, bob, "lobby", protocol.CodeKicked)
	for _, ev := range root.Events() {
		if _, ok := ev.(client.OperRefused); ok {
			t.Fatal("OperRefused after a reconnect with the right token")
		}
	}
}

// TestMutedRefusalOvertakesAnAck: the server refuses a muted SEND at
// once but acknowledges an earlier one only once it is stored, so the
// refusal (which does not name the message) can come first. The client
// gives up the refused messages, not the one whose ACK is on its way:
// three SENDs, ERROR muted for the second and third, then the first's
// ACK; then a refused SEND followed by an accepted one (unmuted in
// between), whose ACK tells which one was refused.
func TestMutedRefusalOvertakesAnAck(t *testing.T) {
	f := startFake(t, func(f *fake) { f.welcome.Flags |= protocol.WelcomeModeration })
	var sends []*protocol.Send
	muted := func(c *fakeConn, s *protocol.Send) {
		c.write(&protocol.Error{Code: protocol.CodeMuted, Room: s.Room, Text: "you are muted"})
	}
	ack := func(c *fakeConn, s *protocol.Send, seq uint64) {
		c.write(&protocol.Ack{Room: s.Room, ID: s.ID, Seq: seq, Time: protocol.Millis(time.Now())})
	}
	f.setHandle(func(c *fakeConn, m protocol.Message) bool {
		s, ok := m.(*protocol.Send)
		if !ok {
			return false
		}
		sends = append(sends, s) // serve calls handle from one goroutine per connection
		switch len(sends) {
		case 2:
			muted(c, s)
		case 3:
			muted(c, s)
			ack(c, sends[0], 1) // the first was stored: its ACK comes last
		case 4:
			muted(c, s)
		case 5:
			ack(c, s, 2) // unmuted meanwhile
		}
		return true
	})
	r := clienttest.New(t, fast(client.Config{Addr: f.addr(), Name: "bob"}))
	r.C.Join("r")
	r.WaitJoined(t, "r")
	var ids []string
	for i := range 3 {
		id, err := r.C.Send("r", fmt.Sprint("message ", i+1))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	r.Wait(t, "the first acknowledged", func(ev client.Event) bool { a, ok := ev.(client.Acked); return ok && a.ID == ids[0] })
	// Wait calls its function once per event, in order: it collects the
	// ids given up.
	unsent := map[string]bool{}
	refusals := func(n int) func(client.Event) bool {
		return func(ev client.Event) bool {
			if e, ok := ev.(client.RoomError); ok {
				if e.Err.Code != protocol.CodeMuted || !e.Stays {
					t.Errorf("refusal %+v", e)
				}
				for _, id := range e.Unsent {
					unsent[id] = true
				}
			}
			return len(unsent) == n
		}
	}
	r.Wait(t, "both refusals placed", refusals(2))
	if !unsent[ids[1]] || !unsent[ids[2]] || unsent[ids[0]] {
		t.Fatalf("given up %v; sent %q", unsent, ids)
	}

	id4, _ := r.C.Send("r", "message 4")
	id5, _ := r.C.Send("r", "message 5")
	r.Wait(t, "the fifth acknowledged", func(ev client.Event) bool { a, ok := ev.(client.Acked); return ok && a.ID == id5 })
	clear(unsent)
	r.Wait(t, "the fourth given up", refusals(3))
	if !unsent[id4] || unsent[id5] {
		t.Fatalf("given up %v; the fourth is %q", unsent, id4)
	}
	if p := r.C.Pending(); len(p) != 0 {
		t.Fatalf("pending %q", p)
	}
}

// TestUnknownServerFrameIsIgnored: a server frame type of a later
// revision (as MODEVENT was to clients before moderation) is skipped, as
// the spec says, not taken for a broken server: the messages after it
// arrive on the same connection.
func TestUnknownServerFrameIsIgnored(t *testing.T) {
	f := startFake(t)
	f.setHandle(func(c *fakeConn, m protocol.Message) bool {
		if j, ok := m.(*protocol.Join); ok {
			c.write(&protocol.Joined{Room: j.Room, Name: j.Name, Count: 1, Members: []string{j.Name}})
			c.mu.Lock()
			c.Write([]byte{0, 0, 0, 3, 0xfe, 1, 2}) // type 0xfe: no server frame of this revision
			c.mu.Unlock()
			c.write(&protocol.Msg{Room: j.Room, Seq: 1, Time: protocol.Millis(time.Now()), Sender: "bob", ID: "b1", Text: "after the unknown frame"})
			return true
		}
		return false
	})
	r := clienttest.New(t, fast(client.Config{Addr: f.addr(), Name: "ann"}))
	r.C.Join("r")
	r.WaitText(t, "after the unknown frame")
	for _, ev := range r.Events() {
		if s, ok := ev.(client.StateChanged); ok && s.State != client.Connecting && s.State != client.Connected {
			t.Fatalf("the unknown frame cost the connection: %+v", s)
		}
	}
}
