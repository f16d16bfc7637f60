package client_test

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"chat/client"
	"chat/internal/clienttest"
	"chat/protocol"
)

// fake plays a server that has identities, scrollback, read markers and
// a room list, on 127.0.0.1, speaking real frames. It answers HELLO with
// its WELCOME and PING with PONG by itself; every other frame a client
// sends is handed to the test (frames), after handle, if set, has answered
// it. Without handle, JOIN is answered with a JOINED of an empty room and
// IDENTIFY with an IDENTIFIED without DMs; the rest waits for the test.
type fake struct {
	t       *testing.T
	ln      net.Listener
	welcome protocol.Welcome
	frames  chan fakeFrame

	mu     sync.Mutex
	conns  []*fakeConn
	handle func(c *fakeConn, m protocol.Message) bool // true: answered, skip the default
}

// setHandle sets the function that answers frames first.
func (f *fake) setHandle(h func(c *fakeConn, m protocol.Message) bool) {
	f.mu.Lock()
	f.handle = h
	f.mu.Unlock()
}

type fakeConn struct {
	net.Conn
	n  int // connections accepted before this one
	mu sync.Mutex
}

type fakeFrame struct {
	c   *fakeConn
	msg protocol.Message
}

func (c *fakeConn) write(ms ...protocol.Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range ms {
		if _, err := c.Write(protocol.Encode(m)); err != nil {
			return
		}
	}
}

func startFake(t *testing.T, opts ...func(*fake)) *fake {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fake{t: t, ln: ln, frames: make(chan fakeFrame, 1024),
		welcome: protocol.Welcome{Version: protocol.Version, Server: "fake", MaxFrame: 16384, MaxText: 4096,
			MaxName: 32, MaxRoom: 64, MaxRooms: 64, History: 100, PingMs: 30000, Flags: protocol.WelcomeInbox}}
	for _, o := range opts {
		o(f)
	}
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, c := range f.conns {
			c.Close()
		}
	})
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			c := &fakeConn{Conn: nc, n: len(f.conns)}
			f.conns = append(f.conns, c)
			f.mu.Unlock()
			go f.serve(c)
		}
	}()
	return f
}

func (f *fake) addr() string { return f.ln.Addr().String() }

// drop closes the newest connection, as a network failure would.
func (f *fake) drop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.conns[len(f.conns)-1].Close()
}

func (f *fake) serve(c *fakeConn) {
	defer c.Close()
	for {
		body, err := protocol.ReadFrame(c, protocol.MaxFrame, nil)
		if err != nil {
			return
		}
		m, err := protocol.Decode(body)
		if err != nil {
			return
		}
		switch m := m.(type) {
		case *protocol.Hello:
			w := f.welcome
			w.Time = protocol.Millis(time.Now())
			c.write(&w)
			continue
		case *protocol.Ping:
			c.write(&protocol.Pong{Nonce: m.Nonce})
			continue
		case *protocol.Pong:
			continue
		}
		f.mu.Lock()
		handle := f.handle
		f.mu.Unlock()
		if handle == nil || !handle(c, m) {
			switch m := m.(type) {
			case *protocol.Join:
				c.write(&protocol.Joined{Room: m.Room, Name: m.Name, After: m.After, Head: m.After, Count: 1, Members: []string{m.Name}})
			case *protocol.Identify:
				c.write(&protocol.Identified{Name: m.Name})
			}
		}
		f.frames <- fakeFrame{c, m}
	}
}

// next returns the next frame a client sent (HELLO, PING and PONG aside).
func (f *fake) next(t *testing.T) fakeFrame {
	t.Helper()
	select {
	case fr := <-f.frames:
		return fr
	case <-time.After(clienttest.Timeout):
		t.Fatal("no frame from the client")
		return fakeFrame{}
	}
}

// expectFrame returns the next frame, which must be a T.
func expectFrame[T protocol.Message](t *testing.T, f *fake) (T, *fakeConn) {
	t.Helper()
	fr := f.next(t)
	m, ok := fr.msg.(T)
	if !ok {
		var zero T
		t.Fatalf("the client sent %T %+v, want %T", fr.msg, fr.msg, zero)
	}
	return m, fr.c
}

func fastClient(t *testing.T, addr, name string, dial ...client.Dialer) *clienttest.Recorder {
	cfg := fast(client.Config{Addr: addr, Name: name, Key: "k", Secret: "s3cret"})
	if len(dial) > 0 {
		cfg.Dial = dial[0]
	}
	return clienttest.New(t, cfg)
}

