package ui

import (
	"slices"
	"testing"
	"time"

	"chat/client"
)

// A refused message taken back out of the middle of the log must not
// confuse the rows after it with their ids.
func TestLogTakeBackKeepsLaterRowsMatched(t *testing.T) {
	now := time.Date(2026, 3, 14, 10, 0, 0, 0, time.Local)
	l := newMessageLog(func() time.Time { return now })
	l.addPending(1, "ada", "too long")
	l.addPending(2, "ada", "fine")
	l.sent(2, "id2")
	if text, ok := l.takeBack(1); !ok || text != "too long" {
		t.Fatalf("takeBack = %q, %v", text, ok)
	}
	if len(l.rows) != 1 || l.rows[0].text != "fine" || l.rows[0].cont {
		t.Fatalf("rows after takeBack: %+v", l.rows)
	}
	l.acked(client.Acked{ID: "id2", Seq: 1, Time: now})
	if l.rows[0].status != statusDelivered {
		t.Fatal("the later message was not marked delivered by its ack")
	}
	if l.message(client.Message{ID: "id2", Own: true, Sender: "ada", Text: "fine", Seq: 1, Time: now}) {
		t.Fatal("the server's copy of an own message was added a second time")
	}
	if l.pending() != 0 || len(l.byID) != 0 || len(l.byToken) != 0 {
		t.Fatalf("left over: pending %d, byID %v, byToken %v", l.pending(), l.byID, l.byToken)
	}
}

func TestLogGroupsAndFails(t *testing.T) {
	now := time.Date(2026, 3, 14, 10, 0, 0, 0, time.Local)
	l := newMessageLog(func() time.Time { return now })
	l.message(client.Message{Sender: "bob", Text: "1", Time: now.Add(-2 * time.Minute)})
	l.message(client.Message{Sender: "bob", Text: "2", Time: now.Add(-time.Minute)})
	l.message(client.Message{Sender: "bob", Text: "3", Time: now.Add(5 * time.Minute)})
	if l.rows[0].cont || !l.rows[1].cont || l.rows[2].cont {
		t.Fatalf("grouping: %v %v %v; want the second under the first only", l.rows[0].cont, l.rows[1].cont, l.rows[2].cont)
	}
	l.addPending(7, "ada", "queued")
	l.sent(7, "x")
	l.failIDs([]string{"x"}, "the server accepts messages up to 100 bytes")
	if r := l.rows[3]; r.status != statusFailed || r.reason == "" {
		t.Fatalf("dropped message row: %+v", r)
	}
	// The day separators tell the date: a bubble shows the time of day.
	if got := clockText(now.AddDate(0, 0, -1)); got != "10:00" {
		t.Fatalf("yesterday's clock = %q", got)
	}
}

// texts lists the rows' texts, top to bottom.
func (l *messageLog) texts() []string {
	var out []string
	for _, r := range l.rows {
		out = append(out, r.text)
	}
	return out
}

