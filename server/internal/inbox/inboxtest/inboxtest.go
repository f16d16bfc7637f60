// Package inboxtest is the conformance suite for inbox.Store
// implementations: every implementation must pass Run.
package inboxtest

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"chat/protocol"
	"chat/server/internal/history"
	"chat/server/internal/inbox"
)

// Opener creates a fresh, empty store keeping maxMentions mentions per
// name, and the history log whose messages it lists rooms from.
type Opener func(t *testing.T, maxMentions int) (inbox.Store, history.Log)

// post stores one message in each room given, one commit each, and
// returns once they are stored. Each commit gets a later millisecond
// than the one before, so that "most recently active" is well defined.
func post(t *testing.T, log history.Log, rooms ...string) {
	t.Helper()
	for i, room := range rooms {
		if err := log.Append(&history.Request{Room: room, Sender: "poster", ID: fmt.Sprint(time.Now().UnixNano(), i), Text: "x"}); err != nil {
			t.Fatal(err)
		}
		if err := log.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		// The clock signals nothing: spin until the millisecond the
		// commit may have taken is over.
		for ms := time.Now().UnixMilli(); time.Now().UnixMilli() == ms; {
			runtime.Gosched()
		}
	}
}

func names[T any](xs []T, f func(T) string) []string {
	var out []string
	for _, x := range xs {
		out = append(out, f(x))
	}
	return out
}

