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

// TestMentionAfterAHistoryResetNotifies: alice has read #general up to
// message 3; then the server's history starts over (restored from an
// old backup, or reset). The new history's messages are numbered from 1
// again: a mention there is news, not something read at message 3.
func TestMentionAfterAHistoryResetNotifies(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	store := settings.Open(t.TempDir())
	if err := store.Save(settings.Settings{Server: srv.Addr, Name: "alice", Room: "general"}); err != nil {
		t.Fatal(err)
	}
	notes := newFakeNotifier()
	start := func() *rig {
		r := startRigOpts(t, srv.Addr, store, wide, func(o *chatapp.Options) { o.Tune = fastBackoff; o.Notifier = notes })
		r.Press(key.NameReturn, 0)
		r.waitShows("Message #general")
		return r
	}
	r := start()
	// Another device of alice's hears of what she reads: identified
	// before anything is read, so it misses no marker.
	phone := newPerson(t, client.Config{Addr: srv.Addr, Name: "alice", Secret: r.settings().Secret})
	phone.waitFor("the phone's identity", func(ev client.Event) bool { _, ok := ev.(client.Identified); return ok })
	bob := newPerson(t, client.Config{Addr: srv.Addr, Name: "bob"}, "general")
	for _, text := range []string{"old 1", "old 2", "old 3"} {
		bob.say("general", text)
	}
	r.waitShows("old 3")
	phone.waitFor("alice's read marker at 3", func(ev client.Event) bool {
		m, ok := ev.(client.ReadMarker)
		return ok && m.Room == "general" && m.Seq == 3
	})
	// Started again, the app knows the marker from the join.
	r.app.Close()
	r = start()
	r.waitShows("old 3")

	srv.Reset()
	r.waitFor("the old history to go", func() bool { return !r.Shows("old 3") })
	r.app.Focus(false)
	carol := newPerson(t, client.Config{Addr: srv.Addr, Name: "carol"}, "general")
	carol.say("general", "@alice new here, hello")       // message 1 of the new history
	carol.say("general", "filler")                       // 2
	carol.say("general", "filler")                       // 3
	carol.say("general", "@alice did you see my hello?") // 4
	if n := notes.next(t); n.body != "@alice new here, hello" {
		t.Fatalf("first notification %+v, want the mention at message 1 of the new history", n)
	}
}
