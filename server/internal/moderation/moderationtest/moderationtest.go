// Package moderationtest is the conformance suite for moderation.Store
// implementations: every implementation must pass Run.
package moderationtest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"chat/protocol"
	"chat/server/internal/history"
	"chat/server/internal/moderation"
)

// Opener creates a fresh, empty store keeping maxAudit audit entries,
// and the history log whose messages it redacts (nil for a store that
// redacts no history: the redaction tests are skipped).
type Opener func(t *testing.T, maxAudit int) (moderation.Store, history.Log)

// full is a State with every field set.
func full() *moderation.State {
	return &moderation.State{
		Topic:      "Friday: release party 🎉",
		InviteOnly: true,
		Ops:        []string{"alice", "zoë"},
		Bans: []moderation.Ban{
			{Name: "mallory", Until: 1767312000000, By: "alice", Reason: "flooding"},
			{Net: "192.0.2.7/32", By: "operator"},
			{Net: "2001:db8:1:2::/64", Until: 1767312000001},
		},
		Mutes:   []moderation.Mute{{Name: "trudy", Until: 1767312000000}, {Name: "eve"}},
		Invites: []moderation.Invite{{Code: "Xq3k9PzA", Until: 1767312000000, By: "alice"}},
		Allowed: []string{"bob", "carol"},
	}
}

