package cluster

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"chat/protocol"
	"chat/server/internal/cluster/natstest"
	"chat/server/internal/history"
	"chat/server/internal/moderation"
	"chat/server/internal/sqlite"
)

// lateSink is a sqlite.Writer that stores one more message in the
// cluster when Export hands it its first: a message stored after Export
// began, which the backup must not hold.
type lateSink struct {
	*sqlite.Writer
	c    *Conn
	done bool
	err  error
}

func (s *lateSink) Message(m protocol.Msg) error {
	if !s.done {
		s.done = true
		s.err = s.c.Import(context.Background(), []protocol.Msg{{Room: "late", Seq: 1, Time: 5, Sender: "eve", ID: "late-1", Text: "too late"}})
	}
	return s.Writer.Message(m)
}

// TestExportRoundTrip: a single server's database migrated into a
// cluster, exported from it into a backup file, and that file migrated
// into a second, empty cluster gives the same history, names, markers,
// mentions and indexes (checkMigrated). A message stored while the
// export runs is not in it. RenewEpoch refuses the cluster with messages
// and gives the empty one a new epoch that the next Dial reads.
func TestExportRoundTrip(t *testing.T) {
	ctx := context.Background()
	path, src := sourceDB(t)
	a := storesDial(t, natstest.Start(t, 1), "node-a")
	if _, err := Migrate(ctx, path, a, nil); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "backup.db")
	w, err := sqlite.Create(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	sink := &lateSink{Writer: w, c: a}
	st, err := a.Export(ctx, sink)
	if err != nil {
		w.Abort()
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if sink.err != nil {
		t.Fatal(sink.err)
	}
	if want := (ExportStats{Rooms: 4, Messages: 9, Names: 2, Markers: 3, Mentions: 2}); st != want {
		t.Fatalf("exported %+v, want %+v", st, want)
	}
	check, err := sqlite.Check(ctx, file)
	if err != nil || check.Messages != 9 || check.Rooms != 4 || check.Names != 2 || check.Markers != 3 {
		t.Fatalf("the backup file: %v, %v", check, err)
	}
	if _, err := a.RenewEpoch(ctx); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("RenewEpoch of a cluster with messages: %v, want ErrNotEmpty", err)
	}

	fresh := natstest.Start(t, 1)
	b := storesDial(t, fresh, "node-b")
	old := b.Epoch()
	epoch, err := b.RenewEpoch(ctx)
	if err != nil || epoch == old || b.Epoch() != epoch {
		t.Fatalf("RenewEpoch: %d, %v (was %d, now %d)", epoch, err, old, b.Epoch())
	}
	if again := storesDial(t, fresh, "node-c"); again.Epoch() != epoch {
		t.Fatalf("a new connection reads epoch %d, want %d", again.Epoch(), epoch)
	}
	if _, err := Migrate(ctx, file, b, nil); err != nil {
		t.Fatal(err)
	}
	checkMigrated(t, b, src)
	if got := streamMessages(t, b, "late"); len(got) != 0 {
		t.Fatalf("a message stored during the export is in the backup: %+v", got)
	}
}

