package historytest

import (
	"context"
	"reflect"
	"testing"

	"chat/protocol"
	"chat/server/internal/history"
)

// photo is a file as files.Store describes an image.
func photo(name string) *protocol.File {
	return &protocol.File{ID: "aa" + name, Name: name, Type: "image/png", Size: 1234, Width: 640, Height: 480,
		Thumb: "bb" + name, ThumbWidth: 320, ThumbHeight: 240}
}

func withFile(r *history.Request, f *protocol.File) *history.Request {
	r.File = f
	return r
}

// runFiles checks that messages keep the file they carry, in every read,
// and lose it with their text when deleted.
func runFiles(t *testing.T, open Opener) {
	ctx := context.Background()
	sameFile := func(t *testing.T, what string, got, want *protocol.File) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: file %+v, want %+v", what, got, want)
		}
	}

	t.Run("FileIsStoredAndRead", func(t *testing.T) {
		c := newCollector()
		log := open(t, c.sink)
		f, doc := photo("cat.png"), &protocol.File{ID: "cc", Name: "notes.pdf", Type: "application/pdf", Size: 99}
		r := one(t, log, c, withFile(req("r", "alice", "m1", ""), f)) // no caption
		if r.Err != nil || r.Msg.Seq != 1 {
			t.Fatalf("append: %+v", r)
		}
		sameFile(t, "result", r.Msg.File, f)
		one(t, log, c, withFile(req("r", "bob", "m2", "read this"), doc))
		one(t, log, c, req("r", "carol", "m3", "plain"))
		// A re-send is the message stored the first time, file and all.
		dup := one(t, log, c, withFile(req("r", "alice", "m1", ""), f))
		if !dup.Duplicate {
			t.Fatalf("re-send: %+v", dup)
		}
		sameFile(t, "re-send", dup.Msg.File, f)
		check := func(what string, msgs []protocol.Msg, err error, from uint64) {
			t.Helper()
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			want := map[uint64]*protocol.File{1: f, 2: doc, 3: nil}
			for _, m := range msgs {
				sameFile(t, what, m.File, want[m.Seq])
			}
			if len(msgs) == 0 || msgs[0].Seq != from {
				t.Fatalf("%s: %+v", what, msgs)
			}
		}
		msgs, err := log.Since(ctx, "r", 0, 10)
		check("Since", msgs, err, 1)
		if len(msgs) != 3 || msgs[0].Text != "" || msgs[1].Text != "read this" {
			t.Fatalf("Since: %+v", msgs)
		}
		msgs, err = log.Last(ctx, "r", 2)
		check("Last", msgs, err, 2)
		msgs, err = log.Before(ctx, "r", 3, 10)
		check("Before", msgs, err, 1)
		// The reads are copies: changing one changes nothing stored.
		msgs[0].File.Name = "changed"
		msgs, err = log.Since(ctx, "r", 0, 1)
		check("Since after a caller changed its copy", msgs, err, 1)
	})

	t.Run("EditAndReactionsKeepTheFile", func(t *testing.T) {
		c := newCollector()
		log := open(t, c.sink)
		f := photo("dog.png")
		one(t, log, c, withFile(req("r", "alice", "m1", "my dog"), f))
		r := one(t, log, c, change("r", "alice", "c1", protocol.ChangeEdit, 1, "our dog"))
		st := applied(t, "edit", r, 2, protocol.ChangeEdit, 1)
		if st.Text != "our dog" {
			t.Fatalf("edited: %+v", st)
		}
		sameFile(t, "edit's state", st.File, f)
		if r.Msg.File != nil {
			t.Fatalf("the change entry itself carries a file: %+v", r.Msg.File)
		}
		st = applied(t, "react", one(t, log, c, change("r", "bob", "c2", protocol.ChangeReact, 1, protocol.Reactions[0])), 3, protocol.ChangeReact, 1)
		sameFile(t, "reaction's state", st.File, f)
		msgs, err := log.Since(ctx, "r", 0, 10)
		if err != nil || len(msgs) != 3 {
			t.Fatalf("Since: %+v, %v", msgs, err)
		}
		sameFile(t, "read of the message", msgs[0].File, f)
		for _, m := range msgs[1:] {
			sameFile(t, "read of a change entry's state", m.Change.State.File, f)
		}
	})

	t.Run("DeleteRemovesTheFile", func(t *testing.T) {
		c := newCollector()
		log := open(t, c.sink)
		one(t, log, c, withFile(req("r", "alice", "m1", ""), photo("a.png")))
		one(t, log, c, withFile(req("r", "alice", "m2", "caption"), photo("b.png")))
		one(t, log, c, change("r", "bob", "r1", protocol.ChangeReact, 1, protocol.Reactions[0]))
		for i, target := range []uint64{1, 2} {
			r := change("r", "alice", "d"+string(rune('1'+i)), protocol.ChangeDelete, target, "")
			st := applied(t, "delete", one(t, log, c, r), uint64(4+i), protocol.ChangeDelete, target)
			if st.Text != "" || st.File != nil || st.Edited == 0 || len(st.Reactions) != 0 {
				t.Fatalf("deleted state: %+v (file %+v)", st, st.File)
			}
		}
		msgs, err := log.Since(ctx, "r", 0, 10)
		if err != nil || len(msgs) != 5 {
			t.Fatalf("Since: %+v, %v", msgs, err)
		}
		for _, m := range msgs {
			if m.File != nil || m.Change != nil && m.Change.State != nil && m.Change.State.File != nil {
				t.Fatalf("a file after the deletes: %+v", m)
			}
		}
		// A deleted message with an empty caption is deleted: no change
		// applies to it any more.
		refused(t, "edit of the deleted file", one(t, log, c, change("r", "alice", "e1", protocol.ChangeEdit, 1, "x")), history.ErrNoMessage)
		refused(t, "delete again", one(t, log, c, change("r", "alice", "d9", protocol.ChangeDelete, 1, "")), history.ErrNoMessage)
		refused(t, "reaction to it", one(t, log, c, change("r", "bob", "r9", protocol.ChangeReact, 1, protocol.Reactions[0])), history.ErrNoMessage)
	})

	t.Run("SearchFindsFileNames", func(t *testing.T) {
		c := newCollector()
		log := open(t, c.sink)
		s, ok := log.(history.Searcher)
		if !ok {
			t.Skipf("%T is not a Searcher", log)
		}
		one(t, log, c, withFile(req("r", "alice", "m1", ""), &protocol.File{ID: "aa", Name: "budget-2026.pdf", Type: "application/pdf", Size: 5}))
		one(t, log, c, withFile(req("r", "alice", "m2", "the holiday"), photo("beach.png")))
		one(t, log, c, req("r", "bob", "m3", "no budget here"))
		hits, _, err := s.Search(ctx, history.Query{Rooms: []string{"r"}, Text: "budget pdf"})
		if err != nil || len(hits) != 1 || hits[0].Seq != 1 || hits[0].Text != "budget-2026.pdf" {
			t.Fatalf("search of a file name: %+v, %v", hits, err)
		}
		hits, _, err = s.Search(ctx, history.Query{Rooms: []string{"r"}, Text: "holiday beach"})
		if err != nil || len(hits) != 1 || hits[0].Seq != 2 || hits[0].Text != "the holiday beach.png" {
			t.Fatalf("search of a caption and a file name: %+v, %v", hits, err)
		}
		// An edit of the caption keeps the file's name searchable; a
		// delete removes both.
		one(t, log, c, change("r", "alice", "e1", protocol.ChangeEdit, 2, "the trip"))
		hits, _, err = s.Search(ctx, history.Query{Rooms: []string{"r"}, Text: "trip beach"})
		if err != nil || len(hits) != 1 || hits[0].Seq != 2 {
			t.Fatalf("search after the edit: %+v, %v", hits, err)
		}
		one(t, log, c, change("r", "alice", "d1", protocol.ChangeDelete, 1, ""))
		hits, _, err = s.Search(ctx, history.Query{Rooms: []string{"r"}, Text: "budget"})
		if err != nil || len(hits) != 1 || hits[0].Seq != 3 {
			t.Fatalf("search after the delete: %+v, %v", hits, err)
		}
	})
}
