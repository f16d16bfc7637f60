package hub

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"chat/protocol"
	"chat/server/internal/broker"
	"chat/server/internal/history"
	"chat/server/internal/inbox"
)

// updates returns the UPDATE frames among ms.
func updates(ms []protocol.Message) []*protocol.Update {
	var out []*protocol.Update
	for _, m := range ms {
		if u, ok := m.(*protocol.Update); ok {
			out = append(out, u)
		}
	}
	return out
}

// refusal waits for an ERROR on m and returns it.
func refusal(t *testing.T, m *fakeMember, what string) *protocol.Error {
	t.Helper()
	got := m.waitFor(t, what, func(ms []protocol.Message) bool { return count[*protocol.Error](ms) > 0 })
	for _, x := range got {
		if e, ok := x.(*protocol.Error); ok {
			return e
		}
	}
	panic("unreachable")
}

// asError turns what Change or Send returned into the ERROR it is.
func asError(t *testing.T, err error) *protocol.Error {
	t.Helper()
	var e *protocol.Error
	if !errors.As(err, &e) {
		t.Fatalf("want an ERROR, got %v", err)
	}
	return e
}

// TestChangesLiveLateAndResumed: an edit and a reaction reach every
// member as UPDATE with the target's new state; a late joiner gets the
// message in its final state (the ring rewrote it) and the UPDATEs
// without state; a resumer from before the changes gets the final state
// once, on the last change, whether the replay comes from the ring or
// from the store.
func TestChangesLiveLateAndResumed(t *testing.T) {
	for _, fromLog := range []bool{false, true} {
		t.Run(fmt.Sprint("fromLog=", fromLog), func(t *testing.T) {
			cfg := Config{}
			if fromLog {
				cfg = Config{History: 2, RingSize: 2}
			}
			h, _ := newHub(t, cfg)
			alice, bob := newMember(), newMember()
			ac, bc := h.Connect(alice), h.Connect(bob)
			mustJoin(t, ac, &protocol.Join{Room: "general", Name: "alice", Secret: "a"})
			mustJoin(t, bc, &protocol.Join{Room: "general", Name: "bob", Secret: "b"})
			if err := ac.Send("general", "m1", "hello wrld"); err != nil {
				t.Fatal(err)
			}
			// Replied to once acknowledged, as a client does.
			alice.waitFor(t, "the ACK", func(ms []protocol.Message) bool { return count[*protocol.Ack](ms) == 1 })
			if err := ac.SendReply("general", "m2", "and a reply", 1); err != nil {
				t.Fatal(err)
			}
			bob.waitFor(t, "two messages", func(ms []protocol.Message) bool { return len(msgs(ms)) == 2 })
			if m := msgs(bob.decoded(t))[1]; m.Reply != 1 {
				t.Fatalf("the reply arrived as %+v", m)
			}
			for i, ch := range []protocol.Change{
				{Room: "general", Kind: protocol.ChangeEdit, Target: 1, ID: "e1", Text: "hello wold"},
				{Room: "general", Kind: protocol.ChangeEdit, Target: 1, ID: "e2", Text: "hello world"},
			} {
				if err := ac.Change(&ch); err != nil {
					t.Fatalf("change %d: %v", i, err)
				}
			}
			if err := bc.Change(&protocol.Change{Room: "general", Kind: protocol.ChangeReact, Target: 1, ID: "r1", Text: "👍"}); err != nil {
				t.Fatal(err)
			}
			got := bob.waitFor(t, "three UPDATEs", func(ms []protocol.Message) bool { return len(updates(ms)) == 3 })
			us := updates(got)
			if u := us[1]; u.Seq != 4 || u.Kind != protocol.ChangeEdit || u.Actor != "alice" || u.Target != 1 ||
				u.State == nil || u.State.Text != "hello world" || u.State.Edited == 0 {
				t.Fatalf("the second edit's UPDATE: %+v", u)
			}
			if u := us[2]; u.Emoji != "👍" || u.State == nil || len(u.State.Reactions) != 1 ||
				u.State.Reactions[0].Count != 1 || u.State.Reactions[0].Names[0] != "bob" || u.State.Text != "hello world" {
				t.Fatalf("the reaction's UPDATE: %+v", u)
			}
			// bob's ACK of its reaction carries the change's seq.
			var ack *protocol.Ack
			for _, m := range got {
				if a, ok := m.(*protocol.Ack); ok && a.ID == "r1" {
					ack = a
				}
			}
			if ack == nil || ack.Seq != 5 {
				t.Fatalf("bob's ACK of the reaction: %+v", ack)
			}

			// A late joiner with the whole history (History covers it
			// unless fromLog, where the resume below reads the store).
			late := newMember()
			mustJoin(t, h.Connect(late), &protocol.Join{Room: "general", Name: "late", Resume: true, After: 0})
			got = late.waitFor(t, "the replay", func(ms []protocol.Message) bool { return len(updates(ms)) == 3 })
			m := msgs(got)[0]
			if m.Seq != 1 || m.Text != "hello world" || m.Edited == 0 || len(m.Reactions) != 1 || m.Reactions[0].Emoji != "👍" {
				t.Fatalf("the late joiner's message 1: %+v", m)
			}
			for _, u := range updates(got) {
				if u.State != nil {
					t.Fatalf("an UPDATE of a replayed message carries its state: %+v", u)
				}
			}

			// A resumer that had seen both messages: only the last change
			// of message 1 carries its (final) state.
			res := newMember()
			mustJoin(t, h.Connect(res), &protocol.Join{Room: "general", Name: "res", Resume: true, After: 2})
			got = res.waitFor(t, "the resume", func(ms []protocol.Message) bool { return len(updates(ms)) == 3 })
			if n := len(msgs(got)); n != 0 {
				t.Fatalf("the resumer got %d messages", n)
			}
			us = updates(got)
			if us[0].State != nil || us[1].State != nil || us[2].State == nil ||
				us[2].State.Text != "hello world" || len(us[2].State.Reactions) != 1 {
				t.Fatalf("resumer's UPDATEs: %+v %+v %+v", us[0], us[1], us[2])
			}
		})
	}
}