// TestExportModerationAndDeletions: a cluster's moderation (a room's
// topic, operator and ban; the audit log, one entry outside any room)
// and its deleted messages go into the backup file as the single server
// keeps them: the state and log in its moderation tables, read back by
// its moderation store; the deleted messages (the first of a room, one
// in the middle, the last) in place without text, each room numbered
// without gaps; a room whose last message's deletion is under way (its
// seq twice in the stream) once. The file migrated into an empty
// cluster gives the same moderation and history.
func TestExportModerationAndDeletions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := storesDial(t, natstest.Start(t, 1), "node-a")
	var msgs []protocol.Msg
	for _, r := range []struct {
		room string
		n    int
	}{{"lobby", 5}, {"first", 3}, {"busy", 2}} {
		room := r.room
		for seq := 1; seq <= r.n; seq++ {
			msgs = append(msgs, protocol.Msg{Room: room, Seq: uint64(seq), Time: uint64(1000 * seq), Sender: "bob",
				ID: fmt.Sprintf("%s-%d", room, seq), Text: fmt.Sprintf("%s text %d", room, seq)})
		}
	}
	if err := a.Import(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	mod := openModeration(t, a, 0)
	state := &moderation.State{Topic: "be kind", Ops: []string{"alice"},
		Bans: []moderation.Ban{{Name: "mallory", By: "alice", Reason: "spam"}}}
	if _, err := mod.Save(ctx, "lobby", state, 0); err != nil {
		t.Fatal(err)
	}
	entries := []moderation.Entry{
		{Time: 1, Actor: "operator", Addr: "127.0.0.1:5000", Action: "oper"},
		{Time: 2, Room: "lobby", Actor: "alice", Action: "topic", Detail: "be kind"},
		{Time: 3, Room: "lobby", Actor: "alice", Action: "ban", Target: "mallory", Detail: "spam"},
		{Time: 4, Room: "lobby", Actor: "alice", Action: "delete", Seq: 3},
	}
	for _, e := range entries {
		if err := mod.Audit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []struct {
		room string
		seq  uint64
	}{{"lobby", 3}, {"lobby", 5}, {"first", 1}} {
		if ok, err := mod.Redact(ctx, d.room, d.seq); !ok || err != nil {
			t.Fatalf("Redact(%s, %d) = %v, %v", d.room, d.seq, ok, err)
		}
	}
	// busy's last message as a deletion leaves it midway: the record and
	// the copy without text stored, the message not yet erased.
	h, err := a.readHead(ctx, "busy")
	if err != nil {
		t.Fatal(err)
	}
	red := msgs[len(msgs)-1]
	if red.Room != "busy" || red.Seq != 2 {
		t.Fatalf("the test's last message is %s #%d", red.Room, red.Seq)
	}
	red.Text = ""
	if _, err := a.redactions.Put(ctx, redactionKey("busy", 2), protocol.Encode(&red)); err != nil {
		t.Fatal(err)
	}
	if err := a.copyLast(ctx, "busy", &red, h.stream); err != nil {
		t.Fatal(err)
	}

	file := filepath.Join(t.TempDir(), "backup.db")
	w, err := sqlite.Create(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	st, err := a.Export(ctx, w)
	if err != nil {
		w.Abort()
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if want := (ExportStats{Rooms: 3, Messages: 10, Deleted: 2, ModeratedRooms: 1, AuditEntries: 4}); st != want {
		t.Fatalf("exported %+v, want %+v", st, want)
	}

	want := map[string][]protocol.Msg{}
	for _, m := range msgs {
		if (m.Room == "lobby" && (m.Seq == 3 || m.Seq == 5)) || (m.Room == "first" && m.Seq == 1) {
			m.Text = ""
		}
		want[m.Room] = append(want[m.Room], m)
	}
	hist, err := sqlite.Open(file, func([]history.Result) {}, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for room, w := range want {
		got, err := hist.Since(ctx, room, 0, 100)
		if err != nil || !reflect.DeepEqual(got, w) {
			t.Fatalf("%s in the backup:\n got %+v, %v\nwant %+v", room, got, err, w)
		}
	}
	if err := hist.Close(); err != nil {
		t.Fatal(err)
	}
	fileMod, err := sqlite.OpenModeration(file, sqlite.ModerationOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer fileMod.Close()
	checkModeration(t, fileMod, "the backup", state, entries)
	if got, rev, err := fileMod.Load(ctx, "lobby"); err != nil || rev != 1 || !reflect.DeepEqual(got, state) {
		t.Fatalf("lobby in the backup: %+v rev %d, %v", got, rev, err)
	}

	b := storesDial(t, natstest.Start(t, 1), "node-b")
	mst, err := Migrate(ctx, file, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if mst.ModeratedRooms != 1 || mst.AuditEntries != 4 {
		t.Fatalf("migrated %d moderation states and %d audit entries, want 1 and 4", mst.ModeratedRooms, mst.AuditEntries)
	}
	checkModeration(t, openModeration(t, b, 0), "the restored cluster", state, entries)
	for room, w := range want {
		if got := streamMessages(t, b, room); !reflect.DeepEqual(got, w) {
			t.Fatalf("%s in the restored cluster:\n got %+v\nwant %+v", room, got, w)
		}
	}
}

// checkModeration checks that store holds state as lobby's moderation,
// no state for another room, and entries as its audit log.
func checkModeration(t *testing.T, store moderation.Store, where string, state *moderation.State, entries []moderation.Entry) {
	t.Helper()
	ctx := context.Background()
	if got, _, err := store.Load(ctx, "lobby"); err != nil || !reflect.DeepEqual(got, state) {
		t.Fatalf("lobby's moderation in %s: %+v, %v; want %+v", where, got, err, state)
	}
	if got, rev, err := store.Load(ctx, "first"); err != nil || rev != 0 || !reflect.DeepEqual(got, &moderation.State{}) {
		t.Fatalf("first's moderation in %s: %+v rev %d, %v", where, got, rev, err)
	}
	if got, err := store.AuditLog(ctx, "", 10); err != nil || !reflect.DeepEqual(got, entries) {
		t.Fatalf("the audit log in %s:\n got %+v, %v\nwant %+v", where, got, err, entries)
	}
	if got, err := store.AuditLog(ctx, "lobby", 10); err != nil || !reflect.DeepEqual(got, entries[1:]) {
		t.Fatalf("lobby's audit log in %s:\n got %+v, %v\nwant %+v", where, got, err, entries[1:])
	}
}
