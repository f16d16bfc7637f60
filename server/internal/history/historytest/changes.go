package historytest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"chat/protocol"
	"chat/server/internal/history"
)

func change(room, sender, id string, kind protocol.ChangeKind, target uint64, text string) *history.Request {
	return &history.Request{Room: room, Sender: sender, ID: id, Tag: id,
		Change: &history.Change{Kind: kind, Target: target, Text: text}}
}

// one appends r and returns its result.
func one(t *testing.T, log history.Log, c *collector, r *history.Request) history.Result {
	t.Helper()
	c.mu.Lock()
	n := len(c.results)
	c.mu.Unlock()
	appendAll(t, log, r)
	return c.wait(t, n+1)[n]
}

// applied checks that a change's result is a stored change entry with
// the target's state.
func applied(t *testing.T, what string, r history.Result, seq uint64, kind protocol.ChangeKind, target uint64) *protocol.Msg {
	t.Helper()
	m := r.Msg
	if r.Err != nil || r.Duplicate {
		t.Fatalf("%s: %+v", what, r)
	}
	if m.Seq != seq || m.Change == nil || m.Change.Kind != kind || m.Change.Target != target ||
		m.Text != "" || m.Time == 0 || m.Sender != r.Request.Sender || m.ID != r.Request.ID {
		t.Fatalf("%s: entry %+v (change %+v), want seq %d %v of %d", what, m, m.Change, seq, kind, target)
	}
	if m.Change.State == nil || m.Change.State.Seq != target {
		t.Fatalf("%s: state %+v, want message %d", what, m.Change.State, target)
	}
	return m.Change.State
}

func refused(t *testing.T, what string, r history.Result, want error) {
	t.Helper()
	if !errors.Is(r.Err, want) || r.Duplicate {
		t.Fatalf("%s: %+v, want %v", what, r, want)
	}
}

func reactions(pairs ...any) []protocol.Reaction {
	var out []protocol.Reaction
	for i := 0; i < len(pairs); i += 2 {
		names := pairs[i+1].([]string)
		out = append(out, protocol.Reaction{Emoji: pairs[i].(string), Count: uint64(len(names)), Names: names})
	}
	return out
}

func sameReactions(a, b []protocol.Reaction) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return reflect.DeepEqual(a, b)
}

