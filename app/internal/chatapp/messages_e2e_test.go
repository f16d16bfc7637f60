package chatapp_test

import (
	"image"
	"strings"
	"testing"
	"time"

	"gioui.org/f32"
	"gioui.org/io/key"
	"gioui.org/io/pointer"

	"chat/app/internal/chatapp"
	"chat/app/internal/settings"
	"chat/client"
	"chat/internal/testserver"
	"chat/protocol"
)

// hoverOn points the mouse at the first text containing s.
func (r *rig) hoverOn(s string) {
	r.t.Helper()
	n, ok := r.Find(s)
	if !ok {
		r.t.Fatalf("nothing shows %q; shown: %q", s, r.Texts())
	}
	c := n.Bounds.Min.Add(n.Bounds.Max).Div(2)
	r.Router.Queue(pointer.Event{Kind: pointer.Move, Source: pointer.Mouse, Position: f32.Pt(float32(c.X), float32(c.Y))})
	r.Frame()
	r.Frame()
}

// update waits for the peer's Updated of kind on target.
func (p *peer) update(kind protocol.ChangeKind, target uint64) client.Updated {
	p.t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case u := <-p.updates:
			if u.Kind == kind && u.Target == target {
				return u
			}
		case <-deadline:
			p.t.Fatalf("%s did not hear of the %v of message %d", p.c.Name(), kind, target)
		}
	}
}

// TestActingOnMessagesThroughTheApp: the app against the real server, as
// a person uses it, with bob on the client library: a reply (bob gets it
// with its target, the app shows the quote), a reaction from the picker
// (bob hears of it, the app shows the chip, and takes it back from the
// chip), an edit with Up (bob gets the new text, the app "(edited)"),
// typing both ways, a deletion, and a search whose hit opens the message.
// No change counts as unread.
func TestActingOnMessagesThroughTheApp(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	r := startRigOpts(t, srv.Addr, settings.Open(t.TempDir()), image.Pt(900, 720), func(o *chatapp.Options) { o.Tune = fastBackoff })
	r.Type("alice")
	r.Press(key.NameReturn, 0)
	r.waitShows("connected")
	bob := newPeer(t, srv.Addr, "bob")
	r.waitShows("bob joined")

	if _, err := bob.c.Send("general", "deploy the release tonight"); err != nil {
		t.Fatal(err)
	}
	first := bob.receive("deploy the release tonight").Seq
	r.waitShows("deploy the release tonight")

	// Reply.
	r.hoverOn("deploy the release tonight")
	r.click("Reply")
	r.mustShow("Replying to bob: deploy the release tonight")
	r.Type("sounds good")
	r.Press(key.NameReturn, 0)
	reply := bob.receive("sounds good")
	if reply.Reply != first {
		t.Fatalf("bob got the reply with Reply %d, want %d", reply.Reply, first)
	}
	r.waitShows("↩ bob: deploy the release tonight")

	// React from the picker, then take it back from the chip.
	r.hoverOn("deploy the release tonight")
	r.click("React")
	r.click("React 🎉")
	u := bob.update(protocol.ChangeReact, first)
	if u.Message == nil || len(u.Message.Reactions) != 1 || u.Message.Reactions[0].Names[0] != "alice" {
		t.Fatalf("bob heard of the reaction as %+v", u)
	}
	r.waitShows("🎉 1: alice (yours)")
	r.click("🎉 1")
	bob.update(protocol.ChangeUnreact, first)
	r.waitFor("the chip to go", func() bool { return !r.Shows("🎉 1") })

	// Edit our last message with Up.
	r.Press(key.NameUpArrow, 0)
	r.waitShows("Editing your message")
	r.Type(", see you there")
	r.Press(key.NameReturn, 0)
	u = bob.update(protocol.ChangeEdit, reply.Seq)
	if u.Message == nil || u.Message.Text != "sounds good, see you there" || u.Message.Edited.IsZero() {
		t.Fatalf("bob heard of the edit as %+v", u)
	}
	r.waitShows("sounds good, see you there")
	r.waitShows("(edited)")

	// Typing, both ways.
	if err := bob.c.Typing("general"); err != nil {
		t.Fatal(err)
	}
	r.waitShows("bob is typing…")
	if _, err := bob.c.Send("general", "ok"); err != nil {
		t.Fatal(err)
	}
	r.waitFor("bob's typing to end with his message", func() bool { return r.Shows("ok") && !r.Shows("is typing") })
	r.Type("h")
	select {
	case ty := <-bob.typing:
		if ty.Name != "alice" || ty.Stopped {
			t.Fatalf("bob got %+v", ty)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("bob did not hear alice typing")
	}
	r.Press(key.NameDeleteBackward, 0)

	// Delete our reply.
	r.hoverOn("sounds good, see you there")
	r.click("Delete")
	bob.update(protocol.ChangeDelete, reply.Seq)
	r.waitShows("message deleted")
	r.mustNotShow("sounds good, see you there")
	if title := r.app.Title(); strings.HasPrefix(title, "(") {
		t.Fatalf("the changes count as unread: the title is %q", title)
	}

	// Search, and open the hit.
	r.Press("F", key.ModShortcut)
	r.waitShows("Words to look for")
	r.Type("release")
	r.Press(key.NameReturn, 0)
	r.waitShows("#general · bob · ")
	r.click("Open #general · bob · ") // the hit
	r.waitFor("the search to close", func() bool { return !r.Shows("Words to look for") })
	r.mustShow("deploy the release tonight")
}
