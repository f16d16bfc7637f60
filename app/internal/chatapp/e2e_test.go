package chatapp_test

import (
	"context"
	"image"
	"net"
	"strings"
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
	"chat/protocol"
)

// rig is the whole app (UI and loop, no window) under a driver.
type rig struct {
	*uitest.Driver
	t     *testing.T
	app   *chatapp.App
	store *settings.Store
	wake  chan struct{}
}

func fastBackoff(c *client.Config) {
	c.MinBackoff, c.MaxBackoff, c.HandshakeTimeout = 50*time.Millisecond, 400*time.Millisecond, 3*time.Second
}

func newRig(t *testing.T, server string) *rig {
	t.Helper()
	return newRigTuned(t, server, fastBackoff)
}

func newRigTuned(t *testing.T, server string, tune func(*client.Config)) *rig {
	t.Helper()
	return startRig(t, server, settings.Open(t.TempDir()), tune)
}

// startRig starts the app with what store holds, as the app's main does.
func startRig(t *testing.T, server string, store *settings.Store, tune func(*client.Config)) *rig {
	t.Helper()
	return startRigOpts(t, server, store, image.Pt(420, 720), func(o *chatapp.Options) { o.Tune = tune })
}

// startRigOpts is startRig in a window of size, with options set by opt.
func startRigOpts(t *testing.T, server string, store *settings.Store, size image.Point, opt func(*chatapp.Options)) *rig {
	t.Helper()
	saved, err := store.Load()
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, store: store, wake: make(chan struct{}, 1)}
	cfg := ui.Config{Server: server, Name: saved.Name, Room: saved.Room, ShowServer: true}
	cfg.Shaper, cfg.Face = platform.Fonts()
	opts := chatapp.Options{
		UI: cfg, Store: r.store, Saved: saved, Software: "chat-app-test",
		Invalidate: func() {
			select {
			case r.wake <- struct{}{}:
			default:
			}
		},
	}
	opt(&opts)
	r.app = chatapp.New(opts)
	t.Cleanup(r.app.Close)
	r.Driver = uitest.New(size, func(gtx layout.Context) { r.app.Layout(gtx) })
	r.Frame()
	r.Frame()
	return r
}

// waitFor runs frames as the app asks for them until cond holds.
func (r *rig) waitFor(what string, cond func() bool) {
	r.t.Helper()
	deadline := time.After(15 * time.Second)
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

func (r *rig) waitShows(s string) {
	r.t.Helper()
	r.waitFor("the screen to show "+s, func() bool { return r.Shows(s) })
}

// peer is a second user on the real client library.
type peer struct {
	t    *testing.T
	c    *client.Client
	msgs chan client.Message
	// updates and typing are the peer's Updated and Typing events (the
	// latest 100: older ones are dropped rather than block).
	updates chan client.Updated
	typing  chan client.Typing
}

func newPeer(t *testing.T, addr, name string) *peer {
	t.Helper()
	return newPeerConfig(t, client.Config{Addr: addr, Name: name})
}

func newPeerConfig(t *testing.T, cfg client.Config) *peer {
	t.Helper()
	name := cfg.Name
	cfg.MinBackoff, cfg.MaxBackoff = 50*time.Millisecond, 400*time.Millisecond
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Join("general"); err != nil {
		t.Fatal(err)
	}
	p := &peer{t: t, c: c, msgs: make(chan client.Message, 100), updates: make(chan client.Updated, 100), typing: make(chan client.Typing, 100)}
	joined := make(chan struct{})
	go func() {
		for ev := range c.Events() {
			switch e := ev.(type) {
			case client.Joined:
				select {
				case <-joined:
				default:
					close(joined)
				}
			case client.Message:
				p.msgs <- e
			case client.Updated:
				select {
				case p.updates <- e:
				default:
				}
			case client.Typing:
				select {
				case p.typing <- e:
				default:
				}
			}
		}
	}()
	select {
	case <-joined:
	case <-time.After(10 * time.Second):
		t.Fatal(name + " did not join")
	}
	return p
}

// receive waits for a message with text, skipping others.
func (p *peer) receive(text string) client.Message {
	p.t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case m := <-p.msgs:
			if m.Text == text {
				return m
			}
		case <-deadline:
			p.t.Fatalf("%s did not receive %q", p.c.Name(), text)
		}
	}
}

