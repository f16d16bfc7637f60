package ui

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"chat/client"
	"chat/protocol"
)

// The window's model without a list: the view is set with viewed, as a
// layout would.

var logNow = time.Date(2026, 3, 14, 10, 0, 0, 0, time.Local)

func msgN(seq int) client.Message {
	return client.Message{Room: "r", Seq: uint64(seq), Sender: "bob", Text: fmt.Sprint("m", seq), Time: logNow.Add(time.Duration(seq-100_000) * time.Minute)}
}

func pageOf(before uint64, lo, hi int, first bool) client.Page {
	p := client.Page{Room: "r", Before: before, First: first}
	for s := lo; s <= hi; s++ {
		p.Messages = append(p.Messages, msgN(s))
	}
	return p
}

// seqs lists the window's sequence numbers (0 for rows without).
func (l *messageLog) seqs() []uint64 {
	var out []uint64
	for _, r := range l.rows {
		out = append(out, r.seq)
	}
	return out
}

// A flood of messages with no frame in between (a hidden window) keeps
// the window bounded when the view follows the end.
func TestWindowBoundedWithoutFrames(t *testing.T) {
	l := newMessageLog(func() time.Time { return logNow })
	for s := 1; s <= 10_000; s++ {
		l.message(msgN(s))
	}
	if len(l.rows) > 2*maxRows || l.highSeq() != 10_000 || l.first || l.detached {
		t.Fatalf("after 10,000 messages: %d rows, %d..%d, first %v, detached %v", len(l.rows), l.lowSeq(), l.highSeq(), l.first, l.detached)
	}
	if cap(l.rows) > 4*maxRows {
		t.Fatalf("the rows keep a capacity of %d", cap(l.rows))
	}
}

// The same while the user reads older messages: the rows far below the
// view are dropped, and the window stays one unbroken stretch.
func TestWindowBoundedWhileScrolledUp(t *testing.T) {
	l := newMessageLog(func() time.Time { return logNow })
	for s := 1; s <= 300; s++ {
		l.message(msgN(s))
	}
	l.viewed(100, 10, false)
	for s := 301; s <= 5000; s++ {
		l.message(msgN(s))
	}
	seqs := l.seqs()
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Fatalf("the window has a hole: %d then %d", seqs[i-1], seqs[i])
		}
	}
	if len(seqs) > 2*maxRows || !l.detached || l.head != 5000 || seqs[0] != 1 {
		t.Fatalf("%d rows from %d, detached %v, head %d", len(seqs), seqs[0], l.detached, l.head)
	}
}

// Notices dropped with the rows around them come back to their place
// when those rows are loaded again; a notice made while the window is
// detached waits for the end.
func TestWindowKeepsNoticesAside(t *testing.T) {
	l := newMessageLog(func() time.Time { return logNow })
	for s := 1; s <= 600; s++ {
		l.message(msgN(s))
		if s == 300 {
			l.notice("carol joined", logNow)
		}
	}
	// The user scrolls to the top: the rows below are dropped, the
	// notice among them.
	l.viewed(0, 10, false)
	l.trim()
	if !l.detached || len(l.kept) != 1 || slices.Contains(l.texts(), "carol joined") {
		t.Fatalf("after the trim: detached %v, kept %d, %d rows", l.detached, len(l.kept), len(l.rows))
	}
	l.notice("dave joined", logNow)
	if slices.Contains(l.texts(), "dave joined") || len(l.kept) != 2 {
		t.Fatal("a notice made while detached went into the window")
	}
	// Scroll back down, page by page.
	for range 10 {
		l.viewed(len(l.rows)-10, 10, false)
		before, ok := l.request()
		if !ok {
			break
		}
		hi := min(600, int(before)-1)
		l.page(pageOf(before, max(1, hi-99), hi, false))
	}
	if l.detached || len(l.kept) != 0 {
		t.Fatalf("at the end: detached %v, kept %d", l.detached, len(l.kept))
	}
	texts := l.texts()
	i, j := slices.Index(texts, "carol joined"), slices.Index(texts, "dave joined")
	if i < 1 || texts[i-1] != "m300" || texts[i+1] != "m301" || j != len(texts)-1 {
		t.Fatalf("the notices are at %d (after %q) and %d of %d", i, texts[max(0, i-1)], j, len(texts))
	}
}

