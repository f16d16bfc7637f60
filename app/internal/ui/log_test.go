package ui

import (
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
	if got := clockText(now.AddDate(0, 0, -1), now); got != now.AddDate(0, 0, -1).Format("Jan 2 15:04") {
		t.Fatalf("yesterday's clock = %q", got)
	}
}
