package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"chat/server/internal/rooms"
)

// Rooms is the cluster's record of which rooms exist (a rooms.Registry),
// in bucket chat-roomset: key Token(room), value the creation time in
// Unix milliseconds. A room that holds messages from before the record
// was kept (it is in chat-rooms) exists too, and is recorded the first
// time it is asked about.
type Rooms struct{ c *Conn }

// Rooms returns the cluster's record of rooms.
func (c *Conn) Rooms() *Rooms { return &Rooms{c: c} }

// Exists implements rooms.Registry. It reads from the buckets' leaders,
// so a room created through another node is seen at once.
func (r *Rooms) Exists(ctx context.Context, room string) (bool, error) {
	if room == "" {
		return false, nil
	}
	key := Token(room)
	_, rev, err := r.c.leaderGet(ctx, r.c.roomSet, key)
	if err != nil || rev != 0 {
		return rev != 0, err
	}
	_, rev, err = r.c.leaderGet(ctx, r.c.rooms, key)
	if err != nil || rev == 0 {
		return false, err
	}
	// Active before the record was kept: record it, uncounted against
	// the cap (it exists whatever the cap says).
	if _, err := r.c.roomSet.Create(ctx, key, now()); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return false, err
	}
	return true, nil
}

func now() []byte { return []byte(strconv.FormatInt(time.Now().UnixMilli(), 10)) }

// Create implements rooms.Registry. The count is the bucket's number of
// values (rooms are never deleted from it, and it keeps one revision per
// key); nodes creating at the same moment may each count below max, so
// the cap can be passed by as many rooms as nodes create at once.
func (r *Rooms) Create(ctx context.Context, room string, max int) (bool, error) {
	key := Token(room)
	if ok, err := r.Exists(ctx, room); err != nil || ok {
		return false, err
	}
	if max > 0 {
		n, err := r.Count(ctx)
		if err != nil {
			return false, err
		}
		if n >= max {
			return false, rooms.ErrFull
		}
	}
	_, err := r.c.roomSet.Create(ctx, key, now())
	if errors.Is(err, jetstream.ErrKeyExists) {
		return false, nil // another node created it meanwhile
	}
	return err == nil, err
}

// Count implements rooms.Registry.
func (r *Rooms) Count(ctx context.Context) (int, error) {
	st, err := r.c.roomSet.Status(ctx)
	if err != nil {
		return 0, fmt.Errorf("cluster: %s status: %w", BucketRoomSet, err)
	}
	return int(st.Values()), nil
}