// runChanges checks edits, deletions, reactions and replies.
func runChanges(t *testing.T, open Opener) {
	ctx := context.Background()
	thumbs, heart, party := protocol.Reactions[0], protocol.Reactions[1], protocol.Reactions[5]

	t.Run("EditAppliesInPlace", func(t *testing.T) {
		c := newCollector()
		log := open(t, c.sink)
		orig := one(t, log, c, req("r", "alice", "m1", "hello wrold"))
		one(t, log, c, req("r", "bob", "m2", "hi"))
		r := one(t, log, c, change("r", "Alice", "c1", protocol.ChangeEdit, 1, "hello world"))
		st := applied(t, "edit", r, 3, protocol.ChangeEdit, 1)
		if st.Text != "hello world" || st.Edited != r.Msg.Time || st.Sender != "alice" || st.ID != "m1" || st.Time != orig.Msg.Time {
			t.Fatalf("edited state %+v, want the new text, edited at the change's time %d", st, r.Msg.Time)
		}
		r = one(t, log, c, change("r", "alice", "c2", protocol.ChangeEdit, 1, "hello, world"))
		st = applied(t, "second edit", r, 4, protocol.ChangeEdit, 1)
		if st.Text != "hello, world" {
			t.Fatalf("second edit: %+v", st)
		}
		msgs, err := log.Since(ctx, "r", 0, 10)
		if err != nil || len(msgs) != 4 {
			t.Fatalf("Since: %d entries, %v; want 2 messages and 2 change entries", len(msgs), err)
		}
		if m := msgs[0]; m.Text != "hello, world" || m.Edited == 0 || m.Change != nil {
			t.Fatalf("read of the edited message: %+v", m)
		}
		if m := msgs[1]; m.Text != "hi" || m.Edited != 0 {
			t.Fatalf("read of the other message: %+v", m)
		}
		for _, m := range msgs[2:] {
			if m.Change == nil || m.Change.Kind != protocol.ChangeEdit || m.Change.Target != 1 || m.Text != "" || m.Sender != "Alice" && m.Sender != "alice" {
				t.Fatalf("read of a change entry: %+v", m)
			}
			// Reads give the target's state now, not as of the change.
			if s := m.Change.State; s == nil || s.Text != "hello, world" || s.Seq != 1 {
				t.Fatalf("change entry %d reads state %+v, want the target now", m.Seq, s)
			}
		}
	})

	t.Run("OnlyTheSenderEdits", func(t *testing.T) {
		c := newCollector()
		log := open(t, c.sink)
		one(t, log, c, req("r", "alice", "m1", "alice's"))
		refused(t, "bob edits alice's message", one(t, log, c, change("r", "bob", "c1", protocol.ChangeEdit, 1, "bob's now")), history.ErrNotSender)
		r := change("r", "bob", "c2", protocol.ChangeEdit, 1, "as moderator")
		r.Change.Moderator = true // a moderator deletes, never edits
		refused(t, "a moderator edits", one(t, log, c, r), history.ErrNotSender)
		refused(t, "bob deletes alice's message", one(t, log, c, change("r", "bob", "c3", protocol.ChangeDelete, 1, "")), history.ErrNotSender)
		// Nothing was stored: the next message is 2, alice's text stays.
		if r := one(t, log, c, req("r", "bob", "m2", "next")); r.Msg.Seq != 2 {
			t.Fatalf("after refusals the next message is %d, want 2", r.Msg.Seq)
		}
		if _, head, err := log.Bounds(ctx, "r"); err != nil || head != 2 {
			t.Fatalf("head %d, %v; want 2", head, err)
		}
		msgs, _ := log.Since(ctx, "r", 0, 10)
		if len(msgs) != 2 || msgs[0].Text != "alice's" || msgs[0].Edited != 0 {
			t.Fatalf("after refused changes: %+v", msgs)
		}
		// A refused change may be sent again (by its id) once allowed:
		// nothing was recorded under it.
		refused(t, "bob again", one(t, log, c, change("r", "bob", "c1", protocol.ChangeEdit, 1, "x")), history.ErrNotSender)
	})

	t.Run("TargetsMustBeMessages", func(t *testing.T) {
		c := newCollector()
		log := open(t, c.sink)
		one(t, log, c, req("r", "alice", "m1", "one"))
		applied(t, "react", one(t, log, c, change("r", "bob", "c1", protocol.ChangeReact, 1, thumbs)), 2, protocol.ChangeReact, 1)
		for _, tc := range []struct {
			what   string
			room   string
			target uint64
		}{{"no message 0", "r", 0}, {"past the head", "r", 3}, {"far past the head", "r", 1 << 40},
			{"a change entry", "r", 2}, {"another room", "other", 1}} {
			for _, kind := range []protocol.ChangeKind{protocol.ChangeEdit, protocol.ChangeDelete, protocol.ChangeReact, protocol.ChangeUnreact} {
				text := map[protocol.ChangeKind]string{protocol.ChangeEdit: "x", protocol.ChangeReact: thumbs, protocol.ChangeUnreact: thumbs}[kind]
				r := one(t, log, c, change(tc.room, "alice", fmt.Sprint(tc.what, kind), kind, tc.target, text))
				refused(t, fmt.Sprintf("%v of %s", kind, tc.what), r, history.ErrNoMessage)
			}
		}
		if _, head, _ := log.Bounds(ctx, "r"); head != 2 {
			t.Fatalf("head %d after refused changes, want 2", head)
		}
	})

	t.Run("DeleteRemovesTheText", func(t *testing.T) {
		c := newCollector()
		log := open(t, c.sink)
		one(t, log, c, req("r", "alice", "m1", "my password is hunter2"))
		one(t, log, c, req("r", "bob", "m2", "oops"))
		applied(t, "react", one(t, log, c, change("r", "bob", "c1", protocol.ChangeReact, 1, party)), 3, protocol.ChangeReact, 1)
		r := one(t, log, c, change("r", "ALICE", "c2", protocol.ChangeDelete, 1, ""))
		st := applied(t, "delete", r, 4, protocol.ChangeDelete, 1)
		if st.Text != "" || st.Edited != r.Msg.Time || len(st.Reactions) != 0 || st.Sender != "alice" {
			t.Fatalf("deleted state %+v: want no text, no reactions, edited at the deletion", st)
		}
		// An operator deletes another name's message.
		mod := change("r", "carol", "c3", protocol.ChangeDelete, 2, "")
		mod.Change.Moderator = true
		if st := applied(t, "moderator's delete", one(t, log, c, mod), 5, protocol.ChangeDelete, 2); st.Text != "" || st.Sender != "bob" {
			t.Fatalf("state after the moderator's delete: %+v", st)
		}
		// A deleted message takes no more changes.
		for i, kind := range []protocol.ChangeKind{protocol.ChangeEdit, protocol.ChangeDelete, protocol.ChangeReact, protocol.ChangeUnreact} {
			text := map[protocol.ChangeKind]string{protocol.ChangeEdit: "back", protocol.ChangeReact: thumbs, protocol.ChangeUnreact: party}[kind]
			refused(t, fmt.Sprintf("%v of a deleted message", kind), one(t, log, c, change("r", "alice", fmt.Sprint("d", i), kind, 1, text)), history.ErrNoMessage)
		}
		// The text is gone from every read, and from a re-send's answer.
		for name, read := range map[string]func() ([]protocol.Msg, error){
			"Since":  func() ([]protocol.Msg, error) { return log.Since(ctx, "r", 0, 10) },
			"Last":   func() ([]protocol.Msg, error) { return log.Last(ctx, "r", 10) },
			"Before": func() ([]protocol.Msg, error) { return log.Before(ctx, "r", 100, 10) },
		} {
			msgs, err := read()
			if err != nil || len(msgs) != 5 {
				t.Fatalf("%s: %d entries, %v", name, len(msgs), err)
			}
			for _, m := range msgs {
				if m.Text != "" || len(m.Reactions) != 0 {
					t.Fatalf("%s: %+v still has text or reactions", name, m)
				}
				if m.Change != nil && (m.Change.State == nil || m.Change.State.Text != "") {
					t.Fatalf("%s: change entry %d reads state %+v", name, m.Seq, m.Change.State)
				}
			}
			if msgs[0].Edited == 0 || msgs[1].Edited == 0 {
				t.Fatalf("%s: deleted messages without their deletion time: %+v", name, msgs[:2])
			}
		}
		dup := one(t, log, c, req("r", "alice", "m1", "my password is hunter2"))
		if !dup.Duplicate || dup.Msg.Seq != 1 || dup.Msg.Text != "" {
			t.Fatalf("re-send of the deleted message: %+v, want the duplicate of seq 1 without text", dup)
		}
	})

	t.Run("ReactionsSetAndUnset", func(t *testing.T) {
		c := newCollector()
		log := open(t, c.sink)
		one(t, log, c, req("r", "alice", "m1", "lunch?"))
		steps := []struct {
			sender string
			kind   protocol.ChangeKind
			emoji  string
			want   []protocol.Reaction
		}{
			{"bob", protocol.ChangeReact, heart, reactions(heart, []string{"bob"})},
			{"carol", protocol.ChangeReact, thumbs, reactions(thumbs, []string{"carol"}, heart, []string{"bob"})},
			{"alice", protocol.ChangeReact, thumbs, reactions(thumbs, []string{"carol", "alice"}, heart, []string{"bob"})},
			// Set, not toggled: again is the same.
			{"Carol", protocol.ChangeReact, thumbs, reactions(thumbs, []string{"carol", "alice"}, heart, []string{"bob"})},
			{"CAROL", protocol.ChangeUnreact, thumbs, reactions(thumbs, []string{"alice"}, heart, []string{"bob"})},
			{"carol", protocol.ChangeUnreact, thumbs, reactions(thumbs, []string{"alice"}, heart, []string{"bob"})},
			{"dave", protocol.ChangeUnreact, heart, reactions(thumbs, []string{"alice"}, heart, []string{"bob"})},
			// Back again: the newest name comes last.
			{"Carol", protocol.ChangeReact, thumbs, reactions(thumbs, []string{"alice", "Carol"}, heart, []string{"bob"})},
			{"bob", protocol.ChangeUnreact, heart, reactions(thumbs, []string{"alice", "Carol"})},
			{"bob", protocol.ChangeReact, party, reactions(thumbs, []string{"alice", "Carol"}, party, []string{"bob"})},
		}
		for i, s := range steps {
			r := one(t, log, c, change("r", s.sender, fmt.Sprint("c", i), s.kind, 1, s.emoji))
			st := applied(t, fmt.Sprint("step ", i), r, uint64(i+2), s.kind, 1)
			if r.Msg.Change.Emoji != s.emoji {
				t.Fatalf("step %d: entry's emoji %q, want %q", i, r.Msg.Change.Emoji, s.emoji)
			}
			if !sameReactions(st.Reactions, s.want) || st.Text != "lunch?" || st.Edited != 0 {
				t.Fatalf("step %d (%s %v %s): state %+v, want reactions %+v", i, s.sender, s.kind, s.emoji, st, s.want)
			}
		}
		msgs, err := log.Since(ctx, "r", 0, 100)
		if err != nil || len(msgs) != len(steps)+1 {
			t.Fatalf("Since: %d, %v", len(msgs), err)
		}
		final := steps[len(steps)-1].want
		if !sameReactions(msgs[0].Reactions, final) {
			t.Fatalf("read reactions %+v, want %+v", msgs[0].Reactions, final)
		}
		for _, m := range msgs[1:] {
			if m.Change == nil || m.Change.State == nil || !sameReactions(m.Change.State.Reactions, final) {
				t.Fatalf("change entry %+v: want the final state", m)
			}
		}
	})

	t.Run("ReactionNamesAreBounded", func(t *testing.T) {
		c := newCollector()
		log := open(t, c.sink)
		one(t, log, c, req("r", "alice", "m1", "vote"))
		n := protocol.MaxReactionNames + 7
		for i := range n {
			appendAll(t, log, change("r", fmt.Sprint("user", i), "c", protocol.ChangeReact, 1, thumbs))
		}
		c.wait(t, n+1)
		msgs, err := log.Last(ctx, "r", 1)
		if err != nil || len(msgs) != 1 || msgs[0].Change == nil {
			t.Fatalf("Last: %+v, %v", msgs, err)
		}
		st := msgs[0].Change.State
		if st == nil || len(st.Reactions) != 1 || st.Reactions[0].Count != uint64(n) || len(st.Reactions[0].Names) != protocol.MaxReactionNames {
			t.Fatalf("state %+v: want %d reactions listing %d names", st, n, protocol.MaxReactionNames)
		}
		for i, name := range st.Reactions[0].Names {
			if name != fmt.Sprint("user", i) {
				t.Fatalf("name %d is %s: want the oldest first", i, name)
			}
		}
	})

	t.Run("ReSentChangeIsNotAppliedTwice", func(t *testing.T) {
		c := newCollector()
		log := open(t, c.sink)
		one(t, log, c, req("r", "alice", "m1", "hello"))
		first := one(t, log, c, change("r", "bob", "c1", protocol.ChangeReact, 1, thumbs))
		applied(t, "react", first, 2, protocol.ChangeReact, 1)
		applied(t, "unreact", one(t, log, c, change("r", "bob", "c2", protocol.ChangeUnreact, 1, thumbs)), 3, protocol.ChangeUnreact, 1)
		// The react comes again (a client's outbox after a reconnect):
		// the first entry answers, and the reaction stays off.
		dup := one(t, log, c, change("r", "Bob", "c1", protocol.ChangeReact, 1, thumbs))
		if !dup.Duplicate || dup.Err != nil || dup.Msg.Seq != 2 || dup.Msg.Change == nil || dup.Msg.Change.Kind != protocol.ChangeReact {
			t.Fatalf("re-sent change: %+v, want the duplicate of seq 2", dup)
		}
		if st := dup.Msg.Change.State; st == nil || len(st.Reactions) != 0 {
			t.Fatalf("re-sent change's state %+v: want the target now, without the reaction", st)
		}
		// So is an edit, in one batch with its re-send.
		appendAll(t, log, change("r", "alice", "e1", protocol.ChangeEdit, 1, "hello!"), change("r", "alice", "e1", protocol.ChangeEdit, 1, "hello!"))
		rs := c.wait(t, 6)[4:]
		applied(t, "edit", rs[0], 4, protocol.ChangeEdit, 1)
		if !rs[1].Duplicate || rs[1].Msg.Seq != 4 {
			t.Fatalf("edit re-sent in the same batch: %+v", rs[1])
		}
		if _, head, _ := log.Bounds(ctx, "r"); head != 4 {
			t.Fatalf("head %d, want 4", head)
		}
	})

	t.Run("ReplyIsStored", func(t *testing.T) {
		c := newCollector()
		log := open(t, c.sink)
		one(t, log, c, req("r", "alice", "m1", "question"))
		r := req("r", "bob", "m2", "answer")
		r.Reply = 1
		if res := one(t, log, c, r); res.Msg.Reply != 1 || res.Err != nil {
			t.Fatalf("reply: %+v", res)
		}
		dup := req("r", "bob", "m2", "answer")
		dup.Reply = 1
		if res := one(t, log, c, dup); !res.Duplicate || res.Msg.Reply != 1 {
			t.Fatalf("re-sent reply: %+v", res)
		}
		msgs, err := log.Since(ctx, "r", 0, 10)
		if err != nil || len(msgs) != 2 || msgs[0].Reply != 0 || msgs[1].Reply != 1 {
			t.Fatalf("read: %+v, %v", msgs, err)
		}
		// An edit keeps what the message answers.
		st := applied(t, "edit of a reply", one(t, log, c, change("r", "bob", "c1", protocol.ChangeEdit, 2, "better answer")), 3, protocol.ChangeEdit, 2)
		if st.Reply != 1 {
			t.Fatalf("edited reply: %+v", st)
		}
	})

	t.Run("ChangeEntriesInEveryRead", func(t *testing.T) {
		c := newCollector()
		log := open(t, c.sink)
		for i := range 6 {
			one(t, log, c, req("r", "alice", fmt.Sprint("m", i), fmt.Sprint("text ", i)))
		}
		// 7: edit of 2, 8: react to 6, 9: delete of 3, 10: message
		applied(t, "edit", one(t, log, c, change("r", "alice", "c1", protocol.ChangeEdit, 2, "new 2")), 7, protocol.ChangeEdit, 2)
		applied(t, "react", one(t, log, c, change("r", "bob", "c2", protocol.ChangeReact, 6, heart)), 8, protocol.ChangeReact, 6)
		applied(t, "delete", one(t, log, c, change("r", "alice", "c3", protocol.ChangeDelete, 3, "")), 9, protocol.ChangeDelete, 3)
		one(t, log, c, req("r", "alice", "m10", "text 10"))
		check := func(what string, msgs []protocol.Msg, err error, from, to uint64) {
			t.Helper()
			if err != nil || seqsOf(msgs) != fmt.Sprint(span(from, to)) {
				t.Fatalf("%s: %v, %v; want %d..%d", what, seqsOf(msgs), err, from, to)
			}
			for _, m := range msgs {
				want := map[uint64]struct {
					kind   protocol.ChangeKind
					target uint64
					text   string
				}{7: {protocol.ChangeEdit, 2, "new 2"}, 8: {protocol.ChangeReact, 6, "text 5"}, 9: {protocol.ChangeDelete, 3, ""}}[m.Seq]
				switch {
				case want.kind != 0:
					if m.Change == nil || m.Change.Kind != want.kind || m.Change.Target != want.target ||
						m.Change.State == nil || m.Change.State.Text != want.text || m.Change.State.Seq != want.target {
						t.Fatalf("%s: entry %d: %+v (change %+v)", what, m.Seq, m, m.Change)
					}
				case m.Change != nil:
					t.Fatalf("%s: message %d read as a change: %+v", what, m.Seq, m.Change)
				}
			}
		}
		msgs, err := log.Since(ctx, "r", 6, 2)
		check("Since(6, 2)", msgs, err, 7, 8)
		msgs, err = log.Since(ctx, "r", 8, 100)
		check("Since(8)", msgs, err, 9, 10)
		msgs, err = log.Before(ctx, "r", 10, 3)
		check("Before(10, 3)", msgs, err, 7, 9)
		msgs, err = log.Last(ctx, "r", 4)
		check("Last(4)", msgs, err, 7, 10)
		if m := msgs[1]; m.Change.Emoji != heart || m.Change.State.Reactions[0].Names[0] != "bob" {
			t.Fatalf("read reaction entry: %+v, state %+v", m.Change, m.Change.State)
		}
		msgs, err = log.Since(ctx, "r", 0, 6)
		check("Since(0, 6)", msgs, err, 1, 6)
		if msgs[1].Text != "new 2" || msgs[1].Edited == 0 || msgs[2].Text != "" || msgs[2].Edited == 0 ||
			len(msgs[5].Reactions) != 1 || msgs[5].Reactions[0].Emoji != heart {
			t.Fatalf("messages with their changes applied: %+v", msgs)
		}
	})
}

