package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chat/server/internal/history"
)

// waitBounds polls l.Bounds until want holds: retention works in the
// background and signals nothing, so this checks every 20 ms, for at
// most a minute: under the race detector on a loaded machine, SQLite
// (compiled from C to Go) takes up to 13 s to remove 500 messages with
// their words from the search index.
func waitBounds(t *testing.T, l *Log, room string, want func(floor, head uint64) bool) (uint64, uint64) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		floor, head, err := l.Bounds(context.Background(), room)
		if err != nil {
			t.Fatal(err)
		}
		if want(floor, head) {
			return floor, head
		}
		if time.Now().After(deadline) {
			t.Fatalf("room %s: floor %d, head %d: not as wanted within a minute", room, floor, head)
		}
		time.Sleep(20 * time.Millisecond) // a bounded poll, see above
	}
}

func appendN(t *testing.T, l *Log, room string, n int, text string) {
	t.Helper()
	for i := range n {
		if err := l.Append(&history.Request{Room: room, Sender: "alice", ID: fmt.Sprint(room, i), Text: text}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func pragma(t *testing.T, l *Log, name string) int64 {
	t.Helper()
	var v int64
	if err := l.read.QueryRow("PRAGMA " + name).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// A count limit set on a database that has more is applied when the
// server starts, over a thousand messages in batches of 500, and the file gives
// the space back (a new database is made with incremental auto-vacuum).
func TestRetentionShrinksAnExistingHistory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chat.db")
	var rs results
	l, err := Open(path, rs.sink, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if mode := pragma(t, l, "auto_vacuum"); mode != 2 {
		t.Fatalf("a new database has auto_vacuum %d, want 2 (incremental)", mode)
	}
	text := strings.Repeat("x", 1000)
	appendN(t, l, "big", 1200, text)
	appendN(t, l, "small", 5, "kept")
	epoch, err := l.Epoch(context.Background(), "big")
	if err != nil {
		t.Fatal(err)
	}
	full := pragma(t, l, "page_count")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l, err = Open(path, rs.sink, Options{Retention: history.Retention{Messages: 10}, RetentionEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	waitBounds(t, l, "big", func(floor, head uint64) bool { return floor == 1190 && head == 1200 })
	msgs, err := l.Since(context.Background(), "big", 0, 100)
	if err != nil || len(msgs) != 10 || msgs[0].Seq != 1191 || msgs[9].Seq != 1200 {
		t.Fatalf("kept %d messages from %v (%v), want 1191..1200", len(msgs), msgs[:min(1, len(msgs))], err)
	}
	if floor, head, _ := l.Bounds(context.Background(), "small"); floor != 0 || head != 5 {
		t.Fatalf("a room under the limit: floor %d, head %d; want 0, 5", floor, head)
	}
	// The pages are given back after the removal, in steps.
	deadline := time.Now().Add(20 * time.Second)
	for pages := pragma(t, l, "page_count"); pages > full/4; pages = pragma(t, l, "page_count") {
		if time.Now().After(deadline) {
			t.Fatalf("the database has %d pages, %d before retention: not given back", pages, full)
		}
		time.Sleep(20 * time.Millisecond) // a bounded poll: vacuuming signals nothing
	}
	// Writes go on from the head with the same epoch.
	appendN(t, l, "big", 1, "after")
	if got := rs.all[len(rs.all)-1].Msg.Seq; got != 1201 {
		t.Fatalf("next message got seq %d, want 1201", got)
	}
	if e, err := l.Epoch(context.Background(), "big"); err != nil || e != epoch {
		t.Fatalf("epoch %d (%v) after retention, want %d", e, err, epoch)
	}
	waitBounds(t, l, "big", func(floor, head uint64) bool { return floor == 1191 && head == 1201 })
}

// A room whose every message expired keeps its head, also across a
// restart: numbers are never given twice.
func TestRetentionByAgeKeepsTheHeadAcrossRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chat.db")
	var rs results
	l, err := Open(path, rs.sink, Options{Retention: history.Retention{Age: 300 * time.Millisecond}, RetentionEvery: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, "a", 3, "soon gone")
	epoch, err := l.Epoch(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	waitBounds(t, l, "a", func(floor, head uint64) bool { return floor == 3 && head == 3 })
	if msgs, err := l.Last(context.Background(), "a", 10); err != nil || len(msgs) != 0 {
		t.Fatalf("Last after expiry: %v, %v", msgs, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l, err = Open(path, rs.sink, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if floor, head, err := l.Bounds(context.Background(), "a"); err != nil || floor != 3 || head != 3 {
		t.Fatalf("after a restart: floor %d, head %d, %v; want 3, 3", floor, head, err)
	}
	appendN(t, l, "a", 1, "new")
	if got := rs.all[len(rs.all)-1].Msg; got.Seq != 4 {
		t.Fatalf("first message after a restart got seq %d, want 4", got.Seq)
	}
	if e, err := l.Epoch(context.Background(), "a"); err != nil || e != epoch {
		t.Fatalf("epoch %d (%v), want %d", e, err, epoch)
	}
	if floor, head, _ := l.Bounds(context.Background(), "a"); floor != 3 || head != 4 {
		t.Fatalf("floor %d, head %d; want 3, 4", floor, head)
	}
}
