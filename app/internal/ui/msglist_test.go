package ui_test

import (
	"image"
	"slices"
	"testing"
	"time"

	"gioui.org/io/key"

	"chat/app/internal/ui"
)

// listNow is the fixed clock of the list tests: Saturday 14 March 2026.
var listNow = time.Date(2026, 3, 14, 9, 58, 0, 0, time.Local)

// maxWindow is the most rows the list may hold after a frame: its bound
// (400) plus the page that came in since.
const maxWindow = 500

// checkConsecutive fails unless v is a run of consecutive numbers: the
// list shows the room in order, without holes or repeats.
func checkConsecutive(t *testing.T, what string, v []int) {
	t.Helper()
	if len(v) == 0 {
		t.Fatalf("%s: no message in view", what)
	}
	for i := 1; i < len(v); i++ {
		if v[i] != v[i-1]+1 {
			t.Fatalf("%s: messages in view %v are not consecutive", what, v)
		}
	}
}

// scrollUntil scrolls by dy per frame, answering page requests at once,
// until cond holds; it checks at every step that pages keep the view
// where it is, the view is in order and the window bounded. It returns
// the requests served.
func (r *listRig) scrollUntil(t *testing.T, dy float32, cond func() bool) []ui.LoadOlderIntent {
	t.Helper()
	var served []ui.LoadOlderIntent
	for step := 0; !cond(); step++ {
		if step > 5000 {
			t.Fatalf("gave up scrolling after %d steps; the view shows %v", step, r.visible())
		}
		r.scroll(dy)
		before := r.visible()
		_, low, high, _, _ := r.u.ListWindow()
		ls := r.serve()
		for _, l := range ls {
			switch {
			case l.Before == low && dy < 0, l.Before > high && dy > 0:
			default:
				t.Fatalf("asked for the page before %d with a window of %d..%d, scrolling by %v", l.Before, low, high, dy)
			}
		}
		served = append(served, ls...)
		if len(ls) > 0 && !slices.Equal(r.visible(), before) {
			t.Fatalf("a page moved the view: %v before, %v after", before, r.visible())
		}
		checkConsecutive(t, "scrolling", r.visible())
		if rows, _, _, _, _ := r.u.ListWindow(); rows > maxWindow {
			t.Fatalf("the window holds %d rows", rows)
		}
	}
	return served
}

func (r *listRig) shows(n int) bool { return slices.Contains(r.visible(), n) }

// Scrolling up asks for the page before the first message held when the
// view comes near it; the pages go above in order, the view stays on the
// rows it showed, and once the page with First came no more is asked
// for.
func TestScrollbackLoadsOlderPagesUntilTheFirst(t *testing.T) {
	r := newListRig(t, listNow, image.Pt(420, 720), 1)
	r.join(1000, listNow, time.Minute)
	if v := r.visible(); v[len(v)-1] != 1000 {
		t.Fatalf("after the join the view shows %v, not the end", v)
	}
	if ls := r.loads(); len(ls) != 0 {
		t.Fatalf("asked for %+v at the bottom of 100 rows", ls)
	}
	if seen := r.u.SeenUpTo(); seen != 1000 {
		t.Fatalf("at the bottom seen up to %d", seen)
	}
	served := r.scrollUntil(t, -400, func() bool { return r.shows(1) })
	// (The list lays out one row more than it shows at each end.)
	if v := r.visible(); r.u.SeenUpTo() != uint64(v[len(v)-1]) && r.u.SeenUpTo() != uint64(v[len(v)-1]-1) {
		t.Fatalf("at the top seen up to %d with %v in view", r.u.SeenUpTo(), v)
	}
	var befores []uint64
	for _, l := range served {
		befores = append(befores, l.Before)
	}
	if want := []uint64{901, 801, 701, 601, 501, 401, 301, 201, 101}; !slices.Equal(befores, want) {
		t.Fatalf("asked for pages before %v, want %v", befores, want)
	}
	if _, low, _, first, _ := r.u.ListWindow(); low != 1 || !first {
		t.Fatalf("at the top the window starts at %d (first %v)", low, first)
	}
	for range 5 {
		r.scroll(-400)
	}
	if ls := r.loads(); len(ls) != 0 {
		t.Fatalf("asked for %+v after the first message", ls)
	}
	if v := r.visible(); v[0] != 1 {
		t.Fatalf("at the top the view shows %v", v)
	}
}

