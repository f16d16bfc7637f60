package cluster

import (
	"context"
	"errors"
	"testing"
	"time"

	"chat/server/internal/cluster/natstest"
	"chat/server/internal/rooms"
	"chat/server/internal/rooms/roomstest"
)

// purge empties streams of the cluster c is connected to.
func purge(t *testing.T, c *Conn, streams ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, stream := range streams {
		s, err := c.js.Stream(ctx, stream)
		if err == nil {
			err = s.Purge(ctx)
		}
		if err != nil {
			t.Fatalf("purging %s: %v", stream, err)
		}
	}
}

// TestRoomsConformance: one NATS server serves every subtest (starting
// one is the slow part); each purges the record for a fresh one.
func TestRoomsConformance(t *testing.T) {
	n := natstest.Start(t, 1)
	roomstest.Run(t, func(t *testing.T) rooms.Registry {
		c := storesDial(t, n, "node-a")
		purge(t, c, "KV_"+BucketRoomSet, "KV_"+BucketRooms)
		return c.Rooms()
	})
}

// TestRoomsAcrossNodes: a room created through one node exists for
// another at once, and counts against the cap there; a room with
// messages from before the record (in chat-rooms only) exists.
func TestRoomsAcrossNodes(t *testing.T) {
	n := natstest.Start(t, 1)
	a, b := storesDial(t, n, "node-a"), storesDial(t, n, "node-b")
	ctx := context.Background()
	if created, err := a.Rooms().Create(ctx, "lobby", 2); err != nil || !created {
		t.Fatalf("create through a: %v, %v", created, err)
	}
	if ok, err := b.Rooms().Exists(ctx, "lobby"); err != nil || !ok {
		t.Fatalf("b does not see lobby: %v, %v", ok, err)
	}
	if created, err := b.Rooms().Create(ctx, "lobby", 2); err != nil || created {
		t.Fatalf("b created lobby again: %v, %v", created, err)
	}
	// A room active before the record was kept.
	if _, err := a.rooms.Create(ctx, Token("old"), []byte(`{"room":"old","head":3}`)); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.Rooms().Exists(ctx, "old"); err != nil || !ok {
		t.Fatalf("a room with messages does not exist: %v, %v", ok, err)
	}
	if _, err := b.Rooms().Create(ctx, "third", 2); !errors.Is(err, rooms.ErrFull) {
		t.Fatalf("third room with a cap of 2 (lobby, old): %v", err)
	}
}