func waitEvent[T client.Event](t *testing.T, r *clienttest.Recorder, match func(T) bool) T {
	t.Helper()
	var zero T
	return r.Wait(t, fmt.Sprintf("%T", zero), func(ev client.Event) bool {
		e, ok := ev.(T)
		return ok && (match == nil || match(e))
	}).(T)
}

// waitReconnecting waits for the n-th StateChanged to Reconnecting.
func waitReconnecting(t *testing.T, r *clienttest.Recorder, n int) {
	t.Helper()
	seen := 0
	r.Wait(t, fmt.Sprintf("reconnecting #%d", n), func(ev client.Event) bool {
		if s, ok := ev.(client.StateChanged); ok && s.State == client.Reconnecting {
			seen++
		}
		return seen == n
	})
}

// TestIdentifyOnEveryConnection: after HELLO the client's first frame is
// IDENTIFY with its name, name key and server key, on every connection;
// IDENTIFIED becomes an Identified event with the DMs' peers.
func TestIdentifyOnEveryConnection(t *testing.T) {
	f := startFake(t)
	f.setHandle(func(c *fakeConn, m protocol.Message) bool {
		if id, ok := m.(*protocol.Identify); ok {
			c.write(&protocol.Identified{Name: id.Name, DMs: []protocol.RoomState{
				{Room: "@alice@bob", Head: 7, Time: 1_700_000_000_000, Read: 5},
				{Room: "@alice@alice", Head: 1, Time: 1_600_000_000_000, Read: 1},
			}})
			return true
		}
		return false
	})
	alice := fastClient(t, f.addr(), "Alice")
	id, _ := expectFrame[*protocol.Identify](t, f)
	if *id != (protocol.Identify{Name: "Alice", Secret: "s3cret", Key: "k"}) {
		t.Fatalf("IDENTIFY %+v", id)
	}
	ev := waitEvent[client.Identified](t, alice, nil)
	want := []client.RoomState{
		{Room: "@alice@bob", Peer: "bob", Head: 7, Time: time.UnixMilli(1_700_000_000_000), Read: 5},
		{Room: "@alice@alice", Peer: "alice", Head: 1, Time: time.UnixMilli(1_600_000_000_000), Read: 1},
	}
	if ev.Name != "Alice" || fmt.Sprint(ev.DMs) != fmt.Sprint(want) {
		t.Fatalf("Identified %+v, want DMs %+v", ev, want)
	}

	alice.C.Join("general")
	expectFrame[*protocol.Join](t, f)
	alice.WaitJoined(t, "general")
	f.drop()
	// The new connection identifies again, before it re-joins.
	if _, c := expectFrame[*protocol.Identify](t, f); c.n != 1 {
		t.Fatalf("IDENTIFY on connection %d, want 1", c.n)
	}
	if j, _ := expectFrame[*protocol.Join](t, f); !j.Resume {
		t.Fatalf("re-JOIN %+v", j)
	}
	n := 0
	alice.Wait(t, "second Identified", func(ev client.Event) bool {
		if _, ok := ev.(client.Identified); ok {
			n++
		}
		return n == 2
	})
}

// TestOldServerGetsNoNewFrames: a server without the inbox flag gets no
// IDENTIFY, and History, MarkRead and ListRooms fail with ErrUnsupported.
func TestOldServerGetsNoNewFrames(t *testing.T) {
	f := startFake(t, func(f *fake) { f.welcome.Flags = 0 })
	alice := fastClient(t, f.addr(), "alice")
	alice.C.Join("general")
	expectFrame[*protocol.Join](t, f) // the first frame: no IDENTIFY
	alice.WaitJoined(t, "general")
	for what, err := range map[string]error{
		"History":   alice.C.History("general", 0, 10),
		"MarkRead":  alice.C.MarkRead("general", 1),
		"ListRooms": alice.C.ListRooms(""),
	} {
		if !errors.Is(err, client.ErrUnsupported) {
			t.Errorf("%s: %v, want ErrUnsupported", what, err)
		}
	}
	for _, ev := range alice.Events() {
		if _, ok := ev.(client.Identified); ok {
			t.Errorf("Identified from a server without identities")
		}
	}
}