// Deep in a big room the window drops the rows far below the view and
// loads them again, page by page, when the user scrolls back down; a
// message that arrives meanwhile waits below and is counted.
func TestScrollbackDropsRowsAndLoadsThemAgain(t *testing.T) {
	r := newListRig(t, listNow, image.Pt(420, 720), 1)
	r.join(20_000, listNow, 10*time.Second)
	r.scrollUntil(t, -600, func() bool { v := r.visible(); return v[0] < 18_500 })
	rows, low, high, _, end := r.u.ListWindow()
	if end || high > 19_000 {
		t.Fatalf("deep in the room the window holds %d rows, %d..%d, reaching the end: %v", rows, low, high, end)
	}
	// A message arrives: it is not in the window, but counted.
	r.src.n++
	r.u.Apply(r.session, r.src.msg(r.src.n))
	r.Frame()
	if !r.Shows("1 new message") {
		t.Fatalf("no jump button for a message below the window; the screen shows %q", r.Texts())
	}
	served := r.scrollUntil(t, 600, func() bool { return r.shows(20_001) })
	if len(served) < (20_001-int(high))/100 {
		t.Fatalf("scrolled back down from %d with %d pages", high, len(served))
	}
	if _, _, high, _, end := r.u.ListWindow(); !end || high != 20_001 {
		t.Fatalf("at the bottom the window ends at %d (reaching the end: %v)", high, end)
	}
	// At the end the list follows new messages again.
	r.src.n++
	r.u.Apply(r.session, r.src.msg(r.src.n))
	r.Frame()
	if v := r.visible(); v[len(v)-1] != 20_002 {
		t.Fatalf("a new message at the end: the view shows %v", v)
	}
	if ls := r.loads(); len(ls) != 0 {
		t.Fatalf("asked for %+v at the end", ls)
	}
}

// The jump button, and sending a message, deep in history replace the
// window with the newest page instead of loading every page between.
func TestScrollbackJumpsToTheEnd(t *testing.T) {
	r := newListRig(t, listNow, image.Pt(420, 720), 1)
	r.join(5000, listNow, 10*time.Second)
	r.scrollUntil(t, -600, func() bool { v := r.visible(); return v[0] < 4000 })
	r.src.n++
	r.u.Apply(r.session, r.src.msg(r.src.n))
	r.Frame()
	if err := r.ClickOn("1 new message"); err != nil {
		t.Fatal(err)
	}
	ls := r.serve()
	if len(ls) != 1 || ls[0].Before != 0 {
		t.Fatalf("the jump asked for %+v, want the newest page (before 0)", ls)
	}
	r.Frame()
	if v := r.visible(); v[len(v)-1] != 5001 {
		t.Fatalf("after the jump the view shows %v", v)
	}
	checkConsecutive(t, "after the jump", r.visible())
	if rows, low, _, _, end := r.u.ListWindow(); !end || rows > 110 || low != 4902 {
		t.Fatalf("after the jump the window holds %d rows from %d (end %v)", rows, low, end)
	}

	// Sending from deep in history: the message shows at the end.
	r.scrollUntil(t, -600, func() bool { v := r.visible(); return v[0] < 4000 })
	r.Type("back to the present")
	r.Press(key.NameReturn, 0)
	var send ui.SendIntent
	var loads []ui.LoadOlderIntent
	for _, in := range r.take() {
		switch in := in.(type) {
		case ui.SendIntent:
			send = in
		case ui.LoadOlderIntent:
			loads = append(loads, in)
		}
	}
	if send.Text != "back to the present" || len(loads) != 1 || loads[0].Before != 0 {
		t.Fatalf("sending deep in history gave %+v and %+v", send, loads)
	}
	r.u.Apply(r.session, r.src.page(0, loads[0].Limit))
	r.Frame()
	r.Frame()
	texts := r.Texts()
	i, j := slices.Index(texts, "message 5001"), slices.Index(texts, "back to the present")
	if i < 0 || j < i {
		t.Fatalf("after sending, the screen shows %q", texts)
	}
	if !r.Shows("sending…") {
		t.Fatal("the sent message is not pending")
	}
}

