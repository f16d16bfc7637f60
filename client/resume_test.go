package client_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"chat/client"
	"chat/internal/testserver"
	"chat/protocol"
)

// scripted plays a chat server on 127.0.0.1 whose answers to JOIN a
// test writes, to create situations the real server cannot be put in on
// demand (another history epoch, say). It answers HELLO with WELCOME and
// PING with PONG; each JOIN is recorded and answered with what reply
// returns for it (n counts the JOINs, from 0).
type scripted struct {
	t       *testing.T
	ln      net.Listener
	reply   func(n int, j *protocol.Join) []protocol.Message
	joins   chan *protocol.Join
	welcome protocol.Welcome // answers every HELLO

	mu   sync.Mutex
	n    int
	conn net.Conn // the newest connection
}

func startScripted(t *testing.T, reply func(n int, j *protocol.Join) []protocol.Message, opts ...func(*protocol.Welcome)) *scripted {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &scripted{t: t, ln: ln, reply: reply, joins: make(chan *protocol.Join, 16),
		welcome: protocol.Welcome{Version: protocol.Version, Server: "scripted", MaxFrame: 16384, MaxText: 4096,
			MaxName: 32, MaxRoom: 64, MaxRooms: 16, History: 100, PingMs: 30000}}
	for _, o := range opts {
		o(&s.welcome)
	}
	t.Cleanup(func() {
		ln.Close()
		s.drop()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conn = c
			s.mu.Unlock()
			go s.serve(c)
		}
	}()
	return s
}

// drop closes the newest connection, as a network failure would.
func (s *scripted) drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		s.conn.Close()
	}
}

func (s *scripted) serve(c net.Conn) {
	defer c.Close()
	write := func(m protocol.Message) bool {
		_, err := c.Write(protocol.Encode(m))
		return err == nil
	}
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
			w := s.welcome
			w.Time = protocol.Millis(time.Now())
			write(&w)
		case *protocol.Ping:
			write(&protocol.Pong{Nonce: m.Nonce})
		case *protocol.Join:
			s.mu.Lock()
			n := s.n
			s.n++
			s.mu.Unlock()
			s.joins <- m
			for _, r := range s.reply(n, m) {
				if !write(r) {
					return
				}
			}
		}
	}
}

func (s *scripted) nextJoin(t *testing.T) *protocol.Join {
	t.Helper()
	select {
	case j := <-s.joins:
		return j
	case <-time.After(10 * time.Second):
		t.Fatal("no JOIN within 10s")
		return nil
	}
}

func msgs(room string, from, to uint64, prefix string) []protocol.Message {
	var out []protocol.Message
	for seq := from; seq <= to; seq++ {
		out = append(out, &protocol.Msg{Room: room, Seq: seq, Time: protocol.Millis(time.Now()), Sender: "bob",
			ID: fmt.Sprint(prefix, seq), Text: fmt.Sprint(prefix, " ", seq)})
	}
	return out
}