// TestRefusedIdentityKeepsTheRooms: the server refuses IDENTIFY
// (name-owned, which does not close the connection). The client says so
// with IdentityRefused, not a RoomError, and its rooms carry on.
func TestRefusedIdentityKeepsTheRooms(t *testing.T) {
	f := startFake(t)
	f.setHandle(func(c *fakeConn, m protocol.Message) bool {
		if _, ok := m.(*protocol.Identify); ok {
			c.write(protocol.NewError(protocol.CodeNameOwned, "", "the name belongs to another name key"))
			return true
		}
		return false
	})
	alice := fastClient(t, f.addr(), "alice")
	alice.C.Join("general")
	ev := waitEvent[client.IdentityRefused](t, alice, nil)
	if ev.Err.Code != protocol.CodeNameOwned {
		t.Fatalf("IdentityRefused %+v", ev)
	}
	alice.WaitJoined(t, "general")
	if _, err := alice.C.Send("general", "still here"); err != nil {
		t.Fatal(err)
	}
	expectFrame[*protocol.Identify](t, f)
	expectFrame[*protocol.Join](t, f)
	if s, _ := expectFrame[*protocol.Send](t, f); s.Text != "still here" {
		t.Fatalf("SEND %+v", s)
	}
	for _, ev := range alice.Events() {
		if e, ok := ev.(client.RoomError); ok {
			t.Errorf("RoomError for a refused identity: %+v", e)
		}
	}
	if alice.C.State() != client.Connected {
		t.Errorf("state %v", alice.C.State())
	}
}

// TestMarkReadIsCoalescedForwardOnlyAndResent: marks made while a READ
// waits for the pacer go out as one READ with the highest; marks at or
// below the marker send nothing; a mark the server did not confirm before
// the connection dropped, and one made while offline, are sent after the
// room is re-joined, while ahead of the JOINED's marker.
func TestMarkReadIsCoalescedForwardOnlyAndResent(t *testing.T) {
	f := startFake(t, func(f *fake) {
		// A frame every 400 ms after a burst of 3 (the client keeps one in
		// reserve, and a margin): IDENTIFY goes at once, the next frames
		// 440 ms apart, which is plenty of time for three MarkRead calls.
		f.welcome.Limits = protocol.Limits{SendIntervalMs: 400, SendBurst: 3}
	})
	var mu sync.Mutex
	read := uint64(0) // the server's marker
	f.setHandle(func(c *fakeConn, m protocol.Message) bool {
		mu.Lock()
		defer mu.Unlock()
		switch m := m.(type) {
		case *protocol.Join:
			c.write(&protocol.Joined{Room: m.Room, Name: m.Name, After: m.After, Head: 20, Count: 1, Members: []string{m.Name}, Read: read})
			if !m.Resume {
				c.write(msgs(m.Room, 1, 20, "m")...)
			}
			return true
		case *protocol.Read:
			if c.n == 0 && m.Seq > read { // the first connection confirms
				read = m.Seq
				c.write(&protocol.Marker{Room: m.Room, Seq: m.Seq})
			}
			return true
		}
		return false
	})
	tp := &tap{}
	alice := fastClient(t, f.addr(), "alice", tp.dial)
	alice.C.Join("general")
	alice.WaitJoined(t, "general")
	expectFrame[*protocol.Identify](t, f)
	expectFrame[*protocol.Join](t, f)
	for _, seq := range []uint64{3, 9, 5} {
		if err := alice.C.MarkRead("general", seq); err != nil {
			t.Fatal(err)
		}
	}
	if r, _ := expectFrame[*protocol.Read](t, f); r.Seq != 9 {
		t.Fatalf("READ %+v, want the highest mark, 9, alone", r)
	}
	waitEvent[client.ReadMarker](t, alice, func(m client.ReadMarker) bool { return m.Seq == 9 })

	// At or below the marker: nothing is sent. LIST shows what comes next.
	alice.C.MarkRead("general", 9)
	alice.C.MarkRead("general", 4)
	alice.C.ListRooms("after the marks")
	if l, _ := expectFrame[*protocol.List](t, f); l.Query != "after the marks" {
		t.Fatalf("LIST %+v", l)
	}

	// The second connection does not confirm: the mark of 12 is pending
	// when it drops; 15 and 99 are made offline, 99 being lowered to the
	// last message seen, 20. The third connection's JOINED says 9: READ
	// 20 follows it.
	f.drop()
	expectFrame[*protocol.Identify](t, f)
	expectFrame[*protocol.List](t, f) // its ROOMS never came: asked again
	expectFrame[*protocol.Join](t, f)
	waitEvent[client.Joined](t, alice, func(j client.Joined) bool { return j.Resumed && j.Read == 9 })
	alice.C.MarkRead("general", 12)
	if r, _ := expectFrame[*protocol.Read](t, f); r.Seq != 12 {
		t.Fatalf("READ %+v, want 12", r)
	}
	tp.holdDials()
	f.drop()
	waitReconnecting(t, alice, 2)
	alice.C.MarkRead("general", 15)
	alice.C.MarkRead("general", 99) // beyond the last message seen: lowered to 20
	tp.releaseDials()
	expectFrame[*protocol.Identify](t, f)
	expectFrame[*protocol.List](t, f)
	if j, _ := expectFrame[*protocol.Join](t, f); !j.Resume || j.After != 20 {
		t.Fatalf("JOIN %+v", j)
	}
	if r, c := expectFrame[*protocol.Read](t, f); r.Seq != 20 || c.n != 2 {
		t.Fatalf("READ %+v on connection %d, want 20 on the third", r, c.n)
	}
}

