package main

// End-to-end tests: the real server binary on 127.0.0.1, real SQLite files,
// driven by the client library and by raw protocol connections.

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"chat/client"
	"chat/internal/clienttest"
	"chat/internal/testserver"
	"chat/protocol"
)

func join(t *testing.T, srv *testserver.Server, name string) *clienttest.Recorder {
	t.Helper()
	r := clienttest.New(t, client.Config{Addr: srv.Addr, Name: name, MinBackoff: 50_000_000})
	if err := r.C.Join("general"); err != nil {
		t.Fatal(err)
	}
	r.WaitJoined(t, "general")
	return r
}

func TestClientsChatWithPresenceAndMembers(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	alice := join(t, srv, "alice")
	bob := join(t, srv, "bob")
	carol := clienttest.New(t, client.Config{Addr: srv.Addr, Name: "carol"})
	if err := carol.C.Join("General"); err != nil { // rooms are case-insensitive
		t.Fatal(err)
	}
	j := carol.WaitJoined(t, "general")
	slices.Sort(j.Members)
	if j.Count != 3 || !slices.Equal(j.Members, []string{"alice", "bob", "carol"}) {
		t.Fatalf("carol's member list: %d %v", j.Count, j.Members)
	}
	for _, who := range []*clienttest.Recorder{alice, bob} {
		who.Wait(t, "carol joined", func(ev client.Event) bool {
			p, ok := ev.(client.Presence)
			return ok && p.Count == 3 && slices.Contains(p.Changes, protocol.PresenceChange{Kind: protocol.PresenceJoined, Name: "carol"})
		})
	}

	for _, who := range []*clienttest.Recorder{alice, bob, carol} {
		if _, err := who.C.Send("general", "hello from "+who.C.Name()); err != nil {
			t.Fatal(err)
		}
	}
	// Everyone, the senders included, sees all three in the same order.
	var orders [][]string
	for _, who := range []*clienttest.Recorder{alice, bob, carol} {
		var texts []string
		for _, m := range who.WaitMessages(t, 3) {
			texts = append(texts, m.Text)
			if m.Own != (m.Sender == who.C.Name()) {
				t.Errorf("%s: Own=%v for a message from %s", who.C.Name(), m.Own, m.Sender)
			}
		}
		orders = append(orders, texts)
	}
	if !slices.Equal(orders[0], orders[1]) || !slices.Equal(orders[1], orders[2]) {
		t.Fatalf("clients saw different orders: %q", orders)
	}

	if err := carol.C.Leave("general"); err != nil {
		t.Fatal(err)
	}
	carol.Wait(t, "left", func(ev client.Event) bool { _, ok := ev.(client.Left); return ok })
	alice.Wait(t, "carol left", func(ev client.Event) bool {
		p, ok := ev.(client.Presence)
		return ok && p.Count == 2 && slices.Contains(p.Changes, protocol.PresenceChange{Kind: protocol.PresenceLeft, Name: "carol"})
	})
}

func TestLateJoinerGetsRecentHistory(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"-history", "5"}})
	alice := join(t, srv, "alice")
	for i := 1; i <= 8; i++ {
		if _, err := alice.C.Send("general", fmt.Sprint("m", i)); err != nil {
			t.Fatal(err)
		}
	}
	alice.WaitMessages(t, 8)

	bob := join(t, srv, "bob")
	got := bob.WaitMessages(t, 5)
	for i, m := range got {
		if want := fmt.Sprint("m", i+4); m.Text != want || m.Seq != uint64(i+4) || !m.History || m.Sender != "alice" {
			t.Errorf("history %d: %+v, want %s as history", i, m, want)
		}
	}
	if _, err := alice.C.Send("general", "live"); err != nil {
		t.Fatal(err)
	}
	if m := bob.WaitText(t, "live"); m.History || m.Seq != 9 {
		t.Errorf("live message: %+v", m)
	}
}

