package client_test

import (
	"fmt"
	"testing"

	"chat/client"
	"chat/internal/clienttest"
	"chat/internal/testserver"
	"chat/protocol"
)

// These tests run the client against the real server: identities,
// direct messages, mentions, read markers, scrollback and the room list.

// needInbox fails a test when the server has no identities
// (protocol.WelcomeInbox).
func needInbox(t *testing.T, srv *testserver.Server) {
	t.Helper()
	raw, w := testserver.Handshake(t, srv.Addr)
	raw.Conn.Close()
	if w.Flags&protocol.WelcomeInbox == 0 {
		t.Fatal("the server does not announce protocol.WelcomeInbox")
	}
}

// device starts a client of name with the name key secret, not in any room.
func device(t *testing.T, srv *testserver.Server, name, secret string) *clienttest.Recorder {
	t.Helper()
	r := clienttest.New(t, fast(client.Config{Addr: srv.Addr, Name: name, Secret: secret}))
	id := waitEvent[client.Identified](t, r, nil)
	if id.Name != name {
		t.Fatalf("Identified %+v, want %s", id, name)
	}
	return r
}

func join(t *testing.T, r *clienttest.Recorder, room string) client.Joined {
	t.Helper()
	if err := r.C.Join(room); err != nil {
		t.Fatal(err)
	}
	key, _ := r.C.RoomKey(room)
	return r.WaitJoined(t, key)
}

// TestDirectMessageReachesAClientInNoRoom: bob's client is in no room;
// alice writes to him. bob gets a Notice (direct), joins the DM room and
// finds the message there; the server lists the DM in the next
// Identified of bob's, with its head and bob's marker. A third name can
// not join the DM room, even by its exact name.
func TestDirectMessageReachesAClientInNoRoom(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	needInbox(t, srv)
	tp := &tap{}
	bob := clienttest.New(t, fast(client.Config{Addr: srv.Addr, Name: "Bob", Dial: tp.dial}))
	waitEvent[client.Identified](t, bob, nil)
	alice := device(t, srv, "alice", "alice's key")
	dm := alice.C.DirectRoom("BOB")
	if dm != "@alice@bob" {
		t.Fatalf("DirectRoom %q", dm)
	}
	join(t, alice, "@Bob@Alice") // any spelling: the canonical room
	if _, err := alice.C.Send(dm, "psst @bob"); err != nil {
		t.Fatal(err)
	}
	n := waitEvent[client.Notice](t, bob, nil)
	if n.Kind != protocol.NoticeDirect || n.Message.Room != dm || n.Message.Text != "psst @bob" || n.Message.Sender != "alice" ||
		n.Message.Mention || n.Message.Own || n.Message.Seq != 1 {
		t.Fatalf("Notice %+v", n)
	}
	// alice's own devices hear of it too.
	if n := waitEvent[client.Notice](t, alice, nil); !n.Message.Own || n.Kind != protocol.NoticeDirect {
		t.Errorf("alice's Notice %+v", n)
	}

	// The room has delivered it (the NOTICE goes out with the ACK, before
	// the room's fan-out): then bob's JOIN finds it in the history.
	alice.WaitText(t, "psst @bob")
	j := join(t, bob, dm)
	if j.Head != 1 || j.Read != 0 {
		t.Errorf("bob's Joined %+v", j)
	}
	if m := bob.WaitText(t, "psst @bob"); !m.History || m.Mention || m.Room != dm {
		t.Errorf("message in the DM %+v (no mention in a DM)", m)
	}

	tp.last().Close()
	id := waitEvent[client.Identified](t, bob, func(id client.Identified) bool { return len(id.DMs) > 0 })
	if len(id.DMs) != 1 || id.DMs[0].Room != dm || id.DMs[0].Peer != "alice" || id.DMs[0].Head != 1 || id.DMs[0].Time.IsZero() {
		t.Errorf("Identified after the DM %+v", id)
	}

	carol := device(t, srv, "carol", "carol's key")
	if err := carol.C.Join(dm); err == nil {
		t.Error("carol may join alice and bob's DM room")
	}
	raw, _ := testserver.Handshake(t, srv.Addr)
	raw.Send(&protocol.Join{Room: dm, Name: "carol", Secret: "carol's key"})
	if e := testserver.Expect[*protocol.Error](raw); e.Code != protocol.CodeForbidden {
		t.Errorf("carol's raw JOIN of the DM: %v", e)
	}
}

// TestReadMarkerReachesAnotherDevice: ann reads general on her laptop;
// her phone, identified but in no room, hears of it; her next join of the
// room says where she stopped. Marks only move forward.
func TestReadMarkerReachesAnotherDevice(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	needInbox(t, srv)
	laptop := device(t, srv, "ann", "ann's key")
	phone := device(t, srv, "ann", "ann's key")
	join(t, laptop, "general")
	for i := range 5 {
		laptop.C.Send("general", fmt.Sprint("note ", i))
	}
	m := laptop.WaitText(t, "note 4")

	if err := laptop.C.MarkRead("general", m.Seq-1); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*clienttest.Recorder{laptop, phone} {
		if got := waitEvent[client.ReadMarker](t, r, nil); got != (client.ReadMarker{Room: "general", Seq: m.Seq - 1}) {
			t.Errorf("ReadMarker %+v, want general at %d", got, m.Seq-1)
		}
	}
	laptop.C.MarkRead("general", 1) // backwards: nothing
	laptop.C.MarkRead("general", m.Seq)
	waitEvent[client.ReadMarker](t, phone, func(r client.ReadMarker) bool { return r.Seq == m.Seq })
	for _, ev := range phone.Events() {
		if r, ok := ev.(client.ReadMarker); ok && r.Seq < m.Seq-1 {
			t.Errorf("the marker moved back: %+v", r)
		}
	}

	// The laptop leaves first: a name is in a room once.
	laptop.C.Leave("general")
	waitEvent[client.Left](t, laptop, nil)
	if j := join(t, phone, "general"); j.Read != m.Seq || j.Head != m.Seq {
		t.Errorf("the phone's Joined %+v, want read and head %d", j, m.Seq)
	}
}

