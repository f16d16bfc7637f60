package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"chat/protocol"
	"chat/server/internal/history"
)

// boundsDB opens a log whose clock moves one millisecond per commit and
// an inbox searching the listScan most recently active rooms. post writes
// one message to each room, each in a commit of its own.
func boundsDB(t *testing.T, listScan int) (log *Log, x *Inbox, post func(rooms ...string)) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "chat.db")
	log, err := Open(path, func([]history.Result) {}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	clock := time.UnixMilli(1_000_000)
	log.now = func() time.Time { clock = clock.Add(time.Millisecond); return clock } // commit loop only
	x, err = OpenInbox(path, InboxOptions{ListScan: listScan})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	n := 0
	return log, x, func(rooms ...string) {
		t.Helper()
		for _, room := range rooms {
			n++
			if err := log.Append(&history.Request{Room: room, Sender: "poster", ID: fmt.Sprint(n), Text: "x"}); err != nil {
				t.Fatal(err)
			}
			if err := log.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func roomNames[T any](list []T, name func(T) string) []string {
	out := []string{}
	for _, r := range list {
		out = append(out, name(r))
	}
	return out
}

// TestRoomListSearchesTheMostRecentRooms: LIST searches the ListScan
// most recently active rooms with messages; rooms joined but never
// written to and direct-message rooms are neither listed nor counted.
func TestRoomListSearchesTheMostRecentRooms(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		listScan int
		want     []string
	}{
		{5, []string{"team-new"}},
		{6, []string{"team-new", "team-old"}},
		{100, []string{"team-new", "team-old"}},
	} {
		t.Run(fmt.Sprint("ListScan=", c.listScan), func(t *testing.T) {
			log, x, post := boundsDB(t, c.listScan)
			if _, err := log.Epoch(ctx, "team-joined"); err != nil { // a row in rooms, no message
				t.Fatal(err)
			}
			post("team-old", "r1", "r2", "r3", "r4", protocol.DMRoom("alice", "team"), protocol.DMRoom("bob", "team"), "team-new")
			got, err := x.Active(ctx, "team", 200)
			if err != nil || !slices.Equal(roomNames(got, func(r protocol.RoomInfo) string { return r.Room }), c.want) {
				t.Fatalf("Active(team) = %+v, %v; want %v", got, err, c.want)
			}
			if got[0].Head != 1 || got[0].Time != 1_000_000+8 {
				t.Fatalf("team-new: %+v", got[0])
			}
			got, _ = x.Active(ctx, "", 3)
			if want := []string{"team-new", "r4", "r3"}; !slices.Equal(roomNames(got, func(r protocol.RoomInfo) string { return r.Room }), want) {
				t.Fatalf("Active(limit 3) = %+v, want %v", got, want)
			}
			// The old room, written to again, is among the most recent.
			post("team-old")
			got, _ = x.Active(ctx, "team", 200)
			if want := []string{"team-old", "team-new"}; !slices.Equal(roomNames(got, func(r protocol.RoomInfo) string { return r.Room }), want) {
				t.Fatalf("Active(team) after a message = %+v, want %v", got, want)
			}
		})
	}
}

// TestDirectRoomsNewestFirstFromTheIndex: the newest of a name's DM rooms
// come first, by the activity the commit loop keeps in dms, with the
// name's read markers.
func TestDirectRoomsNewestFirstFromTheIndex(t *testing.T) {
	ctx := context.Background()
	_, x, post := boundsDB(t, 0)
	dm := func(i int) string { return protocol.DMRoom("alice", fmt.Sprintf("n%02d", i)) }
	for i := range 10 {
		post(dm(i))
	}
	post(dm(5), protocol.DMRoom("bob", "carol"), "general")
	if _, err := x.Advance(ctx, "alice", dm(5), 1); err != nil {
		t.Fatal(err)
	}
	got, err := x.Direct(ctx, "alice", 3)
	if err != nil {
		t.Fatal(err)
	}
	want := []protocol.RoomState{
		{Room: dm(5), Head: 2, Time: 1_000_000 + 11, Read: 1},
		{Room: dm(9), Head: 1, Time: 1_000_000 + 10},
		{Room: dm(8), Head: 1, Time: 1_000_000 + 9},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("alice's DMs %+v, want %+v", got, want)
	}
	if got, _ := x.Direct(ctx, "n05", 10); len(got) != 1 || got[0] != (protocol.RoomState{Room: dm(5), Head: 2, Time: 1_000_000 + 11}) {
		t.Fatalf("n05's DMs %+v", got)
	}
	if got, _ := x.Direct(ctx, "alice", 100); len(got) != 10 {
		t.Fatalf("alice has %d DM rooms, want 10", len(got))
	}
}
