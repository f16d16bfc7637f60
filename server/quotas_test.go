package main

// Tests of the quotas a public server needs: who may create rooms, how
// many rooms there may be, and how fast one address may create them.
// Clients bind to different loopback addresses (127.0.0.x) to be
// different addresses to the server.

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"chat/internal/testserver"
	"chat/protocol"
)

// joinOrError sends a JOIN and returns the JOINED or the ERROR that
// answers it, skipping history.
func joinOrError(t *testing.T, r *testserver.Raw, j *protocol.Join) (*protocol.Joined, *protocol.Error) {
	t.Helper()
	r.Send(j)
	for {
		m, err := r.Read()
		if err != nil {
			t.Fatalf("JOIN %s: %v", j.Room, err)
		}
		switch m := m.(type) {
		case *protocol.Joined:
			return m, nil
		case *protocol.Error:
			return nil, m
		}
	}
}

// leave leaves room and waits for LEFT, so the connection stays under its
// own room limit.
func leave(t *testing.T, r *testserver.Raw, room string) {
	t.Helper()
	r.Send(&protocol.Leave{Room: room})
	for {
		m, err := r.Read()
		if err != nil {
			t.Fatal(err)
		}
		if l, ok := m.(*protocol.Left); ok && l.Room == room {
			return
		}
	}
}

func wantRefused(t *testing.T, e *protocol.Error, code protocol.ErrorCode, room, what string) {
	t.Helper()
	if e == nil {
		t.Fatalf("%s: joined, want %d", what, code)
	}
	if e.Code != code || e.Closing() || e.Room != room {
		t.Fatalf("%s: got %v, want non-closing %d for %s", what, e, code, room)
	}
}

// TestRoomCreationNeedsTheKey: under -room-create key, a JOIN of a room
// that does not exist needs the creation key; once created, the room is
// open to JOINs without it, also after a restart; the refused JOIN does
// not close the connection.
func TestRoomCreationNeedsTheKey(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"-room-create", "key", "-room-create-key", "let me build"}})
	r, _ := testserver.Handshake(t, srv.Addr)
	_, e := joinOrError(t, r, &protocol.Join{Room: "Plans", Name: "ann"})
	wantRefused(t, e, protocol.CodeRoomCreateRefused, "plans", "creating without the key")
	if !strings.Contains(e.Text, "room creation key") {
		t.Fatalf("the refusal does not say what is needed: %q", e.Text)
	}
	_, e = joinOrError(t, r, &protocol.Join{Room: "plans", Name: "ann", Key: "let me"})
	wantRefused(t, e, protocol.CodeRoomCreateRefused, "plans", "creating with a wrong key")
	// The same connection, with the key.
	if j, e := joinOrError(t, r, &protocol.Join{Room: "plans", Name: "ann", Key: "let me build"}); e != nil || j.Room != "plans" {
		t.Fatalf("creating with the key: %v", e)
	}
	srv.WaitLog("room created", func(rec map[string]any) bool { return rec["room"] == "plans" })
	// Others join it without a key, even once everyone has left.
	r.Conn.Close()
	srv.WaitLog("connection closed", nil)
	other, _ := testserver.Handshake(t, srv.Addr)
	if _, e := joinOrError(t, other, &protocol.Join{Room: "PLANS", Name: "bob"}); e != nil {
		t.Fatalf("joining the created room: %v", e)
	}
	srv.Restart()
	again, _ := testserver.Handshake(t, srv.Addr)
	if _, e := joinOrError(t, again, &protocol.Join{Room: "plans", Name: "bob"}); e != nil {
		t.Fatalf("joining the created room after a restart: %v", e)
	}
	_, e = joinOrError(t, again, &protocol.Join{Room: "another", Name: "bob"})
	wantRefused(t, e, protocol.CodeRoomCreateRefused, "another", "creating after a restart")
	if strings.Contains(srv.Log(), "let me build") {
		t.Fatal("the creation key appears in the log")
	}
}

