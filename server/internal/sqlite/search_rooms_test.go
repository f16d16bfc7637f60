package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"chat/server/internal/history"
)

// TestSearchMatchesOnlyInTheSearchersRooms: a word in thousands of
// messages of other rooms and a few of the searcher's: the index match
// itself (not only the lookup of the messages after it) keeps to the
// searcher's rooms, and the search pages through their hits newest
// first. Rooms whose names begin alike, and names outside ASCII, keep
// apart.
func TestSearchMatchesOnlyInTheSearchersRooms(t *testing.T) {
	l, res := open(t, filepath.Join(t.TempDir(), "chat.db"), Options{})
	defer l.Close()
	var reqs []*history.Request
	for i := range 3000 {
		reqs = append(reqs, &history.Request{Room: "ab", Sender: "bob", ID: fmt.Sprint("b", i), Text: fmt.Sprint("crowded word ", i)})
	}
	do(t, l, res, reqs...)
	others := []string{"abc", "@alice@bob", "café ☕"}
	for i, room := range others {
		do(t, l, res, &history.Request{Room: room, Sender: "alice", ID: fmt.Sprint("o", i), Text: fmt.Sprint("crowded in ", room)})
	}
	for i := range 3 {
		do(t, l, res, &history.Request{Room: "small", Sender: "carol", ID: fmt.Sprint("s", i), Text: fmt.Sprint("a crowded small room ", i)})
	}

	words := history.QueryWords("crowded")
	if got := indexed(t, l, FTSQuery(words)); len(got) != 3006 {
		t.Fatalf("the word is in %d rows of the index, want 3006: this test would prove nothing", len(got))
	}
	// The match of the index: the three rows of small only.
	if got := indexed(t, l, FTSQuery(words, "small")); len(got) != 3 {
		t.Fatalf("the index matches %d rows for the room small, want 3", len(got))
	}
	for _, room := range append(others, "ab") {
		want := 1
		if room == "ab" {
			want = 3000
		}
		if got := indexed(t, l, FTSQuery(words, room)); len(got) != want {
			t.Errorf("the index matches %d rows for the room %q, want %d", len(got), room, want)
		}
	}

	ctx := context.Background()
	hits, more, err := l.Search(ctx, history.Query{Rooms: []string{"small"}, Text: "crowded", Limit: 2})
	if err != nil || !more || len(hits) != 2 || hits[0].Seq != 3 || hits[1].Seq != 2 || hits[0].Room != "small" {
		t.Fatalf("first page: %+v, more %v, %v; want small 3 and 2, more", hits, more, err)
	}
	if !strings.HasPrefix(hits[0].Text[hits[0].Matches[0].Start:], "crowded") {
		t.Errorf("match %+v in %q", hits[0].Matches, hits[0].Text)
	}
	hits, more, err = l.Search(ctx, history.Query{Rooms: []string{"small"}, Text: "crowded", Limit: 2, Before: hits[1].Time})
	// Messages of one batch share a millisecond: Before pages by time, so
	// the second page holds what is older than the first page's last.
	if err != nil || more || len(hits) > 1 || len(hits) == 1 && hits[0].Seq != 1 {
		t.Fatalf("second page: %+v, more %v, %v", hits, more, err)
	}
	hits, _, err = l.Search(ctx, history.Query{Rooms: []string{"small", "café ☕", "@alice@bob"}, Text: "crowded"})
	var rooms []string
	for _, h := range hits {
		rooms = append(rooms, h.Room)
	}
	slices.Sort(rooms)
	if err != nil || !slices.Equal(rooms, []string{"@alice@bob", "café ☕", "small", "small", "small"}) {
		t.Fatalf("three rooms: %v, %v", rooms, err)
	}
	// Words of the other rooms only: nothing, however many they hold.
	if hits, more, err := l.Search(ctx, history.Query{Rooms: []string{"small", "abc"}, Text: "word"}); err != nil || len(hits) != 0 || more {
		t.Fatalf("a word of another room: %+v, %v, %v", hits, more, err)
	}
}

// TestSearchesTakeTurns: past Options.Searches searches at once, a
// search waits for a turn, or gives up with its context.
func TestSearchesTakeTurns(t *testing.T) {
	l, res := open(t, filepath.Join(t.TempDir(), "chat.db"), Options{Searches: 1})
	defer l.Close()
	do(t, l, res, &history.Request{Room: "r", Sender: "alice", ID: "1", Text: "kiwi"})
	if cap(l.searches) != 1 {
		t.Fatalf("%d searches at once, want 1", cap(l.searches))
	}
	l.searches <- struct{}{} // a search is reading
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := l.Search(ctx, history.Query{Rooms: []string{"r"}, Text: "kiwi"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a search past the limit: %v, want it to wait until its context ends", err)
	}
	done := make(chan error, 1)
	go func() {
		hits, _, err := l.Search(context.Background(), history.Query{Rooms: []string{"r"}, Text: "kiwi"})
		if err == nil && len(hits) != 1 {
			err = fmt.Errorf("%d hits, want 1", len(hits))
		}
		done <- err
	}()
	<-l.searches // the first search ends
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := len(l.searches); n != 0 {
		t.Fatalf("%d turns still taken after the searches ended", n)
	}
	l2, _ := open(t, filepath.Join(t.TempDir(), "chat.db"), Options{Searches: 10})
	defer l2.Close()
	if cap(l2.searches) != readConns-1 {
		t.Errorf("Searches 10: %d at once, want %d (one read connection stays free)", cap(l2.searches), readConns-1)
	}
}

// TestSearchInAThousandRooms: the rooms' part of the match grows with
// the searcher's rooms; FTS5 takes a thousand of them (its OR is one
// node, not a nesting as deep as the list).
func TestSearchInAThousandRooms(t *testing.T) {
	l, res := open(t, filepath.Join(t.TempDir(), "chat.db"), Options{})
	defer l.Close()
	do(t, l, res, &history.Request{Room: "room-999", Sender: "alice", ID: "1", Text: "kiwi"},
		&history.Request{Room: "room-1000", Sender: "alice", ID: "2", Text: "kiwi"})
	var rooms []string
	for i := range 1000 {
		rooms = append(rooms, fmt.Sprint("room-", i))
	}
	hits, _, err := l.Search(context.Background(), history.Query{Rooms: rooms, Text: "kiwi"})
	if err != nil || len(hits) != 1 || hits[0].Room != "room-999" {
		t.Fatalf("%+v, %v; want the hit of room-999 only", hits, err)
	}
}
