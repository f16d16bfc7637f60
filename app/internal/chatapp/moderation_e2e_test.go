package chatapp_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"gioui.org/io/key"

	"chat/client"
	"chat/internal/testserver"
	"chat/protocol"
)

// TestModerationThroughTheApp: the app against the real server. alice
// made #general (its operator); what she types in the composer is done:
// a topic (under the title, and as a line), a deleted message (shown as
// deleted, its text gone), an invite code, a kick of bob (a line), and a
// refusal (bob is gone: not-found, over the composer). Then a server
// operator kicks alice: the room stays listed with why, and Join again
// joins it.
func TestModerationThroughTheApp(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"-operator-token", "root-token"}})
	r := newRig(t, srv.Addr)
	r.Type("alice")
	r.Press(key.NameReturn, 0)
	r.waitShows("connected")
	bob := newPeer(t, srv.Addr, "bob")
	r.waitShows("bob joined")

	say := func(line string) {
		t.Helper()
		r.Type(line)
		r.Press(key.NameReturn, 0)
	}
	say("/topic Release on Friday")
	r.waitShows("alice set the topic: Release on Friday")

	if _, err := bob.c.Send("general", "buy cheap watches"); err != nil {
		t.Fatal(err)
	}
	seq := bob.receive("buy cheap watches").Seq
	r.waitShows("buy cheap watches")
	r.waitShows(fmt.Sprintf("#%d · ", seq)) // an operator sees the numbers /delete takes
	say(fmt.Sprintf("/delete %d", seq))
	r.waitShows(fmt.Sprintf("alice deleted message %d", seq))
	r.mustShow("message deleted")
	if r.Shows("buy cheap watches") {
		t.Fatal("the deleted message's text is still shown")
	}

	say("/invite 2h")
	r.waitShows("Invite code for #general: ")
	r.mustShow("(valid 2h); to join with it: /join general ")

	say("/kick bob spam")
	r.waitShows("alice kicked bob (spam)")
	say("/kick bob again")
	r.waitShows("Not done: not found")

	root, err := client.New(client.Config{Addr: srv.Addr, Name: "root"})
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	connected := make(chan struct{})
	go func() {
		once := false
		for ev := range root.Events() {
			if s, ok := ev.(client.StateChanged); ok && s.State == client.Connected && !once {
				once = true
				close(connected)
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	select {
	case <-connected:
	case <-ctx.Done():
		t.Fatal("root did not connect")
	}
	if err := root.Oper(ctx, "root-token"); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Moderate(ctx, "general", client.Moderation{Action: protocol.ModKick, Target: "alice", Text: "bye"}); err != nil {
		t.Fatal(err)
	}
	r.waitShows("operator kicked you (bye)")
	r.waitShows("you may join again")
	r.mustShow("#general")
	if err := r.ClickOn("Join again"); err != nil {
		t.Fatal(err)
	}
	r.waitShows("Message #general")
	r.mustShow("Release on Friday")
}
