package main

// Tests of identities, direct messages, mentions, read markers, older
// history and the room list (issue 12), through the real server binary,
// raw protocol connections on 127.0.0.1 and its SQLite file.

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"chat/internal/testserver"
	"chat/protocol"
)

// identify connects and identifies as name with secret.
func identify(t *testing.T, addr, name, secret string) (*testserver.Raw, *protocol.Identified) {
	t.Helper()
	r, _ := testserver.Handshake(t, addr)
	r.Send(&protocol.Identify{Name: name, Secret: secret})
	return r, testserver.Expect[*protocol.Identified](r)
}

// joinAs connects and joins room as name with secret (none if empty).
func joinAs(t *testing.T, addr, room, name, secret string) (*testserver.Raw, *protocol.Joined) {
	t.Helper()
	r, _ := testserver.Handshake(t, addr)
	r.Send(&protocol.Join{Room: room, Name: name, Secret: secret})
	return r, testserver.Expect[*protocol.Joined](r)
}

// until reads frames until one of type T for which match (if not nil)
// holds, skipping others; an ERROR fails the test.
func until[T protocol.Message](t *testing.T, r *testserver.Raw, match func(T) bool) T {
	t.Helper()
	for {
		m := next(t, r)
		if v, ok := m.(T); ok && (match == nil || match(v)) {
			return v
		}
		if e, ok := m.(*protocol.Error); ok {
			var zero T
			t.Fatalf("waiting for %T: %v", zero, e)
		}
	}
}

// settle sends PING and reads up to its PONG: everything the server
// queued for r before it handled the PING. It returns those frames.
func settle(t *testing.T, r *testserver.Raw) []protocol.Message {
	t.Helper()
	nonce := uint64(time.Now().UnixNano())
	r.Send(&protocol.Ping{Nonce: nonce})
	var got []protocol.Message
	for {
		m := next(t, r)
		if p, ok := m.(*protocol.Pong); ok && p.Nonce == nonce {
			return got
		}
		got = append(got, m)
	}
}

// none fails if frames holds a frame of type T.
func none[T protocol.Message](t *testing.T, who string, frames []protocol.Message) {
	t.Helper()
	for _, m := range frames {
		if _, ok := m.(T); ok {
			t.Fatalf("%s got %T %+v", who, m, m)
		}
	}
}

// post sends text to room on r (joined) and returns its ACK.
func post(t *testing.T, r *testserver.Raw, room, id, text string) *protocol.Ack {
	t.Helper()
	r.Send(&protocol.Send{Room: room, ID: id, Text: text})
	return until(t, r, func(a *protocol.Ack) bool { return a.ID == id })
}

// nextMilli returns once the clock has passed ms: the server stamps
// messages in milliseconds, and a test that orders rooms by activity
// needs two of them apart. The clock signals nothing; this spins.
func nextMilli(ms uint64) {
	for uint64(time.Now().UnixMilli()) <= ms {
		runtime.Gosched()
	}
}

// TestWelcomeAnnouncesTheInboxAnd64Rooms: WELCOME says the server
// understands IDENTIFY, HISTORY, READ and LIST, and lets a connection be
// in 64 rooms by default, which it can.
func TestWelcomeAnnouncesTheInboxAnd64Rooms(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	r, w := testserver.Handshake(t, srv.Addr)
	if w.Flags&protocol.WelcomeInbox == 0 || w.MaxRooms != 64 {
		t.Fatalf("WELCOME flags %b, max rooms %d", w.Flags, w.MaxRooms)
	}
	var batch []byte
	for i := range 64 {
		batch = protocol.AppendFrame(batch, &protocol.Join{Room: fmt.Sprint("room ", i), Name: "many"})
	}
	batch = protocol.AppendFrame(batch, &protocol.Join{Room: "one too many", Name: "many"})
	r.Write(batch)
	for range 64 {
		testserver.Expect[*protocol.Joined](r)
	}
	expectRefusal(t, r, protocol.CodeTooManyRooms, "one too many", false)
}

