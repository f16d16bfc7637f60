package main

// Tests of rules the protocol spec (protocol/README.md) states, each
// through a real socket: what a client author reads there is what the
// server does.

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"chat/client"
	"chat/internal/clienttest"
	"chat/internal/testserver"
	"chat/protocol"
)

// next returns the next frame other than PING, failing on a read error.
func next(t *testing.T, r *testserver.Raw) protocol.Message {
	t.Helper()
	for {
		m, err := r.Read()
		if err != nil {
			t.Fatalf("reading: %v", err)
		}
		if _, ok := m.(*protocol.Ping); !ok {
			return m
		}
	}
}

// expectRefusal reads the next frame but PRESENCE, which must be an ERROR with code,
// room and closing flag as given.
func expectRefusal(t *testing.T, r *testserver.Raw, code protocol.ErrorCode, room string, closing bool) {
	t.Helper()
	m := next(t, r)
	for {
		if _, ok := m.(*protocol.Presence); !ok {
			break
		}
		m = next(t, r)
	}
	e, ok := m.(*protocol.Error)
	if !ok || e.Code != code || e.Room != room || e.Closing() != closing || e.Reconnect() {
		t.Fatalf("got %T %+v, want %v for room %q, closing %v, no reconnect", m, m, code, room, closing)
	}
}

// TestEmptyNameOrRoomIsRefusedAndTheConnectionStays (spec §6, §7): an
// empty name is invalid-name and an empty room invalid-room, neither
// closing (a person typed nothing); the client may try again at once.
func TestEmptyNameOrRoomIsRefusedAndTheConnectionStays(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	r, _ := testserver.Handshake(t, srv.Addr)
	r.Send(&protocol.Join{Room: "general", Name: ""})
	expectRefusal(t, r, protocol.CodeInvalidName, "general", false)
	r.Send(&protocol.Join{Room: "", Name: "alice"})
	expectRefusal(t, r, protocol.CodeInvalidRoom, "", false)
	r.Send(&protocol.Join{Room: "general", Name: "alice"})
	if j := testserver.Expect[*protocol.Joined](r); j.Room != "general" {
		t.Fatalf("joined %+v", j)
	}
}

// TestErrorsCarryTheCanonicalRoom (spec §3 ERROR): an ERROR about a
// JOIN, SEND or LEAVE carries the request's room by its canonical name,
// whichever check refused it, so a client finds the room by one key; a
// room name that is invalid or too long has none and comes back as sent.
func TestErrorsCarryTheCanonicalRoom(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	r, _ := testserver.Handshake(t, srv.Addr)
	r.Send(&protocol.Join{Room: "GENERAL", Name: " alice"}) // refused by the session
	expectRefusal(t, r, protocol.CodeInvalidName, "general", false)
	r.Send(&protocol.Join{Room: " General", Name: "alice"})
	expectRefusal(t, r, protocol.CodeInvalidRoom, " General", false)
	r.Send(&protocol.Join{Room: "General", Name: "alice"})
	if j := testserver.Expect[*protocol.Joined](r); j.Room != "general" {
		t.Fatalf("joined %+v", j)
	}

	other, _ := testserver.Handshake(t, srv.Addr)
	other.Send(&protocol.Join{Room: "GeNeRaL", Name: "ALICE"}) // refused by the hub
	expectRefusal(t, other, protocol.CodeNameTaken, "general", false)

	r.Send(&protocol.Send{Room: "GENERAL", ID: "x", Text: strings.Repeat("t", protocol.DefaultMaxText+1)})
	expectRefusal(t, r, protocol.CodeTooLong, "general", true)

	long := strings.Repeat("R", protocol.DefaultMaxRoom+1)
	other.Send(&protocol.Join{Room: long, Name: "bob"})
	expectRefusal(t, other, protocol.CodeTooLong, long, true)

	third, _ := testserver.JoinRoom(t, srv.Addr, "general", "carol")
	third.Send(&protocol.Join{Room: "GENERAL", Name: "carol"})
	expectRefusal(t, third, protocol.CodeUnexpected, "general", true)
}

