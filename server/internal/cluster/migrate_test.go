package cluster

import (
	"bytes"
	"context"
	"database/sql"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"chat/protocol"
	"chat/server/internal/broker"
	"chat/server/internal/cluster/natstest"
	"chat/server/internal/history"
	"chat/server/internal/sqlite"
)

// sourceDB writes a single server's database with the server's own
// packages: messages in three rooms, one a direct-message room (one with
// a NUL in its text), two claimed names, markers and mentions; and an
// "archive" room of messages older than any deduplication window,
// inserted directly. It returns the file and every message by room.
func sourceDB(t *testing.T) (string, map[string][]protocol.Msg) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "chat.db")
	var mu sync.Mutex
	msgs := map[string][]protocol.Msg{}
	log, err := sqlite.Open(path, func(rs []history.Result) {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range rs {
			if r.Err != nil {
				t.Error(r.Err)
				continue
			}
			msgs[r.Msg.Room] = append(msgs[r.Msg.Room], r.Msg)
		}
	}, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dm := protocol.DMRoom("alice", "bob")
	for i, m := range []struct{ room, sender, text string }{
		{"general", "Alice", "hello"}, {"random", "bob", "hi"}, {"general", "bob", "nul\x00byte"},
		{dm, "alice", "psst"}, {"general", "Alice", "@bob look"}, {dm, "Bob", "yes?"}, {"random", "carol", "."},
	} {
		if err := log.Append(&history.Request{Room: m.room, Sender: m.sender, ID: "id-" + string(rune('a'+i)), Text: m.text}); err != nil {
			t.Fatal(err)
		}
	}
	if err := log.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// A room joined but without messages: it exists all the same.
	if _, err := log.Epoch(ctx, "quiet"); err != nil {
		t.Fatal(err)
	}
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}

	names, err := sqlite.OpenNames(path)
	if err != nil {
		t.Fatal(err)
	}
	defer names.Close()
	for _, c := range [][2]string{{"Alice", "alice-secret"}, {"bob", "bob-secret"}} {
		if ok, err := names.Claim(ctx, c[0], c[1]); !ok || err != nil {
			t.Fatalf("claim %s: %v %v", c[0], ok, err)
		}
	}
	in, err := sqlite.OpenInbox(path, sqlite.InboxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	for _, err := range []error{
		in.Mention(ctx, "general", 3, []string{"alice", "bob"}),
		in.Mention(ctx, "random", 1, []string{"bob"}),
		onlyErr(in.Advance(ctx, "alice", "general", 2)),
		onlyErr(in.Advance(ctx, "bob", dm, 1)),
		onlyErr(in.Advance(ctx, "bob", "general", 3)), // reads bob's mention
	} {
		if err != nil {
			t.Fatal(err)
		}
	}

	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for seq, text := range []string{"old", "older"} {
		m := protocol.Msg{Room: "archive", Seq: uint64(seq + 1), Time: uint64(1000 * (seq + 1)), Sender: "dave", ID: "old-" + text, Text: text}
		if _, err := db.Exec("INSERT INTO messages (room, seq, time, sender, sender_key, cid, text) VALUES (?, ?, ?, ?, ?, ?, ?)",
			m.Room, int64(m.Seq), int64(m.Time), m.Sender, protocol.Key(m.Sender), []byte(m.ID), []byte(m.Text)); err != nil {
			t.Fatal(err)
		}
		msgs["archive"] = append(msgs["archive"], m)
	}
	return path, msgs
}

func onlyErr[T any](_ T, err error) error { return err }

// streamMessages reads every message of room from the stream, in order.
func streamMessages(t *testing.T, c *Conn, room string) []protocol.Msg {
	t.Helper()
	ctx := context.Background()
	var out []protocol.Msg
	for seq := uint64(1); ; {
		raw, err := c.leaderMsg(ctx, StreamName, getReq{Seq: seq, NextBySubj: MsgSubject + Token(room)})
		if err != nil {
			t.Fatal(err)
		}
		if raw == nil {
			return out
		}
		m, err := raw.decode()
		if err != nil {
			t.Fatal(err)
		}
		if h := HeaderSeq + ": " + strconv.FormatUint(m.Seq, 10) + "\r\n"; !bytes.Contains(raw.Header, []byte(h)) {
			t.Fatalf("%s message %d lacks %q in its headers %q", room, m.Seq, h, raw.Header)
		}
		out = append(out, m)
		seq = raw.Seq + 1
	}
}

func TestMigrateCopiesASingleServer(t *testing.T) {
	for _, servers := range []int{1, 3} {
		t.Run(strconv.Itoa(servers)+"servers", func(t *testing.T) {
			if servers > 1 && testing.Short() {
				t.Skip("three NATS servers")
			}
			migrateASingleServer(t, servers)
		})
	}
}