// TestHistoryPagesBackToTheFirstOf10000: a client pages back through
// 10,000 messages with HISTORY until PAGE says first, and gets every one
// exactly once, in order; pages are capped at 200 messages, 100 when it
// asks for no number.
func TestHistoryPagesBackToTheFirstOf10000(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	const n = 10000
	fillRoom(t, srv.Addr, "big", "poster", n)

	r, joined := testserver.JoinRoom(t, srv.Addr, "big", "reader")
	if joined.Head != n {
		t.Fatalf("head %d", joined.Head)
	}
	r.Messages(100) // the join's history

	r.Send(&protocol.History{Room: "BIG"})
	p := until[*protocol.Page](t, r, nil)
	if p.Room != "big" || p.Before != 0 || p.First || len(p.Messages) != 100 || p.Messages[99].Seq != n {
		t.Fatalf("default page: room %q before %d first %v, %d messages", p.Room, p.Before, p.First, len(p.Messages))
	}

	var seqs []uint64
	before, pages := uint64(0), 0
	for {
		r.Send(&protocol.History{Room: "big", Before: before, Limit: 1000})
		p := until[*protocol.Page](t, r, nil)
		pages++
		if p.Before != before || len(p.Messages) == 0 || len(p.Messages) > 200 {
			t.Fatalf("page %d: before %d (asked %d), %d messages", pages, p.Before, before, len(p.Messages))
		}
		for i, m := range p.Messages {
			if m.Room != "big" || m.Text != fmt.Sprint("message ", m.Seq) || (i > 0 && m.Seq != p.Messages[i-1].Seq+1) {
				t.Fatalf("page %d message %d: %+v", pages, i, m)
			}
		}
		if before != 0 && p.Messages[len(p.Messages)-1].Seq != before-1 {
			t.Fatalf("page %d ends at %d, want %d", pages, p.Messages[len(p.Messages)-1].Seq, before-1)
		}
		seqs = append(slices.Clone(seqsOf(p.Messages)), seqs...)
		before = p.Messages[0].Seq
		if p.First {
			break
		}
		if pages > n/200+1 {
			t.Fatal("no page says first")
		}
	}
	if len(seqs) != n || seqs[0] != 1 || seqs[n-1] != n || pages != n/200 {
		t.Fatalf("paged %d messages (%d..%d) in %d pages", len(seqs), seqs[0], seqs[len(seqs)-1], pages)
	}
	// Below the first there is nothing, and the page says so.
	r.Send(&protocol.History{Room: "big", Before: 1, Limit: 10})
	if p := until[*protocol.Page](t, r, nil); !p.First || len(p.Messages) != 0 {
		t.Fatalf("before 1: first %v, %d messages", p.First, len(p.Messages))
	}
}

func seqsOf(ms []protocol.Msg) []uint64 {
	out := make([]uint64, len(ms))
	for i, m := range ms {
		out[i] = m.Seq
	}
	return out
}

// TestHistoryPagesStayUnder256KiB: pages of long messages carry at most
// 256 KiB of them, the newest, and say first only at the first message.
func TestHistoryPagesStayUnder256KiB(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	poster, _ := testserver.JoinRoom(t, srv.Addr, "long", "poster")
	const n = 150
	var batch []byte
	for i := 1; i <= n; i++ {
		batch = protocol.AppendFrame(batch, &protocol.Send{Room: "long", ID: fmt.Sprint(i), Text: fmt.Sprint(i, strings.Repeat("x", protocol.DefaultMaxText-10))})
	}
	poster.Write(batch)
	// Its own copy of the last: HISTORY pages from what the room has
	// delivered (an ACK comes before the message goes out).
	until(t, poster, func(m *protocol.Msg) bool { return m.Seq == n })

	got := 0
	for before := uint64(0); ; {
		poster.Send(&protocol.History{Room: "long", Before: before, Limit: 200})
		p := until[*protocol.Page](t, poster, nil)
		if size := len(protocol.Encode(p)); size > 256<<10+256 || len(p.Messages) == 0 {
			t.Fatalf("a page of %d messages is %d bytes", len(p.Messages), size)
		}
		got += len(p.Messages)
		if p.First != (p.Messages[0].Seq == 1) {
			t.Fatalf("page from %d says first=%v", p.Messages[0].Seq, p.First)
		}
		if p.First {
			break
		}
		before = p.Messages[0].Seq
	}
	if got != n {
		t.Fatalf("paged %d messages, want %d", got, n)
	}
}

