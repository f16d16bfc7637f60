// Package brokertest is the conformance suite for broker.Broker
// implementations: publishing with idempotency, per-room subscriptions,
// history reads and presence, seen from one node and from two. Every
// implementation must pass Run; the history.Log under broker.Local is
// checked by historytest as well.
package brokertest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"chat/protocol"
	"chat/server/internal/broker"
	"chat/server/internal/history"
)

// Opener creates a fresh, empty store and returns one node on it for each
// handler, all closed when the test ends.
type Opener func(t *testing.T, handlers ...broker.Handler) []broker.Broker

// Secret hashes as the hub makes them: raw SHA-256 sums, not text. A
// broker that stores them must keep every byte (JSON strings would not).
var (
	hashS1 = secretHash("s1")
	hashS2 = secretHash("s2")
)

func secretHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return string(sum[:])
}

// recorder is a Handler that keeps everything it is given, in order.
type recorder struct {
	mu     sync.Mutex
	cond   sync.Cond
	events []any // broker.Result, protocol.Msg, presenceEvent, *broker.Note
}

type presenceEvent struct {
	room    string
	changes []protocol.PresenceChange
}

func newRecorder() *recorder {
	r := &recorder{}
	r.cond.L = &r.mu
	return r
}

func (r *recorder) add(e any) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	r.cond.Broadcast()
}

func (r *recorder) Published(rs []broker.Result) {
	for _, res := range rs {
		r.add(res)
	}
}

func (r *recorder) Messages(ms []protocol.Msg) {
	for _, m := range ms {
		r.add(m)
	}
}

func (r *recorder) PresenceChanged(room string, cs []protocol.PresenceChange) {
	r.add(presenceEvent{room, cs})
}

func (r *recorder) Noted(n *broker.Note) { r.add(n) }

// wait returns the events once cond holds, failing after 10 seconds.
func (r *recorder) wait(t *testing.T, what string, cond func([]any) bool) []any {
	t.Helper()
	timer := time.AfterFunc(10*time.Second, r.cond.Broadcast)
	defer timer.Stop()
	deadline := time.Now().Add(10 * time.Second)
	r.mu.Lock()
	defer r.mu.Unlock()
	for !cond(r.events) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s; events: %+v", what, r.events)
		}
		r.cond.Wait()
	}
	return slices.Clone(r.events)
}

func (r *recorder) snapshot() []any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

func messages(events []any) []protocol.Msg {
	var out []protocol.Msg
	for _, e := range events {
		if m, ok := e.(protocol.Msg); ok {
			out = append(out, m)
		}
	}
	return out
}

func results(events []any) []broker.Result {
	var out []broker.Result
	for _, e := range events {
		if r, ok := e.(broker.Result); ok {
			out = append(out, r)
		}
	}
	return out
}

func publish(t *testing.T, b broker.Broker, room, sender, id, text string) {
	t.Helper()
	if err := b.Publish(&broker.Publication{Room: room, Sender: sender, ID: id, Text: text, Tag: id}); err != nil {
		t.Fatal(err)
	}
}

