package ui_test

import (
	"image"
	"slices"
	"strings"
	"testing"
	"time"

	"gioui.org/f32"
	"gioui.org/io/key"
	"gioui.org/io/pointer"

	"chat/app/internal/ui"
	"chat/app/internal/uitest"
	"chat/client"
)

// say applies a message of seq from sender at t.
func (r *listRig) say(seq int, sender string, t time.Time, text string) {
	r.u.Apply(r.session, client.Message{Room: "general", Seq: uint64(seq), Time: t, Sender: sender, ID: text, Text: text, Own: sender == "ada"})
}

// node returns the node whose text is exactly s.
func (r *listRig) node(s string) uitest.Node {
	r.t.Helper()
	for _, n := range r.Nodes() {
		if n.Text == s {
			return n
		}
	}
	r.t.Fatalf("no node %q; the screen shows %q", s, r.Texts())
	return uitest.Node{}
}

// Messages of different local days are separated by the day: "Today",
// "Yesterday", the weekday and date this year, a short date before.
func TestDaySeparators(t *testing.T) {
	r := newListRig(t, listNow, image.Pt(420, 900), 1)
	r.join(0, listNow, time.Minute)
	at := func(y int, m time.Month, d, h, min int) time.Time {
		return time.Date(y, m, d, h, min, 0, 0, time.Local)
	}
	r.say(1, "grace", at(2025, 12, 30, 10, 0), "from last year")
	r.say(2, "grace", at(2025, 12, 30, 10, 1), "the same day")
	r.say(3, "linus", at(2026, 3, 9, 8, 0), "on monday")
	r.say(4, "grace", at(2026, 3, 13, 23, 59), "late yesterday")
	r.say(5, "grace", at(2026, 3, 14, 0, 1), "early today")
	r.say(6, "ken", at(2026, 3, 14, 9, 0), "today")
	r.u.Apply(r.session, ui.Presence{Room: "general", Count: 2, Changes: nil})
	r.Frame()
	want := []string{"30 Dec 2025", "from last year", "the same day", "Monday, 9 March 2026", "on monday",
		"Yesterday", "late yesterday", "Today", "early today", "today"}
	var got []string
	for _, s := range r.Texts() {
		if slices.Contains(want, s) {
			got = append(got, s)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("the list shows %q, want %q", got, want)
	}
	// Right after midnight, a message two minutes after the last one of
	// the day before starts its own group with the sender's name.
	if n := uitest.Count(r.Texts(), "grace"); n != 3 {
		t.Fatalf("grace's name shown %d times, want 3 (last year, yesterday, today)", n)
	}
}

// Web addresses in a message are links: a click on one asks to open it,
// a click elsewhere in the text does not.
func TestLinksOpenOnClick(t *testing.T) {
	r := newListRig(t, listNow, image.Pt(420, 720), 1)
	r.join(0, listNow, time.Minute)
	const text = "docs at https://gioui.org/doc/learn. and www.example.org/a_(b)!"
	r.say(1, "grace", listNow, text)
	r.Frame()
	r.take()
	for link, url := range map[string]string{
		"https://gioui.org/doc/learn": "https://gioui.org/doc/learn",
		"www.example.org/a_(b)":       "https://www.example.org/a_(b)",
	} {
		n := r.node(link)
		if !n.Clickable {
			t.Fatalf("the link %q is not clickable", link)
		}
		if err := r.ClickOn(link); err != nil {
			t.Fatal(err)
		}
		in := r.take()
		if len(in) != 1 || in[0] != (ui.OpenURLIntent{URL: url}) {
			t.Fatalf("clicking %q gave %#v, want to open %s", link, in, url)
		}
	}
	n := r.node(text)
	r.Click(f32.Pt(float32(n.Bounds.Min.X+4), float32(n.Bounds.Min.Y+6))) // on "docs"
	if in := r.take(); len(in) != 0 {
		t.Fatalf("a click on the text outside the links gave %#v", in)
	}
}

// Message text can be selected and copied, by dragging and with the
// keyboard, links included.
func TestMessageTextIsSelectable(t *testing.T) {
	r := newListRig(t, listNow, image.Pt(420, 720), 1)
	r.join(0, listNow, time.Minute)
	const text = "copy this, and https://example.org too"
	r.say(1, "grace", listNow, text)
	r.Frame()
	n := r.node(text)
	y := float32(n.Bounds.Min.Y + 8)
	x0, x1 := float32(n.Bounds.Min.X+1), float32(n.Bounds.Min.X+40)
	r.Router.Queue(
		pointer.Event{Kind: pointer.Move, Source: pointer.Mouse, Position: f32.Pt(x0, y)},
		pointer.Event{Kind: pointer.Press, Source: pointer.Mouse, Buttons: pointer.ButtonPrimary, Position: f32.Pt(x0, y)},
		pointer.Event{Kind: pointer.Move, Source: pointer.Mouse, Buttons: pointer.ButtonPrimary, Position: f32.Pt(x1, y)},
		pointer.Event{Kind: pointer.Release, Source: pointer.Mouse, Position: f32.Pt(x1, y)},
	)
	r.Frame()
	r.Press("C", key.ModShortcut)
	got, ok := r.Clipboard()
	if !ok || got == "" || !strings.HasPrefix(text, got) || got == text {
		t.Fatalf("dragging over the start of the text copied %q (%v), want a part of %q", got, ok, text)
	}
	r.Press("A", key.ModShortcut)
	r.Press("C", key.ModShortcut)
	if got, _ := r.Clipboard(); got != text {
		t.Fatalf("select all copied %q, want %q", got, text)
	}
	if in := r.take(); slices.ContainsFunc(in, func(i ui.Intent) bool { _, ok := i.(ui.OpenURLIntent); return ok }) {
		t.Fatalf("selecting opened a link: %#v", in)
	}
}

// A paragraph whose first strong character is Hebrew or Arabic is aligned
// right in its bubble; others left.
func TestRightToLeftParagraphsAlignRight(t *testing.T) {
	r := newListRig(t, listNow, image.Pt(420, 720), 1)
	r.join(0, listNow, time.Minute)
	const name = "someone-with-a-long-name"
	r.say(1, name, listNow.Add(-20*time.Minute), "hi")
	r.say(2, name, listNow.Add(-10*time.Minute), "שלום")
	r.say(3, name, listNow.Add(-5*time.Minute), "123 مرحبا")
	r.Frame()
	left := r.node("hi").Bounds
	for _, s := range []string{"שלום", "123 مرحبا"} {
		b := r.node(s).Bounds
		if b.Min.X <= left.Min.X+10 || b.Dx() >= 100 {
			t.Errorf("%q is at %v, not right-aligned in a bubble whose text starts at x=%d", s, b, left.Min.X)
		}
	}
	// The bubbles are as wide (the name is the widest part): the
	// right-to-left texts end where the left-to-right one could.
	he, ar := r.node("שלום").Bounds, r.node("123 مرحبا").Bounds
	if he.Max.X != ar.Max.X {
		t.Errorf("right edges differ: %v and %v", he, ar)
	}
}