// TestChangeRefusals: every refusal of a change is an ERROR that does
// not close, with the change's id, and nothing is stored.
func TestChangeRefusals(t *testing.T) {
	h, log := newHub(t, Config{})
	alice, bob, anon := newMember(), newMember(), newMember()
	ac, bc, nc := h.Connect(alice), h.Connect(bob), h.Connect(anon)
	mustJoin(t, ac, &protocol.Join{Room: "general", Name: "alice", Secret: "a"})
	mustJoin(t, bc, &protocol.Join{Room: "general", Name: "bob", Secret: "b"})
	mustJoin(t, nc, &protocol.Join{Room: "general", Name: "anon"})
	if err := ac.Send("general", "m1", "alice's"); err != nil {
		t.Fatal(err)
	}
	if err := nc.Send("general", "m2", "anon's"); err != nil {
		t.Fatal(err)
	}
	bob.waitFor(t, "two messages", func(ms []protocol.Message) bool { return len(msgs(ms)) == 2 })

	direct := []struct {
		what string
		c    *Conn
		ch   protocol.Change
		code protocol.ErrorCode
	}{
		{"an unknown kind", bc, protocol.Change{Kind: 9, Target: 1, ID: "x1"}, protocol.CodeInvalid},
		{"an empty edit", ac, protocol.Change{Kind: protocol.ChangeEdit, Target: 1, ID: "x2"}, protocol.CodeInvalid},
		{"a reaction not in the set", bc, protocol.Change{Kind: protocol.ChangeReact, Target: 1, ID: "x3", Text: "🦄"}, protocol.CodeInvalid},
		{"a target beyond the head", ac, protocol.Change{Kind: protocol.ChangeDelete, Target: 9, ID: "x4"}, protocol.CodeNotFound},
		{"target 0", ac, protocol.Change{Kind: protocol.ChangeDelete, ID: "x5"}, protocol.CodeNotFound},
		{"an edit by a name without a key", nc, protocol.Change{Kind: protocol.ChangeEdit, Target: 2, ID: "x6", Text: "mine"}, protocol.CodeForbidden},
	}
	for _, tc := range direct {
		tc.ch.Room = "general"
		e := asError(t, tc.c.Change(&tc.ch))
		if e.Code != tc.code || e.ID != tc.ch.ID || e.Room != "general" || e.Closing() {
			t.Errorf("%s: %+v, want %v with id %s", tc.what, e, tc.code, tc.ch.ID)
		}
	}
	// Refused by the store: bob edits and deletes alice's message.
	for _, ch := range []protocol.Change{
		{Room: "general", Kind: protocol.ChangeEdit, Target: 1, ID: "b1", Text: "bob was here"},
		{Room: "general", Kind: protocol.ChangeDelete, Target: 1, ID: "b2"},
	} {
		if err := bc.Change(&ch); err != nil {
			t.Fatal(err)
		}
	}
	got := bob.waitFor(t, "two refusals", func(ms []protocol.Message) bool { return count[*protocol.Error](ms) == 2 })
	var ids []string
	for _, m := range got {
		if e, ok := m.(*protocol.Error); ok {
			if e.Code != protocol.CodeForbidden || e.Closing() {
				t.Fatalf("refusal %+v", e)
			}
			ids = append(ids, e.ID)
		}
	}
	if fmt.Sprint(ids) != "[b1 b2]" {
		t.Fatalf("refusals' ids %v", ids)
	}
	// Deleted, then changed again: not found.
	if err := ac.Change(&protocol.Change{Room: "general", Kind: protocol.ChangeDelete, Target: 1, ID: "d1"}); err != nil {
		t.Fatal(err)
	}
	if err := ac.Change(&protocol.Change{Room: "general", Kind: protocol.ChangeEdit, Target: 1, ID: "d2", Text: "back"}); err != nil {
		t.Fatal(err)
	}
	if e := refusal(t, alice, "the edit of a deleted message"); e.Code != protocol.CodeNotFound || e.ID != "d2" {
		t.Fatalf("%+v", e)
	}
	// A change entry is no target, neither of a change nor of a reply.
	e := asError(t, ac.Change(&protocol.Change{Room: "general", Kind: protocol.ChangeReact, Target: 3, ID: "c1", Text: "👍"}))
	if e.Code != protocol.CodeNotFound || e.ID != "c1" {
		t.Fatalf("a reaction to a change entry: %+v", e)
	}
	if e := asError(t, ac.SendReply("general", "rp", "re", 3)); e.Code != protocol.CodeNotFound || e.ID != "rp" {
		t.Fatalf("a reply to a change entry: %+v", e)
	}
	if e := asError(t, ac.SendReply("general", "rp", "re", 99)); e.Code != protocol.CodeNotFound {
		t.Fatalf("a reply beyond the head: %+v", e)
	}
	all, _ := log.Since(t.Context(), "general", 0, 100)
	if len(all) != 3 || all[2].Change == nil || all[2].Change.Kind != protocol.ChangeDelete || all[0].Text != "" {
		t.Fatalf("the log holds %+v; want the two messages (the first deleted) and the delete", all)
	}
}