// TestResumeDeliversExactlyTheMissedMessages resumes by hand over raw
// connections, so the test sees every frame.
func TestResumeDeliversExactlyTheMissedMessages(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	alice := join(t, srv, "alice")
	bob, joined := testserver.JoinRoom(t, srv.Addr, "general", "bob")
	if joined.Head != 0 {
		t.Fatalf("new room has head %d", joined.Head)
	}
	for i := 1; i <= 3; i++ {
		alice.C.Send("general", fmt.Sprint("m", i))
	}
	seen := bob.Messages(3)
	bob.Conn.Close()

	for i := 4; i <= 10; i++ {
		alice.C.Send("general", fmt.Sprint("m", i))
	}
	alice.WaitMessages(t, 10)
	// A name without an owner key is free again once the server has seen
	// the old connection end.
	alice.Wait(t, "bob left", func(ev client.Event) bool {
		p, ok := ev.(client.Presence)
		return ok && slices.Contains(p.Changes, protocol.PresenceChange{Kind: protocol.PresenceLeft, Name: "bob"})
	})

	bob2, _ := testserver.Handshake(t, srv.Addr)
	bob2.Send(&protocol.Join{Room: "general", Name: "bob", Resume: true, After: seen[2].Seq})
	j := testserver.Expect[*protocol.Joined](bob2)
	if j.After != 3 || j.Head != 10 {
		t.Fatalf("resume JOINED after=%d head=%d, want 3 and 10", j.After, j.Head)
	}
	missed := bob2.Messages(7)
	for i, m := range missed {
		if m.Seq != uint64(i+4) || m.Text != fmt.Sprint("m", i+4) {
			t.Fatalf("missed message %d: seq %d %q", i, m.Seq, m.Text)
		}
	}
	alice.C.Send("general", "after resume")
	if next := bob2.Messages(1)[0]; next.Seq != 11 || next.Text != "after resume" {
		t.Fatalf("first live message after the replay: seq %d %q", next.Seq, next.Text)
	}
}

func TestTextArrivesByteForByte(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	alice := join(t, srv, "alice")
	bob := join(t, srv, "bob~tilde")
	texts := []string{
		"a~b~c",                       // the old protocol's separator
		"first line\nsecond line\r\n", // newlines
		"🎉👩‍💻🇩🇪",                      // emoji, joiner sequences, flags
		"שלום עולם",                   // right-to-left
		"مرحبا بالعالم",
		"nul\x00byte and \x1b[31m escape",
		strings.Repeat("x", protocol.DefaultMaxText), // the longest allowed
	}
	for _, s := range texts {
		if _, err := alice.C.Send("general", s); err != nil {
			t.Fatal(err)
		}
	}
	got := bob.WaitMessages(t, len(texts))
	for i, m := range got {
		if m.Text != texts[i] || m.Sender != "alice" {
			t.Errorf("message %d: got %q from %q, want %q", i, m.Text, m.Sender, texts[i])
		}
	}
	if _, err := bob.C.Send("general", "from bob"); err != nil {
		t.Fatal(err)
	}
	if m := alice.WaitText(t, "from bob"); m.Sender != "bob~tilde" {
		t.Errorf("sender name came through as %q", m.Sender)
	}
	// And the same bytes come back from the database.
	carol := join(t, srv, "carol")
	history := carol.WaitMessages(t, len(texts)+1)
	for i, s := range texts {
		if history[i].Text != s {
			t.Errorf("history %d: %q, want %q", i, history[i].Text, s)
		}
	}
}

