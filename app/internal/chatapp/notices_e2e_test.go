package chatapp_test

import (
	"testing"

	"gioui.org/io/key"

	"chat/app/internal/chatapp"
	"chat/app/internal/settings"
	"chat/client"
	"chat/internal/testserver"
	"chat/protocol"
)

// TestLeftRoomDoesNotNotify: alice leaves #random, which was too noisy;
// a mention of her there afterwards shows no notification (the room is
// not in her list any more: a notification would lead nowhere, and she
// could not turn it off), while one in #general, where she still is,
// does.
func TestLeftRoomDoesNotNotify(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	store := settings.Open(t.TempDir())
	if err := store.Save(settings.Settings{Server: srv.Addr, Name: "alice", Room: "general",
		Rooms: map[string][]string{srv.Addr: {"general", "random"}}}); err != nil {
		t.Fatal(err)
	}
	notes := newFakeNotifier()
	r := startRigOpts(t, srv.Addr, store, wide, func(o *chatapp.Options) { o.Tune = fastBackoff; o.Notifier = notes })
	r.Press(key.NameReturn, 0)
	r.waitFor("both rooms", func() bool { return r.app.UI().InChat() && r.Shows("#general") && r.Shows("#random") })
	bob := newPerson(t, client.Config{Addr: srv.Addr, Name: "bob", Secret: client.NewSecret()}, "general", "random")

	r.click("#random")
	r.waitShows("Message #random")
	r.click("Leave room")
	bob.waitFor("alice to leave #random", func(ev client.Event) bool {
		p, ok := ev.(client.Presence)
		return ok && p.Room == "random" && len(p.Changes) == 1 && p.Changes[0].Name == "alice" && p.Changes[0].Kind == protocol.PresenceLeft
	})
	r.app.Focus(false)
	// Mentions are noticed in the order they were stored: the one in
	// #general comes after the one in #random, if that one shows.
	bob.say("random", "@alice the build is red again")
	bob.say("general", "@alice lunch?")
	if n := notes.next(t); n != (shown{"bob in #general", "@alice lunch?"}) {
		t.Fatalf("first notification %+v, want the mention in #general (alice left #random)", n)
	}
}