// TestOperatorDeletes: a room operator deletes another name's message with
// CHANGE (and a MODERATE delete does the same through the store); a
// muted name may not edit nor react but may delete its own.
func TestOperatorDeletes(t *testing.T) {
	h, _ := newHub(t, Config{Owners: openOwners{}})
	op, bob := newMember(), newMember()
	oc, bc := h.Connect(op), h.Connect(bob)
	mustJoin(t, oc, &protocol.Join{Room: "general", Name: "op", Secret: "o"}) // the first proven name: operator
	mustJoin(t, bc, &protocol.Join{Room: "general", Name: "bob", Secret: "b"})
	for i := range 3 {
		if err := bc.Send("general", fmt.Sprint("m", i), fmt.Sprint("bob's ", i)); err != nil {
			t.Fatal(err)
		}
	}
	op.waitFor(t, "bob's messages", func(ms []protocol.Message) bool { return len(msgs(ms)) == 3 })
	if err := oc.Change(&protocol.Change{Room: "general", Kind: protocol.ChangeDelete, Target: 1, ID: "del"}); err != nil {
		t.Fatal(err)
	}
	got := bob.waitFor(t, "the delete", func(ms []protocol.Message) bool { return len(updates(ms)) == 1 })
	if u := updates(got)[0]; u.Actor != "op" || u.Kind != protocol.ChangeDelete || u.State == nil || u.State.Text != "" || u.State.Sender != "bob" {
		t.Fatalf("%+v", u)
	}
	if e := oc.Moderate(&protocol.Moderate{Room: "general", Action: protocol.ModDelete, Seq: 2}); e != nil {
		t.Fatal(e)
	}
	got = bob.waitFor(t, "the MODERATE delete", func(ms []protocol.Message) bool { return len(updates(ms)) == 2 })
	if u := updates(got)[1]; u.Actor != "op" || u.Target != 2 || u.State == nil || u.State.Text != "" {
		t.Fatalf("%+v", u)
	}
	bob.waitFor(t, "its MODEVENT", func(ms []protocol.Message) bool { return count[*protocol.ModEvent](ms) == 1 })
	if e := oc.Moderate(&protocol.Moderate{Room: "general", Action: protocol.ModDelete, Seq: 2}); e == nil || e.Code != protocol.CodeNotFound {
		t.Fatalf("deleting again: %v", e)
	}

	if e := oc.Moderate(&protocol.Moderate{Room: "general", Action: protocol.ModMute, Target: "bob"}); e != nil {
		t.Fatal(e)
	}
	bob.waitFor(t, "the mute", func(ms []protocol.Message) bool { return count[*protocol.ModEvent](ms) == 2 })
	for _, ch := range []protocol.Change{
		{Room: "general", Kind: protocol.ChangeEdit, Target: 3, ID: "me", Text: "x"},
		{Room: "general", Kind: protocol.ChangeReact, Target: 3, ID: "mr", Text: "👍"},
	} {
		if e := asError(t, bc.Change(&ch)); e.Code != protocol.CodeMuted || e.ID != ch.ID {
			t.Fatalf("muted %v: %+v", ch.Kind, e)
		}
	}
	if e := asError(t, bc.Send("general", "ms", "hi")); e.Code != protocol.CodeMuted || e.ID != "ms" {
		t.Fatalf("muted SEND: %+v", e)
	}
	if err := bc.Change(&protocol.Change{Room: "general", Kind: protocol.ChangeDelete, Target: 3, ID: "md"}); err != nil {
		t.Fatalf("a muted name deleting its message: %v", err)
	}
	bob.waitFor(t, "its own delete", func(ms []protocol.Message) bool { return len(updates(ms)) == 3 })
}