// TestKeyIsIgnoredByAServerThatNeedsNone (spec §6 Server key): a client
// that still sends a key after its server stopped requiring one gets in.
func TestKeyIsIgnoredByAServerThatNeedsNone(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	r, w := testserver.Handshake(t, srv.Addr)
	if w.Flags&protocol.WelcomeKeyRequired != 0 {
		t.Fatal("WELCOME says a key is required")
	}
	r.Send(&protocol.Join{Room: "general", Name: "alice", Key: "an old key"})
	if j := testserver.Expect[*protocol.Joined](r); j.Room != "general" {
		t.Fatalf("joined %+v", j)
	}
}

// TestJoinerGetsPresenceForItsOwnName (spec §3 PRESENCE): a name's first
// connection into a room gets the PRESENCE joined for itself, after
// JOINED and the history, like everyone in the room; a further connection
// of the same name gets none, since the name did not change.
func TestJoinerGetsPresenceForItsOwnName(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	bob, _ := testserver.JoinRoom(t, srv.Addr, "general", "bob")
	bob.Send(&protocol.Send{Room: "general", ID: "b1", Text: "hello"})
	// Once bob has his own copy, the message is history for a joiner.
	testserver.Expect[*protocol.Ack](bob)
	testserver.Expect[*protocol.Msg](bob)

	alice, _ := testserver.Handshake(t, srv.Addr)
	alice.Send(&protocol.Join{Room: "general", Name: "alice", Secret: "alice's secret"})
	var got []string
	for len(got) < 3 {
		switch m := next(t, alice).(type) {
		case *protocol.Joined:
			got = append(got, "JOINED")
		case *protocol.Msg:
			got = append(got, "MESSAGE "+m.Text)
		case *protocol.Presence:
			if m.Count != 2 || len(m.Changes) != 1 || m.Changes[0] != (protocol.PresenceChange{Kind: protocol.PresenceJoined, Name: "alice"}) {
				t.Fatalf("presence %+v", m)
			}
			got = append(got, "PRESENCE")
		default:
			t.Fatalf("got %T %+v", m, m)
		}
	}
	if strings.Join(got, ", ") != "JOINED, MESSAGE hello, PRESENCE" {
		t.Fatalf("alice got %v", got)
	}

	// The same name again: the server handles a connection's frames in
	// order, so the PONG comes after anything the JOIN caused.
	again, _ := testserver.Handshake(t, srv.Addr)
	again.Send(&protocol.Join{Room: "general", Name: "alice", Secret: "alice's secret"})
	again.Send(&protocol.Ping{Nonce: 1})
	for {
		m := next(t, again)
		if _, ok := m.(*protocol.Pong); ok {
			break
		}
		if p, ok := m.(*protocol.Presence); ok {
			t.Fatalf("a second connection of a name present got %+v", p)
		}
	}
}