// TestEpochChangeResetsTheRoom: the client resumes with the epoch of the
// history it saw; a server whose room has another epoch (reset, restored
// from a backup) answers with a fresh history, which may be longer than
// what the client saw, so sequence numbers alone cannot tell. The client
// must start over at the new JOINED's After and tell the app (Reset); the
// old client sent no epoch, kept its lastSeen and dropped the new
// history's first messages as "seen".
func TestEpochChangeResetsTheRoom(t *testing.T) {
	srv := startScripted(t, func(n int, j *protocol.Join) []protocol.Message {
		joined := func(after, head, epoch uint64) *protocol.Joined {
			return &protocol.Joined{Room: "general", Name: "alice", After: after, Head: head, Count: 2,
				Members: []string{"alice", "bob"}, Epoch: epoch}
		}
		switch n {
		case 0: // the first history: two messages
			return append([]protocol.Message{joined(0, 2, 111)}, msgs("general", 1, 2, "old")...)
		case 1: // restored elsewhere: epoch 222, three messages
			return append([]protocol.Message{joined(0, 3, 222)}, msgs("general", 1, 3, "new")...)
		default: // resumed in the same epoch: nothing missed
			return []protocol.Message{joined(j.After, 3, 222)}
		}
	})
	alice := joined(t, client.Config{Addr: srv.ln.Addr().String(), Name: "alice"})
	if j := srv.nextJoin(t); j.Resume || j.Epoch != 0 {
		t.Fatalf("first JOIN %+v", j)
	}
	alice.WaitText(t, "old 2")

	srv.drop()
	j := srv.nextJoin(t)
	if !j.Resume || j.After != 2 || j.Epoch != 111 {
		t.Fatalf("resuming JOIN %+v, want resume after 2 in epoch 111", j)
	}
	alice.WaitText(t, "new 3")
	ev := alice.Wait(t, "resumed Joined", func(ev client.Event) bool { j, ok := ev.(client.Joined); return ok && j.Resumed }).(client.Joined)
	if !ev.Reset {
		t.Errorf("Joined after an epoch change has Reset false: %+v", ev)
	}
	var got []string
	for _, m := range alice.Messages() {
		got = append(got, m.Text)
	}
	if want := "[old 1 old 2 new 1 new 2 new 3]"; fmt.Sprint(got) != want {
		t.Errorf("messages %q, want %s", got, want)
	}

	// The new epoch is remembered: the next resume carries it and is not
	// a reset.
	srv.drop()
	j = srv.nextJoin(t)
	if !j.Resume || j.After != 3 || j.Epoch != 222 {
		t.Fatalf("second resuming JOIN %+v, want resume after 3 in epoch 222", j)
	}
	n := 0
	alice.Wait(t, "third Joined", func(ev client.Event) bool {
		if _, ok := ev.(client.Joined); ok {
			n++
		}
		return n == 3
	})
	resets := 0
	for _, ev := range alice.Events() {
		if j, ok := ev.(client.Joined); ok && j.Reset {
			resets++
		}
	}
	if resets != 1 {
		t.Errorf("%d Joined events with Reset, want 1 (the resume in the same epoch is no reset)", resets)
	}
}

// TestHistoryResetOnTheRealServer: the server's data is deleted while the
// client is away; the new room's head is below what the client saw. The
// client reports Reset and shows the new history. (With a server that
// sends epochs, the epoch differs too; this test works either way.)
func TestHistoryResetOnTheRealServer(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	tp := &tap{}
	alice := joined(t, client.Config{Addr: srv.Addr, Name: "alice", Dial: tp.dial})
	bob := joined(t, client.Config{Addr: srv.Addr, Name: "bob"})
	for i := range 3 {
		bob.C.Send("general", fmt.Sprint("before ", i))
	}
	alice.WaitText(t, "before 2")
	// bob's ACKs may still be on their way when alice has the messages;
	// unacknowledged, bob would send them again into the new history.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bob.C.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	bob.C.Close()

	tp.holdDials()
	srv.Kill()
	alice.WaitState(t, client.Reconnecting)
	srv.Reset()
	raw, joinedRaw := testserver.JoinRoom(t, srv.Addr, "general", "carol")
	if joinedRaw.Head != 0 {
		t.Fatalf("the history was not deleted: head %d", joinedRaw.Head)
	}
	raw.Send(&protocol.Send{Room: "general", ID: "c1", Text: "after the reset"})
	testserver.Expect[*protocol.Ack](raw)
	tp.releaseDials()

	ev := alice.Wait(t, "resumed Joined", func(ev client.Event) bool { j, ok := ev.(client.Joined); return ok && j.Resumed }).(client.Joined)
	if !ev.Reset {
		t.Errorf("Joined after the history was deleted has Reset false: %+v", ev)
	}
	if joinedRaw.Epoch != 0 {
		// A server with epochs ignores the stale resume point and replays
		// the new history. One without caps the resume point at its head,
		// so what was posted before the resume is not replayed.
		alice.WaitText(t, "after the reset")
	}
	raw.Send(&protocol.Send{Room: "general", ID: "c2", Text: "later"})
	m := alice.WaitText(t, "later")
	if m.Seq != 2 {
		t.Errorf("the new history's message has seq %d, want 2", m.Seq)
	}
}