// A page asked for while the connection drops is asked again by the
// client library (or the app loop, if refused while offline): after the
// next Joined the list does not ask again, so the page comes once.
func TestScrollbackDoesNotAskAgainAfterARejoin(t *testing.T) {
	r := newListRig(t, listNow, image.Pt(420, 720), 1)
	r.join(1000, listNow, time.Minute)
	var ls []ui.LoadOlderIntent
	for range 100 {
		r.scroll(-400)
		if ls = r.loads(); len(ls) > 0 {
			break
		}
	}
	if len(ls) != 1 || ls[0].Before != 901 {
		t.Fatalf("asked for %+v", ls)
	}
	r.u.Apply(r.session, ui.Connection{State: ui.Reconnecting})
	r.Frame()
	if ls := r.loads(); len(ls) != 0 {
		t.Fatalf("asked again while the first is unanswered: %+v", ls)
	}
	r.u.Apply(r.session, ui.RoomJoined{Room: "general", Name: "ada", Members: []string{"ada"}, Count: 1, Head: 1000})
	r.Frame()
	if ls := r.loads(); len(ls) != 0 {
		t.Fatalf("after the rejoin asked again for %+v", ls)
	}
	// The page of the first request, asked again below the list, is
	// taken; a second copy of it is ignored.
	r.u.Apply(r.session, r.src.page(901, 100))
	r.u.Apply(r.session, r.src.page(901, 100))
	r.Frame()
	if rows, low, _, _, _ := r.u.ListWindow(); rows != 200 || low != 801 {
		t.Fatalf("after two answers the window holds %d rows from %d", rows, low)
	}
}

// A room joined again while its leave was on its way resumes after the
// last message the client saw: nothing (or only the messages after it)
// follows the Joined. The new screen asks for the newest page rather than
// stay empty; a message replayed meanwhile is kept and shown once.
func TestResumedJoinOfANewScreenAsksForTheNewestPage(t *testing.T) {
	r := newListRig(t, listNow, image.Pt(420, 720), 1)
	r.src = &history{n: 1000, room: "general", last: listNow, gap: time.Minute}
	r.Type("ada")
	r.Press(key.NameReturn, 0)
	r.u.Apply(r.session, ui.RoomJoined{Room: "general", Name: "ada", Members: []string{"ada"}, Count: 1, Head: 1000, Resumed: true})
	r.Frame()
	r.Frame()
	r.mustNotShowMessages(t)
	r.u.Apply(r.session, r.src.msg(1000)) // comes while the page is on its way
	for _, in := range r.take() {
		if l, ok := in.(ui.LoadOlderIntent); ok {
			r.intents = append(r.intents, l) // for serve
		}
	}
	ls := r.serve()
	if len(ls) != 1 || ls[0].Before != 0 {
		t.Fatalf("asked for %+v, want the newest page", ls)
	}
	if rows, low, high, _, _ := r.u.ListWindow(); rows != 100 || low != 901 || high != 1000 {
		t.Fatalf("the window holds %d rows from %d to %d", rows, low, high)
	}
	if r.Shows("No messages yet") {
		t.Fatal("the room shows no messages")
	}
}

func (r *listRig) mustNotShowMessages(t *testing.T) {
	t.Helper()
	if rows, _, _, _, _ := r.u.ListWindow(); rows != 0 {
		t.Fatalf("the window holds %d rows before any page", rows)
	}
}