// TestRoomCreationKeyWithAnAccessKey: with both an access key and a
// creation key, the access key joins rooms that exist and the creation
// key joins and creates.
func TestRoomCreationKeyWithAnAccessKey(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"-key", "members", "-room-create", "key", "-room-create-key", "builders"}})
	r, _ := testserver.Handshake(t, srv.Addr)
	_, e := joinOrError(t, r, &protocol.Join{Room: "lobby", Name: "ann", Key: "members"})
	wantRefused(t, e, protocol.CodeRoomCreateRefused, "lobby", "creating with the access key")
	if _, e := joinOrError(t, r, &protocol.Join{Room: "lobby", Name: "ann", Key: "builders"}); e != nil {
		t.Fatalf("creating with the creation key: %v", e)
	}
	other, _ := testserver.Handshake(t, srv.Addr)
	if _, e := joinOrError(t, other, &protocol.Join{Room: "lobby", Name: "bob", Key: "members"}); e != nil {
		t.Fatalf("joining with the access key: %v", e)
	}
	stranger, _ := testserver.Handshake(t, srv.Addr)
	if _, e := joinOrError(t, stranger, &protocol.Join{Room: "lobby", Name: "eve", Key: "guess"}); e == nil || e.Code != protocol.CodeUnauthorized {
		t.Fatalf("a wrong key: %v", e)
	}
}

// TestOnlyOperatorsCreateRooms: under -room-create operators, a client
// that is not a server operator cannot create a room.
func TestOnlyOperatorsCreateRooms(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"-room-create", "operators"}})
	r, _ := testserver.Handshake(t, srv.Addr)
	_, e := joinOrError(t, r, &protocol.Join{Room: "mine", Name: "ann", Secret: "0123456789abcdef"})
	wantRefused(t, e, protocol.CodeRoomCreateRefused, "mine", "a non-operator creating")
	// A direct-message room is no creation under the policy.
	if _, e := joinOrError(t, r, &protocol.Join{Room: "@ann@bob", Name: "ann", Secret: "0123456789abcdef"}); e != nil {
		t.Fatalf("a direct-message room: %v", e)
	}
}

// TestRoomCreationFloodIsCapped: one address creating rooms in a loop is
// stopped after -new-rooms-per-hour; it can still join rooms that exist,
// and another address can still create rooms, until the server has
// -max-server-rooms.
func TestRoomCreationFloodIsCapped(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"-limit-loopback", "-new-rooms-per-hour", "4", "-max-server-rooms", "7"}})
	flooder := dialFrom(t, srv.Addr, "127.0.0.2")
	created := 0
	var refusal *protocol.Error
	for i := range 50 {
		room := fmt.Sprint("spam", i)
		_, e := joinOrError(t, flooder, &protocol.Join{Room: room, Name: "spammer"})
		if e != nil {
			wantRefused(t, e, protocol.CodeRoomLimit, room, "a flood of creations")
			refusal = e
			break
		}
		created++
		leave(t, flooder, room)
	}
	if created != 4 || refusal == nil {
		t.Fatalf("one address created %d rooms in a row, want 4 then a refusal", created)
	}
	if !strings.Contains(refusal.Text, "too many rooms lately") {
		t.Fatalf("refusal text %q", refusal.Text)
	}
	srv.WaitLog("limit", func(rec map[string]any) bool { return rec["kind"] == "room-creation" })
	// Rooms that exist are open to it.
	if _, e := joinOrError(t, flooder, &protocol.Join{Room: "spam0", Name: "spammer"}); e != nil {
		t.Fatalf("the flooder joining an existing room: %v", e)
	}
	// A new connection from the same address is limited too.
	again := dialFrom(t, srv.Addr, "127.0.0.2")
	_, e := joinOrError(t, again, &protocol.Join{Room: "fresh", Name: "spammer2"})
	wantRefused(t, e, protocol.CodeRoomLimit, "fresh", "a new connection of the flooder")

	// Another address creates rooms up to the server's cap: 4 exist,
	// the cap is 7.
	other := dialFrom(t, srv.Addr, "127.0.0.3")
	for i := range 3 {
		room := fmt.Sprint("real", i)
		if _, e := joinOrError(t, other, &protocol.Join{Room: room, Name: "alice"}); e != nil {
			t.Fatalf("another address creating %s: %v", room, e)
		}
	}
	_, e = joinOrError(t, other, &protocol.Join{Room: "real3", Name: "alice"})
	wantRefused(t, e, protocol.CodeRoomLimit, "real3", "creating past -max-server-rooms")
	if !strings.Contains(e.Text, "7 rooms") {
		t.Fatalf("refusal text %q", e.Text)
	}
	srv.WaitLog("limit", func(rec map[string]any) bool { return rec["kind"] == "server-rooms" })
	// A third address may still join what exists.
	third := dialFrom(t, srv.Addr, "127.0.0.4")
	if _, e := joinOrError(t, third, &protocol.Join{Room: "real1", Name: "carol"}); e != nil {
		t.Fatalf("joining an existing room at the cap: %v", e)
	}
}

