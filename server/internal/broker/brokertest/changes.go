package brokertest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"chat/protocol"
	"chat/server/internal/broker"
	"chat/server/internal/history"
)

func publishChange(t *testing.T, b broker.Broker, room, sender, id string, kind protocol.ChangeKind, target uint64, text string, moderator bool) {
	t.Helper()
	p := &broker.Publication{Room: room, Sender: sender, ID: id, Tag: id,
		Change: &history.Change{Kind: kind, Target: target, Text: text, Moderator: moderator}}
	if err := b.Publish(p); err != nil {
		t.Fatal(err)
	}
}

// result waits for the Result tagged id (the first one, of the n-th
// publication with that tag when several) on rec.
func (r *recorder) result(t *testing.T, id string) broker.Result {
	t.Helper()
	var out broker.Result
	r.wait(t, "the result of "+id, func(es []any) bool {
		for _, res := range results(es) {
			if res.Request.Tag == id {
				out = res
				return true
			}
		}
		return false
	})
	return out
}

// message waits for the delivery of seq of room on rec.
func (r *recorder) message(t *testing.T, room string, seq uint64) protocol.Msg {
	t.Helper()
	var out protocol.Msg
	r.wait(t, fmt.Sprintf("the delivery of %s/%d", room, seq), func(es []any) bool {
		for _, m := range messages(es) {
			if m.Room == room && m.Seq == seq {
				out = m
				return true
			}
		}
		return false
	})
	return out
}

func sameReactions(a, b []protocol.Reaction) bool {
	return len(a) == 0 && len(b) == 0 || reflect.DeepEqual(a, b)
}

// laterMillis waits until the wall clock has passed the millisecond t,
// so that what is stored next has a later time: the search pages back by
// time. It takes a millisecond or two.
func laterMillis(t uint64) {
	for uint64(time.Now().UnixMilli()) <= t {
		time.Sleep(time.Millisecond)
	}
}