// TestResumedJoinReportsWhoCameAndWent: while alice is away bob leaves and
// carol joins; dave stays. The resumed Joined lists the members now; the
// client follows it with one Presence of the difference (bob left, carol
// joined), so apps announce exactly that and nothing about dave. The old
// client emitted no Presence at all.
func TestResumedJoinReportsWhoCameAndWent(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	tp := &tap{}
	alice := joined(t, client.Config{Addr: srv.Addr, Name: "alice", Dial: tp.dial})
	bob := joined(t, client.Config{Addr: srv.Addr, Name: "bob"})
	dave := joined(t, client.Config{Addr: srv.Addr, Name: "dave"})
	alice.Wait(t, "dave joined", func(ev client.Event) bool {
		p, ok := ev.(client.Presence)
		return ok && len(p.Changes) == 1 && p.Changes[0].Name == "dave"
	})

	tp.holdDials()
	tp.last().Close()
	alice.WaitState(t, client.Reconnecting)
	bob.C.Leave("general")
	bob.Wait(t, "bob left", func(ev client.Event) bool { _, ok := ev.(client.Left); return ok })
	joined(t, client.Config{Addr: srv.Addr, Name: "carol"})
	// dave hears of alice's old connection leaving: the server is done
	// with it, so the resumed JOIN cannot race it.
	dave.Wait(t, "alice gone", func(ev client.Event) bool {
		p, ok := ev.(client.Presence)
		return ok && len(p.Changes) == 1 && p.Changes[0].Name == "alice" && p.Changes[0].Kind == protocol.PresenceLeft
	})
	before := len(alice.Events())
	tp.releaseDials()

	var resumed bool
	p := alice.Wait(t, "presence after the resume", func(ev client.Event) bool {
		if j, ok := ev.(client.Joined); ok && j.Resumed {
			resumed = true
		}
		_, ok := ev.(client.Presence)
		return ok && resumed
	}).(client.Presence)
	want := []protocol.PresenceChange{{Kind: protocol.PresenceLeft, Name: "bob"}, {Kind: protocol.PresenceJoined, Name: "carol"}}
	if fmt.Sprint(p.Changes) != fmt.Sprint(want) || p.Count != 3 {
		t.Errorf("presence %+v, want count 3 and %v", p, want)
	}
	// Nothing else about members in between (alice's own join aside).
	for _, ev := range alice.Events()[before:] {
		if q, ok := ev.(client.Presence); ok {
			for _, c := range q.Changes {
				if c.Name == "dave" {
					t.Errorf("presence about dave, who never left: %+v", q)
				}
			}
		}
	}
}

// TestHistoryReplacedByALongerOne: as TestHistoryResetOnTheRealServer, but
// the new history is longer than what the client saw, so only the epoch
// can tell.
func TestHistoryReplacedByALongerOne(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	tp := &tap{}
	alice := joined(t, client.Config{Addr: srv.Addr, Name: "alice", Dial: tp.dial})
	alice.C.Send("general", "before")
	alice.WaitText(t, "before")

	tp.holdDials()
	srv.Kill()
	alice.WaitState(t, client.Reconnecting)
	srv.Reset()
	raw, j := testserver.JoinRoom(t, srv.Addr, "general", "carol")
	if j.Epoch == 0 {
		tp.releaseDials()
		t.Fatal("the server sent no history epoch in JOINED")
	}
	for i := range 3 {
		raw.Send(&protocol.Send{Room: "general", ID: fmt.Sprint("c", i), Text: fmt.Sprint("new ", i)})
		testserver.Expect[*protocol.Ack](raw)
		testserver.Expect[*protocol.Msg](raw) // the sender's own copy follows its ACK
	}
	tp.releaseDials()
	ev := alice.Wait(t, "resumed Joined", func(ev client.Event) bool { j, ok := ev.(client.Joined); return ok && j.Resumed }).(client.Joined)
	if !ev.Reset {
		t.Errorf("Joined after the history was replaced has Reset false: %+v", ev)
	}
	for i := range 3 {
		alice.WaitText(t, fmt.Sprint("new ", i))
	}
}
