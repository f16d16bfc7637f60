package hub

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"sync"
	"time"

	"chat/protocol"
	"chat/server/internal/inbox"
	"chat/server/internal/rooms"
)

// mayEnter creates the room of a JOIN if it does not exist yet, when the
// room creation policy, the server's cap on rooms and the address's
// creation rate allow (spec section 6, "Creating rooms"). ok is false for
// a refusal (e says why) and for a membership cancelled meanwhile (e is
// nil).
//
// A room this node holds (someone here is in it) or has seen exist
// exists (rooms are never removed, so that is never stale); any other is
// looked up in the record, once for all the JOINs of it that arrive
// meanwhile (a crowd joining a new room costs one lookup, not one each).
// Direct-message rooms are not created under the policy: who may join
// them is decided by their names.
func (h *Hub) mayEnter(mem *member, j *protocol.Join) (ok bool, e *protocol.Error) {
	reg := h.cfg.Rooms
	key := mem.roomKey
	if reg == nil || inbox.IsDirect(key) {
		return true, nil
	}
	h.mu.Lock()
	_, here := h.rooms[key]
	h.mu.Unlock()
	if here || h.known.has(key) {
		return true, nil
	}
	// A lookup and a creation each bound by lookupTimeout.
	ctx := mem.ctx
	exists, _, err := h.known.once(ctx, "exists "+key, func(lctx context.Context) (bool, error) {
		ok, err := reg.Exists(lctx, key)
		if ok {
			h.known.add(key) // before the waiters hear: a JOIN after them needs no lookup
		}
		return ok, err
	})
	switch {
	case ctx.Err() != nil:
		return false, nil
	case err != nil:
		h.cfg.Logger.Error("looking up a room", "room", key, "err", err)
		return false, protocol.NewError(protocol.CodeUnavailable, key, "the server cannot look up rooms right now; try again")
	case exists, h.known.has(key): // or created while this JOIN waited
		return true, nil
	}
	c := mem.conn
	if e := h.mayCreate(c, key, j.Key); e != nil {
		return false, e
	}
	if !h.cfg.CreateLimit.Allow(c.remote) {
		h.limitHit("room-creation", c.remote, "created too many rooms lately; refused "+key)
		return false, protocol.NewError(protocol.CodeRoomLimit, key,
			"you have created too many rooms lately; wait a while, or join a room that exists")
	}
	// JOINs of the new room arriving together create it once; the one
	// whose call it was counts it as its creation.
	created, mine, err := h.known.once(ctx, "create "+key, func(cctx context.Context) (bool, error) {
		created, err := reg.Create(cctx, key, h.cfg.MaxServerRooms)
		if err == nil {
			h.known.add(key)
		}
		return created, err
	})
	created = created && mine
	// Nothing was created by this JOIN: its allowance comes back. Not
	// when its own creation still runs after it gave up (a JOIN and a
	// LEAVE back to back): that room may well be created.
	if !created && !(mine && ctx.Err() != nil) {
		h.cfg.CreateLimit.Refund(c.remote)
	}
	switch {
	case ctx.Err() != nil:
		return false, nil
	case errors.Is(err, rooms.ErrFull):
		h.limitHit("server-rooms", c.remote, fmt.Sprintf("the server has %d rooms; refused %s", h.cfg.MaxServerRooms, key))
		return false, protocol.NewError(protocol.CodeRoomLimit, key,
			fmt.Sprintf("this server has %d rooms, as many as it allows; join one that exists", h.cfg.MaxServerRooms))
	case err != nil:
		h.cfg.Logger.Error("creating a room", "room", key, "err", err)
		return false, protocol.NewError(protocol.CodeUnavailable, key, "the server cannot create rooms right now; try again")
	case created:
		h.cfg.Logger.Info("room created", "room", key, "remote", c.remote)
	}
	return true, nil
}

// lookupTimeout bounds one lookup or creation of a room in the record.
const lookupTimeout = 10 * time.Second

// knownRooms remembers rooms this node has seen exist, at most
// maxKnownRooms (then it starts afresh: it is only a shortcut), and runs
// one lookup per room at a time.
type knownRooms struct {
	mu       sync.Mutex
	rooms    map[string]bool
	inflight map[string]*roomLookup
}

// roomLookup is a lookup or creation under way; done is closed when
// result and err are set.
type roomLookup struct {
	done    chan struct{}
	result  bool
	err     error
	waiters int // callers that joined the call, guarded by knownRooms.mu
}

// maxKnownRooms bounds knownRooms: a name and a map entry each.
const maxKnownRooms = 1 << 16

func (k *knownRooms) has(room string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.rooms[room]
}

func (k *knownRooms) add(room string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.rooms == nil || len(k.rooms) >= maxKnownRooms {
		k.rooms = map[string]bool{}
	}
	k.rooms[room] = true
}

// once runs f (a lookup or creation, named by op) or waits for the one
// under way, until ctx ends. mine is true for the caller whose call ran
// f. f gets its own context, not a JOIN's: it serves every JOIN waiting
// for it, and one of them leaving must not fail the others.
func (k *knownRooms) once(ctx context.Context, op string, f func(context.Context) (bool, error)) (result, mine bool, err error) {
	k.mu.Lock()
	l := k.inflight[op]
	if l != nil {
		l.waiters++
	} else {
		mine = true
		l = &roomLookup{done: make(chan struct{})}
		if k.inflight == nil {
			k.inflight = map[string]*roomLookup{}
		}
		k.inflight[op] = l
		go func() {
			fctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
			defer cancel()
			l.result, l.err = f(fctx)
			k.mu.Lock()
			delete(k.inflight, op)
			k.mu.Unlock()
			close(l.done)
		}()
	}
	k.mu.Unlock()
	select {
	case <-l.done:
		return l.result, mine, l.err
	case <-ctx.Done():
		return false, mine, ctx.Err() // f goes on for the others
	}
}

// mayCreate applies the room creation policy to a JOIN carrying key that
// would create room.
func (h *Hub) mayCreate(c *Conn, room, key string) *protocol.Error {
	switch h.cfg.RoomCreate {
	case rooms.WithKey:
		// Hashes make the comparison constant-time whatever the lengths.
		got, want := sha256.Sum256([]byte(key)), sha256.Sum256([]byte(h.cfg.RoomCreateKey))
		if h.cfg.RoomCreateKey != "" && subtle.ConstantTimeCompare(got[:], want[:]) == 1 {
			return nil
		}
		return protocol.NewError(protocol.CodeRoomCreateRefused, room,
			"there is no room "+room+" yet, and creating rooms on this server needs its room creation key")
	case rooms.Operators:
		if c.operator.Load() || (h.cfg.IsOperator != nil && h.cfg.IsOperator(c.m)) {
			return nil
		}
		return protocol.NewError(protocol.CodeRoomCreateRefused, room,
			"there is no room "+room+" yet, and only the server's operators create rooms")
	}
	return nil
}

// limitHit records a limit that refused a room creation.
func (h *Hub) limitHit(kind, remote, detail string) {
	if h.cfg.LimitHit != nil {
		h.cfg.LimitHit(kind, remote, detail)
		return
	}
	h.cfg.Logger.Warn("limit", "kind", kind, "remote", remote, "detail", detail)
}
