package ui_test

import (
	"fmt"
	"image"
	"testing"
	"time"

	"gioui.org/io/key"

	"chat/app/internal/ui"
	"chat/client"
	"chat/internal/testserver"
)

// e2eLoop is the app loop in small, for the UI against the real server
// with the real client library: it performs the UI's intents (join,
// leave, pages) and feeds the client's events back through UI.Apply. It
// waits for events, never for time.
type e2eLoop struct {
	*listRig
	addr   string
	secret string // the name key, as the app keeps it: the name is ours
	c      *client.Client
	events chan client.Event
}

func (e *e2eLoop) perform() {
	e.t.Helper()
	for _, in := range e.take() {
		switch in := in.(type) {
		case ui.JoinIntent:
			c, err := client.New(client.Config{Addr: e.addr, Name: in.Name, Secret: e.secret, MinBackoff: 50 * time.Millisecond, MaxBackoff: 400 * time.Millisecond})
			if err != nil {
				e.t.Fatal(err)
			}
			if err := c.Join(in.Room); err != nil {
				e.t.Fatal(err)
			}
			e.c, e.secret = c, c.Secret()
			events := e.events
			go func() {
				for ev := range c.Events() {
					events <- ev
				}
			}()
		case ui.LeaveIntent:
			e.c.Close()
			e.c = nil
		case ui.LoadOlderIntent:
			if err := e.c.History(in.Room, in.Before, in.Limit); err != nil {
				e.t.Fatalf("client.History(%q, %d, %d): %v", in.Room, in.Before, in.Limit, err)
			}
		}
	}
}

// until runs frames, performs intents and applies events until cond
// holds.
func (e *e2eLoop) until(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		e.Frame()
		e.perform()
		if cond() {
			return
		}
		select {
		case ev := <-e.events:
			e.apply(ev)
		case <-deadline:
			e.t.Fatalf("timed out waiting for %s; the screen shows %q", what, e.Texts())
		}
	}
}

func (e *e2eLoop) apply(ev client.Event) {
	if e.c == nil {
		return // of a client left behind
	}
	e.u.Apply(e.session, ev)
}

// The test: after a rejoin the app reaches the first of 300
// messages by scrolling up, with pages the client library fetches from
// the server (HISTORY), and asks for no page before the first.
func TestScrollbackToTheFirstOf300AfterARejoin(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	e := &e2eLoop{listRig: newListRig(t, time.Now(), image.Pt(420, 720), 1), addr: srv.Addr, events: make(chan client.Event, 64)}

	// ada is in #general once, and leaves.
	e.Type("ada")
	e.Press(key.NameReturn, 0)
	e.until("the join", e.u.InChat)
	e.until("connected", func() bool { return e.Shows("connected") })
	if err := e.ClickOn("Leave room"); err != nil {
		t.Fatal(err)
	}
	e.until("the form", func() bool { return !e.u.InChat() })

	// bob writes 300 messages meanwhile.
	bob, err := client.New(client.Config{Addr: srv.Addr, Name: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	if err := bob.Join("general"); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 300; i++ {
		if _, err := bob.Send("general", fmt.Sprintf("message %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	acked := 0
	deadline := time.After(20 * time.Second)
	for acked < 300 {
		select {
		case ev := <-bob.Events():
			if _, ok := ev.(client.Acked); ok {
				acked++
			}
		case <-deadline:
			t.Fatalf("bob's messages: %d of 300 acknowledged", acked)
		}
	}

	// ada joins again: the server sends the newest messages.
	e.Press(key.NameReturn, 0)
	e.until("message 300", func() bool { return e.shows(300) })
	if _, low, _, _, _ := e.u.ListWindow(); low <= 1 {
		t.Fatalf("the join brought every message (from %d): nothing to page", low)
	}

	// Scroll up until the first message shows.
	for step := 0; !e.shows(1); step++ {
		if step > 400 {
			t.Fatalf("message 1 not reached after %d scroll steps; the view shows %v", step, e.visible())
		}
		e.scroll(-600)
		e.perform()
		e.drain() // the page asked for, if any, before the next step
		checkConsecutive(t, "scrolling up", e.visible())
	}
	if _, low, high, first, _ := e.u.ListWindow(); low != 1 || high != 300 || !first {
		t.Fatalf("at the top the window holds %d..%d (first %v)", low, high, first)
	}
	for range 3 {
		e.scroll(-600)
	}
	for _, in := range e.take() {
		if l, ok := in.(ui.LoadOlderIntent); ok {
			t.Fatalf("asked for %+v after the first message", l)
		}
	}
}

// drain applies the events that come until the page asked for has been
// taken (no page is on its way), waiting for them.
func (e *e2eLoop) drain() {
	e.t.Helper()
	deadline := time.After(20 * time.Second)
	for e.u.PageWanted() {
		select {
		case ev := <-e.events:
			e.apply(ev)
		case <-deadline:
			e.t.Fatalf("no page came; the screen shows %q", e.Texts())
		}
	}
	e.Frame()
}
