package chatapp_test

import (
	"testing"

	"gioui.org/io/key"

	"chat/app/internal/chatapp"
	"chat/app/internal/settings"
	"chat/client"
	"chat/internal/testserver"
)

// TestDirectConversationsWithinTheRoomLimit: a server lets a connection
// be in a few rooms (64 by default, 3 here), direct conversations
// included, and a name collects direct conversations over the months.
// alice is in #general and #random; bob wrote to her long ago (read),
// carol just now (unread). carol's message must be readable: the app
// joins the conversations with unread messages at the start, and the
// others when they are opened.
func TestDirectConversationsWithinTheRoomLimit(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"-max-rooms", "3"}})
	secret := client.NewSecret()
	store := settings.Open(t.TempDir())
	if err := store.Save(settings.Settings{Server: srv.Addr, Name: "alice", Room: "general", Secret: secret,
		Rooms: map[string][]string{srv.Addr: {"general", "random"}}}); err != nil {
		t.Fatal(err)
	}
	carol := newPerson(t, client.Config{Addr: srv.Addr, Name: "carol", Secret: client.NewSecret()})
	carolDM := carol.c.DirectRoom("alice")
	carol.join(carolDM)
	carol.say(carolDM, "are you free?")
	// bob's conversation is the most recent one, and read on alice's phone.
	bob := newPerson(t, client.Config{Addr: srv.Addr, Name: "bob", Secret: client.NewSecret()})
	bobDM := bob.c.DirectRoom("alice")
	bob.join(bobDM)
	bob.say(bobDM, "old news")
	phone := newPerson(t, client.Config{Addr: srv.Addr, Name: "alice", Secret: secret}, bobDM)
	if err := phone.c.MarkRead(bobDM, 1); err != nil {
		t.Fatal(err)
	}
	phone.waitFor("the phone's read marker", func(ev client.Event) bool { m, ok := ev.(client.ReadMarker); return ok && m.Room == bobDM })
	phone.c.Close()

	r := startRigOpts(t, srv.Addr, store, wide, func(o *chatapp.Options) { o.Tune = fastBackoff })
	r.Press(key.NameReturn, 0)
	r.waitFor("both rooms", func() bool { return r.app.UI().InChat() && r.Shows("#general") && r.Shows("#random") })
	r.waitShows("Direct messages with carol: 1 unread")
	r.click("Direct messages with carol: 1 unread")
	r.waitFor("carol's message", func() bool {
		return r.Shows("are you free?") || r.Shows("The server allows no more rooms for this connection.")
	})
	if !r.Shows("are you free?") {
		t.Fatalf("carol's direct message cannot be read; the screen shows %q", r.Texts())
	}
	// bob's is joined when opened, once there is room for it.
	r.click("#random")
	r.waitShows("Message #random")
	r.click("Leave room")
	r.click("Direct messages with bob")
	r.waitShows("old news")
}
