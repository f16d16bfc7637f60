package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"chat/protocol"
	"chat/server/internal/history"
)

// scaleDB opens a log and an inbox on a new database holding empty
// rooms (joined, never written to: rows of the rooms table only) and
// rooms with one message each, written through the commit loop.
func scaleDB(tb testing.TB, empty int, written []string) (*Log, *Inbox) {
	tb.Helper()
	ctx := context.Background()
	path := filepath.Join(tb.TempDir(), "chat.db")
	log, err := Open(path, func([]history.Result) {}, Options{Synchronous: "normal"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { log.Close() })
	tx, err := log.write.Begin()
	if err != nil {
		tb.Fatal(err)
	}
	for i := range empty {
		if _, err := tx.Exec("INSERT INTO rooms (room, epoch) VALUES (?, ?)", fmt.Sprintf("joined-%07d", i), int64(history.NewEpoch())); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
	for i, room := range written {
		if err := log.Append(&history.Request{Room: room, Sender: "poster", ID: fmt.Sprint(i), Text: "x"}); err != nil {
			tb.Fatal(err)
		}
	}
	if err := log.Flush(ctx); err != nil {
		tb.Fatal(err)
	}
	x, err := OpenInbox(path, InboxOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { x.Close() })
	return log, x
}

// BenchmarkListFewMatches: a LIST matching 3 rooms, the least recently
// active, among 220k rows of the rooms table.
func BenchmarkListFewMatches(b *testing.B) {
	for _, c := range []struct {
		name          string
		empty, public int
		dms           int
	}{
		{"empty=200k,public=10k,dms=10k", 200_000, 10_000, 10_000},
		{"public=220k", 0, 220_000, 0},
	} {
		b.Run(c.name, func(b *testing.B) {
			var rooms []string
			for i := range 3 {
				rooms = append(rooms, fmt.Sprintf("zz-%d", i))
			}
			for i := range c.public - 3 {
				rooms = append(rooms, fmt.Sprintf("room-%07d", i))
			}
			for i := range c.dms {
				rooms = append(rooms, protocol.DMRoom(fmt.Sprintf("a%07d", i), fmt.Sprintf("b%07d", i)))
			}
			_, x := scaleDB(b, c.empty, rooms)
			b.ResetTimer()
			for b.Loop() {
				got, err := x.Active(context.Background(), "zz", 200)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(len(got)), "rooms")
			}
		})
	}
}

// BenchmarkIdentifyDMs: the 100 most recent of a name's 20k DM rooms.
func BenchmarkIdentifyDMs(b *testing.B) {
	var rooms []string
	for i := range 20_000 {
		rooms = append(rooms, protocol.DMRoom("alice", fmt.Sprintf("n%07d", i)))
	}
	_, x := scaleDB(b, 0, rooms)
	b.ResetTimer()
	for b.Loop() {
		got, err := x.Direct(context.Background(), "alice", 100)
		if err != nil || len(got) != 100 {
			b.Fatal(len(got), err)
		}
	}
}
