package ui_test

import (
	"fmt"
	"image"
	"strings"
	"testing"
	"time"

	"gioui.org/f32"
	"gioui.org/io/key"
	"gioui.org/layout"
	"gioui.org/unit"

	"chat/app/internal/platform"
	"chat/app/internal/ui"
	"chat/app/internal/uitest"
	"chat/client"
)

// history is an in-memory room of n messages (every 7th long enough to
// wrap, every 11th with a link) that answers pages as the server answers
// HISTORY: the newest min(limit, 200) messages numbered
// below before (before 0: all), oldest first, First when the page starts
// at message 1. Message seq is made from its number when asked for, so a
// room of a million costs no memory.
type history struct {
	n    int
	room string
	last time.Time     // time of message n
	gap  time.Duration // between two messages
}

func (h *history) msg(seq int) client.Message {
	sender := []string{"grace", "linus", "ada", "ken"}[seq%4]
	text := fmt.Sprintf("message %d", seq)
	if seq%7 == 0 {
		text += ": a longer line that wraps over more than one line in a narrow window, as real chat text often does"
	}
	if seq%11 == 0 {
		text += fmt.Sprintf(", see https://example.org/notes/%d", seq)
	}
	return client.Message{Room: h.room, Seq: uint64(seq), Time: h.last.Add(-time.Duration(h.n-seq) * h.gap),
		Sender: sender, ID: fmt.Sprint("id", seq), Text: text, Own: sender == "ada", History: true}
}

func (h *history) page(before uint64, limit int) client.Page {
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 200)
	hi := h.n
	if before != 0 {
		hi = min(hi, int(before)-1)
	}
	lo := max(1, hi-limit+1)
	p := client.Page{Room: h.room, Before: before, First: lo <= 1}
	for s := lo; s <= hi; s++ {
		p.Messages = append(p.Messages, h.msg(s))
	}
	return p
}

// listRig is a UI in a window of size dp at scale px/dp, its intents
// collected, with a room's history to answer its pages from.
type listRig struct {
	*uitest.Driver
	t       testing.TB
	u       *ui.UI
	session uint64
	intents []ui.Intent
	src     *history
	pages   int // pages served
}

func newListRig(t testing.TB, now time.Time, size image.Point, scale float32) *listRig {
	t.Helper()
	cfg := ui.Config{Server: "chat.example.org:7878", ShowServer: true, Now: func() time.Time { return now }}
	cfg.Shaper, cfg.Face = platform.Fonts()
	r := &listRig{t: t, u: ui.New(cfg)}
	r.Driver = uitest.New(image.Pt(int(float32(size.X)*scale), int(float32(size.Y)*scale)), func(gtx layout.Context) {
		for _, in := range r.u.Layout(gtx) {
			if j, ok := in.(ui.JoinIntent); ok {
				r.session = j.Session
			}
			r.intents = append(r.intents, in)
		}
	})
	r.Metric = unit.Metric{PxPerDp: scale, PxPerSp: scale}
	r.Frame()
	r.Frame()
	return r
}

// join enters #general as ada, in a room of n messages (the last one at
// last, one every gap) of which the join replays the newest 100, as the
// server does.
func (r *listRig) join(n int, last time.Time, gap time.Duration) {
	r.t.Helper()
	r.src = &history{n: n, room: "general", last: last, gap: gap}
	r.Type("ada")
	r.Press(key.NameReturn, 0)
	r.u.Apply(r.session, ui.RoomJoined{Room: "general", Name: "ada", Members: []string{"ada"}, Count: 1, Head: uint64(n)})
	for s := max(1, n-99); s <= n; s++ {
		r.u.Apply(r.session, r.src.msg(s))
	}
	r.Frame()
	r.Frame()
	r.take()
	if !r.u.InChat() {
		r.t.Fatal("not in the chat")
	}
}

// take returns and forgets the intents so far.
func (r *listRig) take() []ui.Intent {
	in := r.intents
	r.intents = nil
	return in
}

// loads returns and forgets the LoadOlderIntents so far, failing on
// other intents.
func (r *listRig) loads() []ui.LoadOlderIntent {
	r.t.Helper()
	var out []ui.LoadOlderIntent
	for _, in := range r.take() {
		switch in.(type) {
		case ui.MarkReadIntent, ui.OpenIntent:
			continue // the conversations' business, not the list's
		}
		l, ok := in.(ui.LoadOlderIntent)
		if !ok {
			r.t.Fatalf("unexpected intent %#v", in)
		}
		if l.Room != "general" || l.Limit < 0 {
			r.t.Fatalf("bad page request %+v", l)
		}
		out = append(out, l)
	}
	return out
}

// serve answers the page requests so far from the room's history, as the
// app loop and the server do, and runs a frame; it returns the requests.
func (r *listRig) serve() []ui.LoadOlderIntent {
	r.t.Helper()
	ls := r.loads()
	for _, l := range ls {
		r.u.Apply(r.session, r.src.page(l.Before, l.Limit))
		r.pages++
	}
	if len(ls) > 0 {
		r.Frame()
	}
	return ls
}

// visible returns the numbers of the messages whose text is in the frame,
// top to bottom.
func (r *listRig) visible() []int {
	var out []int
	for _, s := range r.Texts() {
		var n int
		if _, err := fmt.Sscanf(s, "message %d", &n); err == nil && strings.HasPrefix(s, "message ") {
			out = append(out, n)
		}
	}
	return out
}

// scroll scrolls the list by dy px (negative: up) in the middle of the window.
func (r *listRig) scroll(dy float32) {
	r.Scroll(f32.Pt(float32(r.Size.X/2), float32(r.Size.Y/2)), dy)
}