// TestMentions: a message naming carol is flagged for her in the room,
// and reaches her other device, in no room, as a Notice; the sender's own
// name in its text flags nothing.
func TestMentions(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	needInbox(t, srv)
	carol := device(t, srv, "carol", "carol's key")
	join(t, carol, "general")
	elsewhere := device(t, srv, "carol", "carol's key")
	bob := device(t, srv, "bob", "bob's key")
	join(t, bob, "general")

	bob.C.Send("general", "@bob here: hi @CAROL, see @carolyn")
	m := carol.WaitText(t, "@bob here: hi @CAROL, see @carolyn")
	if !m.Mention {
		t.Errorf("carol's message %+v is not a mention", m)
	}
	if m := bob.WaitText(t, "@bob here: hi @CAROL, see @carolyn"); m.Mention {
		t.Errorf("bob's own message mentions him: %+v", m)
	}
	n := waitEvent[client.Notice](t, elsewhere, nil)
	if n.Kind != protocol.NoticeMention || n.Message.Room != "general" || !n.Message.Mention {
		t.Errorf("Notice %+v", n)
	}
	carol.C.Leave("general") // a name is in a room once
	waitEvent[client.Left](t, carol, nil)
	if j := join(t, elsewhere, "general"); j.Mentions != 1 || j.Read != 0 {
		t.Errorf("Joined %+v, want one mention after the marker", j)
	}
}

// TestHistoryPagesBackToTheFirstMessage: a room of 250 messages, joined
// with the last 5 replayed; History pages back before the oldest message
// seen until a Page says First, and every message comes once, in order.
func TestHistoryPagesBackToTheFirstMessage(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"-history", "5"}})
	needInbox(t, srv)
	raw, _ := testserver.JoinRoom(t, srv.Addr, "general", "writer")
	const total = 250
	for i := 1; i <= total; i++ {
		raw.Send(&protocol.Send{Room: "general", ID: fmt.Sprint(i), Text: fmt.Sprint("m", i)})
	}
	raw.Messages(total)

	alice := device(t, srv, "alice", "alice's key")
	if j := join(t, alice, "general"); j.Head != total {
		t.Fatalf("Joined %+v", j)
	}
	alice.WaitText(t, fmt.Sprint("m", total))
	oldest := alice.Messages()[0].Seq
	if oldest != total-4 {
		t.Fatalf("replayed from %d", oldest)
	}
	var seqs []uint64
	for pages := 0; ; pages++ {
		if pages > total {
			t.Fatal("no first page")
		}
		if err := alice.C.History("general", oldest, 100); err != nil {
			t.Fatal(err)
		}
		p := waitEvent[client.Page](t, alice, func(p client.Page) bool { return p.Before == oldest })
		if p.Room != "general" || len(p.Messages) == 0 && !p.First {
			t.Fatalf("Page %+v", p)
		}
		var these []uint64
		for _, m := range p.Messages {
			if !m.History || m.Text != fmt.Sprint("m", m.Seq) {
				t.Fatalf("page message %+v", m)
			}
			these = append(these, m.Seq)
		}
		seqs = append(these, seqs...)
		if len(p.Messages) > 0 {
			oldest = p.Messages[0].Seq
		}
		if p.First {
			break
		}
	}
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("paged %d messages, #%d has seq %d", len(seqs), i, s)
		}
	}
	if len(seqs) != total-5 {
		t.Errorf("paged %d messages, want %d", len(seqs), total-5)
	}
}

// TestListRooms: ListRooms answers with the rooms, busiest first, and
// never a DM.
func TestListRooms(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	needInbox(t, srv)
	alice := device(t, srv, "alice", "alice's key")
	bob := device(t, srv, "bob", "bob's key")
	for _, r := range []*clienttest.Recorder{alice, bob} {
		join(t, r, "busy")
	}
	join(t, alice, "quiet")
	join(t, alice, alice.C.DirectRoom("bob"))
	alice.C.Send("quiet", "a message")
	alice.WaitText(t, "a message")
	if err := alice.C.ListRooms(""); err != nil {
		t.Fatal(err)
	}
	l := waitEvent[client.RoomList](t, alice, nil)
	if len(l.Rooms) != 2 || l.Rooms[0].Room != "busy" || l.Rooms[0].Members != 2 || l.Rooms[1].Room != "quiet" ||
		l.Rooms[1].Members != 1 || l.Rooms[1].Head != 1 || l.Rooms[1].LastActive.IsZero() || !l.Rooms[0].LastActive.IsZero() {
		t.Errorf("RoomList %+v", l)
	}
	alice.C.ListRooms("UIE")
	l = waitEvent[client.RoomList](t, alice, func(l client.RoomList) bool { return l.Query == "UIE" })
	if len(l.Rooms) != 1 || l.Rooms[0].Room != "quiet" {
		t.Errorf("RoomList for UIE %+v", l)
	}
}