// TestMarkMadeOfflineNotResentWhenAnotherDeviceGotFurther: a mark made
// while offline is not sent when the re-join's marker is already past it.
func TestMarkMadeOfflineNotResentWhenAnotherDeviceGotFurther(t *testing.T) {
	f := startFake(t)
	var mu sync.Mutex
	read := uint64(0)
	f.setHandle(func(c *fakeConn, m protocol.Message) bool {
		if j, ok := m.(*protocol.Join); ok {
			mu.Lock()
			defer mu.Unlock()
			c.write(&protocol.Joined{Room: j.Room, Name: j.Name, After: j.After, Head: 10, Count: 1, Members: []string{j.Name}, Read: read})
			if !j.Resume {
				c.write(msgs(j.Room, 1, 10, "m")...)
			}
			return true
		}
		return false
	})
	tp := &tap{}
	alice := fastClient(t, f.addr(), "alice", tp.dial)
	alice.C.Join("general")
	alice.WaitText(t, "m 10")
	expectFrame[*protocol.Identify](t, f)
	expectFrame[*protocol.Join](t, f)
	tp.holdDials()
	f.drop()
	mu.Lock()
	read = 8 // another device read up to 8 meanwhile
	mu.Unlock()
	waitReconnecting(t, alice, 1)
	alice.C.MarkRead("general", 6)
	tp.releaseDials()
	expectFrame[*protocol.Identify](t, f)
	expectFrame[*protocol.Join](t, f)
	j := waitEvent[client.Joined](t, alice, func(j client.Joined) bool { return j.Resumed })
	if j.Read != 8 || j.Head != 10 {
		t.Fatalf("Joined %+v", j)
	}
	alice.C.ListRooms("probe")
	if l, _ := expectFrame[*protocol.List](t, f); l.Query != "probe" {
		t.Fatalf("LIST %+v", l)
	}
}

