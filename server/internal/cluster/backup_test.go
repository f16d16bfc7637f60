package cluster

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"chat/protocol"
	"chat/server/internal/cluster/natstest"
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