// Run runs the suite.
func Run(t *testing.T, open Opener) {
	ctx := context.Background()

	t.Run("EmptyRoom", func(t *testing.T) {
		s, _ := open(t, 10)
		st, rev, err := s.Load(ctx, "general")
		if err != nil || rev != 0 || !reflect.DeepEqual(st, &moderation.State{}) {
			t.Fatalf("Load of a room never saved = %#v, %d, %v; want a zero State, 0", st, rev, err)
		}
	})

	t.Run("SaveLoadKeepsEveryField", func(t *testing.T) {
		s, _ := open(t, 10)
		rev, err := s.Save(ctx, "general", full(), 0)
		if err != nil || rev == 0 {
			t.Fatalf("Save = %d, %v", rev, err)
		}
		st, got, err := s.Load(ctx, "general")
		if err != nil || got != rev {
			t.Fatalf("Load = rev %d, %v; Save said %d", got, err, rev)
		}
		if !reflect.DeepEqual(st, full()) {
			t.Fatalf("loaded\n %#v\nsaved\n %#v", st, full())
		}
		if other, rev, _ := s.Load(ctx, "random"); rev != 0 || other.Topic != "" {
			t.Fatalf("another room has rev %d, state %#v", rev, other)
		}
	})

	t.Run("CompareAndSet", func(t *testing.T) {
		s, _ := open(t, 10)
		r1, err := s.Save(ctx, "general", &moderation.State{Topic: "one"}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Save(ctx, "general", &moderation.State{Topic: "lost"}, 0); !errors.Is(err, moderation.ErrConflict) {
			t.Fatalf("a second create = %v, want ErrConflict", err)
		}
		r2, err := s.Save(ctx, "general", &moderation.State{Topic: "two"}, r1)
		if err != nil || r2 == r1 || r2 == 0 {
			t.Fatalf("Save on the current revision = %d, %v (previous %d)", r2, err, r1)
		}
		if _, err := s.Save(ctx, "general", &moderation.State{Topic: "stale"}, r1); !errors.Is(err, moderation.ErrConflict) {
			t.Fatalf("Save on a stale revision = %v, want ErrConflict", err)
		}
		if st, rev, _ := s.Load(ctx, "general"); st.Topic != "two" || rev != r2 {
			t.Fatalf("after the conflicts: topic %q rev %d, want two, %d", st.Topic, rev, r2)
		}
		// Saving an empty state is a state like any other, not a delete.
		r3, err := s.Save(ctx, "general", &moderation.State{}, r2)
		if err != nil {
			t.Fatal(err)
		}
		if _, rev, _ := s.Load(ctx, "general"); rev != r3 {
			t.Fatalf("rev after saving an empty state = %d, want %d", rev, r3)
		}
	})

	t.Run("ConcurrentUpdatesLoseNothing", func(t *testing.T) {
		s, _ := open(t, 10)
		const writers, each = 4, 8
		var wg sync.WaitGroup
		errs := make(chan error, writers*each)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					name := fmt.Sprintf("op-%d-%d", w, i)
					_, _, err := moderation.Update(ctx, s, "general", func(st *moderation.State) (bool, error) {
						return st.AddOp(name, moderation.Limits{})
					})
					if err != nil {
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		st, _, _ := s.Load(ctx, "general")
		if len(st.Ops) != writers*each {
			t.Fatalf("%d operators after %d concurrent additions: updates were lost", len(st.Ops), writers*each)
		}
	})

	t.Run("BigStateFits", func(t *testing.T) {
		// A state at the default limits (1000 bans, 1000 mutes, 10 000
		// allowed names of 32 bytes) must be storable.
		s, _ := open(t, 10)
		st := &moderation.State{}
		l := moderation.Limits{}.WithDefaults()
		for i := range l.MaxBans {
			st.Bans = append(st.Bans, moderation.Ban{Name: fmt.Sprintf("%032d", i), Until: 1767312000000, By: "alice", Reason: "spam spam spam"})
		}
		for i := range l.MaxMutes {
			st.Mutes = append(st.Mutes, moderation.Mute{Name: fmt.Sprintf("m%031d", i), Until: 1767312000000})
		}
		for i := range l.MaxAllowed {
			st.Allowed = append(st.Allowed, fmt.Sprintf("a%031d", i))
		}
		if _, err := s.Save(ctx, "big", st, 0); err != nil {
			t.Fatalf("saving a state at the default limits: %v", err)
		}
		got, _, err := s.Load(ctx, "big")
		if err != nil || !reflect.DeepEqual(got, st) {
			t.Fatalf("the big state did not come back whole: %v", err)
		}
	})

	t.Run("AuditNewestLastBoundedByRoom", func(t *testing.T) {
		s, _ := open(t, 5)
		want := moderation.Entry{Time: 1767225600000, Room: "general", Actor: "alice", Addr: "192.0.2.1:5555",
			Action: "ban", Target: "mallory", Until: 1767312000000, Detail: "flooding"}
		if err := s.Audit(ctx, want); err != nil {
			t.Fatal(err)
		}
		got, err := s.AuditLog(ctx, "", 10)
		if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], want) {
			t.Fatalf("AuditLog = %#v, %v; want the entry whole", got, err)
		}
		for i := range 6 {
			room := "general"
			if i%2 == 1 {
				room = "random"
			}
			if err := s.Audit(ctx, moderation.Entry{Time: 1767225600001 + int64(i), Room: room, Actor: "alice",
				Action: "delete", Seq: uint64(i + 1)}); err != nil {
				t.Fatal(err)
			}
		}
		all, err := s.AuditLog(ctx, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []uint64
		for _, e := range all {
			seqs = append(seqs, e.Seq)
		}
		if !reflect.DeepEqual(seqs, []uint64{2, 3, 4, 5, 6}) {
			t.Fatalf("with a limit of 5 the log holds seqs %v, want the newest five, oldest first", seqs)
		}
		last2, _ := s.AuditLog(ctx, "", 2)
		if len(last2) != 2 || last2[0].Seq != 5 || last2[1].Seq != 6 {
			t.Fatalf("the newest 2: %#v", last2)
		}
		gen, _ := s.AuditLog(ctx, "general", 100)
		seqs = nil
		for _, e := range gen {
			seqs = append(seqs, e.Seq)
		}
		if !reflect.DeepEqual(seqs, []uint64{3, 5}) {
			t.Fatalf("general's entries: seqs %v, want [3 5]", seqs)
		}
		if none, err := s.AuditLog(ctx, "quiet", 10); err != nil || len(none) != 0 {
			t.Fatalf("a room without entries: %#v, %v", none, err)
		}
	})

	t.Run("RedactKeepsTheMessageWithoutText", func(t *testing.T) {
		s, log := open(t, 10)
		if log == nil {
			t.Skip("this store redacts no history")
		}
		for i := range 3 {
			if err := log.Append(&history.Request{Room: "general", Sender: "bob", ID: fmt.Sprint("id", i), Text: fmt.Sprint("secret text ", i)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := log.Append(&history.Request{Room: "random", Sender: "bob", ID: "r", Text: "other room"}); err != nil {
			t.Fatal(err)
		}
		if err := log.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		before, err := log.Since(ctx, "general", 0, 10)
		if err != nil || len(before) != 3 {
			t.Fatalf("Since = %d messages, %v", len(before), err)
		}
		for _, round := range []string{"first", "again"} {
			if ok, err := s.Redact(ctx, "general", 2); err != nil || !ok {
				t.Fatalf("Redact of message 2 (%s) = %v, %v", round, ok, err)
			}
		}
		if ok, err := s.Redact(ctx, "general", 4); err != nil || ok {
			t.Fatalf("Redact of a message that does not exist = %v, %v", ok, err)
		}
		if ok, err := s.Redact(ctx, "nowhere", 1); err != nil || ok {
			t.Fatalf("Redact in a room without messages = %v, %v", ok, err)
		}
		want := append([]protocol.Msg(nil), before...)
		want[1].Text = ""
		check := func(what string, got []protocol.Msg, err error) {
			t.Helper()
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("%s after the redaction:\n got %#v, %v\nwant %#v", what, got, err, want)
			}
		}
		got, err := log.Since(ctx, "general", 0, 10)
		check("Since", got, err)
		got, err = log.Last(ctx, "general", 3)
		check("Last", got, err)
		got, err = log.Before(ctx, "general", 4, 10)
		check("Before", got, err)
		other, _ := log.Since(ctx, "random", 0, 10)
		if len(other) != 1 || other[0].Text != "other room" {
			t.Fatalf("another room's message changed: %#v", other)
		}
		// Numbering goes on after a redaction.
		if err := log.Append(&history.Request{Room: "general", Sender: "bob", ID: "id3", Text: "after"}); err != nil {
			t.Fatal(err)
		}
		if err := log.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if next, _ := log.Since(ctx, "general", 3, 10); len(next) != 1 || next[0].Seq != 4 || next[0].Text != "after" {
			t.Fatalf("the message after a redaction: %#v", next)
		}
	})
}
