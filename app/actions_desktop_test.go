//go:build !js

package main

import (
	"context"
	"image"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"chat/app/internal/settings"
	"chat/client"
	"chat/internal/testserver"
	"chat/internal/xvfbtest"
	"chat/protocol"
)

// word is a word Tesseract read on a screenshot, with its box in window
// pixels.
type word struct {
	text string
	box  image.Rectangle
}

// readWords reads the words of the screenshot at png, enlarged three
// times, in grays and sharpened first: the window draws 11 to 14 px text
// under Xvfb, too small for Tesseract, which misses the colored lines.
func readWords(t *testing.T, png string) []word {
	t.Helper()
	big := png + ".x3.png"
	defer os.Remove(big)
	if out, err := exec.Command("convert", png, "-resize", "300%", "-colorspace", "Gray", "-sharpen", "0x1", big).CombinedOutput(); err != nil {
		t.Fatalf("convert: %v\n%s", err, out)
	}
	cmd := exec.Command("tesseract", big, "-", "-l", "eng", "--psm", "11", "tsv")
	cmd.Env = append(os.Environ(), "OMP_THREAD_LIMIT=1") // its threads only wait for each other on a busy machine
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tesseract (apt-get install tesseract-ocr): %v", err)
	}
	var words []word
	for line := range strings.SplitSeq(string(out), "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 12 || f[0] != "5" || strings.TrimSpace(f[11]) == "" {
			continue
		}
		n := make([]int, 4)
		for i := range n {
			n[i], _ = strconv.Atoi(f[6+i])
		}
		words = append(words, word{text: strings.ToLower(strings.TrimSpace(f[11])),
			box: image.Rect(n[0]/3, n[1]/3, (n[0]+n[2])/3, (n[1]+n[3])/3)})
	}
	return words
}

// find returns the last word read (the lowest on screen, the newest
// message) that contains s, right of the conversation list.
func find(words []word, s string) (word, bool) {
	var found word
	ok := false
	for _, w := range words {
		if strings.Contains(w.text, s) && w.box.Min.X > sideWidth && (!ok || w.box.Min.Y >= found.box.Min.Y) {
			found, ok = w, true
		}
	}
	return found, ok
}

// sideWidth is the conversation list's width in the wide layout.
const sideWidth = 272

// waitWord takes screenshots until Tesseract reads s in the
// conversation, and returns where; it keeps the last screenshot as name.
func (a *desktopApp) waitWord(name, s string) word {
	a.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	path := filepath.Join(repoRoot(), "dist", "screenshots", name)
	for {
		a.shoot(name)
		if w, ok := find(readWords(a.t, path), s); ok {
			return w
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("%q not read on the screen in 30 s; see %s", s, name)
		}
	}
}

// changed is the box of the pixels of area that differ between two
// screenshots. (The area leaves out the composer, whose caret blinks.)
func changed(a, b image.Image, area image.Rectangle) image.Rectangle {
	var r image.Rectangle
	bounds := a.Bounds().Intersect(b.Bounds()).Intersect(area)
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			r1, g1, b1, _ := a.At(x, y).RGBA()
			r2, g2, b2, _ := b.At(x, y).RGBA()
			if r1 != r2 || g1 != g2 || b1 != b2 {
				r = r.Union(image.Rect(x, y, x+1, y+1))
			}
		}
	}
	return r
}

// hover points the mouse at p and returns the box of what appeared: the
// message's action bar (what the screen shows before is before).
func (a *desktopApp) hover(p image.Point, before image.Image, name string) image.Rectangle {
	a.t.Helper()
	a.x("mousemove", "--sync", strconv.Itoa(p.X), strconv.Itoa(p.Y))
	var bar image.Rectangle
	area := image.Rect(sideWidth+1, 0, 4000, p.Y+10) // the rows down to the one pointed at
	a.waitScreen(name, "the message's actions to show", func(img image.Image) bool {
		bar = changed(before, img, area)
		return bar.Dx() > 100 && bar.Dy() > 20 && bar.Dy() < 60
	})
	return bar
}

// button is the middle of the i-th button of an action bar (30 px each,
// after the bar's border and inset of 3 px).
func button(bar image.Rectangle, i int) image.Point {
	return image.Pt(bar.Min.X+3+30*i+15, bar.Min.Y+bar.Dy()/2)
}

// bobPeer is bob on the client library, with the events the test waits for.
type bobPeer struct {
	c       *client.Client
	msgs    chan client.Message
	updates chan client.Updated
}

