package browser_test

import (
	"fmt"
	"image"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chat/client"
	"chat/internal/browsertest"
	"chat/internal/testserver"
	"chat/protocol"
)

// actionsHooks makes webuser one who used #general last time.
const actionsHooks = `(() => {
  if (location.protocol !== "http:") return;
  if (localStorage.getItem("chat.settings") === null) {
    localStorage.setItem("chat.settings", JSON.stringify({name: "webuser", room: "general"}));
  }
})()`

// peerBob is bob on the client library, with the events the test waits for.
type peerBob struct {
	c       *client.Client
	msgs    chan client.Message
	updates chan client.Updated
}

func startPeerBob(t *testing.T, addr string) *peerBob {
	t.Helper()
	c, err := client.New(client.Config{Addr: addr, Name: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Join("general"); err != nil {
		t.Fatal(err)
	}
	b := &peerBob{c: c, msgs: make(chan client.Message, 100), updates: make(chan client.Updated, 100)}
	go func() {
		for ev := range c.Events() {
			switch e := ev.(type) {
			case client.Message:
				b.msgs <- e
			case client.Updated:
				b.updates <- e
			}
		}
	}()
	return b
}

func (b *peerBob) message(t *testing.T, text string) client.Message {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case m := <-b.msgs:
			if m.Text == text {
				return m
			}
		case <-deadline:
			t.Fatalf("bob did not get %q", text)
		}
	}
}

func (b *peerBob) update(t *testing.T, kind protocol.ChangeKind, target uint64) client.Updated {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case u := <-b.updates:
			if u.Kind == kind && u.Target == target {
				return u
			}
		case <-deadline:
			t.Fatalf("bob did not hear of the %v of message %d", kind, target)
		}
	}
}

// changedBox is the box, in CSS pixels, of what differs in area (CSS
// pixels) between two screenshots taken at scale screenshot pixels per
// CSS pixel. (The area leaves out the composer, whose caret blinks.)
func changedBox(a, b image.Image, scale int, area image.Rectangle) image.Rectangle {
	var r image.Rectangle
	bounds := a.Bounds().Intersect(b.Bounds()).Intersect(image.Rectangle{Min: area.Min.Mul(scale), Max: area.Max.Mul(scale)})
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			r1, g1, b1, _ := a.At(x, y).RGBA()
			r2, g2, b2, _ := b.At(x, y).RGBA()
			if r1 != r2 || g1 != g2 || b1 != b2 {
				r = r.Union(image.Rect(x, y, x+1, y+1))
			}
		}
	}
	return image.Rect(r.Min.X/scale, r.Min.Y/scale, (r.Max.X+scale-1)/scale, (r.Max.Y+scale-1)/scale)
}

// lastPaneWord is the lowest word read in the conversation containing s.
func lastPaneWord(words []word, s string) (word, bool) {
	var found word
	ok := false
	for _, w := range words {
		if w.x > sidebarW*w.scale && strings.Contains(w.text, s) && (!ok || w.y >= found.y) {
			found, ok = w, true
		}
	}
	return found, ok
}

