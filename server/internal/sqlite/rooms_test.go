package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"chat/server/internal/history"
	"chat/server/internal/rooms"
	"chat/server/internal/rooms/roomstest"
)

func openRooms(t *testing.T, path string) *Rooms {
	t.Helper()
	r, err := OpenRooms(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestRoomsConformance(t *testing.T) {
	roomstest.Run(t, func(t *testing.T) rooms.Registry {
		return openRooms(t, filepath.Join(t.TempDir(), "chat.db"))
	})
}

// TestRoomsJoinedBeforeExist: a room the history knows (joined before the
// record was kept, so it has an epoch) exists, keeps its epoch, and
// counts; a direct-message room does not count.
func TestRoomsJoinedBeforeExist(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "chat.db")
	l, err := Open(path, func([]history.Result) {}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	epoch, err := l.Epoch(ctx, "old")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Epoch(ctx, "@alice@bob"); err != nil {
		t.Fatal(err)
	}
	r := openRooms(t, path)
	if ok, err := r.Exists(ctx, "old"); err != nil || !ok {
		t.Fatalf("Exists(old) = %v, %v", ok, err)
	}
	if n, err := r.Count(ctx); err != nil || n != 1 {
		t.Fatalf("Count = %d, %v; want 1 (the DM does not count)", n, err)
	}
	if _, err := r.Create(ctx, "new", 1); err != rooms.ErrFull {
		t.Fatalf("a second room with a cap of 1: %v", err)
	}
	if created, err := r.Create(ctx, "new", 2); err != nil || !created {
		t.Fatalf("Create(new) = %v, %v", created, err)
	}
	if e, err := l.Epoch(ctx, "old"); err != nil || e != epoch {
		t.Fatalf("epoch of old changed: %d, %v (was %d)", e, err, epoch)
	}
	if e, err := l.Epoch(ctx, "new"); err != nil || e == 0 {
		t.Fatalf("created room has no epoch: %d, %v", e, err)
	}
}