// TestTypingReachesOthersOnly: IS-TYPING reaches the room's other names on
// every node, not the typist's own connections; a second TYPING within
// TypingEvery is dropped while a stop passes; above TypingMaxMembers
// JOINED says no-typing and nothing is forwarded.
func TestTypingReachesOthersOnly(t *testing.T) {
	store := newStore(t, func(sink history.Sink) (history.Log, error) { return history.NewMemory(sink), nil }, broker.LocalOptions{})
	// An hour between forwarded starts: the second TYPING is dropped
	// however slow the machine.
	cfg := Config{TypingMaxMembers: 3, TypingEvery: time.Hour}
	a, b := newNode(t, cfg, store), newNode(t, cfg, store)
	alice, alice2, bob := newMember(), newMember(), newMember()
	ac := a.Connect(alice)
	mustJoin(t, ac, &protocol.Join{Room: "general", Name: "alice", Secret: "a"})
	mustJoin(t, b.Connect(alice2), &protocol.Join{Room: "general", Name: "alice", Secret: "a"})
	bc := b.Connect(bob)
	mustJoin(t, bc, &protocol.Join{Room: "general", Name: "bob"})
	for _, stopped := range []bool{false, false, true} {
		if e := ac.Typing("general", stopped); e != nil {
			t.Fatal(e)
		}
	}
	// bob's typing, after alice's: when alice2 has it, alice's would
	// have come before.
	if e := bc.Typing("general", false); e != nil {
		t.Fatal(e)
	}
	got := bob.waitFor(t, "alice's start and stop", func(ms []protocol.Message) bool { return count[*protocol.IsTyping](ms) == 2 })
	var seen []string
	for _, m := range got {
		if it, ok := m.(*protocol.IsTyping); ok {
			seen = append(seen, fmt.Sprint(it.Name, " ", it.Stopped))
		}
	}
	if fmt.Sprint(seen) != "[alice false alice true]" {
		t.Fatalf("bob saw %v", seen)
	}
	got = alice2.waitFor(t, "bob's typing", func(ms []protocol.Message) bool { return count[*protocol.IsTyping](ms) == 1 })
	for _, m := range got {
		if it, ok := m.(*protocol.IsTyping); ok && it.Name != "bob" {
			t.Fatalf("alice's other device got %+v", it)
		}
	}
	if n := count[*protocol.IsTyping](alice.decoded(t)); n > 1 {
		t.Fatalf("alice got %d typing frames", n)
	}

	// Four names: above the size, typing is off.
	carol, dave := newMember(), newMember()
	mustJoin(t, a.Connect(carol), &protocol.Join{Room: "general", Name: "carol"})
	dc := a.Connect(dave)
	mustJoin(t, dc, &protocol.Join{Room: "general", Name: "dave"})
	joined := dave.waitFor(t, "JOINED", func(ms []protocol.Message) bool { return count[*protocol.Joined](ms) == 1 })[0].(*protocol.Joined)
	if joined.Modes&protocol.ModeNoTyping == 0 || joined.Count != 4 {
		t.Fatalf("JOINED of the fourth name: %+v", joined)
	}
	if e := dc.Typing("general", false); e != nil {
		t.Fatal(e)
	}
	// A message after dave's typing: in order through the same node, so
	// had it been forwarded carol would have it by then.
	if err := dc.Send("general", "x", "hi"); err != nil {
		t.Fatal(err)
	}
	carol.waitFor(t, "dave's message", func(ms []protocol.Message) bool { return len(msgs(ms)) == 1 })
	// (alice's, sent before carol joined, may still reach her: notes
	// are on their way meanwhile.)
	for _, m := range carol.decoded(t) {
		if it, ok := m.(*protocol.IsTyping); ok && it.Name == "dave" {
			t.Fatalf("carol got dave's typing in a room above the size: %+v", it)
		}
	}
}