// Rows waiting for an ack or the server's copy are never dropped, and the
// newer side is not dropped while there are some.
func TestWindowKeepsMessagesOnTheirWay(t *testing.T) {
	l := newMessageLog(func() time.Time { return logNow })
	for s := 1; s <= 600; s++ {
		l.message(msgN(s))
	}
	l.addPending(1, "ada", "on its way")
	l.viewed(0, 10, false) // scrolled to the top
	l.trim()
	if l.detached || len(l.rows) != 601 {
		t.Fatalf("dropped rows with a message on its way: %d rows, detached %v", len(l.rows), l.detached)
	}
	l.sent(1, "id1")
	l.acked(client.Acked{ID: "id1", Seq: 601, Time: logNow})
	l.message(client.Message{ID: "id1", Own: true, Sender: "ada", Text: "on its way", Seq: 601, Time: logNow})
	l.trim()
	if !l.detached || len(l.rows) > keepRows+10 {
		t.Fatalf("once stored: %d rows, detached %v", len(l.rows), l.detached)
	}
}

// A jump to the end replaces the window with the newest page; the user's
// messages not stored stay below it, messages that arrived while the page
// was on its way are added after it, and nothing is shown twice.
func TestWindowJumpToEnd(t *testing.T) {
	l := newMessageLog(func() time.Time { return logNow })
	l.page(client.Page{}) // not asked for: ignored
	for s := 1; s <= 600; s++ {
		l.message(msgN(s))
	}
	l.viewed(0, 10, false)
	l.trim()
	l.addPending(1, "ada", "typed deep in history")
	l.jumpToEnd()
	before, ok := l.request()
	if !ok || before != 0 {
		t.Fatalf("the jump asked for %d, %v", before, ok)
	}
	l.message(msgN(601)) // stored after the page was read
	l.message(msgN(602))
	l.notice("erin joined", logNow)
	l.page(pageOf(0, 501, 601, false))
	want := []string{}
	for s := 501; s <= 602; s++ {
		want = append(want, fmt.Sprint("m", s))
	}
	want = append(want, "typed deep in history", "erin joined")
	if got := l.texts(); !slices.Equal(got, want) {
		t.Fatalf("after the jump: %q", got)
	}
	if l.detached || l.jumping || !l.toEnd {
		t.Fatalf("after the jump: detached %v, jumping %v, to end %v", l.detached, l.jumping, l.toEnd)
	}
	if i := l.byToken[1]; l.rows[i].text != "typed deep in history" {
		t.Fatalf("the pending row's token points at %q", l.rows[i].text)
	}
	// Live messages follow; one already in the window is not added again.
	if l.message(msgN(602)) {
		t.Fatal("a message already shown was added again")
	}
	if !l.message(msgN(603)) || l.rows[len(l.rows)-1].seq != 603 {
		t.Fatal("a live message after the jump was not added at the end")
	}
}

// A newer page that brings nothing new (a gap in the numbers) makes the
// next one reach further; an older page that brings nothing ends the
// scrollback instead of asking again forever.
func TestWindowPagesAcrossGaps(t *testing.T) {
	l := newMessageLog(func() time.Time { return logNow })
	for s := 1000; s <= 1100; s++ {
		l.message(msgN(s))
	}
	l.viewed(0, 10, false)
	before, _ := l.request()
	if before != 1000 {
		t.Fatalf("asked before %d", before)
	}
	l.page(client.Page{Room: "r", Before: 1000}) // messages deleted by retention, and the server did not say First
	if !l.first {
		t.Fatal("an empty older page did not end the scrollback")
	}
	if _, ok := l.request(); ok {
		t.Fatal("asked again after an empty page")
	}

	// A room of 1..600 and 801..900 (601..800 deleted).
	serve := func(before uint64) client.Page {
		var all []int
		for s := 1; s <= 900; s++ {
			if (s <= 600 || s > 800) && (before == 0 || uint64(s) < before) {
				all = append(all, s)
			}
		}
		all = all[max(0, len(all)-pageSize):]
		return pageOf(before, all[0], all[len(all)-1], all[0] == 1)
	}
	l = newMessageLog(func() time.Time { return logNow })
	for s := 1; s <= 600; s++ {
		l.message(msgN(s))
	}
	l.viewed(0, 10, false)
	l.trim()
	l.noteSeq(900) // the newest, as a live message or Joined.Head tells
	var asked []uint64
	for l.detached && len(asked) < 20 {
		l.viewed(len(l.rows)-10, 10, false)
		before, ok := l.request()
		if !ok {
			t.Fatal("no page asked for at the bottom of a detached window")
		}
		asked = append(asked, before)
		l.page(serve(before))
	}
	if l.detached || l.highSeq() != 900 || !slices.Equal(asked[len(asked)-3:], []uint64{701, 801, 1001}) {
		t.Fatalf("across the gap: detached %v, up to %d, asked before %v", l.detached, l.highSeq(), asked)
	}
	if s := l.seqs(); s[len(s)-101] != 600 || s[len(s)-100] != 801 {
		t.Fatalf("across the gap the window ends with %v", s[len(s)-102:])
	}
}