// Run runs the suite.
func Run(t *testing.T, open Opener) {
	ctx := context.Background()

	t.Run("PublishAcksThenDelivers", func(t *testing.T) {
		rec := newRecorder()
		b := open(t, rec)[0]
		pos, err := b.Subscribe(ctx, "r")
		if err != nil || pos.Offset != 0 || pos.Epoch == 0 {
			t.Fatalf("Subscribe to an empty room: %+v, %v", pos, err)
		}
		for i := range 5 {
			publish(t, b, "r", "alice", fmt.Sprint(i), fmt.Sprint("text ", i))
		}
		got := rec.wait(t, "5 messages", func(es []any) bool { return len(messages(es)) == 5 })
		// Each Result comes before the message it stored.
		seen := map[uint64]bool{}
		for _, e := range got {
			switch e := e.(type) {
			case broker.Result:
				if e.Err != nil || e.Duplicate || e.Request.Tag != e.Msg.ID {
					t.Fatalf("result %+v", e)
				}
				seen[e.Msg.Seq] = true
			case protocol.Msg:
				if !seen[e.Seq] {
					t.Fatalf("message %d delivered before its result", e.Seq)
				}
			}
		}
		for i, m := range messages(got) {
			if m.Seq != uint64(i+1) || m.Text != fmt.Sprint("text ", i) || m.Sender != "alice" || m.Room != "r" {
				t.Fatalf("message %d: %+v", i, m)
			}
		}
	})

	t.Run("IdempotentPublish", func(t *testing.T) {
		rec := newRecorder()
		b := open(t, rec)[0]
		if _, err := b.Subscribe(ctx, "r"); err != nil {
			t.Fatal(err)
		}
		publish(t, b, "r", "alice", "x", "first")
		publish(t, b, "r", "Alice", "x", "again, under the same name in another case")
		publish(t, b, "r", "bob", "x", "another sender's id is another message")
		got := rec.wait(t, "3 results", func(es []any) bool { return len(results(es)) == 3 })
		if err := b.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		rs := results(got)
		if !rs[1].Duplicate || rs[1].Msg.Seq != rs[0].Msg.Seq || rs[1].Msg.Text != "first" {
			t.Fatalf("re-send: %+v; first: %+v", rs[1], rs[0])
		}
		if rs[2].Duplicate || rs[2].Msg.Seq != 2 {
			t.Fatalf("bob's message: %+v", rs[2])
		}
		if ms := messages(rec.snapshot()); len(ms) != 2 {
			t.Fatalf("%d messages delivered, want 2 (the duplicate is not delivered again)", len(ms))
		}
	})

	t.Run("SubscriptionsAreForRoomsAndNodes", func(t *testing.T) {
		recA, recB := newRecorder(), newRecorder()
		nodes := open(t, recA, recB)
		a, b := nodes[0], nodes[1]
		publish(t, a, "r", "alice", "before", "stored before anyone subscribed")
		if err := a.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		pos, err := b.Subscribe(ctx, "r")
		if err != nil || pos.Offset != 1 {
			t.Fatalf("Subscribe: %+v, %v; want offset 1", pos, err)
		}
		publish(t, a, "r", "alice", "1", "to r")
		publish(t, a, "other", "alice", "2", "to another room")
		got := recB.wait(t, "the message of r on the other node", func(es []any) bool { return len(messages(es)) == 1 })
		if m := messages(got)[0]; m.Seq != 2 || m.Text != "to r" {
			t.Fatalf("node b got %+v", m)
		}
		recA.wait(t, "a's results", func(es []any) bool { return len(results(es)) == 3 })
		if ms := messages(recA.snapshot()); len(ms) != 0 {
			t.Fatalf("node a subscribes to nothing but got %+v", ms)
		}
		b.Unsubscribe("r")
		publish(t, a, "r", "alice", "3", "after b unsubscribed")
		if err := a.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		recA.wait(t, "a's results", func(es []any) bool { return len(results(es)) == 4 })
		if ms := messages(recB.snapshot()); len(ms) != 1 {
			t.Fatalf("node b got %d messages after unsubscribing", len(ms)-1)
		}
		if bs := results(recB.snapshot()); len(bs) != 0 {
			t.Fatalf("node b got results of a's publications: %+v", bs)
		}
	})

	t.Run("History", func(t *testing.T) {
		rec := newRecorder()
		b := open(t, rec)[0]
		for i := 1; i <= 30; i++ {
			publish(t, b, "r", "alice", fmt.Sprint(i), fmt.Sprint(i))
		}
		if err := b.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		check := func(name string, ms []protocol.Msg, err error, from, to uint64) {
			t.Helper()
			if err != nil || uint64(len(ms)) != to-from+1 {
				t.Fatalf("%s: %d messages, %v; want %d..%d", name, len(ms), err, from, to)
			}
			for i, m := range ms {
				if m.Seq != from+uint64(i) || m.Text != fmt.Sprint(m.Seq) {
					t.Fatalf("%s: message %d is %+v", name, i, m)
				}
			}
		}
		ms, err := b.Since(ctx, "r", 10, 5)
		check("Since(10, 5)", ms, err, 11, 15)
		ms, err = b.Before(ctx, "r", 10, 5)
		check("Before(10, 5)", ms, err, 5, 9)
		ms, err = b.Last(ctx, "r", 4)
		check("Last(4)", ms, err, 27, 30)
		// Paging back from the head reaches the first message.
		var all []protocol.Msg
		before := uint64(31)
		for {
			page, err := b.Before(ctx, "r", before, 7)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			all = append(page, all...)
			before = page[0].Seq
		}
		check("paging back", all, nil, 1, 30)
		pos, err := b.Subscribe(ctx, "r")
		if err != nil || pos.Offset != 30 {
			t.Fatalf("Subscribe: %+v, %v", pos, err)
		}
		if again, _ := b.Subscribe(ctx, "r"); again.Epoch != pos.Epoch {
			t.Fatalf("epoch changed from %d to %d", pos.Epoch, again.Epoch)
		}
	})

	t.Run("Presence", func(t *testing.T) {
		recA, recB := newRecorder(), newRecorder()
		nodes := open(t, recA, recB)
		a, b := nodes[0], nodes[1]
		if _, err := b.Subscribe(ctx, "r"); err != nil {
			t.Fatal(err)
		}
		alice1 := broker.Presence{Name: "alice", SecretHash: hashS1, Conn: 1}
		alice2 := broker.Presence{Name: "Alice", SecretHash: hashS1, Conn: 2}
		first, err := a.PresenceAdd(ctx, "r", alice1)
		if err != nil || !first {
			t.Fatalf("first connection of alice: %v, %v", first, err)
		}
		if first, err := a.PresenceAdd(ctx, "r", alice2); err != nil || first {
			t.Fatalf("second connection of alice, same secret: first=%v, %v", first, err)
		}
		for _, p := range []broker.Presence{{Name: "ALICE", SecretHash: hashS2, Conn: 3}, {Name: "alice", Conn: 4}} {
			if _, err := b.PresenceAdd(ctx, "r", p); !errors.Is(err, broker.ErrNameTaken) {
				t.Fatalf("%+v on another node: %v, want ErrNameTaken", p, err)
			}
		}
		// The same name with the same secret through another node (a
		// device that moved there) shares the name.
		alice3 := broker.Presence{Name: "alice", SecretHash: hashS1, Conn: 9}
		if first, err := b.PresenceAdd(ctx, "r", alice3); err != nil || first {
			t.Fatalf("alice with her secret on another node: first=%v, %v", first, err)
		}
		if last, err := b.PresenceRemove(ctx, "r", alice3); err != nil || last {
			t.Fatalf("alice leaving the other node: last=%v, %v", last, err)
		}
		if first, err := b.PresenceAdd(ctx, "r", broker.Presence{Name: "bob", Conn: 1}); err != nil || !first {
			t.Fatalf("bob: %v, %v", first, err)
		}
		names, count, err := b.PresenceList(ctx, "r", 10)
		slices.Sort(names)
		if err != nil || count != 2 || !slices.Equal(names, []string{"alice", "bob"}) {
			t.Fatalf("PresenceList = %v, %d, %v", names, count, err)
		}
		if names, count, _ := b.PresenceList(ctx, "r", 1); len(names) != 1 || count != 2 {
			t.Fatalf("PresenceList(limit 1) = %v, %d", names, count)
		}
		// b subscribes to r: it hears of alice, who came through a.
		recB.wait(t, "alice joined, on b", func(es []any) bool {
			return slices.ContainsFunc(es, func(e any) bool {
				p, ok := e.(presenceEvent)
				return ok && p.room == "r" && p.changes[0] == protocol.PresenceChange{Kind: protocol.PresenceJoined, Name: "alice"}
			})
		})
		if last, err := a.PresenceRemove(ctx, "r", alice1); err != nil || last {
			t.Fatalf("removing one of two connections: last=%v, %v", last, err)
		}
		if last, err := a.PresenceRemove(ctx, "r", alice2); err != nil || !last {
			t.Fatalf("removing the last connection: last=%v, %v", last, err)
		}
		recB.wait(t, "alice left, on b", func(es []any) bool {
			return slices.ContainsFunc(es, func(e any) bool {
				p, ok := e.(presenceEvent)
				return ok && p.changes[0] == protocol.PresenceChange{Kind: protocol.PresenceLeft, Name: "alice"}
			})
		})
		if _, count, _ := a.PresenceList(ctx, "r", 10); count != 1 {
			t.Fatalf("count %d after alice left", count)
		}
		// The name is free again, for any secret.
		if first, err := b.PresenceAdd(ctx, "r", broker.Presence{Name: "alice", SecretHash: hashS2, Conn: 5}); err != nil || !first {
			t.Fatalf("alice again: %v, %v", first, err)
		}
		if _, err := a.PresenceAdd(ctx, "s", broker.Presence{Name: "carol", Conn: 6}); err != nil {
			t.Fatal(err)
		}
		rooms, err := a.PresenceRooms(ctx, func(string) bool { return true }, 10)
		if err != nil || !slices.Equal(rooms, []broker.RoomCount{{Room: "r", Count: 2}, {Room: "s", Count: 1}}) {
			t.Fatalf("PresenceRooms = %+v, %v; want r (2 names) before s (1)", rooms, err)
		}
		rooms, _ = b.PresenceRooms(ctx, func(room string) bool { return room != "r" }, 10)
		if !slices.Equal(rooms, []broker.RoomCount{{Room: "s", Count: 1}}) {
			t.Fatalf("PresenceRooms(not r) = %+v", rooms)
		}
		if rooms, _ = b.PresenceRooms(ctx, func(string) bool { return true }, 1); len(rooms) != 1 || rooms[0].Room != "r" {
			t.Fatalf("PresenceRooms(limit 1) = %+v", rooms)
		}
		// A closed node's members leave.
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if _, count, _ := a.PresenceList(ctx, "r", 10); count != 0 {
			t.Fatalf("count %d after the node of bob and alice closed", count)
		}
		if rooms, _ := a.PresenceRooms(ctx, func(string) bool { return true }, 10); !slices.Equal(rooms, []broker.RoomCount{{Room: "s", Count: 1}}) {
			t.Fatalf("PresenceRooms after b closed = %+v", rooms)
		}
	})

	t.Run("NotesReachEveryNode", func(t *testing.T) {
		recA, recB := newRecorder(), newRecorder()
		nodes := open(t, recA, recB)
		note := &broker.Note{Names: []string{"alice", "bob"}, Room: "@alice@bob", Frame: protocol.Encode(&protocol.Marker{Room: "@alice@bob", Seq: 3})}
		if err := nodes[1].Notify(ctx, note); err != nil {
			t.Fatal(err)
		}
		for _, rec := range []*recorder{recA, recB} {
			got := rec.wait(t, "the note", func(es []any) bool { return len(es) > 0 })
			n, ok := got[0].(*broker.Note)
			if !ok || !slices.Equal(n.Names, note.Names) || n.Room != note.Room || string(n.Frame) != string(note.Frame) {
				t.Fatalf("got %+v, want %+v", got[0], note)
			}
		}
		if err := nodes[1].Close(); err != nil {
			t.Fatal(err)
		}
		if err := nodes[1].Notify(ctx, note); err == nil {
			t.Fatal("a closed node notified")
		}
		if err := nodes[0].Notify(ctx, note); err != nil {
			t.Fatal(err)
		}
		recA.wait(t, "the second note", func(es []any) bool { return len(es) == 2 })
		if n := len(recB.snapshot()); n != 1 {
			t.Fatalf("the closed node got %d notes", n)
		}
	})

	t.Run("RoomNotesWithoutNamesReachEveryNode", func(t *testing.T) {
		// Moderation's notes (a MODEVENT for a room's members everywhere)
		// name nobody: they must arrive all the same, with no names.
		recA, recB := newRecorder(), newRecorder()
		nodes := open(t, recA, recB)
		note := &broker.Note{Room: "general", Frame: protocol.Encode(&protocol.ModEvent{Room: "general",
			Action: protocol.ModKick, Actor: "alice", Target: "bob"})}
		if err := nodes[0].Notify(ctx, note); err != nil {
			t.Fatal(err)
		}
		for _, rec := range []*recorder{recA, recB} {
			got := rec.wait(t, "the room note", func(es []any) bool { return len(es) > 0 })
			n, ok := got[0].(*broker.Note)
			if !ok || len(n.Names) != 0 || n.Room != "general" || string(n.Frame) != string(note.Frame) {
				t.Fatalf("got %+v, want %+v", got[0], note)
			}
		}
	})
	runChanges(t, open)
	runFiles(t, open)
}