// TestChatThroughServerRestart is the app as a person uses it, against the
// real server: join, talk with another client, lose the server, keep
// typing, and get everything through once the server is back.
func TestChatThroughServerRestart(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"-ping", "1s"}})
	r := newRig(t, srv.Addr)

	r.Type("alice")
	r.Press(key.NameReturn, 0)
	r.waitShows("connected")
	r.mustShow("#general")

	bob := newPeer(t, srv.Addr, "bob")
	r.waitShows("bob joined")

	// Typed text goes out on Enter; the row is pending in the same frame.
	r.Type("hello bob")
	r.Press(key.NameReturn, 0)
	r.mustShow("hello bob")
	r.mustShow("sending…")
	if got := bob.receive("hello bob"); got.Sender != "alice" {
		t.Fatalf("bob got %+v", got)
	}
	r.waitFor("the message to be acknowledged", func() bool { return !r.Shows("sending…") })

	if _, err := bob.c.Send("general", "hi alice"); err != nil {
		t.Fatal(err)
	}
	r.waitShows("hi alice")

	// The server dies. The app says so and keeps accepting messages.
	srv.Kill()
	r.waitShows("reconnecting…")
	r.Type("sent while the server was down")
	r.Press(key.NameReturn, 0)
	r.mustShow("sent while the server was down")
	r.mustShow("sending…")
	if _, err := bob.c.Send("general", "bob wrote this offline"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // a few failed reconnects
	r.Frame()
	if !r.Shows("sending…") {
		t.Fatal("the message sent while the server was down is not pending")
	}

	// It comes back: both outboxes go out, nothing is lost or doubled.
	srv.Restart()
	r.waitShows("connected")
	bob.receive("sent while the server was down")
	r.waitShows("bob wrote this offline")
	r.waitFor("the pending message to be acknowledged", func() bool { return !r.Shows("sending…") })
	texts := r.Texts()
	for _, s := range []string{"hello bob", "hi alice", "sent while the server was down", "bob wrote this offline"} {
		if n := uitest.Count(texts, s); n != 1 {
			t.Errorf("%q shows %d times, want once; the screen shows %q", s, n, texts)
		}
	}

	// The join is remembered for next time, with the name's secret.
	st, err := r.store.Load()
	if err != nil {
		t.Fatal(err)
	}
	if st.Server != srv.Addr || st.Name != "alice" || st.Room != "general" || st.Secret == "" {
		t.Fatalf("saved settings %+v", st)
	}
}

func (r *rig) mustShow(s string) {
	r.t.Helper()
	if !r.Shows(s) {
		r.t.Fatalf("the screen does not show %q; it shows %q", s, r.Texts())
	}
}

func TestNameTakenIsShownOnTheForm(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	newPeer(t, srv.Addr, "bob")
	r := newRig(t, srv.Addr)
	r.Type("Bob") // names compare without case
	r.Press(key.NameReturn, 0)
	r.waitShows("The name Bob belongs to someone else on this server")
	if r.app.UI().InChat() {
		t.Fatal("in the chat after a refused join")
	}
	// The form is still filled: fixing the name and pressing Enter joins.
	r.Type("2")
	r.Press(key.NameReturn, 0)
	r.waitShows("#general")
	r.waitShows("connected")
}

func TestUnreachableServerIsShownOnTheForm(t *testing.T) {
	// A port that was just free: nothing listens there.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	r := newRig(t, addr)
	r.Type("alice")
	r.Press(key.NameReturn, 0)
	r.waitShows("Cannot reach the chat server at " + addr + ": nothing is listening there")
	r.mustShow("Join") // back to the form, not retrying behind the user's back
}

func TestVersionMismatchIsShownOnTheForm(t *testing.T) {
	// A server of another protocol version refuses HELLO, as ours would.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = c.Read(make([]byte, 256))
			_, _ = c.Write(protocol.Encode(protocol.NewError(protocol.CodeUnsupportedVersion, "",
				"this server speaks protocol version 9, the client version 1: update the app")))
			c.Close()
		}
	}()
	r := newRig(t, l.Addr().String())
	r.Type("alice")
	r.Press(key.NameReturn, 0)
	r.waitShows("This app and the server speak different protocol versions")
	r.mustShow("update the app")
}

func TestLeaveAndJoinAgain(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	bob := newPeer(t, srv.Addr, "bob")
	r := newRig(t, srv.Addr)
	r.Type("alice")
	r.Press(key.NameReturn, 0)
	r.waitShows("connected")
	r.Type("before leaving")
	r.Press(key.NameReturn, 0)
	r.Press(key.NameBack, 0) // the narrow window's list of conversations
	if err := r.ClickOn("Sign out"); err != nil {
		t.Fatal(err)
	}
	r.mustShow("Join")
	bob.receive("before leaving") // leaving waits for the outbox
	r.Press(key.NameReturn, 0)    // the form kept the name
	r.waitShows("connected")
	// History brings back what was said.
	r.waitShows("before leaving")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := bob.c.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(r.Texts(), "\n"), "alice") {
		t.Fatal("no sender name on screen")
	}
}

// TestRegainingFocusReconnectsAtOnce: after an outage the client waits
// long between attempts; the window getting the focus back (a laptop
// waking, an Android app resumed) must not wait for that timer.
func TestRegainingFocusReconnectsAtOnce(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	r := newRigTuned(t, srv.Addr, func(c *client.Config) { c.MinBackoff, c.MaxBackoff = 40*time.Second, 60*time.Second })
	r.Type("alice")
	r.Press(key.NameReturn, 0)
	r.waitShows("connected")
	srv.Kill()
	r.waitShows("offline") // the next attempt is 20 to 40 s away
	r.mustShow("Retry now")
	// Why, in words, and when the app tries again.
	r.mustShow("Lost the connection to " + srv.Addr + ": the server closed the connection.")
	r.mustShow("Retrying in ")
	srv.Restart()
	r.app.Focus(false)
	r.app.Focus(true)
	r.waitShows("connected")
	r.waitFor("the offline notice to go", func() bool { return !r.Shows("Retry now") })

	// The same through the button, the second time.
	srv.Kill()
	r.waitShows("offline")
	srv.Restart()
	if err := r.ClickOn("Retry now"); err != nil {
		t.Fatal(err)
	}
	r.waitShows("connected")
}

func TestThemeChoiceIsRemembered(t *testing.T) {
	r := newRig(t, "localhost:7878")
	if err := r.ClickOn("Switch theme"); err != nil {
		t.Fatal(err)
	}
	r.waitFor("the theme to be saved", func() bool {
		st, err := r.store.Load()
		return err == nil && st.Dark
	})
}