// TestDirectMessagesArePrivate: a DM reaches the receiver's identified
// device, which is in no room, as a NOTICE; the receiver's next device
// finds it in IDENTIFIED. A third name cannot join it (under any spelling
// of its name), nor read it, nor hear of it; neither can one of the two
// names without its name key, nor a stranger using one of the names.
func TestDirectMessagesArePrivate(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	bob, idb := identify(t, srv.Addr, "Bob", "bob's key")
	if idb.Name != "Bob" || len(idb.DMs) != 0 {
		t.Fatalf("IDENTIFIED %+v", idb)
	}
	mallory, _ := identify(t, srv.Addr, "mallory", "mallory's key")

	alice, joined := joinAs(t, srv.Addr, "@BOB@Alice", "alice", "alice's key")
	if joined.Room != "@alice@bob" {
		t.Fatalf("joined %q, want the canonical @alice@bob", joined.Room)
	}
	ack := post(t, alice, "@bob@alice", "d1", "psst, bob")
	n := until[*protocol.Notice](t, bob, nil)
	if n.Kind != protocol.NoticeDirect || n.Msg.Room != "@alice@bob" || n.Msg.Text != "psst, bob" || n.Msg.Sender != "alice" || n.Msg.Seq != ack.Seq {
		t.Fatalf("bob's notice %+v", n)
	}

	// Bob's next device learns of the DM from IDENTIFIED and joins it.
	bob2, idb2 := identify(t, srv.Addr, "bob", "bob's key")
	if len(idb2.DMs) != 1 || idb2.DMs[0] != (protocol.RoomState{Room: "@alice@bob", Head: 1, Time: ack.Time}) {
		t.Fatalf("bob's second device: %+v", idb2)
	}
	bob2.Send(&protocol.Join{Room: "@alice@bob", Name: "bob", Secret: "bob's key"})
	if j := testserver.Expect[*protocol.Joined](bob2); j.Head != 1 {
		t.Fatalf("bob joined %+v", j)
	}
	if m := bob2.Messages(1)[0]; m.Text != "psst, bob" {
		t.Fatalf("bob's history: %+v", m)
	}

	// Guessing the room's name does not help, in any spelling.
	m, _ := testserver.Handshake(t, srv.Addr)
	for _, room := range []string{"@alice@bob", "@Bob@ALICE", "@ａｌｉｃｅ@bob"} {
		m.Send(&protocol.Join{Room: room, Name: "mallory", Secret: "mallory's key"})
		expectRefusal(t, m, protocol.CodeForbidden, "@alice@bob", false)
	}
	m.Send(&protocol.Join{Room: "@alice@bob", Name: "bob", Secret: "mallory's key"})
	expectRefusal(t, m, protocol.CodeNameOwned, "@alice@bob", false)
	m.Send(&protocol.Join{Room: "@alice@bob", Name: "alice"})
	expectRefusal(t, m, protocol.CodeForbidden, "@alice@bob", false)
	// A name nobody claimed, without a key, cannot either.
	m.Send(&protocol.Join{Room: "@alice@zed", Name: "zed"})
	expectRefusal(t, m, protocol.CodeForbidden, "@alice@zed", false)
	// Nor can it read one it is not in.
	m.Send(&protocol.History{Room: "@alice@bob"})
	expectRefusal(t, m, protocol.CodeUnexpected, "@alice@bob", true)
	m.ExpectClosed()

	// The next DM reaches both of bob's devices, and alice's own device
	// (as the room's member); mallory, identified, hears nothing of it:
	// the first notice she gets is of her own DM with bob, sent after.
	ack2 := post(t, alice, "@alice@bob", "d2", "second")
	for _, dev := range []*testserver.Raw{bob, bob2} {
		until(t, dev, func(n *protocol.Notice) bool { return n.Msg.Seq == ack2.Seq })
	}
	mdm, _ := joinAs(t, srv.Addr, "@mallory@bob", "mallory", "mallory's key")
	post(t, mdm, "@mallory@bob", "m1", "hi bob")
	if n := testserver.Expect[*protocol.Notice](mallory); n.Msg.Room != "@bob@mallory" || n.Msg.Text != "hi bob" {
		t.Fatalf("mallory's first notice: %+v", n)
	}
	if n := until[*protocol.Notice](t, bob, func(n *protocol.Notice) bool { return n.Msg.Room == "@bob@mallory" }); n.Kind != protocol.NoticeDirect {
		t.Fatalf("bob's notice of mallory's DM: %+v", n)
	}

	// DMs are never listed.
	mallory.Send(&protocol.List{})
	if rooms := testserver.Expect[*protocol.Rooms](mallory); len(rooms.Rooms) != 0 {
		t.Fatalf("ROOMS lists %+v", rooms.Rooms)
	}
}

// TestDirectRoomNamesMayBeLongerThanRooms: a DM of two names of the
// longest allowed length has a name longer than max room; it is joined
// all the same.
func TestDirectRoomNamesMayBeLongerThanRooms(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	a, b := strings.Repeat("a", protocol.DefaultMaxName), strings.Repeat("b", protocol.DefaultMaxName)
	room := protocol.DMRoom(a, b)
	if len(room) <= protocol.DefaultMaxRoom {
		t.Fatalf("room %q is not longer than max room", room)
	}
	if _, j := joinAs(t, srv.Addr, room, b, "b's key"); j.Room != room {
		t.Fatalf("joined %+v", j)
	}
	r, _ := testserver.Handshake(t, srv.Addr)
	long := "@" + strings.Repeat("c", protocol.MaxDMRoom(protocol.DefaultMaxName))
	r.Send(&protocol.Join{Room: long, Name: "c", Secret: "c"})
	expectRefusal(t, r, protocol.CodeTooLong, long, true)
}