// A message typed while offline is shown where it was typed; once the
// server has stored it, it moves below what others had stored before it,
// whether the ack or the server's copy tells the number first, and the
// messages still pending keep their rows and ids.
func TestLogMovesAStoredMessageToItsServerPosition(t *testing.T) {
	now := time.Date(2026, 3, 14, 10, 0, 0, 0, time.Local)
	l := newMessageLog(func() time.Time { return now })
	l.message(client.Message{Sender: "bob", Text: "b1", Seq: 1, Time: now})
	l.addPending(1, "ada", "typed offline 1")
	l.addPending(2, "ada", "typed offline 2")
	l.sent(1, "id1")
	l.sent(2, "id2")
	l.notice("carol joined", now)
	l.message(client.Message{Sender: "bob", Text: "b2", Seq: 2, Time: now})
	l.message(client.Message{Sender: "bob", Text: "b3", Seq: 3, Time: now})
	l.acked(client.Acked{ID: "id1", Seq: 4, Time: now})
	want := []string{"b1", "typed offline 2", "carol joined", "b2", "b3", "typed offline 1"}
	if got := l.texts(); !slices.Equal(got, want) {
		t.Fatalf("after the first ack: %q, want %q", got, want)
	}
	// The second one's number comes with the server's copy.
	if l.message(client.Message{ID: "id2", Own: true, Sender: "ada", Text: "typed offline 2", Seq: 5, Time: now}) {
		t.Fatal("the server's copy was added as a new row")
	}
	want = []string{"b1", "carol joined", "b2", "b3", "typed offline 1", "typed offline 2"}
	if got := l.texts(); !slices.Equal(got, want) {
		t.Fatalf("after the second: %q, want %q", got, want)
	}
	if !l.rows[5].cont || l.rows[4].cont || l.rows[1].cont {
		t.Fatalf("grouping after the moves: %+v", l.rows)
	}
	// The first one's copy still finds its row.
	if l.message(client.Message{ID: "id1", Own: true, Sender: "ada", Text: "typed offline 1", Seq: 4, Time: now}) || len(l.byID) != 0 {
		t.Fatalf("the moved row lost its id: byID %v", l.byID)
	}
	if got := l.texts(); !slices.Equal(got, want) {
		t.Fatalf("at the end: %q, want %q", got, want)
	}
}

// An ack for a message stored before rows shown above it moves it up.
func TestLogMovesAStoredMessageUp(t *testing.T) {
	now := time.Date(2026, 3, 14, 10, 0, 0, 0, time.Local)
	l := newMessageLog(func() time.Time { return now })
	l.message(client.Message{Sender: "bob", Text: "b1", Seq: 1, Time: now})
	l.message(client.Message{Sender: "bob", Text: "b3", Seq: 3, Time: now})
	l.addPending(1, "ada", "mine")
	l.sent(1, "id1")
	l.addPending(2, "ada", "later")
	l.acked(client.Acked{ID: "id1", Seq: 2, Time: now})
	want := []string{"b1", "mine", "b3", "later"}
	if got := l.texts(); !slices.Equal(got, want) {
		t.Fatalf("%q, want %q", got, want)
	}
	if i := l.byToken[2]; l.rows[i].text != "later" {
		t.Fatalf("the pending row's token points at %q", l.rows[i].text)
	}
}

// resetRoom (for Joined.Reset) drops the old history and keeps what the
// user typed that is not stored yet, still matched to its token and id.
func TestResetRoomKeepsOnlyUnsentMessages(t *testing.T) {
	now := time.Date(2026, 3, 14, 10, 0, 0, 0, time.Local)
	c := newChatScreen("general", "ada", func() time.Time { return now })
	l := c.log
	l.message(client.Message{Sender: "bob", Text: "old", Seq: 7, Time: now})
	l.addPending(1, "ada", "stored")
	l.sent(1, "id1")
	l.acked(client.Acked{ID: "id1", Seq: 8, Time: now})
	l.addPending(2, "ada", "waiting")
	l.sent(2, "id2")
	l.addPending(3, "ada", "no id yet")
	l.addPending(4, "ada", "refused")
	l.markFailed(4, "too long")
	c.unseen = 3
	c.resetRoom()
	want := []string{"waiting", "no id yet", "refused"}
	if got := l.texts(); !slices.Equal(got, want) || c.unseen != 0 {
		t.Fatalf("after the reset: %q (unseen %d), want %q", got, c.unseen, want)
	}
	// The new history comes in; the waiting message is acked in it.
	l.message(client.Message{Sender: "bob", Text: "new", Seq: 1, Time: now})
	l.sent(3, "id3")
	l.acked(client.Acked{ID: "id2", Seq: 2, Time: now})
	l.acked(client.Acked{ID: "id3", Seq: 3, Time: now})
	want = []string{"refused", "new", "waiting", "no id yet"}
	if got := l.texts(); !slices.Equal(got, want) {
		t.Fatalf("with the new history: %q, want %q", got, want)
	}
	if l.pending() != 0 {
		t.Fatalf("%d still pending", l.pending())
	}
}