// TestHistoryIsAnsweredByAPage: History sends HISTORY for a joined room;
// the PAGE becomes a Page of Messages with History set. A request whose
// PAGE was lost with the connection is asked again after the re-join.
func TestHistoryIsAnsweredByAPage(t *testing.T) {
	f := startFake(t)
	var mu sync.Mutex
	pages := 0
	f.setHandle(func(c *fakeConn, m protocol.Message) bool {
		mu.Lock()
		defer mu.Unlock()
		h, ok := m.(*protocol.History)
		if !ok || c.n == 0 && pages > 0 {
			return false // the second request on the first connection: no answer
		}
		pages++
		p := &protocol.Page{Room: h.Room, Before: h.Before, First: h.Before <= 3}
		for seq := max(1, int(h.Before)-2); seq < int(h.Before); seq++ {
			p.Messages = append(p.Messages, protocol.Msg{Room: h.Room, Seq: uint64(seq), Time: 1_700_000_000_000,
				Sender: "bob", ID: fmt.Sprint("b", seq), Text: fmt.Sprintf("@alice old %d", seq)})
		}
		c.write(p)
		return true
	})
	tp := &tap{}
	alice := fastClient(t, f.addr(), "alice", tp.dial)
	if err := alice.C.History("general", 0, 10); !errors.Is(err, client.ErrNotInRoom) {
		t.Fatalf("History of a room not joined: %v", err)
	}
	alice.C.Join("general")
	alice.WaitJoined(t, "general")
	if err := alice.C.History("General", 6, 2); err != nil {
		t.Fatal(err)
	}
	expectFrame[*protocol.Identify](t, f)
	expectFrame[*protocol.Join](t, f)
	if h, _ := expectFrame[*protocol.History](t, f); *h != (protocol.History{Room: "general", Before: 6, Limit: 2}) {
		t.Fatalf("HISTORY %+v", h)
	}
	p := waitEvent[client.Page](t, alice, nil)
	if p.Room != "general" || p.Before != 6 || p.First || len(p.Messages) != 2 {
		t.Fatalf("Page %+v", p)
	}
	for i, m := range p.Messages {
		if m.Seq != uint64(4+i) || !m.History || !m.Mention || m.Own || m.Room != "general" || m.Text != fmt.Sprintf("@alice old %d", 4+i) {
			t.Errorf("page message %d: %+v", i, m)
		}
	}

	if err := alice.C.History("general", 3, 2); err != nil {
		t.Fatal(err)
	}
	expectFrame[*protocol.History](t, f) // not answered
	tp.holdDials()
	f.drop()
	waitReconnecting(t, alice, 1)
	if err := alice.C.History("general", 3, 2); !errors.Is(err, client.ErrNotConnected) {
		t.Errorf("History while disconnected: %v", err)
	}
	tp.releaseDials()
	expectFrame[*protocol.Identify](t, f)
	expectFrame[*protocol.Join](t, f)
	if h, c := expectFrame[*protocol.History](t, f); h.Before != 3 || c.n != 1 {
		t.Fatalf("HISTORY %+v on connection %d, want the lost request again", h, c.n)
	}
	p = waitEvent[client.Page](t, alice, func(p client.Page) bool { return p.Before == 3 })
	if !p.First || len(p.Messages) != 2 || p.Messages[0].Seq != 1 {
		t.Fatalf("second Page %+v", p)
	}
}

// TestServerNewsBecomesEvents: JOINED's marker, mention count and head;
// NOTICE, MARKER and ROOMS; Message.Mention for a message naming us in a
// room, not in a DM and not for our own.
func TestServerNewsBecomesEvents(t *testing.T) {
	f := startFake(t)
	f.setHandle(func(c *fakeConn, m protocol.Message) bool {
		switch m := m.(type) {
		case *protocol.Join:
			c.write(&protocol.Joined{Room: m.Room, Name: m.Name, After: 2, Head: 4, Count: 2, Members: []string{m.Name, "bob"},
				Read: 3, Mentions: 1, Epoch: 9})
			msg := func(seq uint64, sender, text string) *protocol.Msg {
				return &protocol.Msg{Room: m.Room, Seq: seq, Time: 1, Sender: sender, ID: fmt.Sprint(seq), Text: text}
			}
			c.write(msg(3, "bob", "hi @ALICE!"), msg(4, "alice", "@alice talking to myself"), msg(5, "bob", "@alicex is not me"))
			c.write(msg(6, "bob", "hey @alice"))
			return true
		case *protocol.List:
			c.write(&protocol.Rooms{Query: m.Query, Rooms: []protocol.RoomInfo{
				{Room: "general", Members: 3, Head: 40, Time: 1_700_000_000_000},
				{Room: "empty", Members: 1},
			}})
			return true
		}
		return false
	})
	alice := fastClient(t, f.addr(), "alice")
	alice.C.Join("general")
	j := alice.WaitJoined(t, "general")
	if j.Read != 3 || j.Mentions != 1 || j.Head != 4 || j.Count != 2 {
		t.Fatalf("Joined %+v", j)
	}
	alice.WaitText(t, "hey @alice")
	mentions := map[uint64]bool{3: true, 6: true}
	for _, m := range alice.Messages() {
		if m.Mention != mentions[m.Seq] {
			t.Errorf("message %d %q: Mention %v", m.Seq, m.Text, m.Mention)
		}
	}
	dm := alice.C.DirectRoom("Bob")
	if dm != "@alice@bob" {
		t.Fatalf("DirectRoom %q", dm)
	}
	expectFrame[*protocol.Identify](t, f)
	_, c := expectFrame[*protocol.Join](t, f)
	c.write(&protocol.Notice{Kind: protocol.NoticeDirect, Msg: protocol.Msg{Room: dm, Seq: 1, Time: 1_700_000_000_000, Sender: "bob", ID: "x", Text: "@alice psst"}},
		&protocol.Notice{Kind: protocol.NoticeMention, Msg: protocol.Msg{Room: "random", Seq: 7, Time: 1_700_000_000_000, Sender: "carol", ID: "y", Text: "ask @Alice"}},
		&protocol.Marker{Room: "random", Seq: 7})
	n := waitEvent[client.Notice](t, alice, func(n client.Notice) bool { return n.Kind == protocol.NoticeDirect })
	if n.Message.Room != dm || n.Message.Text != "@alice psst" || n.Message.Mention || n.Message.History || n.Message.Own {
		t.Errorf("direct Notice %+v (no mention in a DM)", n)
	}
	n = waitEvent[client.Notice](t, alice, func(n client.Notice) bool { return n.Kind == protocol.NoticeMention })
	if n.Message.Room != "random" || n.Message.Seq != 7 || !n.Message.Mention || n.Message.Time != time.UnixMilli(1_700_000_000_000) {
		t.Errorf("mention Notice %+v", n)
	}
	if m := waitEvent[client.ReadMarker](t, alice, nil); m != (client.ReadMarker{Room: "random", Seq: 7}) {
		t.Errorf("ReadMarker %+v", m)
	}
	if err := alice.C.ListRooms("e"); err != nil {
		t.Fatal(err)
	}
	l := waitEvent[client.RoomList](t, alice, nil)
	want := client.RoomList{Query: "e", Rooms: []client.RoomInfo{
		{Room: "general", Members: 3, Head: 40, LastActive: time.UnixMilli(1_700_000_000_000)},
		{Room: "empty", Members: 1},
	}}
	if fmt.Sprint(l) != fmt.Sprint(want) {
		t.Errorf("RoomList %+v, want %+v", l, want)
	}
}

