package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
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
	switch _, err := r.c.roomSet.Create(ctx, key, now()); {
	case err == nil:
		r.c.roomCount.add(1)
	case !errors.Is(err, jetstream.ErrKeyExists):
		return false, err
	}
	return true, nil
}

func now() []byte { return []byte(strconv.FormatInt(time.Now().UnixMilli(), 10)) }

// Create implements rooms.Registry. The count is the bucket's number of
// values (rooms are never deleted from it, and it keeps one revision per
// key), read at most once per countTTL by each node and advanced by the
// node's own creations meanwhile: nodes creating at the same moment may
// each count below max, so the cap can be passed by about as many rooms
// as the nodes create within countTTL. Create does not look for a room
// that existed before the record (Exists does, and records it): call
// Exists first.
func (r *Rooms) Create(ctx context.Context, room string, max int) (bool, error) {
	if max > 0 {
		n, err := r.count(ctx)
		if err != nil {
			return false, err
		}
		if n >= max {
			// A room created meanwhile is no creation: say so rather
			// than refuse it.
			if ok, err := r.Exists(ctx, room); err != nil || ok {
				return false, err
			}
			return false, rooms.ErrFull
		}
	}
	_, err := r.c.roomSet.Create(ctx, Token(room), now())
	if errors.Is(err, jetstream.ErrKeyExists) {
		return false, nil // created meanwhile, through this node or another
	}
	if err != nil {
		return false, err
	}
	r.c.roomCount.add(1)
	return true, nil
}

// countTTL is how long a node trusts its count of rooms.
const countTTL = time.Second

// roomCount is a node's cached count of chat-roomset's values.
type roomCount struct {
	mu   sync.Mutex
	n    int
	read time.Time
}

func (rc *roomCount) add(k int) {
	rc.mu.Lock()
	rc.n += k
	rc.mu.Unlock()
}

// count returns the number of rooms, from the cache if it is fresh.
func (r *Rooms) count(ctx context.Context) (int, error) {
	rc := &r.c.roomCount
	rc.mu.Lock()
	if time.Since(rc.read) < countTTL {
		n := rc.n
		rc.mu.Unlock()
		return n, nil
	}
	rc.mu.Unlock()
	n, err := r.Count(ctx)
	if err != nil {
		return 0, err
	}
	rc.mu.Lock()
	rc.n, rc.read = n, time.Now()
	rc.mu.Unlock()
	return n, nil
}

// Count implements rooms.Registry: it asks the bucket.
func (r *Rooms) Count(ctx context.Context) (int, error) {
	st, err := r.c.roomSet.Status(ctx)
	if err != nil {
		return 0, fmt.Errorf("cluster: %s status: %w", BucketRoomSet, err)
	}
	return int(st.Values()), nil
}