// TestReadMarkersReachEveryDeviceOnlyForwardAndSurviveRestart: READ on
// one device sends MARKER once to each device of the name that is
// identified or in the room (having sent an inbox request), the reader
// included, and to nobody else;
// markers never move back nor past the head; JOINED carries the marker,
// also after the server was killed and started again.
func TestReadMarkersReachEveryDeviceOnlyForwardAndSurviveRestart(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	const key = "alice's key"
	laptop, _ := identify(t, srv.Addr, "alice", key)
	laptop.Send(&protocol.Join{Room: "general", Name: "alice", Secret: key})
	testserver.Expect[*protocol.Joined](laptop)
	phone, _ := joinAs(t, srv.Addr, "General", "ALICE", key) // in the room, not identified
	phone.Send(&protocol.List{})                             // but using the inbox (spec §9)
	until[*protocol.Rooms](t, phone, nil)
	tablet, _ := identify(t, srv.Addr, "Alice", key) // identified, in no room
	bob, _ := joinAs(t, srv.Addr, "general", "bob", "bob's key")
	bobID, _ := identify(t, srv.Addr, "bob", "bob's key")
	for i := 1; i <= 5; i++ {
		post(t, bob, "general", fmt.Sprint(i), fmt.Sprint("message ", i))
	}

	devices := map[string]*testserver.Raw{"laptop": laptop, "phone": phone, "tablet": tablet}
	expectMarker := func(seq uint64) {
		t.Helper()
		for name, dev := range devices {
			mk := until(t, dev, func(*protocol.Marker) bool { return true })
			if mk.Room != "general" || mk.Seq != seq {
				t.Fatalf("%s got %+v, want general %d", name, mk, seq)
			}
			// Once: nothing more of it before a PONG.
			none[*protocol.Marker](t, name, settle(t, dev))
		}
	}
	laptop.Send(&protocol.Read{Room: "GENERAL", Seq: 3})
	expectMarker(3)
	laptop.Send(&protocol.Read{Room: "general", Seq: 2}) // back: nothing
	phone.Send(&protocol.Read{Room: "general", Seq: 3})  // the same: nothing
	none[*protocol.Marker](t, "laptop", settle(t, laptop))
	none[*protocol.Marker](t, "phone", settle(t, phone))
	phone.Send(&protocol.Read{Room: "general", Seq: 99}) // past the head: the head
	expectMarker(5)
	// Bob's devices heard nothing of alice's markers.
	none[*protocol.Marker](t, "bob", settle(t, bob))
	none[*protocol.Marker](t, "bob's identified device", settle(t, bobID))

	srv.Restart()
	_, j := joinAs(t, srv.Addr, "general", "alice", key)
	if j.Read != 5 || j.Head != 5 || j.Mentions != 0 {
		t.Fatalf("JOINED after restart: read %d, head %d, mentions %d", j.Read, j.Head, j.Mentions)
	}
	// A name without a name key has no marker and cannot set one; the
	// connection stays.
	anon, j := joinAs(t, srv.Addr, "general", "anon", "")
	if j.Read != 0 {
		t.Fatalf("JOINED without a key: read %d", j.Read)
	}
	anon.Messages(5)
	anon.Send(&protocol.Read{Room: "general", Seq: 5})
	expectRefusal(t, anon, protocol.CodeForbidden, "general", false)
	post(t, anon, "general", "a1", "still here")
}

// TestMentionsAreNoticedAndCounted: a message naming a claimed name
// (case-insensitively, not inside an address) sends the name's
// identified devices a NOTICE, in no room or not, and counts in the
// JOINED of the name until read; the sender does not mention itself, and
// DMs mention nobody.
func TestMentionsAreNoticedAndCounted(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	carol, _ := identify(t, srv.Addr, "Carol", "carol's key")
	bob, _ := joinAs(t, srv.Addr, "general", "bob", "bob's key")
	bobID, _ := identify(t, srv.Addr, "bob", "bob's key")

	post(t, bob, "general", "1", "mail carol@example.com, or @dave")
	first := post(t, bob, "general", "2", "hey @CAROL, look")
	n := testserver.Expect[*protocol.Notice](carol)
	if n.Kind != protocol.NoticeMention || n.Msg.Seq != first.Seq || n.Msg.Room != "general" || n.Msg.Text != "hey @CAROL, look" {
		t.Fatalf("carol's notice %+v", n)
	}
	post(t, bob, "general", "3", "@bob talks to himself")
	dm, _ := joinAs(t, srv.Addr, "@bob@carol", "bob", "bob's key")
	post(t, dm, "@bob@carol", "4", "@carol in a DM is a DM")
	if n := testserver.Expect[*protocol.Notice](carol); n.Kind != protocol.NoticeDirect {
		t.Fatalf("carol's notice of the DM: %+v", n)
	}
	second := post(t, bob, "general", "5", "@carol again")
	if n := testserver.Expect[*protocol.Notice](carol); n.Kind != protocol.NoticeMention || n.Msg.Seq != second.Seq {
		t.Fatalf("carol's second mention: %+v", n)
	}
	// Bob's identified device got the DM's notice and no mention: the
	// mentions of his messages are stored in order, so his own would have
	// come before carol's second.
	for _, m := range settle(t, bobID) {
		if n, ok := m.(*protocol.Notice); ok && n.Kind != protocol.NoticeDirect {
			t.Fatalf("bob got %+v", n)
		}
	}

	c, j := joinAs(t, srv.Addr, "general", "carol", "carol's key")
	if j.Mentions != 2 || j.Read != 0 {
		t.Fatalf("carol's JOINED: mentions %d, read %d", j.Mentions, j.Read)
	}
	c.Send(&protocol.Read{Room: "general", Seq: first.Seq})
	until[*protocol.Marker](t, c, nil)
	if _, j := joinAs(t, srv.Addr, "general", "carol", "carol's key"); j.Mentions != 1 || j.Read != first.Seq {
		t.Fatalf("after reading the first: mentions %d, read %d", j.Mentions, j.Read)
	}
	if _, j := joinAs(t, srv.Addr, "general", "dave", "dave's key"); j.Mentions != 0 {
		t.Fatalf("dave, unclaimed when mentioned, has %d mentions", j.Mentions)
	}
}