// RetentionOpener creates a fresh, empty store whose rooms keep what rule
// says, with one node on it for each handler, all closed when the test
// ends.
type RetentionOpener func(t *testing.T, rule history.Retention, handlers ...broker.Handler) []broker.Broker

// seqs lists the messages' sequence numbers.
func seqs(msgs []protocol.Msg) []uint64 {
	out := []uint64{}
	for _, m := range msgs {
		out = append(out, m.Seq)
	}
	return out
}

// span lists from..to.
func span(from, to uint64) []uint64 {
	out := []uint64{}
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// waitFloor waits until room's floor is want. Retention runs in the
// background and signals nothing a broker exposes, so this polls Floor,
// every 20 ms for at most 20 seconds.
func waitFloor(t *testing.T, b broker.Broker, room string, want uint64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := b.Floor(context.Background(), room)
		if err != nil {
			t.Fatalf("Floor(%s): %v", room, err)
		}
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Floor(%s) = %d, want %d within 20s", room, got, want)
		}
		time.Sleep(20 * time.Millisecond) // a bounded poll, see above
	}
}

// RunRetention checks history retention: the oldest messages go, by count
// and by age; sequence numbers, heads and epochs stay; reads return only
// what is kept and Floor says where it starts.
func RunRetention(t *testing.T, open RetentionOpener) {
	ctx := context.Background()

	t.Run("ByCount", func(t *testing.T) {
		rec := newRecorder()
		b := open(t, history.Retention{Messages: 5}, rec)[0]
		for i := 1; i <= 12; i++ {
			publish(t, b, "r", "alice", fmt.Sprint("m", i), fmt.Sprint("text ", i))
		}
		for i := 1; i <= 3; i++ {
			publish(t, b, "s", "bob", fmt.Sprint("m", i), fmt.Sprint("text ", i))
		}
		rec.wait(t, "15 results", func(ev []any) bool { return len(results(ev)) == 15 })
		for _, r := range results(rec.snapshot()) {
			if r.Err != nil || r.Duplicate {
				t.Fatalf("result %+v", r)
			}
		}
		waitFloor(t, b, "r", 7)
		check := func(what string, msgs []protocol.Msg, err error, want []uint64) {
			t.Helper()
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if got := seqs(msgs); !slices.Equal(got, want) {
				t.Fatalf("%s: seqs %v, want %v", what, got, want)
			}
		}
		msgs, err := b.Since(ctx, "r", 0, 100)
		check("Since(0)", msgs, err, span(8, 12))
		if msgs[0].Text != "text 8" || msgs[0].ID != "m8" {
			t.Fatalf("oldest kept is %+v, want m8", msgs[0])
		}
		msgs, err = b.Since(ctx, "r", 2, 3)
		check("Since(2, 3)", msgs, err, span(8, 10))
		msgs, err = b.Last(ctx, "r", 100)
		check("Last(100)", msgs, err, span(8, 12))
		msgs, err = b.Last(ctx, "r", 2)
		check("Last(2)", msgs, err, span(11, 12))
		msgs, err = b.Before(ctx, "r", 11, 100)
		check("Before(11)", msgs, err, span(8, 10))
		msgs, err = b.Before(ctx, "r", 8, 100)
		check("Before(8)", msgs, err, nil)
		// Another room under the limit keeps everything.
		if f, err := b.Floor(ctx, "s"); err != nil || f != 0 {
			t.Fatalf("Floor(s) = %d, %v; want 0", f, err)
		}
		msgs, err = b.Since(ctx, "s", 0, 100)
		check("Since(s, 0)", msgs, err, span(1, 3))
		if f, err := b.Floor(ctx, "nothing"); err != nil || f != 0 {
			t.Fatalf("Floor of an empty room = %d, %v; want 0", f, err)
		}
		// The head stays; numbering goes on; a re-send of a kept message
		// is still recognised, one of a removed message is stored anew
		// (its record went with it).
		pos, err := b.Subscribe(ctx, "r")
		if err != nil || pos.Offset != 12 || pos.Epoch == 0 {
			t.Fatalf("Subscribe: %+v, %v; want offset 12", pos, err)
		}
		publish(t, b, "r", "alice", "m12", "again")
		publish(t, b, "r", "alice", "m1", "again, long gone")
		publish(t, b, "r", "alice", "m13", "new")
		rs := results(rec.wait(t, "3 more results", func(ev []any) bool { return len(results(ev)) == 18 }))[15:]
		if !rs[0].Duplicate || rs[0].Msg.Seq != 12 || rs[0].Msg.Text != "text 12" {
			t.Fatalf("re-send of a kept message: %+v, want the original seq 12", rs[0])
		}
		if rs[1].Duplicate || rs[1].Err != nil || rs[1].Msg.Seq != 13 || rs[2].Duplicate || rs[2].Msg.Seq != 14 {
			t.Fatalf("after the limit: %+v and %+v, want new messages 13 and 14", rs[1], rs[2])
		}
		// Messages at or below the subscribed position may come too.
		above := func(ev []any) []protocol.Msg {
			return slices.DeleteFunc(messages(ev), func(m protocol.Msg) bool { return m.Seq <= 12 })
		}
		got := above(rec.wait(t, "delivery of 13 and 14", func(ev []any) bool { return len(above(ev)) >= 2 }))
		if s := seqs(got); !slices.Equal(s, span(13, 14)) {
			t.Fatalf("delivered %v, want [13 14]", s)
		}
		waitFloor(t, b, "r", 9)
		msgs, err = b.Since(ctx, "r", 0, 100)
		check("Since(0) after more", msgs, err, span(10, 14))
	})

	t.Run("ByAge", func(t *testing.T) {
		rec := newRecorder()
		b := open(t, history.Retention{Age: 2 * time.Second}, rec)[0]
		publish(t, b, "a", "alice", "1", "old")
		publish(t, b, "a", "alice", "2", "old too")
		rec.wait(t, "2 results", func(ev []any) bool { return len(results(ev)) == 2 })
		// Every message of the room expires: the room keeps its head.
		waitFloor(t, b, "a", 2)
		pos, err := b.Subscribe(ctx, "a")
		if err != nil || pos.Offset != 2 {
			t.Fatalf("Subscribe to a room whose messages all expired: %+v, %v; want offset 2", pos, err)
		}
		for name, read := range map[string]func() ([]protocol.Msg, error){
			"Since": func() ([]protocol.Msg, error) { return b.Since(ctx, "a", 0, 10) },
			"Last":  func() ([]protocol.Msg, error) { return b.Last(ctx, "a", 10) },
			"Before": func() ([]protocol.Msg, error) {
				return b.Before(ctx, "a", 3, 10)
			},
		} {
			if msgs, err := read(); err != nil || len(msgs) != 0 {
				t.Fatalf("%s of an expired room: %v, %v; want nothing", name, seqs(msgs), err)
			}
		}
		publish(t, b, "a", "alice", "3", "new")
		r := results(rec.wait(t, "3rd result", func(ev []any) bool { return len(results(ev)) == 3 }))[2]
		if r.Err != nil || r.Duplicate || r.Msg.Seq != 3 {
			t.Fatalf("a message after all expired: %+v, want seq 3 (numbers are not reused)", r)
		}
		got := messages(rec.wait(t, "delivery of 3", func(ev []any) bool { return len(messages(ev)) == 1 }))
		if got[0].Seq != 3 {
			t.Fatalf("delivered %+v, want seq 3", got[0])
		}
		// It expires in its turn (2 s), and the head stays 3.
		waitFloor(t, b, "a", 3)
		if pos, err := b.Subscribe(ctx, "a"); err != nil || pos.Offset != 3 {
			t.Fatalf("Subscribe: %+v, %v; want offset 3", pos, err)
		}
	})
}