// TestRoomCreationInCluster: two chat nodes on one NATS share the record
// of rooms: a room created with the key through one node is open through
// the other, and the cap counts rooms created through both (through
// another node's, after its count's second).
func TestRoomCreationInCluster(t *testing.T) {
	c := startCluster(t, 1, 2, "-room-create", "key", "-room-create-key", "k", "-max-server-rooms", "2")
	a, _ := testserver.Handshake(t, c.nodes[0].Addr)
	b, _ := testserver.Handshake(t, c.nodes[1].Addr)
	_, e := joinOrError(t, b, &protocol.Join{Room: "hall", Name: "bob"})
	wantRefused(t, e, protocol.CodeRoomCreateRefused, "hall", "creating without the key on node 1")
	if _, e := joinOrError(t, a, &protocol.Join{Room: "hall", Name: "ann", Key: "k"}); e != nil {
		t.Fatalf("creating on node 0: %v", e)
	}
	if _, e := joinOrError(t, b, &protocol.Join{Room: "hall", Name: "bob"}); e != nil {
		t.Fatalf("joining through node 1 the room created through node 0: %v", e)
	}
	if _, e := joinOrError(t, b, &protocol.Join{Room: "den", Name: "bob", Key: "k"}); e != nil {
		t.Fatalf("creating the second room on node 1: %v", e)
	}
	_, e = joinOrError(t, b, &protocol.Join{Room: "attic", Name: "bob", Key: "k"})
	wantRefused(t, e, protocol.CodeRoomLimit, "attic", "a third room with a cap of 2, through node 1")
	// Node 0 reads the count at most once a second (DESIGN.md,
	// chat-roomset): once that second has passed it counts den too. The
	// wait is the behaviour under test.
	time.Sleep(1100 * time.Millisecond)
	_, e = joinOrError(t, a, &protocol.Join{Room: "attic", Name: "ann", Key: "k"})
	wantRefused(t, e, protocol.CodeRoomLimit, "attic", "a third room with a cap of 2, through node 0")
}

// TestAddressTableIsBounded: with -max-tracked-addresses 2, two addresses
// holding connections fill the table; a third is turned away (closing,
// reconnect) until one of them has closed its connection.
func TestAddressTableIsBounded(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"-limit-loopback", "-max-tracked-addresses", "2"}})
	first := dialFrom(t, srv.Addr, "127.0.0.2")
	dialFrom(t, srv.Addr, "127.0.0.3")
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.4")}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	third := testserver.Wrap(t, c)
	e := testserver.Expect[*protocol.Error](third)
	if e.Code != protocol.CodeTooManyConnections || !e.Closing() || !e.Reconnect() || !strings.Contains(e.Text, "too many addresses") {
		t.Fatalf("a third address with a full table: %v", e)
	}
	first.Conn.Close()
	srv.WaitLog("connection closed", nil)
	// 127.0.0.2 spent a token of its new-connection allowance: it stays
	// in the table, but is idle and the first to be forgotten.
	dialFrom(t, srv.Addr, "127.0.0.4")
}