func startBob(t *testing.T, addr string) *bobPeer {
	t.Helper()
	c, err := client.New(client.Config{Addr: addr, Name: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Join("general"); err != nil {
		t.Fatal(err)
	}
	b := &bobPeer{c: c, msgs: make(chan client.Message, 100), updates: make(chan client.Updated, 100)}
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

func (b *bobPeer) message(t *testing.T, text string) client.Message {
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

func (b *bobPeer) update(t *testing.T, kind protocol.ChangeKind, target uint64) client.Updated {
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

// TestDesktopActsOnMessages is acting on messages as a person does it in
// the real window, with the mouse and the keyboard (xdotool), against the
// real server, bob on the client library: alice points at bob's message
// and its actions appear; Reply, type, Enter (bob gets the reply with its
// target; the quote shows); React, 🎉 (bob hears of it; the chip shows);
// Up edits her reply (bob gets the new text; "(edited)" shows); Delete
// (bob hears of it; the placeholder shows); Ctrl+F searches and a click
// on the hit opens the message. Each step's screenshot is under
// dist/screenshots/xvfb-actions-*.png.
func TestDesktopActsOnMessages(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	display := xvfbtest.StartSize(t, 1100, 800)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	config := t.TempDir()
	store := settings.Open(filepath.Join(config, "chat"))
	if err := store.Save(settings.Settings{Server: srv.Addr, Name: "alice", Room: "general"}); err != nil {
		t.Fatal(err)
	}
	app := startDesktopApp(t, ctx, display, config)
	app.x("key", "Return") // the form is filled in from last time
	app.waitTitle(`^#general .* Chat$`)
	bob := startBob(t, srv.Addr)

	if _, err := bob.c.Send("general", "deploy the release tonight"); err != nil {
		t.Fatal(err)
	}
	first := bob.message(t, "deploy the release tonight").Seq
	w := app.waitWord("xvfb-actions-1-message.png", "tonight")
	before := app.shoot("xvfb-actions-1-message.png")

	// Reply.
	bar := app.hover(w.box.Min.Add(image.Pt(4, w.box.Dy()/2)), before, "xvfb-actions-2-hover.png")
	app.click(button(bar, 0).X, button(bar, 0).Y)
	app.waitWord("xvfb-actions-3-replying.png", "replying")
	app.x("type", "--delay", "20", "sounds good")
	app.x("key", "Return")
	reply := bob.message(t, "sounds good")
	if reply.Reply != first {
		t.Fatalf("bob got the reply with Reply %d, want %d", reply.Reply, first)
	}
	app.waitWord("xvfb-actions-4-replied.png", "good")

	// React with 🎉 from the picker.
	app.x("mousemove", "--sync", "600", "150") // away from the messages
	w = app.waitWord("xvfb-actions-4-replied.png", "tonight")
	before = app.shoot("xvfb-actions-4-replied.png")
	bar = app.hover(w.box.Min.Add(image.Pt(4, w.box.Dy()/2)), before, "xvfb-actions-5-hover.png")
	app.click(button(bar, 1).X, button(bar, 1).Y)
	var picker image.Rectangle
	app.waitScreen("xvfb-actions-6-picker.png", "the emoji picker", func(img image.Image) bool {
		picker = changed(before, img, image.Rect(sideWidth+1, 0, 4000, bar.Max.Y))
		return picker.Dx() > 220 // eight emoji: wider than any action bar
	})
	cell := (picker.Dx() - 6) / len(protocol.Reactions)
	app.click(picker.Min.X+3+cell*5+cell/2, picker.Min.Y+picker.Dy()/2) // 🎉
	u := bob.update(t, protocol.ChangeReact, first)
	if u.Emoji != "🎉" || u.Message == nil || len(u.Message.Reactions) != 1 || u.Message.Reactions[0].Names[0] != "alice" {
		t.Fatalf("bob heard of the reaction as %+v", u)
	}
	app.x("mousemove", "--sync", "600", "150")
	app.shoot("xvfb-actions-7-reacted.png")

	// Edit the reply with Up.
	app.x("key", "Up")
	app.waitWord("xvfb-actions-8-editing.png", "editing")
	app.x("type", "--delay", "20", ", see you")
	app.x("key", "Return")
	u = bob.update(t, protocol.ChangeEdit, reply.Seq)
	if u.Message == nil || u.Message.Text != "sounds good, see you" {
		t.Fatalf("bob heard of the edit as %+v", u)
	}
	app.waitWord("xvfb-actions-9-edited.png", "see") // the new text; its small "(edited)" is checked in app/internal/ui

	// Delete it from its actions.
	w = app.waitWord("xvfb-actions-9-edited.png", "see")
	before = app.shoot("xvfb-actions-9-edited.png")
	bar = app.hover(w.box.Min.Add(image.Pt(4, w.box.Dy()/2)), before, "xvfb-actions-10-hover-own.png")
	app.click(button(bar, 3).X, button(bar, 3).Y) // Reply, React, Edit, Delete
	bob.update(t, protocol.ChangeDelete, reply.Seq)
	app.x("mousemove", "--sync", "600", "150")
	app.waitWord("xvfb-actions-11-deleted.png", "deleted")

	// Search with Ctrl+F, open the hit.
	app.x("key", "ctrl+f")
	app.waitWord("xvfb-actions-12-search.png", "look")
	app.x("type", "--delay", "20", "release")
	app.x("key", "Return")
	// The hit, in the panel at the top: its text's words are the
	// highest "tonight" on the screen (the conversation's are under the
	// panel or below it).
	var hit word
	deadline := time.Now().Add(30 * time.Second)
	for {
		app.shoot("xvfb-actions-13-results.png")
		found := false
		for _, w := range readWords(t, filepath.Join(repoRoot(), "dist", "screenshots", "xvfb-actions-13-results.png")) {
			if strings.Contains(w.text, "tonight") && w.box.Min.X > sideWidth && (!found || w.box.Min.Y < hit.box.Min.Y) {
				hit, found = w, true
			}
		}
		if found && hit.box.Min.Y < 300 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no search result read on the screen; see xvfb-actions-13-results.png")
		}
	}
	app.click(hit.box.Min.X+hit.box.Dx()/2, hit.box.Min.Y+hit.box.Dy()/2)
	app.waitScreen("xvfb-actions-14-opened.png", "the search to close", func(img image.Image) bool {
		_, open := find(readWords(t, filepath.Join(repoRoot(), "dist", "screenshots", "xvfb-actions-14-opened.png")), "look")
		return !open
	})
}