// TestRoomListExcludesDMsAndOrdersByMembersThenActivity: ROOMS lists the
// rooms with members or messages whose key contains the query's, most
// members first, then the most recently active, never a DM.
func TestRoomListExcludesDMsAndOrdersByMembersThenActivity(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	// delta: messages, nobody in it; gamma: newer messages, nobody.
	d, _ := joinAs(t, srv.Addr, "Delta", "poster", "")
	dAck := post(t, d, "delta", "d", "in delta")
	d.Send(&protocol.Leave{Room: "delta"})
	until[*protocol.Left](t, d, nil)
	nextMilli(dAck.Time)
	d.Send(&protocol.Join{Room: "gamma", Name: "poster"})
	testserver.Expect[*protocol.Joined](d)
	gAck := post(t, d, "gamma", "g", "in gamma")
	d.Send(&protocol.Leave{Room: "gamma"})
	until[*protocol.Left](t, d, nil)
	// beta: one member and messages; alpha: two members, no messages;
	// empty: joined and left, nothing in it.
	b, _ := joinAs(t, srv.Addr, "beta", "bea", "")
	post(t, b, "beta", "b", "in beta")
	joinAs(t, srv.Addr, "alpha", "al", "")
	joinAs(t, srv.Addr, "ALPHA", "alf", "")
	e, _ := joinAs(t, srv.Addr, "empty", "e", "")
	e.Send(&protocol.Leave{Room: "empty"})
	until[*protocol.Left](t, e, nil)
	// A DM with members and messages.
	dm, _ := joinAs(t, srv.Addr, "@al@bea", "al", "al's key")
	post(t, dm, "@al@bea", "x", "private")

	r, _ := testserver.Handshake(t, srv.Addr)
	r.Send(&protocol.List{})
	got := testserver.Expect[*protocol.Rooms](r)
	var list []string
	for _, x := range got.Rooms {
		list = append(list, fmt.Sprintf("%s:%d", x.Room, x.Members))
	}
	if want := []string{"alpha:2", "beta:1", "gamma:0", "delta:0"}; !slices.Equal(list, want) {
		t.Fatalf("ROOMS %v, want %v", list, want)
	}
	if x := got.Rooms[2]; x.Head != 1 || x.Time != gAck.Time {
		t.Fatalf("gamma: %+v", x)
	}
	if x := got.Rooms[0]; x.Head != 0 || x.Time != 0 {
		t.Fatalf("alpha: %+v", x)
	}
	r.Send(&protocol.List{Query: "ＥＴ"}) // the query's key: "et"
	got = testserver.Expect[*protocol.Rooms](r)
	if got.Query != "ＥＴ" || len(got.Rooms) != 1 || got.Rooms[0].Room != "beta" {
		t.Fatalf("ROOMS for et: %+v", got)
	}
	r.Send(&protocol.List{Query: "@"})
	if got := testserver.Expect[*protocol.Rooms](r); len(got.Rooms) != 0 {
		t.Fatalf("ROOMS for @: %+v", got)
	}
}