func seqsOf(msgs []protocol.Msg) string {
	s := []uint64{}
	for _, m := range msgs {
		s = append(s, m.Seq)
	}
	return fmt.Sprint(s)
}

func span(from, to uint64) []uint64 {
	s := []uint64{}
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

// laterMillis waits until the wall clock has passed the millisecond t,
// so that what is stored next has a later time than t. Time passing is
// what the search's paging by time needs; it takes a millisecond or two.
func laterMillis(t uint64) {
	for uint64(time.Now().UnixMilli()) <= t {
		time.Sleep(time.Millisecond)
	}
}

// runSearch checks a Searcher's semantics on a log.
func runSearch(t *testing.T, open Opener) {
	ctx := context.Background()
	searcher := func(t *testing.T, log history.Log) history.Searcher {
		s, ok := log.(history.Searcher)
		if !ok {
			t.Fatalf("%T is not a history.Searcher", log)
		}
		return s
	}
	// store appends the texts to room one by one, each at a later
	// millisecond than the one before, and returns their results.
	type posted struct {
		room, sender, text string
	}
	store := func(t *testing.T, log history.Log, c *collector, ps []posted) []history.Result {
		var out []history.Result
		for i, p := range ps {
			r := one(t, log, c, req(p.room, p.sender, fmt.Sprint("s", i), p.text))
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			out = append(out, r)
			laterMillis(r.Msg.Time)
		}
		return out
	}
	search := func(t *testing.T, s history.Searcher, q history.Query) ([]protocol.Hit, bool) {
		t.Helper()
		hits, more, err := s.Search(ctx, q)
		if err != nil {
			t.Fatalf("Search(%+v): %v", q, err)
		}
		for i := 1; i < len(hits); i++ {
			if hits[i].Time > hits[i-1].Time {
				t.Fatalf("Search(%+v): hits not newest first: %+v", q, hits)
			}
		}
		return hits, more
	}
	ids := func(hits []protocol.Hit) string {
		var s []string
		for _, h := range hits {
			s = append(s, fmt.Sprintf("%s/%d", h.Room, h.Seq))
		}
		return fmt.Sprint(s)
	}

	t.Run("SearchWordsInScope", func(t *testing.T) {
		c := newCollector()
		log := open(t, c.sink)
		s := searcher(t, log)
		rs := store(t, log, c, []posted{
			{"a", "alice", "Hello world"},              // a/1
			{"b", "bob", "hello from b"},               // b/1
			{"c", "carol", "hello from c, not yours"},  // c/1
			{"a", "bob", "world peace"},                // a/2
			{"a", "alice", "HELLO there, worldly one"}, // a/3
			{"a", "alice", "helicopter"},               // a/4
		})
		hits, more := search(t, s, history.Query{Rooms: []string{"a", "b"}, Text: "hello"})
		if ids(hits) != "[a/3 b/1 a/1]" || more {
			t.Fatalf("hello in a and b: %s more=%v, want [a/3 b/1 a/1]", ids(hits), more)
		}
		h := hits[2]
		if h.Time != rs[0].Msg.Time || h.Sender != "alice" || h.Text != "Hello world" ||
			!slices.Equal(h.Matches, []protocol.Span{{Start: 0, End: 5}}) {
			t.Fatalf("hit %+v", h)
		}
		// Every word, in any order, case aside; the last one a prefix.
		for q, want := range map[string]string{
			"world hello":  "[a/1]",
			"WORLD":        "[a/3 a/2 a/1]", // the last word is a prefix: worldly
			"hello wor":    "[a/3 a/1]",
			"hel":          "[a/4 a/3 b/1 a/1]",
			"wor hello":    "[]", // only the last word is a prefix
			"hello w":      "[]", // of two characters or more: w is a word of its own
			"hello from":   "[b/1]",
			"peace world":  "[a/2]",
			"absent hello": "[]",
		} {
			if hits, _ := search(t, s, history.Query{Rooms: []string{"a", "b"}, Text: q}); ids(hits) != want && !(want == "[]" && len(hits) == 0) {
				t.Errorf("%q: %s, want %s", q, ids(hits), want)
			}
		}
		hits, _ = search(t, s, history.Query{Rooms: []string{"a"}, Text: "hello wor"})
		if !slices.Equal(hits[0].Matches, []protocol.Span{{Start: 0, End: 5}, {Start: 13, End: 20}}) {
			t.Fatalf("matches of 'hello wor' in %q: %+v", hits[0].Text, hits[0].Matches)
		}
		// Rooms out of scope never appear; no rooms, no hits.
		if hits, _ := search(t, s, history.Query{Rooms: []string{"c"}, Text: "yours"}); ids(hits) != "[c/1]" {
			t.Fatalf("yours in c: %s", ids(hits))
		}
		if hits, _ := search(t, s, history.Query{Rooms: []string{"a", "b", "nowhere"}, Text: "yours"}); len(hits) != 0 {
			t.Fatalf("yours outside c: %s", ids(hits))
		}
		if hits, _ := search(t, s, history.Query{Text: "hello"}); len(hits) != 0 {
			t.Fatalf("no rooms: %s", ids(hits))
		}
	})

	t.Run("SearchFoldsAccentsAndCountsBytes", func(t *testing.T) {
		c := newCollector()
		log := open(t, c.sink)
		s := searcher(t, log)
		store(t, log, c, []posted{
			{"r", "zoë", "Grüße aus Köln, köln und KÖLN!"},
			{"r", "zoë", "un café crème 🎉 Café"},
			{"r", "zoë", "Привет мир"},
		})
		for _, tc := range []struct {
			q    string
			seq  uint64
			want []protocol.Span
		}{
			{"koln", 1, []protocol.Span{{Start: 12, End: 17}, {Start: 19, End: 24}, {Start: 29, End: 34}}},
			{"grusse", 0, nil}, // ß is not ss: not a diacritic
			{"GRÜSSE", 0, nil},
			{"grüße", 1, []protocol.Span{{Start: 0, End: 7}}},
			{"cafe creme", 2, []protocol.Span{{Start: 3, End: 8}, {Start: 9, End: 15}, {Start: 21, End: 26}}},
			{"caf", 2, []protocol.Span{{Start: 3, End: 8}, {Start: 21, End: 26}}},
			{"мир", 3, []protocol.Span{{Start: 13, End: 19}}},
			{"прив", 3, []protocol.Span{{Start: 0, End: 12}}},
		} {
			hits, _ := search(t, s, history.Query{Rooms: []string{"r"}, Text: tc.q})
			if tc.seq == 0 {
				if len(hits) != 0 {
					t.Errorf("%q: %s, want nothing", tc.q, ids(hits))
				}
				continue
			}
			if len(hits) != 1 || hits[0].Seq != tc.seq || !slices.Equal(hits[0].Matches, tc.want) {
				t.Errorf("%q: %+v, want seq %d with matches %+v", tc.q, hits, tc.seq, tc.want)
				continue
			}
			for _, m := range hits[0].Matches {
				t.Logf("%q matches %q", tc.q, hits[0].Text[m.Start:m.End])
			}
		}
	})

	t.Run("SearchSkipsDeletedAndOldText", func(t *testing.T) {
		c := newCollector()
		log := open(t, c.sink)
		s := searcher(t, log)
		store(t, log, c, []posted{
			{"r", "alice", "the launch code is banana"},
			{"r", "alice", "meet at noon"},
			{"r", "bob", "banana bread recipe"},
		})
		applied(t, "delete", one(t, log, c, change("r", "alice", "c1", protocol.ChangeDelete, 1, "")), 4, protocol.ChangeDelete, 1)
		applied(t, "edit", one(t, log, c, change("r", "alice", "c2", protocol.ChangeEdit, 2, "meet at one")), 5, protocol.ChangeEdit, 2)
		mod := change("r", "carol", "c3", protocol.ChangeDelete, 3, "")
		mod.Change.Moderator = true
		applied(t, "moderator's delete", one(t, log, c, mod), 6, protocol.ChangeDelete, 3)
		for _, q := range []string{"banana", "launch", "code", "noon", "bread", "recipe"} {
			if hits, _ := search(t, s, history.Query{Rooms: []string{"r"}, Text: q}); len(hits) != 0 {
				t.Errorf("%q finds %+v: deleted or replaced text", q, hits)
			}
		}
		hits, _ := search(t, s, history.Query{Rooms: []string{"r"}, Text: "one"})
		if len(hits) != 1 || hits[0].Seq != 2 || hits[0].Text != "meet at one" || !slices.Equal(hits[0].Matches, []protocol.Span{{Start: 8, End: 11}}) {
			t.Fatalf("the edited text: %+v", hits)
		}
		if hits, _ := search(t, s, history.Query{Rooms: []string{"r"}, Text: "meet"}); len(hits) != 1 || hits[0].Seq != 2 {
			t.Fatalf("meet: %+v", hits)
		}
	})

	t.Run("SearchPagesBackByTime", func(t *testing.T) {
		c := newCollector()
		log := open(t, c.sink)
		s := searcher(t, log)
		var ps []posted
		for i := range 7 {
			ps = append(ps, posted{[]string{"a", "b"}[i%2], "alice", fmt.Sprint("note number ", i)})
			ps = append(ps, posted{"a", "bob", "unrelated"})
		}
		rs := store(t, log, c, ps)
		var got []string
		var before uint64
		for page := 0; ; page++ {
			hits, more := search(t, s, history.Query{Rooms: []string{"a", "b"}, Text: "note", Before: before, Limit: 3})
			for _, h := range hits {
				got = append(got, h.Text)
				if before != 0 && h.Time >= before {
					t.Fatalf("page %d: hit at %d, not before %d", page, h.Time, before)
				}
			}
			if !more {
				if len(hits) > 3 {
					t.Fatalf("page %d: %d hits over the limit", page, len(hits))
				}
				break
			}
			if len(hits) != 3 || page > 5 {
				t.Fatalf("page %d: %d hits with more", page, len(hits))
			}
			before = hits[len(hits)-1].Time
		}
		want := []string{}
		for i := 6; i >= 0; i-- {
			want = append(want, fmt.Sprint("note number ", i))
		}
		if !slices.Equal(got, want) {
			t.Fatalf("paged back through %q, want %q", got, want)
		}
		// Before is exclusive: the first message's time finds nothing.
		if hits, more := search(t, s, history.Query{Rooms: []string{"a", "b"}, Text: "note", Before: rs[0].Msg.Time}); len(hits) != 0 || more {
			t.Fatalf("before the first: %+v, %v", hits, more)
		}
		hits, more := search(t, s, history.Query{Rooms: []string{"a", "b"}, Text: "note", Before: rs[2].Msg.Time + 1})
		if len(hits) != 2 || more || hits[0].Text != "note number 1" {
			t.Fatalf("up to the second note: %+v, %v", hits, more)
		}
		// Limit 0 is the default, and no more than the maximum come.
		for i := range history.MaxSearchLimit + 5 {
			appendAll(t, log, req("many", "carol", fmt.Sprint("n", i), "needle"))
		}
		c.wait(t, len(rs)+history.MaxSearchLimit+5)
		if hits, more := search(t, s, history.Query{Rooms: []string{"many"}, Text: "needle"}); len(hits) != history.DefaultSearchLimit || !more {
			t.Fatalf("limit 0: %d hits, more=%v; want %d, more", len(hits), more, history.DefaultSearchLimit)
		}
		if hits, more := search(t, s, history.Query{Rooms: []string{"many"}, Text: "needle", Limit: 1000}); len(hits) != history.MaxSearchLimit || !more {
			t.Fatalf("limit 1000: %d hits, more=%v; want %d, more", len(hits), more, history.MaxSearchLimit)
		}
		hits, _ = search(t, s, history.Query{Rooms: []string{"many"}, Text: "needle", Limit: 3})
		if len(hits) != 3 || hits[0].Seq != uint64(history.MaxSearchLimit+5) || hits[2].Seq != uint64(history.MaxSearchLimit+3) {
			t.Fatalf("the newest of one millisecond's messages come first: %s", ids(hits))
		}
	})

	t.Run("SearchQueriesAreWordsOnly", func(t *testing.T) {
		c := newCollector()
		log := open(t, c.sink)
		s := searcher(t, log)
		store(t, log, c, []posted{{"r", "alice", "alpha OR beta NEAR gamma"}, {"r", "alice", "alpha"}})
		for _, q := range []string{"", "   ", "!?", "🎉", "-", "\"", "*"} {
			if _, _, err := s.Search(ctx, history.Query{Rooms: []string{"r"}, Text: q}); !errors.Is(err, history.ErrBadQuery) {
				t.Errorf("Search(%q) = %v, want ErrBadQuery", q, err)
			}
		}
		// What search engines read as syntax is words here.
		for q, want := range map[string]int{
			`alpha OR gamma`:     1,
			`"alpha" OR "gamma"`: 1,
			`alpha*`:             2,
			`NEAR(alpha gamma)`:  1,
			`text:alpha`:         0, // "text" is a word to find
			`-beta alpha`:        1,
			`alpha AND NOT beta`: 0,
			`(alpha`:             2,
			`alpha" OR "x`:       0,
			`^alpha`:             2,
			`alpha + {beta}`:     1,
			"alpha\x00beta":      1,
			`'alpha'`:            2,
		} {
			hits, _, err := s.Search(ctx, history.Query{Rooms: []string{"r"}, Text: q})
			if err != nil || len(hits) != want {
				t.Errorf("Search(%q) = %d hits, %v; want %d", q, len(hits), err, want)
			}
		}
	})
}