// results waits for the n-th RESULTS (or an ERROR) on m.
func results(t *testing.T, m *fakeMember, n int) protocol.Message {
	t.Helper()
	got := m.waitFor(t, "RESULTS", func(ms []protocol.Message) bool {
		return count[*protocol.Results](ms)+count[*protocol.Error](ms) >= n
	})
	k := 0
	for _, x := range got {
		switch x.(type) {
		case *protocol.Results, *protocol.Error:
			if k++; k == n {
				return x
			}
		}
	}
	panic("unreachable")
}

// TestSearchScope: a search finds the rooms the connection joined and its
// name's direct messages, never another room nor a deleted message, and
// an edited message by its current text only; a room out of scope is
// forbidden, a search without words invalid, neither closing.
func TestSearchScope(t *testing.T) {
	var log *history.Memory
	store := newStore(t, func(sink history.Sink) (history.Log, error) {
		log = history.NewMemory(sink)
		return log, nil
	}, broker.LocalOptions{})
	heads := func() []protocol.Msg {
		last, _ := log.Last(t.Context(), "@alice@carol", 1)
		return last
	}
	h := newNode(t, Config{Owners: openOwners{}, Inbox: inbox.NewMemory(heads, 0)}, store)
	alice, bob, carol := newMember(), newMember(), newMember()
	ac, bc, cc := h.Connect(alice), h.Connect(bob), h.Connect(carol)
	mustJoin(t, ac, &protocol.Join{Room: "general", Name: "alice", Secret: "a"})
	mustJoin(t, bc, &protocol.Join{Room: "general", Name: "bob", Secret: "b"})
	mustJoin(t, bc, &protocol.Join{Room: "secret", Name: "bob", Secret: "b"})
	mustJoin(t, cc, &protocol.Join{Room: "@alice@carol", Name: "carol", Secret: "c"})
	for _, s := range []struct {
		c              *Conn
		room, id, text string
	}{
		{bc, "general", "g1", "apple pie for everyone"},
		{bc, "secret", "s1", "apple secret recipe"},
		{cc, "@alice@carol", "d1", "an apple from carol"},
		{bc, "general", "g2", "apple regrets"},
		{bc, "general", "g3", "apples and pears"},
	} {
		if err := s.c.Send(s.room, s.id, s.text); err != nil {
			t.Fatal(err)
		}
	}
	bob.waitFor(t, "bob's ACKs", func(ms []protocol.Message) bool { return count[*protocol.Ack](ms) == 4 })
	carol.waitFor(t, "carol's ACK", func(ms []protocol.Message) bool { return count[*protocol.Ack](ms) == 1 })
	for _, ch := range []protocol.Change{
		{Room: "general", Kind: protocol.ChangeDelete, Target: 2, ID: "x1"},
		{Room: "general", Kind: protocol.ChangeEdit, Target: 3, ID: "x2", Text: "bananas and pears"},
	} {
		if err := bc.Change(&ch); err != nil {
			t.Fatal(err)
		}
	}
	bob.waitFor(t, "the changes' ACKs", func(ms []protocol.Message) bool { return count[*protocol.Ack](ms) == 6 })
	if e := ac.Identify(&protocol.Identify{Name: "alice", Secret: "a"}); e != nil {
		t.Fatal(e)
	}

	if e := ac.Search(&protocol.Search{Query: "apple"}); e != nil {
		t.Fatal(e)
	}
	res, ok := results(t, alice, 1).(*protocol.Results)
	if !ok {
		t.Fatalf("search: %+v", res)
	}
	var found []string
	for _, hit := range res.Hits {
		found = append(found, fmt.Sprint(hit.Room, "/", hit.Seq))
	}
	slices.Sort(found) // the same millisecond: either order is newest first
	if fmt.Sprint(found) != "[@alice@carol/1 general/1]" || res.Query != "apple" {
		t.Fatalf("alice found %v (%+v), want the DM and general's first message", found, res)
	}
	hit := res.Hits[0]
	if hit.Room != "general" {
		hit = res.Hits[1]
	}
	if hit.Text != "apple pie for everyone" || len(hit.Matches) != 1 || hit.Matches[0] != (protocol.Span{Start: 0, End: 5}) {
		t.Fatalf("hit %+v", hit)
	}
	if e := ac.Search(&protocol.Search{Query: "bananas", Room: "GENERAL"}); e != nil {
		t.Fatal(e)
	}
	if res := results(t, alice, 2).(*protocol.Results); len(res.Hits) != 1 || res.Hits[0].Seq != 3 {
		t.Fatalf("the edited text: %+v", res)
	}
	if e := ac.Search(&protocol.Search{Query: "secret", Room: "secret"}); e == nil || e.Code != protocol.CodeForbidden || e.Closing() {
		t.Fatalf("a room not joined: %v", e)
	}
	if e := ac.Search(&protocol.Search{Query: "  "}); e == nil || e.Code != protocol.CodeInvalid || e.Closing() {
		t.Fatalf("an empty search: %v", e)
	}
	// Refused at once, in the order of the connection's frames, like
	// the empty one: no word in it.
	if e := ac.Search(&protocol.Search{Query: "!!"}); e == nil || e.Code != protocol.CodeInvalid || e.Closing() {
		t.Fatalf("a search without words: %v", e)
	}
}