// TestInboxRequestsRefusedAsSpecified: bad IDENTIFY, READ, HISTORY and
// JOIN get the ERROR the spec gives them, closing or not, and a client in
// the same room meanwhile notices nothing.
func TestInboxRequestsRefusedAsSpecified(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	bystander, _ := joinAs(t, srv.Addr, "general", "bystander", "b")
	post(t, bystander, "general", "b1", "before")
	identify(t, srv.Addr, "owner", "owner's key")

	r, _ := testserver.Handshake(t, srv.Addr)
	r.Send(&protocol.Identify{Name: "alice"})
	expectRefusal(t, r, protocol.CodeForbidden, "", false)
	r.Send(&protocol.Identify{Name: "al@ice", Secret: "k"})
	expectRefusal(t, r, protocol.CodeInvalidName, "", false)
	r.Send(&protocol.Identify{Name: "", Secret: "k"})
	expectRefusal(t, r, protocol.CodeInvalidName, "", false)
	r.Send(&protocol.Identify{Name: "OWNER", Secret: "k"})
	expectRefusal(t, r, protocol.CodeNameOwned, "", false)
	r.Send(&protocol.Join{Room: "@general", Name: "alice"})
	expectRefusal(t, r, protocol.CodeInvalidRoom, "@general", false)
	r.Send(&protocol.Join{Room: "general", Name: "alice@home"})
	expectRefusal(t, r, protocol.CodeInvalidName, "general", false)
	r.Send(&protocol.Join{Room: "general", Name: "ａｌｉｃｅ＠ｈｏｍｅ"})
	expectRefusal(t, r, protocol.CodeInvalidName, "general", false)
	// After the refusals, a good IDENTIFY; then a second one closes.
	r.Send(&protocol.Identify{Name: "alice", Secret: "k"})
	testserver.Expect[*protocol.Identified](r)
	r.Send(&protocol.Identify{Name: "alice", Secret: "k"})
	expectRefusal(t, r, protocol.CodeUnexpected, "", true)
	r.ExpectClosed()

	closing := []struct {
		name  string
		frame protocol.Message
		code  protocol.ErrorCode
		room  string
	}{
		{"HISTORY of a room not joined", &protocol.History{Room: "General"}, protocol.CodeUnexpected, "general"},
		{"READ of a room not joined", &protocol.Read{Room: "general", Seq: 1}, protocol.CodeUnexpected, "general"},
		{"IDENTIFY with a name too long", &protocol.Identify{Name: strings.Repeat("n", protocol.DefaultMaxName+1), Secret: "k"}, protocol.CodeTooLong, ""},
	}
	for _, tc := range closing {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := testserver.Handshake(t, srv.Addr)
			r.Send(tc.frame)
			expectRefusal(t, r, tc.code, tc.room, true)
			r.ExpectClosed()
		})
	}

	// The bystander saw nothing of it but its own room.
	post(t, bystander, "general", "b2", "after")
	for _, m := range settle(t, bystander) {
		switch m.(type) {
		case *protocol.Msg, *protocol.Presence:
		default:
			t.Fatalf("the bystander got %T %+v", m, m)
		}
	}
}

// TestIdentifiedConnectionOutlivesTheIdleTimeout: a connection in no room
// is closed after the idle timeout, unless it has identified: it waits
// for notices.
func TestIdentifiedConnectionOutlivesTheIdleTimeout(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"-idle-timeout", "300ms"}})
	id, _ := identify(t, srv.Addr, "waiter", "w")
	idle, _ := testserver.Handshake(t, srv.Addr)
	// The idle connection, opened after the identified one, is closed;
	// by then the identified one has been in no room for longer.
	if e := testserver.Expect[*protocol.Error](idle); e.Code != protocol.CodeTimeout {
		t.Fatalf("the idle connection got %v", e)
	}
	settle(t, id)
	dm, _ := joinAs(t, srv.Addr, "@poster@waiter", "poster", "p")
	post(t, dm, "@poster@waiter", "1", "still there?")
	if n := testserver.Expect[*protocol.Notice](id); n.Msg.Text != "still there?" {
		t.Fatalf("notice %+v", n)
	}
}

// TestMarkersGoOnlyToConnectionsThatUseTheInbox (spec §3, §4 Read
// markers, §9): a device of the name in the room that has sent no inbox
// request (a client of before the inbox, say) gets no MARKER, which it
// would take for a broken server; once it has sent one (LIST here), it
// gets the next.
func TestMarkersGoOnlyToConnectionsThatUseTheInbox(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	const key = "alice's key"
	laptop, _ := joinAs(t, srv.Addr, "general", "alice", key)
	old, _ := joinAs(t, srv.Addr, "general", "Alice", key)
	bob, _ := joinAs(t, srv.Addr, "general", "bob", "bob's key")
	first := post(t, bob, "general", "1", "one")
	// A device marks read what it has seen: bob's ACK may come before the
	// room's broadcast, and a READ is capped at what the room has sent.
	seen := func(r *testserver.Raw, seq uint64) {
		until[*protocol.Msg](t, r, func(m *protocol.Msg) bool { return m.Seq == seq })
	}
	seen(laptop, first.Seq)

	laptop.Send(&protocol.Read{Room: "general", Seq: first.Seq})
	if mk := until[*protocol.Marker](t, laptop, nil); mk.Seq != first.Seq {
		t.Fatalf("laptop's marker %+v", mk)
	}
	none[*protocol.Marker](t, "the device that never used the inbox", settle(t, old))

	old.Send(&protocol.List{})
	until[*protocol.Rooms](t, old, nil)
	second := post(t, bob, "general", "2", "two")
	seen(laptop, second.Seq)
	laptop.Send(&protocol.Read{Room: "general", Seq: second.Seq})
	if mk := until[*protocol.Marker](t, old, nil); mk.Room != "general" || mk.Seq != second.Seq {
		t.Fatalf("the device that listed rooms got %+v", mk)
	}
}