func migrateASingleServer(t *testing.T, servers int) {
	path, src := sourceDB(t)
	c := storesDial(t, natstest.Start(t, servers), "node-a")
	ctx := context.Background()
	st, err := Migrate(ctx, path, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Recorded: general, random and quiet (the rooms the source's
	// server joined; archive was written around it, and the DM is none).
	if want := (Stats{Rooms: 4, Messages: 9, Names: 2, Markers: 3, Mentions: 2, RoomsRecorded: 3}); st != want {
		t.Fatalf("stats %+v, want %+v", st, want)
	}
	checkMigrated(t, c, src)
	for _, room := range []string{"general", "random", "quiet", "archive"} {
		if ok, err := c.Rooms().Exists(ctx, room); err != nil || !ok {
			t.Fatalf("room %s does not exist after the migration: %v, %v", room, ok, err)
		}
	}

	// A second run finds everything there and changes nothing.
	before, err := c.stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, err = Migrate(ctx, path, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Stats{RoomsSkipped: 4}); st != want {
		t.Fatalf("second run: stats %+v, want %+v", st, want)
	}
	after, err := c.stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.State.LastSeq != before.State.LastSeq {
		t.Fatalf("second run stored %d stream messages", after.State.LastSeq-before.State.LastSeq)
	}
	checkMigrated(t, c, src)
}

func checkMigrated(t *testing.T, c *Conn, src map[string][]protocol.Msg) {
	t.Helper()
	ctx := context.Background()
	for room, want := range src {
		if got := streamMessages(t, c, room); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s in the stream:\n%+v\nwant\n%+v", room, got, want)
		}
		for _, m := range want {
			dd := DedupToken(protocol.Key(m.Sender), m.ID)
			raw, err := c.leaderMsg(ctx, StreamName, getReq{LastBySubj: DedupSubject + Token(room) + "." + dd})
			switch {
			case err != nil:
				t.Fatalf("marker of %s %d: %v", room, m.Seq, err)
			case room == "archive" && raw != nil:
				t.Fatalf("message %d of archive, older than the window, has a marker", m.Seq)
			case room == "archive":
			case raw == nil:
				t.Fatalf("message %d of %s has no marker", m.Seq, room)
			case !bytes.Contains(raw.Header, []byte(jetstream.MsgTTLHeader+": ")):
				t.Fatalf("marker of %s %d has no TTL: %q", room, m.Seq, raw.Header)
			}
		}
	}

	names := c.Names()
	for _, claim := range []struct {
		name, secret string
		ok           bool
	}{{"alice", "alice-secret", true}, {"ALICE", "bob-secret", false}, {"Bob", "bob-secret", true}, {"carol", "", true}} {
		if ok, err := names.Claim(ctx, claim.name, claim.secret); ok != claim.ok || err != nil {
			t.Fatalf("Claim(%s, %s) = %v, %v", claim.name, claim.secret, ok, err)
		}
	}

	in := c.Inbox(InboxOptions{})
	dm := protocol.DMRoom("alice", "bob")
	for _, s := range []struct {
		name, room     string
		read, mentions uint64
	}{{"alice", "general", 2, 1}, {"bob", "general", 3, 0}, {"bob", "random", 0, 1}, {"bob", dm, 1, 0}, {"alice", dm, 0, 0}} {
		if read, n, err := in.State(ctx, s.name, s.room); read != s.read || n != s.mentions || err != nil {
			t.Fatalf("State(%s, %s) = %d, %d, %v; want %d, %d", s.name, s.room, read, n, err, s.read, s.mentions)
		}
	}
	direct, err := in.Direct(ctx, "bob", 10)
	last := src[dm][len(src[dm])-1]
	if err != nil || len(direct) != 1 || direct[0] != (protocol.RoomState{Room: dm, Head: 2, Time: last.Time, Read: 1}) {
		t.Fatalf("Direct(bob) = %+v, %v", direct, err)
	}
	active, err := in.Active(ctx, "", 10)
	if err != nil || len(active) != 3 || active[2] != (protocol.RoomInfo{Room: "archive", Head: 2, Time: 2000}) {
		t.Fatalf("Active = %+v, %v", active, err)
	}
	heads, err := in.Heads(ctx, []string{"general", "random"})
	if err != nil || len(heads) != 2 || heads[0].Head != 3 || heads[0].Time != src["general"][2].Time || heads[1].Head != 2 {
		t.Fatalf("Heads = %+v, %v", heads, err)
	}
}

// A cluster holding another history of a room refuses the migration
// before writing anything.
func TestMigrateRefusesAnotherHistory(t *testing.T) {
	path, _ := sourceDB(t)
	c := storesDial(t, natstest.Start(t, 1), "node-a")
	ctx := context.Background()
	other := protocol.Msg{Room: "general", Seq: 1, Time: protocol.Millis(time.Now()), Sender: "mallory", ID: "x", Text: "not the source's"}
	if err := c.Import(ctx, []protocol.Msg{other}); err != nil {
		t.Fatal(err)
	}
	_, err := Migrate(ctx, path, c, nil)
	if err == nil || !strings.Contains(err.Error(), `"general"`) || !strings.Contains(err.Error(), "nothing was copied") {
		t.Fatalf("Migrate = %v, want a refusal naming general", err)
	}
	if got, err := c.Names().Claimed(ctx, []string{"alice", "bob"}); len(got) != 0 || err != nil {
		t.Fatalf("names copied after all: %q, %v", got, err)
	}
	if got := streamMessages(t, c, "random"); len(got) != 0 {
		t.Fatalf("random copied after all: %+v", got)
	}
}

// A run interrupted after part of a room completes it when run again.
func TestMigrateCompletesAnInterruptedRun(t *testing.T) {
	path, src := sourceDB(t)
	c := storesDial(t, natstest.Start(t, 1), "node-a")
	ctx := context.Background()
	if err := c.Import(ctx, src["general"][:2]); err != nil {
		t.Fatal(err)
	}
	st, err := Migrate(ctx, path, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Stats{Rooms: 4, Messages: 7, Names: 2, Markers: 3, Mentions: 2, RoomsRecorded: 3}); st != want {
		t.Fatalf("stats %+v, want %+v", st, want)
	}
	checkMigrated(t, c, src)
}

// Import refuses a message that is not the next of its room, and a batch
// that would follow a message stored meanwhile.
func TestImportKeepsRoomsGapFree(t *testing.T) {
	c := storesDial(t, natstest.Start(t, 1), "node-a")
	ctx := context.Background()
	m := func(seq uint64) protocol.Msg {
		return protocol.Msg{Room: "r", Seq: seq, Time: protocol.Millis(time.Now()), Sender: "s", ID: strconv.FormatUint(seq, 10), Text: "t"}
	}
	if err := c.Import(ctx, []protocol.Msg{m(2)}); err == nil {
		t.Fatal("imported seq 2 into an empty room")
	}
	if err := c.Import(ctx, []protocol.Msg{m(1), m(2)}); err != nil {
		t.Fatal(err)
	}
	if err := c.Import(ctx, []protocol.Msg{m(2)}); err == nil {
		t.Fatal("imported seq 2 twice")
	}
	// A stale expectation (as if another node stored a message after the
	// head was read) fails the whole batch.
	batch := []protocol.Msg{m(3), m(4)}
	toks := []string{DedupToken("s", "3"), DedupToken("s", "4")}
	if _, err := c.sendBatch(ctx, "r", toks, make([]string, len(toks)), batch, 1, "node-a"); err == nil {
		t.Fatal("a batch after a stale head was stored")
	}
	if got := streamMessages(t, c, "r"); len(got) != 2 {
		t.Fatalf("room holds %d messages, want 2", len(got))
	}
}

// A single server's database whose rooms lost their oldest messages to
// retention migrates as it is: the room starts at its oldest kept
// message, Floor says so, and numbering goes on from its head.
func TestMigrateARetainedHistory(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "chat.db")
	log, err := sqlite.Open(path, func([]history.Result) {}, sqlite.Options{Retention: history.Retention{Messages: 3}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := log.Append(&history.Request{Room: "r", Sender: "alice", ID: strconv.Itoa(i), Text: strconv.Itoa(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := log.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// Retention trims in the background and signals nothing: poll, every
	// 20 ms for at most 20 s.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		floor, _, err := log.Bounds(ctx, "r")
		if err != nil {
			t.Fatal(err)
		}
		if floor == 7 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("floor %d, want 7", floor)
		}
	}
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}

	c := storesDial(t, natstest.Start(t, 1), "node-a")
	if _, err := Migrate(ctx, path, c, nil); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	n := node(t, c, rec, NodeOptions{ID: "node-a"})
	msgs, err := n.Since(ctx, "r", 0, 100)
	if err != nil || len(msgs) != 3 || msgs[0].Seq != 8 || msgs[0].Text != "8" || msgs[2].Seq != 10 {
		t.Fatalf("migrated room: %+v, %v; want 8..10", msgs, err)
	}
	if floor, err := n.Floor(ctx, "r"); err != nil || floor != 7 {
		t.Fatalf("Floor %d, %v; want 7", floor, err)
	}
	if msgs, err := n.Before(ctx, "r", 10, 100); err != nil || len(msgs) != 2 || msgs[0].Seq != 8 {
		t.Fatalf("Before(10): %+v, %v; want 8, 9", msgs, err)
	}
	if err := n.Publish(&broker.Publication{Room: "r", Sender: "bob", ID: "b", Text: "next"}); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, 10*time.Second, "the result", func(r *recorder) bool { return len(r.results) == 1 })
	if r := rec.results[0]; r.Err != nil || r.Msg.Seq != 11 {
		t.Fatalf("next message: %+v, want seq 11", r)
	}
}