func TestNamesAreUniquePerRoomAndValidated(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	join(t, srv, "Alice")

	r, _ := testserver.Handshake(t, srv.Addr)
	refusals := []struct {
		name string
		code protocol.ErrorCode
	}{
		{"alice", protocol.CodeNameOwned}, // case-insensitive: Alice claimed it server-wide
		{"ＡＬＩＣＥ", protocol.CodeNameOwned}, // and fullwidth forms too
		{"", protocol.CodeInvalidName},
		{"ali\u200bce", protocol.CodeInvalidName},
		{"\u202eecila", protocol.CodeInvalidName},
		{" alice", protocol.CodeInvalidName},
		{"al\nice", protocol.CodeInvalidName},
	}
	for _, tc := range refusals {
		r.Send(&protocol.Join{Room: "general", Name: tc.name})
		e := testserver.Expect[*protocol.Error](r)
		if e.Code != tc.code || e.Closing() || e.Room != "general" || e.Text == "" {
			t.Errorf("join as %q: %+v, want a non-closing %v", tc.name, e, tc.code)
		}
	}
	// An unclaimed name (its holder has no name key) is only unique in the room.
	anon, _ := testserver.JoinRoom(t, srv.Addr, "general", "zed")
	r.Send(&protocol.Join{Room: "general", Name: "ZED"})
	if e := testserver.Expect[*protocol.Error](r); e.Code != protocol.CodeNameTaken || e.Closing() {
		t.Errorf("an unclaimed name in use: %+v, want name-taken", e)
	}
	anon.Send(&protocol.Bye{})
	// The connection survived the refusals and can still join.
	r.Send(&protocol.Join{Room: "general", Name: "bob"})
	if j := testserver.Expect[*protocol.Joined](r); j.Name != "bob" || j.Count < 2 {
		t.Fatalf("after refusals: %+v", j)
	}
	// Room names follow the same rules.
	r.Send(&protocol.Join{Room: "bad\troom", Name: "bob"})
	if e := testserver.Expect[*protocol.Error](r); e.Code != protocol.CodeInvalidRoom || e.Closing() {
		t.Fatalf("invalid room: %+v", e)
	}
}

// TestOneNameFromSeveralConnections: the same name and secret may be in a
// room twice (a second device, or a new connection while the old one is
// half-open): both get the messages, presence counts the name once, and
// another secret cannot join under that name.
func TestOneNameFromSeveralConnections(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	watcher := join(t, srv, "watcher")
	laptop, _ := testserver.Handshake(t, srv.Addr)
	laptop.Send(&protocol.Join{Room: "general", Name: "dana", Secret: "s3cret"})
	testserver.Expect[*protocol.Joined](laptop)

	thief, _ := testserver.Handshake(t, srv.Addr)
	thief.Send(&protocol.Join{Room: "general", Name: "Dana", Secret: "guess"})
	if e := testserver.Expect[*protocol.Error](thief); e.Code != protocol.CodeNameOwned || e.Closing() {
		t.Fatalf("wrong secret: %+v", e)
	}
	thief.Send(&protocol.Join{Room: "general", Name: "dana"})
	if e := testserver.Expect[*protocol.Error](thief); e.Code != protocol.CodeNameOwned {
		t.Fatalf("no secret: %+v", e)
	}

	phone, _ := testserver.Handshake(t, srv.Addr)
	phone.Send(&protocol.Join{Room: "general", Name: "dana", Secret: "s3cret"})
	if j := testserver.Expect[*protocol.Joined](phone); j.Count != 2 {
		t.Fatalf("second connection: JOINED count %d, want 2 names", j.Count)
	}
	watcher.C.Send("general", "to both devices")
	for _, dev := range []*testserver.Raw{laptop, phone} {
		if m := dev.Messages(1)[0]; m.Text != "to both devices" {
			t.Fatalf("%v got %q", dev, m.Text)
		}
	}
	// The laptop goes away: dana is still here, nobody hears otherwise.
	laptop.Send(&protocol.Bye{})
	phone.Send(&protocol.Send{Room: "general", ID: "p1", Text: "still here from the phone"})
	watcher.WaitText(t, "still here from the phone")
	phone.Send(&protocol.Bye{})
	p := watcher.Wait(t, "dana left", func(ev client.Event) bool {
		p, ok := ev.(client.Presence)
		return ok && slices.Contains(p.Changes, protocol.PresenceChange{Kind: protocol.PresenceLeft, Name: "dana"})
	}).(client.Presence)
	if p.Count != 1 {
		t.Errorf("count after dana left: %d", p.Count)
	}
	joins, leaves := 0, 0
	for _, ev := range watcher.Events() {
		if p, ok := ev.(client.Presence); ok {
			for _, c := range p.Changes {
				if c.Name == "dana" && c.Kind == protocol.PresenceJoined {
					joins++
				}
				if c.Name == "dana" && c.Kind == protocol.PresenceLeft {
					leaves++
				}
			}
		}
	}
	if joins != 1 || leaves != 1 {
		t.Errorf("watcher saw dana join %d times and leave %d times, want once each", joins, leaves)
	}
}