// TestDirectRoomRefusalComesBeforeTheRoomCount (spec §4 step 2: the
// direct-message check, then the room count): a third name in its
// room limit asking for a DM is told it is forbidden, not that it is in
// too many rooms, which would suggest leaving one to get in.
func TestDirectRoomRefusalComesBeforeTheRoomCount(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"-max-rooms", "1"}})
	r, _ := joinAs(t, srv.Addr, "general", "mallory", "mallory's key")
	r.Send(&protocol.Join{Room: "@alice@bob", Name: "mallory", Secret: "mallory's key"})
	expectRefusal(t, r, protocol.CodeForbidden, "@alice@bob", false)
	r.Send(&protocol.Join{Room: "@bob@mallory", Name: "mallory", Secret: "mallory's key"})
	expectRefusal(t, r, protocol.CodeTooManyRooms, "@bob@mallory", false)
}

// TestRefusalsOfInvalidRoomsEchoTheRoomAsSent (spec §3 ERROR): a HISTORY,
// READ, SEND or LEAVE for a room name that breaks the rules or is too
// long is refused with the room exactly as sent, which has no canonical
// form.
func TestRefusalsOfInvalidRoomsEchoTheRoomAsSent(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	for _, room := range []string{"GEN\u200bERAL", "Ｇeneral\x00", strings.Repeat("R", protocol.DefaultMaxRoom+1)} {
		for _, m := range []protocol.Message{
			&protocol.History{Room: room},
			&protocol.Read{Room: room, Seq: 1},
			&protocol.Send{Room: room, ID: "1", Text: "x"},
			&protocol.Leave{Room: room},
		} {
			t.Run(fmt.Sprintf("%v %q", m.Type(), room), func(t *testing.T) {
				r, _ := testserver.Handshake(t, srv.Addr)
				r.Send(m)
				expectRefusal(t, r, protocol.CodeUnexpected, room, true)
			})
		}
	}
}

// TestDirectRoomsStayPrivateOnEveryPath: the ways into a DM other than a
// plain JOIN are closed too. A connection identified as one of the two
// names cannot join under a third; a resume of the DM by a third name is
// forbidden like a JOIN (no history after its `after`); spellings that
// NFKC or case make one of the two names get in only with that name's
// key; a third name identified hears nothing of the DM, and a HISTORY
// or READ of it without having joined it closes the connection.
func TestDirectRoomsStayPrivateOnEveryPath(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	alice, _ := joinAs(t, srv.Addr, "@alice@bob", "alice", "alice's key")
	identify(t, srv.Addr, "bob", "bob's key")
	post(t, alice, "@alice@bob", "1", "secret plans")
	mallory, _ := identify(t, srv.Addr, "mallory", "mallory's key")

	// Identified as alice, joining as a third name.
	r, _ := identify(t, srv.Addr, "alice", "alice's key")
	r.Send(&protocol.Join{Room: "@alice@bob", Name: "mallory", Secret: "mallory's key"})
	expectRefusal(t, r, protocol.CodeForbidden, "@alice@bob", false)

	m, _ := testserver.Handshake(t, srv.Addr)
	for _, j := range []*protocol.Join{
		{Room: "@alice@bob", Name: "mallory", Secret: "mallory's key", Resume: true, After: 0},
		{Room: "＠ＢＯＢ＠ａｌｉｃｅ", Name: "mallory", Secret: "mallory's key"},
		{Room: "@alice@bob", Name: "ＢＯＢ", Secret: "mallory's key"},
		{Room: "@alice@bob", Name: "Bob", Secret: ""},
		{Room: "@alice@bob", Name: "ALICE", Resume: true, Secret: "mallory's key"},
	} {
		m.Send(j)
		code := protocol.CodeForbidden
		if j.Name != "mallory" && j.Secret != "" {
			code = protocol.CodeNameOwned
		}
		expectRefusal(t, m, code, "@alice@bob", false)
	}
	// The right key in another spelling of the name gets in.
	b, _ := testserver.Handshake(t, srv.Addr)
	b.Send(&protocol.Join{Room: "＠ａｌｉｃｅ＠ＢＯＢ", Name: "ＢＯＢ", Secret: "bob's key"})
	if j := testserver.Expect[*protocol.Joined](b); j.Room != "@alice@bob" || j.Head != 1 {
		t.Fatalf("bob joined %+v", j)
	}
	b.Messages(1)
	// Mallory, identified all along, heard nothing of it.
	for _, f := range settle(t, mallory) {
		t.Fatalf("mallory got %T %+v", f, f)
	}
	for _, req := range []protocol.Message{&protocol.History{Room: "@bob@alice"}, &protocol.Read{Room: "@alice@bob", Seq: 1}} {
		m, _ := identify(t, srv.Addr, "mallory", "mallory's key")
		m.Send(req)
		expectRefusal(t, m, protocol.CodeUnexpected, "@alice@bob", true)
	}
}

