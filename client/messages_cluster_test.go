package client_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"chat/client"
	"chat/internal/clienttest"
	"chat/internal/testserver"
	"chat/protocol"
)

// startNATS runs a NATS server with JetStream in the test process, on a
// loopback port, and returns its URL.
func startNATS(t *testing.T) string {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: filepath.Join(t.TempDir(), "jetstream"), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(20 * time.Second) {
		t.Fatal("NATS did not start")
	}
	return ns.ClientURL()
}

// TestActingOnMessagesInACluster: two chat servers sharing one NATS.
// alice on the first, bob on the second: bob's reply, alice's edit, bob's
// reaction and alice's deletion reach the other server's client, typing
// too, and bob's search finds alice's edited text from his server.
func TestActingOnMessagesInACluster(t *testing.T) {
	url := startNATS(t)
	one := testserver.Start(t, testserver.Options{Args: []string{"-nats", url}})
	two := testserver.Start(t, testserver.Options{Args: []string{"-nats", url}})
	needMessages(t, one)
	ok := must(t)
	alice, _ := inRoom(t, client.Config{Addr: one.Addr, Name: "alice"}, "cluster")
	bob, _ := inRoom(t, client.Config{Addr: two.Addr, Name: "bob"}, "cluster")

	ok(alice.C.Send("cluster", "meet at noon"))
	first := bob.WaitText(t, "meet at noon").Seq
	ok(bob.C.SendReply("cluster", "which day?", first))
	if m := alice.WaitText(t, "which day?"); m.Reply != first {
		t.Fatalf("reply %+v", m)
	}
	acked(t, alice, ok(alice.C.Edit("cluster", first, "meet at noon on Friday")))
	if u := waitUpdated(t, bob, func(u client.Updated) bool { return u.Kind == protocol.ChangeEdit }); u.Message == nil ||
		u.Message.Text != "meet at noon on Friday" || u.Target != first {
		t.Fatalf("bob's Updated %+v", u)
	}
	refused(t, bob, ok(bob.C.Edit("cluster", first, "never")), protocol.CodeForbidden)
	acked(t, bob, ok(bob.C.React("cluster", first, "👀", true)))
	if u := waitUpdated(t, alice, func(u client.Updated) bool { return u.Kind == protocol.ChangeReact }); u.Message == nil ||
		!sameReactions(u.Message.Reactions, []client.Reaction{{Emoji: "👀", Count: 1, Names: []string{"bob"}}}) {
		t.Fatalf("alice's Updated %+v", u)
	}
	if err := alice.C.Typing("cluster"); err != nil {
		t.Fatal(err)
	}
	if ty := waitEvent[client.Typing](t, bob, nil); ty.Name != "alice" {
		t.Fatalf("Typing %+v", ty)
	}

	ctx, cancel := context.WithTimeout(context.Background(), clienttest.Timeout)
	defer cancel()
	// The second server's index follows the stream: ask until it has
	// caught up with the edit (each answer is a real search).
	var res client.SearchResults
	for {
		var err error
		res, err = bob.C.Search(ctx, "friday", client.SearchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Hits) > 0 || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond): // the index catching up is time passing
		}
	}
	if len(res.Hits) != 1 || res.Hits[0].Seq != first || res.Hits[0].Room != "cluster" {
		t.Fatalf("bob's search: %+v", res)
	}

	acked(t, alice, ok(alice.C.Delete("cluster", first)))
	if u := waitUpdated(t, bob, func(u client.Updated) bool { return u.Kind == protocol.ChangeDelete }); u.Message == nil || !u.Message.Deleted {
		t.Fatalf("bob's deletion %+v", u)
	}
}
