package chatapp_test

import (
	"fmt"
	"image"
	"slices"
	"sync"
	"testing"
	"time"

	"gioui.org/io/key"

	"chat/app/internal/chatapp"
	"chat/app/internal/settings"
	"chat/client"
	"chat/internal/testserver"
	"chat/protocol"
)

// shown is a notification the app showed.
type shown struct{ title, body string }

// fakeNotifier records the notifications instead of showing them.
type fakeNotifier struct {
	mu    sync.Mutex
	got   []shown
	ch    chan shown
	ask   bool
	asked int
}

func newFakeNotifier() *fakeNotifier { return &fakeNotifier{ch: make(chan shown, 100)} }

func (f *fakeNotifier) Notify(title, body string) {
	f.mu.Lock()
	f.got = append(f.got, shown{title, body})
	f.mu.Unlock()
	f.ch <- shown{title, body}
}

func (f *fakeNotifier) NeedsPermission() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ask
}

func (f *fakeNotifier) RequestPermission(answered func()) {
	f.mu.Lock()
	f.asked++
	f.ask = false
	f.mu.Unlock()
	answered()
}

// next waits for the next notification.
func (f *fakeNotifier) next(t *testing.T) shown {
	t.Helper()
	select {
	case n := <-f.ch:
		return n
	case <-time.After(15 * time.Second):
		t.Fatal("no notification")
	}
	return shown{}
}

// person is another user on the client library, in some rooms.
type person struct {
	t      *testing.T
	c      *client.Client
	events chan client.Event
}

func newPerson(t *testing.T, cfg client.Config, rooms ...string) *person {
	t.Helper()
	cfg.MinBackoff, cfg.MaxBackoff = 50*time.Millisecond, 400*time.Millisecond
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	p := &person{t: t, c: c, events: make(chan client.Event, 1000)}
	go func() {
		for ev := range c.Events() {
			p.events <- ev
		}
	}()
	for _, r := range rooms {
		p.join(r)
	}
	return p
}

// join joins room and returns its Joined.
func (p *person) join(room string) client.Joined {
	p.t.Helper()
	if err := p.c.Join(room); err != nil {
		p.t.Fatal(err)
	}
	return p.waitFor("joining "+room, func(ev client.Event) bool {
		j, ok := ev.(client.Joined)
		return ok && j.Room == protocol.Key(room)
	}).(client.Joined)
}

func (p *person) waitFor(what string, ok func(client.Event) bool) client.Event {
	p.t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case ev := <-p.events:
			if ok(ev) {
				return ev
			}
		case <-deadline:
			p.t.Fatalf("%s: timed out waiting for %s", p.c.Name(), what)
		}
	}
}

func (p *person) say(room, text string) {
	p.t.Helper()
	if _, err := p.c.Send(room, text); err != nil {
		p.t.Fatal(err)
	}
	p.waitFor("the ack of "+text, func(ev client.Event) bool { _, ok := ev.(client.Acked); return ok })
}

func (r *rig) waitUnread(room string, unread int) {
	r.t.Helper()
	r.waitFor(fmt.Sprintf("%d unread in %s", unread, room), func() bool {
		n, _ := r.app.UI().Unread(room)
		return n == unread
	})
}

var wide = image.Pt(1000, 700)