// runChanges is part of Run: the cases of edits, deletions,
// reactions, replies and search.
func runChanges(t *testing.T, open Opener) {
	ctx := context.Background()
	thumbs, heart := protocol.Reactions[0], protocol.Reactions[1]

	t.Run("ChangesAreStoredAndDelivered", func(t *testing.T) {
		recA, recB := newRecorder(), newRecorder()
		nodes := open(t, recA, recB)
		a, b := nodes[0], nodes[1]
		if _, err := b.Subscribe(ctx, "r"); err != nil {
			t.Fatal(err)
		}
		publish(t, a, "r", "alice", "m1", "hello wrold")
		publish(t, a, "r", "bob", "m2", "hi alice")
		publishChange(t, a, "r", "Alice", "c1", protocol.ChangeEdit, 1, "hello world", false)
		publishChange(t, a, "r", "bob", "c2", protocol.ChangeReact, 1, heart, false)
		publishChange(t, a, "r", "carol", "c3", protocol.ChangeReact, 1, thumbs, false)
		publishChange(t, a, "r", "carol", "c4", protocol.ChangeUnreact, 1, thumbs, false)
		publishChange(t, a, "r", "bob", "c5", protocol.ChangeDelete, 2, "", false)
		// The sender's results: each change its own seq, the target's
		// new state with it.
		want := []struct {
			id        string
			seq       uint64
			kind      protocol.ChangeKind
			target    uint64
			emoji     string
			text      string
			reactions []protocol.Reaction
		}{
			{"c1", 3, protocol.ChangeEdit, 1, "", "hello world", nil},
			{"c2", 4, protocol.ChangeReact, 1, heart, "hello world", []protocol.Reaction{{Emoji: heart, Count: 1, Names: []string{"bob"}}}},
			{"c3", 5, protocol.ChangeReact, 1, thumbs, "hello world", []protocol.Reaction{{Emoji: thumbs, Count: 1, Names: []string{"carol"}},
				{Emoji: heart, Count: 1, Names: []string{"bob"}}}},
			{"c4", 6, protocol.ChangeUnreact, 1, thumbs, "hello world", []protocol.Reaction{{Emoji: heart, Count: 1, Names: []string{"bob"}}}},
			{"c5", 7, protocol.ChangeDelete, 2, "", "", nil},
		}
		for _, w := range want {
			for _, got := range []struct {
				where string
				m     protocol.Msg
				err   error
			}{{"result", recA.result(t, w.id).Msg, recA.result(t, w.id).Err}, {"delivery", recB.message(t, "r", w.seq), nil}} {
				m, what := got.m, got.where+" of "+w.id
				if got.err != nil {
					t.Fatalf("%s: %v", what, got.err)
				}
				if m.Seq != w.seq || m.Text != "" || m.ID != w.id || m.Change == nil || m.Change.Kind != w.kind ||
					m.Change.Target != w.target || m.Change.Emoji != w.emoji {
					t.Fatalf("%s: %+v (change %+v)", what, m, m.Change)
				}
				st := m.Change.State
				if st == nil || st.Seq != w.target || st.Text != w.text || st.Edited == 0 && w.kind != protocol.ChangeReact && w.kind != protocol.ChangeUnreact ||
					!sameReactions(st.Reactions, w.reactions) {
					t.Fatalf("%s: state %+v, want text %q, reactions %+v", what, st, w.text, w.reactions)
				}
			}
		}
		if r := recA.result(t, "c1"); r.Msg.Sender != "Alice" || r.Msg.Change.State.Sender != "alice" || r.Msg.Change.State.Edited != r.Msg.Time {
			t.Fatalf("edit: %+v, state %+v", r.Msg, r.Msg.Change.State)
		}
		// Reads: the messages with their changes, the change entries with
		// their targets' state now.
		final := []protocol.Reaction{{Emoji: heart, Count: 1, Names: []string{"bob"}}}
		for name, read := range map[string]func() ([]protocol.Msg, error){
			"Since":  func() ([]protocol.Msg, error) { return b.Since(ctx, "r", 0, 100) },
			"Last":   func() ([]protocol.Msg, error) { return b.Last(ctx, "r", 100) },
			"Before": func() ([]protocol.Msg, error) { return b.Before(ctx, "r", 100, 100) },
		} {
			msgs, err := read()
			if err != nil || !slices.Equal(seqs(msgs), span(1, 7)) {
				t.Fatalf("%s: %v, %v", name, seqs(msgs), err)
			}
			if m := msgs[0]; m.Text != "hello world" || m.Edited == 0 || !sameReactions(m.Reactions, final) || m.Change != nil {
				t.Fatalf("%s: message 1 is %+v", name, m)
			}
			if m := msgs[1]; m.Text != "" || m.Edited == 0 || m.Change != nil {
				t.Fatalf("%s: deleted message 2 is %+v", name, m)
			}
			for _, m := range msgs[2:] {
				st := m.Change.State
				if m.Change.Target == 1 && (st == nil || st.Text != "hello world" || !sameReactions(st.Reactions, final)) ||
					m.Change.Target == 2 && (st == nil || st.Text != "") {
					t.Fatalf("%s: entry %d reads state %+v", name, m.Seq, st)
				}
			}
		}
		msgs, err := b.Since(ctx, "r", 4, 2)
		if err != nil || !slices.Equal(seqs(msgs), span(5, 6)) || msgs[0].Change == nil || msgs[0].Change.State == nil {
			t.Fatalf("Since(4, 2): %+v, %v", msgs, err)
		}
	})

	t.Run("ChangesAreRefusedWithoutEffect", func(t *testing.T) {
		recA, recB := newRecorder(), newRecorder()
		nodes := open(t, recA, recB)
		a, b := nodes[0], nodes[1]
		if _, err := b.Subscribe(ctx, "r"); err != nil {
			t.Fatal(err)
		}
		publish(t, a, "r", "alice", "m1", "alice's words")
		publishChange(t, a, "r", "alice", "react", protocol.ChangeReact, 1, thumbs, false)
		for _, tc := range []struct {
			id, sender string
			kind       protocol.ChangeKind
			target     uint64
			text       string
			moderator  bool
			want       error
		}{
			{"edit-other", "bob", protocol.ChangeEdit, 1, "bob's words", false, history.ErrNotSender},
			{"edit-moderator", "bob", protocol.ChangeEdit, 1, "bob's words", true, history.ErrNotSender},
			{"delete-other", "bob", protocol.ChangeDelete, 1, "", false, history.ErrNotSender},
			{"edit-missing", "alice", protocol.ChangeEdit, 9, "x", false, history.ErrNoMessage},
			{"react-missing", "alice", protocol.ChangeReact, 3, thumbs, false, history.ErrNoMessage},
			{"react-zero", "alice", protocol.ChangeReact, 0, thumbs, false, history.ErrNoMessage},
			{"edit-entry", "alice", protocol.ChangeEdit, 2, "x", false, history.ErrNoMessage},
			{"delete-entry", "alice", protocol.ChangeDelete, 2, "", true, history.ErrNoMessage},
		} {
			publishChange(t, a, "r", tc.sender, tc.id, tc.kind, tc.target, tc.text, tc.moderator)
			if r := recA.result(t, tc.id); !errors.Is(r.Err, tc.want) || r.Duplicate {
				t.Fatalf("%s: %+v, want %v", tc.id, r, tc.want)
			}
		}
		// Nothing was stored or delivered: the next message is 3.
		publish(t, a, "r", "bob", "m3", "next")
		if r := recA.result(t, "m3"); r.Msg.Seq != 3 {
			t.Fatalf("after the refusals: %+v, want seq 3", r)
		}
		recB.message(t, "r", 3)
		if ms := messages(recB.snapshot()); !slices.Equal(seqs(ms), span(1, 3)) {
			t.Fatalf("delivered %v, want 1..3", seqs(ms))
		}
		// An operator deletes it; then it takes no change.
		publishChange(t, a, "r", "carol", "mod", protocol.ChangeDelete, 1, "", true)
		if r := recA.result(t, "mod"); r.Err != nil || r.Msg.Seq != 4 || r.Msg.Change.State.Text != "" || len(r.Msg.Change.State.Reactions) != 0 {
			t.Fatalf("moderator's delete: %+v", r)
		}
		for i, kind := range []protocol.ChangeKind{protocol.ChangeEdit, protocol.ChangeDelete, protocol.ChangeReact, protocol.ChangeUnreact} {
			id := fmt.Sprint("after", i)
			publishChange(t, a, "r", "alice", id, kind, 1, map[protocol.ChangeKind]string{protocol.ChangeEdit: "x", protocol.ChangeReact: heart, protocol.ChangeUnreact: thumbs}[kind], false)
			if r := recA.result(t, id); !errors.Is(r.Err, history.ErrNoMessage) {
				t.Fatalf("%v of a deleted message: %+v", kind, r)
			}
		}
		msgs, err := b.Since(ctx, "r", 0, 10)
		if err != nil || !slices.Equal(seqs(msgs), span(1, 4)) || msgs[0].Text != "" {
			t.Fatalf("read: %+v, %v", msgs, err)
		}
	})

	t.Run("ReSentChangeIsAnsweredNotApplied", func(t *testing.T) {
		recA, recB := newRecorder(), newRecorder()
		nodes := open(t, recA, recB)
		a, b := nodes[0], nodes[1]
		if _, err := b.Subscribe(ctx, "r"); err != nil {
			t.Fatal(err)
		}
		publish(t, a, "r", "alice", "m1", "hello")
		publishChange(t, a, "r", "bob", "c1", protocol.ChangeReact, 1, thumbs, false)
		publishChange(t, a, "r", "bob", "c2", protocol.ChangeUnreact, 1, thumbs, false)
		recB.message(t, "r", 3)
		// bob's client re-sends c1 after a reconnect, through the other node.
		if err := b.Publish(&broker.Publication{Room: "r", Sender: "Bob", ID: "c1", Tag: "again",
			Change: &history.Change{Kind: protocol.ChangeReact, Target: 1, Text: thumbs}}); err != nil {
			t.Fatal(err)
		}
		r := recB.result(t, "again")
		if !r.Duplicate || r.Err != nil || r.Msg.Seq != 2 || r.Msg.Change == nil || r.Msg.Change.Kind != protocol.ChangeReact {
			t.Fatalf("re-sent change: %+v", r)
		}
		publish(t, a, "r", "alice", "m4", "after")
		recB.message(t, "r", 4)
		if ms := messages(recB.snapshot()); !slices.Equal(seqs(ms), span(1, 4)) {
			t.Fatalf("delivered %v: the re-send must not be delivered again", seqs(ms))
		}
		msgs, err := a.Since(ctx, "r", 0, 10)
		if err != nil || len(msgs) != 4 || len(msgs[0].Reactions) != 0 {
			t.Fatalf("read: %+v, %v; want no reaction (the react was not applied twice)", msgs, err)
		}
	})

	t.Run("RepliesAreStored", func(t *testing.T) {
		recA, recB := newRecorder(), newRecorder()
		nodes := open(t, recA, recB)
		a, b := nodes[0], nodes[1]
		if _, err := b.Subscribe(ctx, "r"); err != nil {
			t.Fatal(err)
		}
		publish(t, a, "r", "alice", "m1", "question")
		if err := a.Publish(&broker.Publication{Room: "r", Sender: "bob", ID: "m2", Text: "answer", Reply: 1, Tag: "m2"}); err != nil {
			t.Fatal(err)
		}
		if r := recA.result(t, "m2"); r.Err != nil || r.Msg.Reply != 1 || r.Msg.Text != "answer" {
			t.Fatalf("result: %+v", r)
		}
		if m := recB.message(t, "r", 2); m.Reply != 1 {
			t.Fatalf("delivered: %+v", m)
		}
		msgs, err := b.Last(ctx, "r", 2)
		if err != nil || len(msgs) != 2 || msgs[0].Reply != 0 || msgs[1].Reply != 1 {
			t.Fatalf("read: %+v, %v", msgs, err)
		}
	})

	t.Run("Search", func(t *testing.T) {
		rec := newRecorder()
		b := open(t, rec)[0]
		n := 0
		post := func(room, sender, text string) broker.Result {
			t.Helper()
			n++
			id := fmt.Sprint("s", n)
			publish(t, b, room, sender, id, text)
			r := rec.result(t, id)
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			laterMillis(r.Msg.Time)
			return r
		}
		search := func(q history.Query) ([]protocol.Hit, bool) {
			t.Helper()
			hits, more, err := b.Search(ctx, q)
			if err != nil {
				t.Fatalf("Search(%+v): %v", q, err)
			}
			return hits, more
		}
		ids := func(hits []protocol.Hit) string {
			s := []string{}
			for _, h := range hits {
				s = append(s, fmt.Sprintf("%s/%d", h.Room, h.Seq))
			}
			return fmt.Sprint(s)
		}
		// synced waits until the search has indexed everything published
		// so far (a cluster node's index follows the stream): it posts a
		// word of its own to each room and waits to find it.
		syncs := 0
		synced := func(rooms ...string) {
			t.Helper()
			syncs++
			word := fmt.Sprint("zzsync", syncs)
			for _, room := range rooms {
				post(room, "sync", word)
			}
			deadline := time.Now().Add(20 * time.Second)
			for {
				hits, _ := search(history.Query{Rooms: rooms, Text: word, Limit: history.MaxSearchLimit})
				if len(hits) == len(rooms) {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("the search did not find %s in %v within 20s: %s", word, rooms, ids(hits))
				}
				time.Sleep(10 * time.Millisecond) // a bounded poll: indexing signals nothing a broker exposes
			}
		}
		post("a", "alice", "Hello world")           // a/1
		post("b", "bob", "hello from b")            // b/1
		post("c", "carol", "hello from c")          // c/1
		post("a", "alice", "the secret is banana")  // a/2
		post("a", "alice", "meet at noon")          // a/3
		post("a", "bob", "hellish week, worldwide") // a/4
		for i := range 5 {
			post("b", "bob", fmt.Sprint("page me ", i)) // b/2..b/6
		}
		synced("a", "b", "c")
		scope := []string{"a", "b"}
		for q, want := range map[string]string{
			"hello":      "[b/1 a/1]",
			"hel":        "[a/4 b/1 a/1]",
			"HELLO WOR":  "[a/1]",
			"world hell": "[a/1]", // world is a whole word: not worldwide
			"banana":     "[a/2]",
			"from c":     "[]",
		} {
			if hits, _ := search(history.Query{Rooms: scope, Text: q}); ids(hits) != want {
				t.Errorf("%q in a, b: %s, want %s", q, ids(hits), want)
			}
		}
		if hits, _ := search(history.Query{Rooms: []string{"c"}, Text: "hello"}); ids(hits) != "[c/1]" {
			t.Errorf("hello in c: %s", ids(hits))
		}
		if _, _, err := b.Search(ctx, history.Query{Rooms: scope, Text: " ?! "}); !errors.Is(err, history.ErrBadQuery) {
			t.Errorf("a query without words: %v, want ErrBadQuery", err)
		}
		hits, _ := search(history.Query{Rooms: scope, Text: "hello"})
		if h := hits[1]; h.Room != "a" || h.Seq != 1 || h.Sender != "alice" || h.Text != "Hello world" || h.Time == 0 ||
			!slices.Equal(h.Matches, []protocol.Span{{Start: 0, End: 5}}) {
			t.Fatalf("hit %+v", h)
		}
		// Paging back by time.
		var got []string
		var before uint64
		for range 5 {
			hits, more := search(history.Query{Rooms: scope, Text: "page", Before: before, Limit: 2})
			for _, h := range hits {
				got = append(got, h.Text)
			}
			if !more {
				break
			}
			before = hits[len(hits)-1].Time
		}
		if want := []string{"page me 4", "page me 3", "page me 2", "page me 1", "page me 0"}; !slices.Equal(got, want) {
			t.Fatalf("paged %q, want %q", got, want)
		}
		// Deleted and edited messages: only the current text matches.
		publishChange(t, b, "a", "alice", "del", protocol.ChangeDelete, 2, "", false)
		publishChange(t, b, "a", "alice", "edit", protocol.ChangeEdit, 3, "meet at one", false)
		publishChange(t, b, "b", "carol", "mod", protocol.ChangeDelete, 1, "", true)
		for _, id := range []string{"del", "edit", "mod"} {
			if r := rec.result(t, id); r.Err != nil {
				t.Fatalf("%s: %v", id, r.Err)
			}
		}
		synced("a", "b")
		for q, want := range map[string]string{"banana": "[]", "secret": "[]", "noon": "[]", "one": "[a/3]", "meet": "[a/3]", "hello": "[a/1]"} {
			if hits, _ := search(history.Query{Rooms: scope, Text: q}); ids(hits) != want {
				t.Errorf("%q after the changes: %s, want %s", q, ids(hits), want)
			}
		}
	})
}