// Run runs the suite.
func Run(t *testing.T, open Opener) {
	ctx := context.Background()

	t.Run("MarkersOnlyMoveForward", func(t *testing.T) {
		s, _ := open(t, 10)
		if read, n, err := s.State(ctx, "alice", "general"); err != nil || read != 0 || n != 0 {
			t.Fatalf("State of nothing = %d, %d, %v", read, n, err)
		}
		for _, step := range []struct {
			seq   uint64
			moved bool
			want  uint64
		}{{5, true, 5}, {3, false, 5}, {5, false, 5}, {0, false, 5}, {9, true, 9}} {
			moved, err := s.Advance(ctx, "alice", "general", step.seq)
			if err != nil || moved != step.moved {
				t.Fatalf("Advance(%d) = %v, %v; want moved %v", step.seq, moved, err, step.moved)
			}
			if read, _, _ := s.State(ctx, "alice", "general"); read != step.want {
				t.Fatalf("after Advance(%d) the marker is %d, want %d", step.seq, read, step.want)
			}
		}
		if read, _, _ := s.State(ctx, "alice", "random"); read != 0 {
			t.Fatalf("another room's marker is %d", read)
		}
		if read, _, _ := s.State(ctx, "bob", "general"); read != 0 {
			t.Fatalf("another name's marker is %d", read)
		}
	})

	t.Run("MentionsAboveTheMarkerAreKeptBounded", func(t *testing.T) {
		s, _ := open(t, 3)
		if err := s.Mention(ctx, "general", 2, []string{"alice", "bob"}); err != nil {
			t.Fatal(err)
		}
		if err := s.Mention(ctx, "general", 2, []string{"alice"}); err != nil { // again: no second row
			t.Fatal(err)
		}
		if _, n, _ := s.State(ctx, "alice", "general"); n != 1 {
			t.Fatalf("alice has %d mentions, want 1", n)
		}
		if _, err := s.Advance(ctx, "alice", "general", 2); err != nil {
			t.Fatal(err)
		}
		if _, n, _ := s.State(ctx, "alice", "general"); n != 0 {
			t.Fatalf("alice has %d mentions after reading them", n)
		}
		if _, n, _ := s.State(ctx, "bob", "general"); n != 1 {
			t.Fatalf("bob has %d mentions, want 1 (alice's reading is not his)", n)
		}
		// A mention at or below the marker is read already.
		if err := s.Mention(ctx, "general", 1, []string{"alice"}); err != nil {
			t.Fatal(err)
		}
		if _, n, _ := s.State(ctx, "alice", "general"); n != 0 {
			t.Fatalf("a mention below the marker was kept")
		}
		// Five more in two rooms; three are kept, the newest.
		for _, m := range []struct {
			room string
			seq  uint64
		}{{"general", 3}, {"random", 1}, {"general", 4}, {"random", 2}, {"general", 5}} {
			if err := s.Mention(ctx, m.room, m.seq, []string{"alice"}); err != nil {
				t.Fatal(err)
			}
		}
		_, ng, _ := s.State(ctx, "alice", "general")
		_, nr, _ := s.State(ctx, "alice", "random")
		if ng != 2 || nr != 1 {
			t.Fatalf("kept %d in general and %d in random, want the newest three: 2 and 1", ng, nr)
		}
		if _, err := s.Advance(ctx, "alice", "general", 4); err != nil {
			t.Fatal(err)
		}
		if _, n, _ := s.State(ctx, "alice", "general"); n != 1 {
			t.Fatalf("%d mentions after reading up to 4, want 1", n)
		}
	})

	t.Run("DirectRoomsOfAName", func(t *testing.T) {
		s, log := open(t, 10)
		ab, ac, aa, bc := protocol.DMRoom("alice", "bob"), protocol.DMRoom("carol", "alice"), protocol.DMRoom("alice", "alice"), protocol.DMRoom("bob", "carol")
		post(t, log, ab, "general", ac, bc, aa, ab, "@alice", "alice")
		if _, err := s.Advance(ctx, "alice", ab, 1); err != nil {
			t.Fatal(err)
		}
		got, err := s.Direct(ctx, "alice", 10)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{ab, aa, ac}; !slices.Equal(names(got, func(s protocol.RoomState) string { return s.Room }), want) {
			t.Fatalf("alice's DMs %+v, want %v (newest first)", got, want)
		}
		if got[0].Head != 2 || got[0].Read != 1 || got[0].Time == 0 || got[1].Head != 1 || got[1].Read != 0 {
			t.Fatalf("alice's DMs %+v", got)
		}
		if got[0].Time < got[1].Time || got[1].Time < got[2].Time {
			t.Fatalf("not newest first: %+v", got)
		}
		if got, _ := s.Direct(ctx, "alice", 2); len(got) != 2 || got[0].Room != ab {
			t.Fatalf("Direct(limit 2) = %+v", got)
		}
		if got, _ := s.Direct(ctx, "dave", 10); len(got) != 0 {
			t.Fatalf("dave has DMs %+v", got)
		}
	})

	t.Run("ActiveRoomsAndHeads", func(t *testing.T) {
		s, log := open(t, 10)
		post(t, log, "general", "random", "general", protocol.DMRoom("alice", "bob"), "gen z", "quiet")
		got, err := s.Active(ctx, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"quiet", "gen z", "general", "random"}; !slices.Equal(names(got, func(r protocol.RoomInfo) string { return r.Room }), want) {
			t.Fatalf("Active = %+v, want %v", got, want)
		}
		if got[2].Head != 2 || got[2].Time == 0 || got[2].Members != 0 {
			t.Fatalf("general: %+v", got[2])
		}
		got, _ = s.Active(ctx, "gen", 10)
		if want := []string{"gen z", "general"}; !slices.Equal(names(got, func(r protocol.RoomInfo) string { return r.Room }), want) {
			t.Fatalf("Active(gen) = %+v, want %v", got, want)
		}
		got, _ = s.Active(ctx, "", 2)
		if len(got) != 2 || got[0].Room != "quiet" {
			t.Fatalf("Active(limit 2) = %+v", got)
		}
		if got, _ := s.Active(ctx, "@", 10); len(got) != 0 {
			t.Fatalf("Active(@) lists %+v", got)
		}
		got, err = s.Heads(ctx, []string{"general", "empty", "random"})
		slices.SortFunc(got, func(a, b protocol.RoomInfo) int { return strings.Compare(a.Room, b.Room) })
		if err != nil || len(got) != 2 || got[0].Room != "general" || got[0].Head != 2 || got[1].Room != "random" || got[1].Head != 1 {
			t.Fatalf("Heads = %+v, %v", got, err)
		}
	})
}