// TestGoClientSkipsUnknownPresenceKinds (spec §3 PRESENCE): a later
// server may send change kinds this version does not define. The Go
// client passes them on without choking: the connection stays, count is
// taken, the known changes around it arrive, and so do later messages. A
// stand-in server on loopback sends the frames no real server sends yet.
func TestGoClientSkipsUnknownPresenceKinds(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	served := make(chan error, 1)
	go func() {
		served <- func() error {
			c, err := ln.Accept()
			if err != nil {
				return err
			}
			defer c.Close()
			read := func() (protocol.Message, error) {
				body, err := protocol.ReadFrame(c, protocol.MaxFrame, nil)
				if err != nil {
					return nil, err
				}
				return protocol.Decode(body)
			}
			if _, err := read(); err != nil { // HELLO
				return err
			}
			w := &protocol.Welcome{Version: protocol.Version, Server: "stand-in", MaxFrame: 16384, MaxText: 4096,
				MaxName: 32, MaxRoom: 64, MaxRooms: 16, History: 100, PingMs: 30000}
			if _, err := c.Write(protocol.Encode(w)); err != nil {
				return err
			}
			var j *protocol.Join
			for j == nil {
				m, err := read()
				if err != nil {
					return err
				}
				switch m := m.(type) {
				case *protocol.Join:
					j = m
				case *protocol.Ping: // the Go client pings with HELLO, to tell a web port at once
					if _, err := c.Write(protocol.Encode(&protocol.Pong{Nonce: m.Nonce})); err != nil {
						return err
					}
				default:
					return fmt.Errorf("got %T, want JOIN", m)
				}
			}
			var out []byte
			out = protocol.AppendFrame(out, &protocol.Joined{Room: j.Room, Name: j.Name, Count: 1, Members: []string{j.Name}, Epoch: 1})
			out = protocol.AppendFrame(out, &protocol.Presence{Room: j.Room, Count: 3, Changes: []protocol.PresenceChange{
				{Kind: 3, Name: "from-the-future"}, {Kind: protocol.PresenceJoined, Name: "bob"}}})
			out = protocol.AppendFrame(out, &protocol.Msg{Room: j.Room, Seq: 1, Time: 1, Sender: "bob", ID: "b1", Text: "after the unknown kind"})
			if _, err := c.Write(out); err != nil {
				return err
			}
			// Hold the connection until the client is done with it.
			for {
				if _, err := read(); err != nil {
					return nil
				}
			}
		}()
	}()

	r := clienttest.New(t, client.Config{Addr: ln.Addr().String(), Name: "alice"})
	r.C.Join("general")
	r.WaitText(t, "after the unknown kind")
	var presence *client.Presence
	for _, ev := range r.Events() {
		switch ev := ev.(type) {
		case client.Presence:
			presence = &ev
		case client.StateChanged:
			if ev.State != client.Connecting && ev.State != client.Connected {
				t.Errorf("the client's connection changed state: %+v", ev)
			}
		}
	}
	if presence == nil || presence.Count != 3 || len(presence.Changes) != 2 || presence.Changes[1].Name != "bob" {
		t.Fatalf("presence event %+v", presence)
	}
	r.C.Close()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}

// TestOverTheRateIsSlowedQuietly (spec §5 Limits): every frame after
// HELLO but PONG counts against the rate WELCOME announces, PING
// included; frames over the burst are not refused but answered later, one
// per send interval, with no ERROR before flood after.
func TestOverTheRateIsSlowedQuietly(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"-msg-rate", "10", "-msg-burst", "2", "-flood-after", "30s"}})
	r, w := testserver.Handshake(t, srv.Addr)
	if w.Limits.SendIntervalMs != 100 || w.Limits.SendBurst != 2 || w.Limits.FloodAfterMs != 30000 {
		t.Fatalf("WELCOME announces %+v", w.Limits)
	}
	const n = 6
	var batch []byte
	for i := range n {
		batch = protocol.AppendFrame(batch, &protocol.Ping{Nonce: uint64(i)})
	}
	r.Write(batch)
	var first time.Time
	for i := range n {
		m := next(t, r)
		p, ok := m.(*protocol.Pong)
		if !ok || p.Nonce != uint64(i) {
			t.Fatalf("got %T %+v, want PONG %d", m, m, i)
		}
		if i == 0 {
			first = time.Now()
		}
	}
	// Two from the burst, then one per 100 ms: the last of the four over
	// it at least 400 ms after the first PONG (less a little for the
	// bucket refilling meanwhile). Only a lower bound: a loaded machine
	// makes it later, never earlier.
	if d := time.Since(first); d < 350*time.Millisecond {
		t.Fatalf("%d PINGs at once answered within %v: not held to 10 a second", n, d)
	}
	// Still connected, no error: the slow-down was all the client saw.
	r.Send(&protocol.Join{Room: "general", Name: "patient"})
	testserver.Expect[*protocol.Joined](r)
	srv.WaitLog("limit", func(rec map[string]any) bool { return rec["kind"] == "message-rate" })
}