// A room whose newest entry is a change (a reaction to the last message):
// after a jump far back, scrolling down reaches the end, the window
// attaches again in a few pages, and a live message after it shows. The
// head (the change's number) is never a row, so the window must not wait
// to hold it.
func TestWindowAttachesWhenTheNewestEntryIsAChange(t *testing.T) {
	for _, joined := range []bool{false, true} {
		t.Run(fmt.Sprint("head from the join ", joined), func(t *testing.T) {
			room := map[int]bool{} // the room's messages: 1..300, then 302 once sent
			for s := 1; s <= 300; s++ {
				room[s] = true
			}
			serve := func(before uint64) client.Page {
				var all []int
				for s := 1; s <= 302; s++ {
					if room[s] && (before == 0 || uint64(s) < before) {
						all = append(all, s)
					}
				}
				all = all[max(0, len(all)-pageSize):]
				return pageOf(before, all[0], all[len(all)-1], all[0] == 1)
			}
			l := newMessageLog(func() time.Time { return logNow })
			for s := 200; s <= 300; s++ {
				l.message(msgN(s))
			}
			l.change(MessageChanged{Room: "r", Seq: 301, Target: 300, Kind: protocol.ChangeReact, Actor: "ada",
				State: &MessageState{Text: "m300", Reactions: []Reaction{{Emoji: "👍", Count: 1, Names: []string{"ada"}}}}})
			if joined {
				l.rejoined(301) // a re-join tells the head: the reaction
			}
			if l.jumpTo(10) {
				t.Fatal("message 10 is not in the window")
			}
			before, ok := l.request()
			if !ok {
				t.Fatal("no page asked for around message 10")
			}
			l.page(serve(before))
			if !l.detached || l.indexOf(10) < 0 {
				t.Fatalf("after the jump: detached %v, holds 10: %v", l.detached, l.indexOf(10) >= 0)
			}
			var asked []uint64
			for len(asked) < 20 {
				l.viewed(max(0, len(l.rows)-10), 10, false)
				l.trim()
				before, ok := l.request()
				if !ok {
					break
				}
				asked = append(asked, before)
				l.page(serve(before))
			}
			if l.detached || len(asked) > 6 || l.highSeq() != 300 || l.span == 0 {
				t.Fatalf("scrolling down: detached %v, up to %d, span %d, asked before %v", l.detached, l.highSeq(), l.span, asked)
			}
			room[302] = true
			if !l.message(msgN(302)) || l.rows[len(l.rows)-1].seq != 302 {
				t.Fatalf("a live message after the end is not shown: window ends with %v", l.seqs()[len(l.rows)-3:])
			}
		})
	}
}

// A change that comes while a page is on its way (read before it, maybe)
// is not lost: the page's copy of the message shows the new state.
func TestWindowPageTakesAChangeMadeWhileOnItsWay(t *testing.T) {
	l := newMessageLog(func() time.Time { return logNow })
	for s := 101; s <= 200; s++ {
		l.message(msgN(s))
	}
	l.viewed(0, 10, false)
	before, ok := l.request()
	if !ok || before != 101 {
		t.Fatalf("asked before %d, %v", before, ok)
	}
	l.change(MessageChanged{Room: "r", Seq: 201, Target: 50, Kind: protocol.ChangeEdit, Actor: "bob",
		State: &MessageState{Text: "m50, edited", Edited: logNow}})
	l.page(pageOf(101, 1, 100, true)) // read before the edit
	if r := l.rows[l.indexOf(50)]; r.text != "m50, edited" || !r.edited {
		t.Fatalf("message 50 shows %q, edited %v", r.text, r.edited)
	}
	if l.changed != nil {
		t.Fatal("the states are kept with no page on its way")
	}
}