// TestBrowserActsOnMessages is acting on messages in headless Chromium,
// with Playwright's mouse and keyboard, against the real server serving
// the web client built from this tree; bob is on the client library.
// webuser points at bob's message: its actions appear; React, then 🎉 in
// the picker (bob hears of the reaction); she writes a line and edits it
// with Up (bob gets the new text, the page shows "(edited)"); Ctrl+F,
// a search, and a click on the hit opens the message. Screenshots:
// dist/screenshots/browser-actions-*.png.
func TestBrowserActsOnMessages(t *testing.T) {
	b := browsertest.Start(t)
	web := buildWeb(t)
	addFonts(t, web) // the reactions are emoji
	srv := testserver.Start(t, testserver.Options{Args: []string{"-web", web}})
	shots := browsertest.ScreenshotDir()
	shot := func(name string) string { return filepath.Join(shots, "browser-actions-"+name+".png") }

	b.Do(fmt.Sprintf("viewport %d %d", pageW, pageH))
	b.Do("init " + jsString(actionsHooks))
	b.Do("goto http://" + srv.HTTPAddr + "/")
	b.WaitApp()
	b.Do("press Enter") // the form is filled in from last time
	b.WaitTitle("#general open", func(s string) bool { return s == "#general — Chat" })
	bob := startPeerBob(t, srv.Addr)
	if _, err := bob.c.Send("general", "deploy the release tonight"); err != nil {
		t.Fatal(err)
	}
	first := bob.message(t, "deploy the release tonight").Seq

	var msg word
	if !pollWords(t, b, shot("1-message"), func(ws []word) bool {
		var ok bool
		msg, ok = lastPaneWord(ws, "tonight")
		return ok
	}) {
		t.Fatalf("bob's message is not shown; see %s", shot("1-message"))
	}
	before := readPNG(t, shot("1-message"))
	scale := msg.scale

	// Point at it: the action bar appears; React opens the picker.
	p := msg.center()
	b.Do(fmt.Sprintf("move %d %d", p.X, p.Y))
	var bar image.Rectangle
	rows := image.Rect(sidebarW+1, 0, pageW, p.Y+10) // the rows down to the one pointed at
	waitScreen(t, b, shot("2-hover"), "the message's actions to show", func(img image.Image) bool {
		bar = changedBox(before, img, scale, rows)
		return bar.Dx() > 100 && bar.Dy() > 20 && bar.Dy() < 60
	})
	// Its buttons are 30 px each after the border and inset (3 px):
	// Reply, React, …
	b.Do(fmt.Sprintf("click %d %d", bar.Min.X+3+30+15, bar.Min.Y+bar.Dy()/2))
	var picker image.Rectangle
	waitScreen(t, b, shot("3-picker"), "the emoji picker", func(img image.Image) bool {
		picker = changedBox(before, img, scale, image.Rect(sidebarW+1, 0, pageW, bar.Max.Y))
		return picker.Dx() > 220 // eight emoji: wider than any action bar
	})
	cell := (picker.Dx() - 6) / len(protocol.Reactions)
	b.Do(fmt.Sprintf("click %d %d", picker.Min.X+3+cell*5+cell/2, picker.Min.Y+picker.Dy()/2)) // 🎉
	u := bob.update(t, protocol.ChangeReact, first)
	if u.Emoji != "🎉" || u.Message == nil || len(u.Message.Reactions) != 1 || u.Message.Reactions[0].Names[0] != "webuser" {
		t.Fatalf("bob heard of the reaction as %+v", u)
	}
	b.Do(fmt.Sprintf("move %d %d", pageW-10, pageH-120)) // away from the messages
	b.Screenshot(shot("4-reacted"))

	// A line, then Up to edit it.
	b.Do("type sounds good")
	b.Do("press Enter")
	mine := bob.message(t, "sounds good")
	// Up edits a message the server stored: wait for the page to know
	// it (its number shows, as webuser is the room's operator).
	if !pollWords(t, b, shot("5-sent"), func(ws []word) bool {
		_, ok := lastPaneWord(ws, fmt.Sprintf("#%d", mine.Seq))
		return ok
	}) {
		t.Fatalf("the page does not show the line stored; see %s", shot("5-sent"))
	}
	b.Do("press ArrowUp")
	if !pollWords(t, b, shot("5-editing"), func(ws []word) bool { _, ok := lastPaneWord(ws, "editing"); return ok }) {
		t.Fatalf("Up did not start editing; see %s", shot("5-editing"))
	}
	b.Do("type , see you")
	b.Do("press Enter")
	u = bob.update(t, protocol.ChangeEdit, mine.Seq)
	if u.Message == nil || u.Message.Text != "sounds good, see you" {
		t.Fatalf("bob heard of the edit as %+v", u)
	}
	if !pollWords(t, b, shot("6-edited"), func(ws []word) bool { _, ok := lastPaneWord(ws, "(edited)"); return ok }) {
		t.Fatalf("the edited message is not marked; see %s", shot("6-edited"))
	}

	// Search.
	b.Do("press Control+f")
	if !pollWords(t, b, shot("7-search"), func(ws []word) bool { _, ok := lastPaneWord(ws, "look"); return ok }) {
		t.Fatalf("Ctrl+F did not open the search; see %s", shot("7-search"))
	}
	b.Do("type release")
	b.Do("press Enter")
	var hit word
	if !pollWords(t, b, shot("8-results"), func(ws []word) bool {
		// The hit's "#general · bob · …" in the panel: below the
		// conversation's title, right of the list.
		var ok bool
		hit, ok = lastPaneWord(ws, "#general")
		return ok && hit.y/hit.scale > 100
	}) {
		t.Fatalf("no search result shown; see %s", shot("8-results"))
	}
	c := hit.center()
	b.Do(fmt.Sprintf("click %d %d", c.X, c.Y+20)) // the hit's text, under its "where · who · when"
	if !pollWords(t, b, shot("9-opened"), func(ws []word) bool { _, open := lastPaneWord(ws, "look"); return !open }) {
		t.Fatalf("a click on the hit did not open the message; see %s", shot("9-opened"))
	}
}