// TestPageSkipsChanges: HISTORY pages hold messages only, in their state
// now; with Full they carry reply, edited and reactions.
func TestPageSkipsChanges(t *testing.T) {
	h, _ := newHub(t, Config{})
	alice := newMember()
	ac := h.Connect(alice)
	mustJoin(t, ac, &protocol.Join{Room: "general", Name: "alice", Secret: "a"})
	if err := ac.Send("general", "m1", "first"); err != nil {
		t.Fatal(err)
	}
	alice.waitFor(t, "the ACK", func(ms []protocol.Message) bool { return count[*protocol.Ack](ms) == 1 })
	if err := ac.SendReply("general", "m2", "second", 1); err != nil {
		t.Fatal(err)
	}
	alice.waitFor(t, "the second ACK", func(ms []protocol.Message) bool { return count[*protocol.Ack](ms) == 2 })
	if err := ac.Change(&protocol.Change{Room: "general", Kind: protocol.ChangeReact, Target: 1, ID: "r", Text: "🎉"}); err != nil {
		t.Fatal(err)
	}
	if err := ac.Change(&protocol.Change{Room: "general", Kind: protocol.ChangeEdit, Target: 2, ID: "e", Text: "second!"}); err != nil {
		t.Fatal(err)
	}
	alice.waitFor(t, "four ACKs", func(ms []protocol.Message) bool { return count[*protocol.Ack](ms) == 4 })
	for _, full := range []bool{false, true} {
		if e := ac.History(&protocol.History{Room: "general", Full: full}); e != nil {
			t.Fatal(e)
		}
	}
	got := alice.waitFor(t, "two PAGEs", func(ms []protocol.Message) bool { return count[*protocol.Page](ms) == 2 })
	var pages []*protocol.Page
	for _, m := range got {
		if p, ok := m.(*protocol.Page); ok {
			pages = append(pages, p)
		}
	}
	plain, full := pages[0], pages[1]
	if plain.Full || !plain.First || len(plain.Messages) != 2 || plain.Messages[1].Text != "second!" || plain.Messages[1].Reply != 0 {
		t.Fatalf("plain page %+v", plain)
	}
	if !full.Full || len(full.Messages) != 2 || full.Messages[1].Reply != 1 || full.Messages[1].Edited == 0 ||
		len(full.Messages[0].Reactions) != 1 || full.Messages[0].Reactions[0].Emoji != "🎉" {
		t.Fatalf("full page %+v", full)
	}
}

