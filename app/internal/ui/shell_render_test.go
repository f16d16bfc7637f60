package ui_test

import (
	"image"
	"image/color"
	"image/draw"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gioui.org/io/key"

	"chat/app/internal/ui"
	"chat/client"
	"chat/protocol"
)

// conversations gives the scene's ada more conversations: #design with a
// mention, #random with unread messages, a direct conversation with grace
// with one unread, one with linus read.
func (s *scene) conversations() {
	at := func(min int) time.Time { return sceneNow.Add(time.Duration(min-20) * time.Minute) }
	withGrace, withLinus := protocol.DMRoom("ada", "grace"), protocol.DMRoom("ada", "linus")
	s.u.Apply(s.session, ui.RoomJoined{Room: "design", Name: "ada", Members: []string{"ada", "ken"}, Count: 2, Read: 10, Head: 12, Mentions: 1})
	s.u.Apply(s.session, ui.RoomJoined{Room: "random", Name: "ada", Members: []string{"ada", "linus"}, Count: 2, Read: 40, Head: 47})
	s.u.Apply(s.session, ui.RoomJoined{Room: "releases", Name: "ada", Members: []string{"ada"}, Count: 1, Read: 3, Head: 3})
	s.u.Apply(s.session, ui.Identity{Name: "ada", DMs: []ui.Conversation{
		{Room: withGrace, Peer: "grace", Head: 5, Read: 4, Time: at(19)},
		{Room: withLinus, Peer: "linus", Head: 9, Read: 9, Time: at(2)},
	}})
	s.u.Apply(s.session, client.Message{Room: withGrace, Seq: 5, Time: at(19), Sender: "grace", ID: "g5", Text: "Lunch at noon?", History: true})
	s.u.Apply(s.session, client.Message{Room: withLinus, Seq: 9, Time: at(2), Sender: "linus", ID: "l9", Text: "Merged.", History: true})
	s.Frame()
}

// TestRenderShell draws the conversations in a wide window (the list
// beside the open room) and on a phone (the list as its own screen), in
// both themes. With -update-docs it writes them to docs/ for the README:
//
//	go test ./app/internal/ui -run TestRenderShell -update-docs
func TestRenderShell(t *testing.T) {
	for _, dark := range []bool{false, true} {
		theme := map[bool]string{false: "light", true: "dark"}[dark]
		t.Run(theme, func(t *testing.T) {
			s := newScene(t, dark, image.Pt(960, 600), 1.5)
			th := s.u.Theme()
			s.join(t)
			s.conversation()
			s.conversations()
			img := render(t, s)
			checkNotBlank(t, img, th.Bg)
			checkText(t, s, img, "#random", th.Fg, th.Surface)      // bold: unread
			checkText(t, s, img, "#releases", th.Muted, th.Surface) // read
			checkText(t, s, img, "7", th.Fg, th.Divider)            // #random's count
			checkText(t, s, img, "@", th.ContrastFg, th.ContrastBg) // #design's mention
			checkText(t, s, img, "Is there a dark theme?", th.Fg, th.Surface)
			writeDoc(t, img, "app-wide-"+theme+".png")

			// The panels over it: Ctrl+K's filter, the room list.
			rd := newRenderer(t, s.Size)
			s.Press("K", key.ModShortcut)
			s.Type("r")
			img = rd.render(t, s)
			checkText(t, s, img, "Jump to a conversation", th.Fg, th.Surface)
			t.Logf("wrote %s", save(t, img, "app-jump-"+theme+".png"))
			s.Press(key.NameEscape, 0)
			if err := s.ClickOn("Join or create a room"); err != nil {
				t.Fatal(err)
			}
			s.u.Apply(s.session, ui.Directory{Rooms: []ui.DirectoryRoom{
				{Room: "general", Members: 5, LastActive: sceneNow}, {Room: "gophers", Members: 12, LastActive: sceneNow.Add(-3 * time.Hour)},
				{Room: "music", Members: 1}}})
			s.Type("go")
			img = rd.render(t, s)
			checkText(t, s, img, "#gophers", th.Fg, th.Surface)
			checkText(t, s, img, "Create #go", th.Accent, th.Surface)
			t.Logf("wrote %s", save(t, img, "app-rooms-"+theme+".png"))
			s.Press(key.NameEscape, 0)

			// The phone: the conversation, and Back to the list.
			s = newScene(t, dark, image.Pt(400, 760), 1.5)
			rd = newRenderer(t, s.Size)
			s.join(t)
			s.conversation()
			s.conversations()
			conv := rd.render(t, s)
			checkNotBlank(t, conv, th.Bg)
			checkText(t, s, conv, "Back to conversations", th.Fg, th.Surface)
			if s.Shows("Direct messages") {
				t.Error("the phone shows the list beside the conversation")
			}
			s.Press(key.NameBack, 0)
			if !s.u.ShowsList() {
				t.Fatal("Back did not show the list")
			}
			list := rd.render(t, s)
			checkText(t, s, list, "grace", th.Fg, th.Bg)
			checkText(t, s, list, "1", th.ContrastFg, th.ContrastBg) // grace's direct message
			if s.Shows("Message #general") {
				t.Error("the phone shows the conversation beside the list")
			}
			img = sideBySide(list, conv, int(24*s.Metric.PxPerDp), th.Divider)
			writeDoc(t, img, "app-narrow-"+theme+".png")
		})
	}
}

// sideBySide puts two screens next to each other on a strip of gap
// pixels of color c.
func sideBySide(a, b *image.RGBA, gap int, c color.NRGBA) *image.RGBA {
	out := image.NewRGBA(image.Rect(0, 0, a.Bounds().Dx()+gap+b.Bounds().Dx(), max(a.Bounds().Dy(), b.Bounds().Dy())))
	draw.Draw(out, out.Bounds(), image.NewUniform(c), image.Point{}, draw.Src)
	draw.Draw(out, a.Bounds(), a, image.Point{}, draw.Src)
	draw.Draw(out, b.Bounds().Add(image.Pt(a.Bounds().Dx()+gap, 0)), b, image.Point{}, draw.Src)
	return out
}

// writeDoc saves img under dist/screenshots, and with -update-docs under
// docs/ too.
func writeDoc(t *testing.T, img *image.RGBA, name string) {
	t.Helper()
	t.Logf("wrote %s", save(t, img, name))
	if !*updateDocs {
		return
	}
	path := filepath.Join(repoRoot(), "docs", name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	writePNG(t, img, path)
	t.Logf("wrote %s", path)
}
