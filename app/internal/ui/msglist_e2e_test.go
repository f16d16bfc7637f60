package ui_test

import (
	"context"
	"fmt"
	"image"
	"testing"
	"time"

	"gioui.org/io/key"
	"gioui.org/layout"

	"chat/app/internal/chatapp"
	"chat/app/internal/platform"
	"chat/app/internal/settings"
	"chat/app/internal/ui"
	"chat/app/internal/uitest"
	"chat/client"
	"chat/internal/testserver"
)

// appRig is the whole app (its UI and its loop, which owns the real
// client library) against a real server, in a window of the list rig's
// kind: what the scrollback test needs end to end.
type appRig struct {
	*listRig
	app  *chatapp.App
	wake chan struct{}
}

func newAppRig(t *testing.T, addr string) *appRig {
	t.Helper()
	store := settings.Open(t.TempDir())
	cfg := ui.Config{Server: addr, ShowServer: true}
	cfg.Shaper, cfg.Face = platform.Fonts()
	r := &appRig{wake: make(chan struct{}, 1)}
	r.app = chatapp.New(chatapp.Options{UI: cfg, Store: store, Software: "chat-app-test",
		Tune: func(c *client.Config) { c.MinBackoff, c.MaxBackoff = 50*time.Millisecond, 400*time.Millisecond },
		Invalidate: func() {
			select {
			case r.wake <- struct{}{}:
			default:
			}
		}})
	t.Cleanup(r.app.Close)
	r.listRig = &listRig{t: t, u: r.app.UI()}
	r.Driver = uitest.New(image.Pt(420, 720), func(gtx layout.Context) { r.app.Layout(gtx) })
	r.Frame()
	r.Frame()
	return r
}

// until runs frames as the app asks for them until cond holds.
func (r *appRig) until(what string, cond func() bool) {
	r.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		r.Frame()
		if cond() {
			return
		}
		select {
		case <-r.wake:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			r.t.Fatalf("timed out waiting for %s; the screen shows %q", what, r.Texts())
		}
	}
}

// postMessages has bob post "message 1" … "message n" in #general and
// returns once every one is stored (Drain).
func postMessages(t *testing.T, addr string, n int) *client.Client {
	t.Helper()
	bob, err := client.New(client.Config{Addr: addr, Name: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bob.Close() })
	if err := bob.Join("general"); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		if _, err := bob.Send("general", fmt.Sprintf("message %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := bob.Drain(ctx); err != nil {
		t.Fatalf("bob's messages: %v", err)
	}
	return bob
}

// The test: after a rejoin the app reaches the first of 300
// messages by scrolling up, with pages the client library fetches from
// the server (HISTORY), and asks for no page before the first.
func TestScrollbackToTheFirstOf300AfterARejoin(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	e := newAppRig(t, srv.Addr)

	// ada is in #general once, and signs out.
	e.Type("ada")
	e.Press(key.NameReturn, 0)
	e.until("the join", func() bool { return e.u.InChat() && e.Shows("connected") })
	e.Press(key.NameBack, 0) // the phone-sized window's list
	if err := e.ClickOn("Sign out"); err != nil {
		t.Fatal(err)
	}
	e.until("the form", func() bool { return !e.u.InChat() })

	// bob writes 300 messages meanwhile.
	postMessages(t, srv.Addr, 300)

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
		e.until("the page asked for", func() bool { return !e.u.PageWanted() })
		checkConsecutive(t, "scrolling up", e.visible())
	}
	if _, low, high, first, _ := e.u.ListWindow(); low != 1 || high != 300 || !first {
		t.Fatalf("at the top the window holds %d..%d (first %v)", low, high, first)
	}
	for range 3 {
		e.scroll(-600)
		if e.u.PageWanted() {
			t.Fatal("asked for a page after the first message")
		}
	}
}

// A page asked for while offline comes once the room is joined again:
// the app loop asks again for what the client refused without a
// connection, since the list does not ask twice.
func TestScrollbackAskedOfflineComesAfterReconnecting(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	bob := postMessages(t, srv.Addr, 300)
	bob.Close()

	e := newAppRig(t, srv.Addr)
	e.Type("ada")
	e.Press(key.NameReturn, 0)
	e.until("message 300", func() bool { return e.u.InChat() && e.Shows("connected") && e.shows(300) })
	_, low, _, _, _ := e.u.ListWindow()
	if low <= 1 {
		t.Fatalf("the join brought every message (from %d): nothing to page", low)
	}

	srv.Kill()
	e.until("the connection lost", func() bool { return !e.Shows("connected") })
	for step := 0; !e.u.PageWanted(); step++ {
		if step > 400 {
			t.Fatalf("no page asked for after %d scroll steps", step)
		}
		e.scroll(-600)
	}
	srv.Restart()
	e.until("the page asked for offline", func() bool { return !e.u.PageWanted() })
	if _, now, _, _, _ := e.u.ListWindow(); now >= low {
		t.Fatalf("the window starts at %d, as before the page (%d)", now, low)
	}
}