// TestTypingInARoomNotJoinedIsDropped: a TYPING that crosses a kick (or
// any TYPING for a room not joined) is dropped, not refused.
func TestTypingInARoomNotJoinedIsDropped(t *testing.T) {
	h, _ := newHub(t, Config{})
	c := h.Connect(newMember())
	if e := c.Typing("nowhere", false); e != nil {
		t.Fatalf("TYPING for a room not joined: %v", e)
	}
}

// TestPageReadsBackThroughALongRunOfChanges: a HISTORY whose newest
// entries are hundreds of change entries (a reaction toggled again and
// again) still gets the newest messages, and the next page the rest.
func TestPageReadsBackThroughALongRunOfChanges(t *testing.T) {
	h, _ := newHub(t, Config{})
	alice := newMember()
	ac := h.Connect(alice)
	mustJoin(t, ac, &protocol.Join{Room: "general", Name: "alice", Secret: "a"})
	for i := 1; i <= 3; i++ {
		if err := ac.Send("general", fmt.Sprint("m", i), fmt.Sprint("message ", i)); err != nil {
			t.Fatal(err)
		}
	}
	alice.waitFor(t, "the messages", func(ms []protocol.Message) bool { return count[*protocol.Msg](ms) == 3 })
	const toggles = 700
	for i := range toggles {
		kind := protocol.ChangeReact
		if i%2 == 1 {
			kind = protocol.ChangeUnreact
		}
		if err := ac.Change(&protocol.Change{Room: "general", Kind: kind, Target: 3, ID: fmt.Sprint("r", i), Text: "👍"}); err != nil {
			t.Fatal(err)
		}
	}
	alice.waitFor(t, "every ACK", func(ms []protocol.Message) bool { return count[*protocol.Ack](ms) == 3+toggles })
	if e := ac.History(&protocol.History{Room: "general", Limit: 2}); e != nil {
		t.Fatal(e)
	}
	if e := ac.History(&protocol.History{Room: "general", Before: 2, Limit: 2}); e != nil {
		t.Fatal(e)
	}
	var pages []*protocol.Page
	for _, m := range alice.waitFor(t, "two PAGEs", func(ms []protocol.Message) bool { return count[*protocol.Page](ms) == 2 }) {
		if p, ok := m.(*protocol.Page); ok {
			pages = append(pages, p)
		}
	}
	if p := pages[0]; p.First || len(p.Messages) != 2 || p.Messages[0].Seq != 2 || p.Messages[1].Seq != 3 {
		t.Fatalf("the newest page: %+v", p)
	}
	if p := pages[1]; !p.First || len(p.Messages) != 1 || p.Messages[0].Seq != 1 {
		t.Fatalf("the page before message 2: %+v", p)
	}
}