// TestDirectRooms: a DM room joins under its canonical name whatever the
// spelling; a DM of other names, and a name with '@', are refused locally
// with a sentence.
func TestDirectRooms(t *testing.T) {
	f := startFake(t)
	alice := fastClient(t, f.addr(), "Alice")
	if err := alice.C.Join("@BOB@alice"); err != nil {
		t.Fatal(err)
	}
	expectFrame[*protocol.Identify](t, f)
	if j, _ := expectFrame[*protocol.Join](t, f); j.Room != "@alice@bob" {
		t.Fatalf("JOIN %+v, want the canonical DM name", j)
	}
	alice.WaitJoined(t, "@alice@bob")
	if _, err := alice.C.Send("@bob@Alice", "hi"); err != nil {
		t.Fatalf("Send with another spelling of the DM: %v", err)
	}
	if s, _ := expectFrame[*protocol.Send](t, f); s.Room != "@alice@bob" {
		t.Fatalf("SEND %+v", s)
	}
	for room, want := range map[string]string{
		"@bob@carol": "direct-message room of other names",
		"@bob":       "starts with @",
	} {
		if err := alice.C.Join(room); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Join(%q): %v, want %q", room, err, want)
		}
	}
	_, err := client.New(client.Config{Addr: f.addr(), Name: "a@b"})
	if err == nil || !strings.Contains(err.Error(), "contains @") {
		t.Errorf("New with a name containing @: %v", err)
	}
}

// TestRefusedReadKeepsTheRoom: a READ refused with forbidden (the server
// keeps no marker for the room) is not a refused join: the room stays,
// with a RoomError that says so.
func TestRefusedReadKeepsTheRoom(t *testing.T) {
	f := startFake(t)
	f.setHandle(func(c *fakeConn, m protocol.Message) bool {
		switch m := m.(type) {
		case *protocol.Join:
			c.write(&protocol.Joined{Room: m.Room, Name: m.Name, Head: 3, Count: 1, Members: []string{m.Name}})
			c.write(msgs(m.Room, 1, 3, "m")...)
			return true
		case *protocol.Read:
			c.write(protocol.NewError(protocol.CodeForbidden, m.Room, "no marker for a name joined without a name key"))
			return true
		}
		return false
	})
	alice := fastClient(t, f.addr(), "alice")
	alice.C.Join("general")
	alice.WaitText(t, "m 3")
	alice.C.MarkRead("general", 3)
	e := waitEvent[client.RoomError](t, alice, nil)
	if !e.Stays || e.Err.Code != protocol.CodeForbidden {
		t.Fatalf("RoomError %+v", e)
	}
	if _, err := alice.C.Send("general", "still in"); err != nil {
		t.Fatalf("Send after the refused READ: %v", err)
	}
}
