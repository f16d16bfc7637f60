package hub

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"

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
// A room this node holds (someone here is in it) exists; any other is
// looked up in the record, one read per such JOIN. Direct-message rooms
// are not created under the policy: who may join them is decided by
// their names.
func (h *Hub) mayEnter(mem *member, j *protocol.Join) (ok bool, e *protocol.Error) {
	reg := h.cfg.Rooms
	key := mem.roomKey
	if reg == nil || inbox.IsDirect(key) {
		return true, nil
	}
	h.mu.Lock()
	_, here := h.rooms[key]
	h.mu.Unlock()
	if here {
		return true, nil
	}
	ctx := mem.ctx
	exists, err := reg.Exists(ctx, key)
	switch {
	case ctx.Err() != nil:
		return false, nil
	case err != nil:
		h.cfg.Logger.Error("looking up a room", "room", key, "err", err)
		return false, protocol.NewError(protocol.CodeUnavailable, key, "the server cannot look up rooms right now; try again")
	case exists:
		return true, nil
	}
	c := mem.conn
	if e := h.mayCreate(c, key, j.Key); e != nil {
		return false, e
	}
	if !h.cfg.CreateLimit.Allow(c.addr) {
		h.limitHit("room-creation", c.addr, "created too many rooms lately; refused "+key)
		return false, protocol.NewError(protocol.CodeRoomLimit, key,
			"you have created too many rooms lately; wait a while, or join a room that exists")
	}
	created, err := reg.Create(ctx, key, h.cfg.MaxServerRooms)
	if !created {
		h.cfg.CreateLimit.Refund(c.addr) // nothing was created
	}
	switch {
	case ctx.Err() != nil:
		return false, nil
	case errors.Is(err, rooms.ErrFull):
		h.limitHit("server-rooms", c.addr, fmt.Sprintf("the server has %d rooms; refused %s", h.cfg.MaxServerRooms, key))
		return false, protocol.NewError(protocol.CodeRoomLimit, key,
			fmt.Sprintf("this server has %d rooms, as many as it allows; join one that exists", h.cfg.MaxServerRooms))
	case err != nil:
		h.cfg.Logger.Error("creating a room", "room", key, "err", err)
		return false, protocol.NewError(protocol.CodeUnavailable, key, "the server cannot create rooms right now; try again")
	case created:
		h.cfg.Logger.Info("room created", "room", key, "remote", c.addr)
	}
	return true, nil
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
		if h.cfg.IsOperator != nil && h.cfg.IsOperator(c.m) {
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