// stateless is a node's Handler that gets change entries without their
// target's state, as a cluster node does when it cannot read the state.
type stateless struct{ broker.Handler }

func (s stateless) Messages(msgs []protocol.Msg) {
	for i := range msgs {
		if ch := msgs[i].Change; ch != nil {
			c := *ch
			c.State = nil
			msgs[i].Change = &c
		}
	}
	s.Handler.Messages(msgs)
}

// TestChangeWithoutStateLeavesNoTextInTheRing: a delete that reaches a
// node without the message's state must not leave the deleted text in
// the node's cache of recent frames: a later joiner there gets the
// message without it (read from the store).
func TestChangeWithoutStateLeavesNoTextInTheRing(t *testing.T) {
	store := newStore(t, func(sink history.Sink) (history.Log, error) { return history.NewMemory(sink), nil }, broker.LocalOptions{})
	h, err := New(Config{}, func(hd broker.Handler) (broker.Broker, error) { return store.Node(stateless{hd}), nil })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	alice := newMember()
	ac := h.Connect(alice)
	mustJoin(t, ac, &protocol.Join{Room: "general", Name: "alice", Secret: "a"})
	if err := ac.Send("general", "m1", "my password is hunter2"); err != nil {
		t.Fatal(err)
	}
	if err := ac.Send("general", "m2", "oops"); err != nil {
		t.Fatal(err)
	}
	alice.waitFor(t, "both messages", func(ms []protocol.Message) bool { return count[*protocol.Msg](ms) == 2 })
	if err := ac.Change(&protocol.Change{Room: "general", Kind: protocol.ChangeDelete, Target: 1, ID: "d"}); err != nil {
		t.Fatal(err)
	}
	alice.waitFor(t, "the delete's UPDATE", func(ms []protocol.Message) bool { return len(updates(ms)) == 1 })
	late := newMember()
	mustJoin(t, h.Connect(late), &protocol.Join{Room: "general", Name: "late"})
	got := late.waitFor(t, "the replay", func(ms []protocol.Message) bool { return count[*protocol.Msg](ms) == 2 && len(updates(ms)) == 1 })
	for _, m := range got {
		if msg, ok := m.(*protocol.Msg); ok && msg.Seq == 1 && msg.Text != "" {
			t.Fatalf("the late joiner got the deleted text: %+v", msg)
		}
	}
}