// TestConversations is the app with many conversations against the real
// server: the remembered rooms are joined again, unread counts follow
// what others write and what the user reads, the read markers outlive a
// restart of the app and reach the name's other devices, a direct
// message opens its conversation and notifies while the window is not
// focused, a mention too, except in a conversation made quiet.
func TestConversations(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	store := settings.Open(t.TempDir())
	if err := store.Save(settings.Settings{Server: srv.Addr, Name: "alice", Room: "general",
		Rooms: map[string][]string{srv.Addr: {"general", "random"}}}); err != nil {
		t.Fatal(err)
	}
	notes := newFakeNotifier()
	start := func() *rig {
		r := startRigOpts(t, srv.Addr, store, wide, func(o *chatapp.Options) { o.Tune = fastBackoff; o.Notifier = notes })
		r.Press(key.NameReturn, 0) // the form is filled in from last time
		r.waitFor("both rooms", func() bool {
			return r.app.UI().InChat() && r.Shows("#general") && r.Shows("#random")
		})
		return r
	}
	r := start()
	r.mustShow("Message #general")
	bob := newPerson(t, client.Config{Addr: srv.Addr, Name: "bob"}, "general", "random")

	bob.say("random", "one")
	bob.say("random", "two")
	r.waitUnread("random", 2)
	r.waitShows("#random: 2 unread")
	if got := r.app.UI().Title(); got != "(2) #general — Chat" {
		t.Fatalf("title %q", got)
	}
	// Another device of alice's, in no room, hears of what she reads.
	phone := newPerson(t, client.Config{Addr: srv.Addr, Name: "alice", Secret: r.settings().Secret})
	phone.waitFor("the phone's identity", func(ev client.Event) bool { _, ok := ev.(client.Identified); return ok })
	r.click("#random")
	r.waitShows("two")
	r.waitUnread("random", 0)
	phone.waitFor("the read marker of #random at 2", func(ev client.Event) bool {
		m, ok := ev.(client.ReadMarker)
		return ok && m.Room == "random" && m.Seq == 2
	})

	// The app restarts; bob wrote meanwhile: one unread, not three.
	r.click("#general")
	r.waitFor("#general to be the one to open next time", func() bool { return r.settings().Room == "general" })
	r.app.Close()
	bob.say("random", "three")
	r = start()
	r.mustShow("Message #general") // the conversation open last time
	r.waitUnread("random", 1)

	// Not looking: a direct message notifies and opens its conversation.
	r.app.Focus(false)
	dm := bob.c.DirectRoom("alice")
	bob.join(dm)
	bob.say(dm, "psst")
	if n := notes.next(t); n != (shown{"bob", "psst"}) {
		t.Fatalf("notification %+v", n)
	}
	r.waitUnread(dm, 1)
	r.waitShows("Direct messages with bob: 1 unread")

	// A mention notifies, unless its conversation is quiet.
	bob.say("general", "@alice are you there?")
	if n := notes.next(t); n != (shown{"bob in #general", "@alice are you there?"}) {
		t.Fatalf("notification %+v", n)
	}
	r.click("#general")
	r.click("Turn off notifications")
	r.waitFor("the quiet setting to be saved", func() bool { return r.settings().IsQuiet(srv.Addr, "general") })
	bob.say("general", "@alice hello?")
	bob.say(dm, "psst again")
	if n := notes.next(t); n != (shown{"bob", "psst again"}) {
		t.Fatalf("notification %+v; the quiet room's mention should not show", n)
	}
	// Looking again: nothing more shows, and what is open is read.
	r.app.Focus(true)
	r.waitUnread("general", 0)
	bob.say(dm, "seen?")
	r.waitUnread(dm, 3)
	select {
	case n := <-notes.ch:
		t.Fatalf("notified %+v while the window has the focus", n)
	default:
	}
}

// TestJoinAndLeaveRooms: the room list shows the server's rooms; joining
// one and creating one are remembered, leaving forgets.
func TestJoinAndLeaveRooms(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	newPerson(t, client.Config{Addr: srv.Addr, Name: "bob"}, "music", "gophers")
	r := startRigOpts(t, srv.Addr, settings.Open(t.TempDir()), wide, func(o *chatapp.Options) { o.Tune = fastBackoff })
	r.Type("alice")
	r.Press(key.NameReturn, 0)
	r.waitShows("Message #general")
	r.click("Join or create a room")
	r.waitShows("#music")
	r.mustShow("#gophers")
	r.click("#music")
	r.waitShows("Message #music")
	r.waitFor("#music to be remembered", func() bool {
		return slices.Contains(r.settings().Rooms[srv.Addr], "music")
	})
	r.click("Join or create a room")
	r.Type("brand new")
	r.Press(key.NameReturn, 0)
	r.waitShows("Message #brand new")
	r.waitFor("the new room to be remembered", func() bool {
		return slices.Contains(r.settings().Rooms[srv.Addr], "brand new")
	})
	r.click("Leave room")
	r.waitFor("the room to be forgotten", func() bool {
		return !slices.Contains(r.settings().Rooms[srv.Addr], "brand new")
	})
	if r.Shows("#brand new") {
		t.Fatal("the room left is still listed")
	}
}

// TestLinksOpenInTheBrowser: a click on a link in a message hands it to
// the platform's opener (platform.OpenURL in the app).
func TestLinksOpenInTheBrowser(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	opened := make(chan string, 1)
	r := startRigOpts(t, srv.Addr, settings.Open(t.TempDir()), wide, func(o *chatapp.Options) {
		o.Tune = fastBackoff
		o.OpenURL = func(url string) error { opened <- url; return nil }
	})
	r.Type("alice")
	r.Press(key.NameReturn, 0)
	r.waitShows("Message #general")
	bob := newPerson(t, client.Config{Addr: srv.Addr, Name: "bob"}, "general")
	bob.say("general", "the notes: https://example.org/notes?id=7")
	r.waitShows("https://example.org/notes?id=7")
	r.click("https://example.org/notes?id=7")
	select {
	case url := <-opened:
		if url != "https://example.org/notes?id=7" {
			t.Fatalf("opened %q", url)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the link was not opened")
	}
}