// A reset forgets every number of the old history: the edit ends (the
// draft comes back), the reply, the open actions and picker, the flash,
// the quotes, the changes kept for a page and the jump asked for.
func TestResetRoomForgetsOldNumbers(t *testing.T) {
	now := time.Date(2026, 3, 14, 10, 0, 0, 0, time.Local)
	c := newChatScreen("general", "ada", func() time.Time { return now })
	l := c.log
	l.message(client.Message{Sender: "bob", Text: "old", Seq: 7, Time: now})
	l.message(client.Message{Sender: "ada", Text: "mine", Seq: 8, Time: now, Own: true})
	c.composer.SetText("half a thought")
	c.startEdit(&l.rows[1])
	c.pinned, c.picker, c.flash, c.flashUntil = 7, 7, 7, now.Add(time.Second)
	l.jumpTo(3)
	l.change(MessageChanged{Room: "general", Seq: 9, Target: 7, State: &MessageState{Text: "old, edited"}})
	c.resetRoom()
	if c.editing != 0 || c.replyTo != 0 || c.pinned != 0 || c.picker != 0 || c.flash != 0 || !c.flashUntil.IsZero() {
		t.Fatalf("after the reset: editing %d, reply %d, pinned %d, picker %d, flash %d", c.editing, c.replyTo, c.pinned, c.picker, c.flash)
	}
	if got := c.composer.Text(); got != "half a thought" {
		t.Fatalf("the composer holds %q, want the draft back", got)
	}
	if _, ok := l.quoteOf(7); ok || l.changed != nil || l.around != 0 {
		t.Fatalf("the log keeps old numbers: quote %v, changed %v, around %d", ok, l.changed, l.around)
	}
	if _, ok := l.request(); ok {
		t.Fatal("a page around an old message is still asked for")
	}

	c.startReply(&row{kind: rowMessage, seq: 1})
	c.resetRoom()
	if c.replyTo != 0 {
		t.Fatalf("the reply to %d survived the reset", c.replyTo)
	}
}

// At the room's end the read marker passes the changes after the last
// message (a reaction to it, ours too): else the room counts one unread
// at the next sign-in. Not while messages may exist past the window.
func TestSeenUpToPassesChangesAtTheEnd(t *testing.T) {
	now := time.Date(2026, 3, 14, 10, 0, 0, 0, time.Local)
	c := newChatScreen("general", "ada", func() time.Time { return now })
	l := c.log
	l.rejoined(2) // a fresh join: head 2, its replay on its way
	l.viewed(0, 0, true)
	if got := c.seenUpTo(); got != 0 {
		t.Fatalf("before the replay, seen up to %d", got)
	}
	for s := uint64(1); s <= 3; s++ {
		l.message(client.Message{Sender: "bob", Text: "m", Seq: s, Time: now})
	}
	l.change(MessageChanged{Room: "general", Seq: 4, Target: 3, Own: true,
		State: &MessageState{Text: "m", Reactions: []Reaction{{Emoji: "👍", Count: 1, Mine: true}}}})
	l.viewed(0, 3, true)
	if got := c.seenUpTo(); got != 4 {
		t.Fatalf("at the end, seen up to %d, want 4 (the reaction)", got)
	}
	l.viewed(0, 2, false) // scrolled up: the last message not in view
	if got := c.seenUpTo(); got != 2 {
		t.Fatalf("scrolled up, seen up to %d, want 2", got)
	}
	// A re-join whose head is past what the window holds and not known
	// to be a change: only what shows counts.
	l.rejoined(9)
	l.viewed(0, 3, true)
	if got := c.seenUpTo(); got != 3 {
		t.Fatalf("with the join's head 9 unseen, seen up to %d, want 3", got)
	}
}