// TestRacingReadsFromSeveralDevicesOnlyMoveForward: three devices of a
// name send READs for the same room in shuffled orders at once. Every
// device sees the marker only move forward, each MARKER once per move,
// and ends at the largest READ; JOINED then carries it.
func TestRacingReadsFromSeveralDevicesOnlyMoveForward(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"-msg-rate", "0"}})
	const key, n = "alice's key", 60
	poster, _ := joinAs(t, srv.Addr, "general", "poster", "")
	var batch []byte
	for i := 1; i <= n; i++ {
		batch = protocol.AppendFrame(batch, &protocol.Send{Room: "general", ID: fmt.Sprint(i), Text: fmt.Sprint(i)})
	}
	poster.Write(batch)
	until(t, poster, func(m *protocol.Msg) bool { return m.Seq == n })

	devices := make([]*testserver.Raw, 3)
	for i := range devices {
		devices[i], _ = identify(t, srv.Addr, "alice", key)
		devices[i].Send(&protocol.Join{Room: "general", Name: "alice", Secret: key})
		testserver.Expect[*protocol.Joined](devices[i])
	}
	for i, d := range devices {
		var reads []byte
		for j := range n {
			seq := uint64((j*(7+2*i)+i)%n + 1) // a different order per device
			reads = protocol.AppendFrame(reads, &protocol.Read{Room: "general", Seq: seq})
		}
		go d.Conn.Write(reads) // all three at once; read below
	}
	for i, d := range devices {
		last := uint64(0)
		for last < n {
			mk := until[*protocol.Marker](t, d, nil)
			if mk.Room != "general" || mk.Seq <= last {
				t.Fatalf("device %d: MARKER %d after %d", i, mk.Seq, last)
			}
			last = mk.Seq
		}
		none[*protocol.Marker](t, fmt.Sprint("device ", i), settle(t, d))
	}
	if _, j := joinAs(t, srv.Addr, "general", "ALICE", key); j.Read != n {
		t.Fatalf("JOINED read %d, want %d", j.Read, n)
	}
}

// TestListQueriesAreMeasuredByTheirKey: a LIST is never refused (spec
// §7 has no refusal for it). A query typed in fullwidth letters, as
// Japanese and Chinese input methods write them, is longer in bytes than
// the room name it matches, whose key it shares; the Go client measures
// queries by their key and sends it, and must get the room, not a
// closing too-long (which it would take for a reason to stop
// reconnecting). A query longer than any room name matches nothing.
func TestListQueriesAreMeasuredByTheirKey(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	const room = "abcdefghijklmnopqrstuvwxyz-abcdefghijklmnopqrstuvwxyz"
	joinAs(t, srv.Addr, room, "someone", "")
	var fullwidth []rune
	for _, c := range room {
		if c == '-' {
			fullwidth = append(fullwidth, '－')
		} else {
			fullwidth = append(fullwidth, c-'a'+'ａ')
		}
	}
	query := string(fullwidth)
	if len(query) <= protocol.DefaultMaxRoom || len(protocol.Key(query)) > protocol.DefaultMaxRoom || protocol.Key(query) != room {
		t.Fatalf("query %q: %d bytes, key %q", query, len(query), protocol.Key(query))
	}
	r, _ := testserver.Handshake(t, srv.Addr)
	r.Send(&protocol.List{Query: query})
	if got := testserver.Expect[*protocol.Rooms](r); got.Query != query || len(got.Rooms) != 1 || got.Rooms[0].Room != room {
		t.Fatalf("ROOMS %+v", got)
	}
	long := strings.Repeat("q", protocol.DefaultMaxRoom+1)
	r.Send(&protocol.List{Query: long})
	if got := testserver.Expect[*protocol.Rooms](r); got.Query != long || len(got.Rooms) != 0 {
		t.Fatalf("ROOMS %+v", got)
	}
}
