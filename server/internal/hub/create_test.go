package hub

import (
	"testing"

	"chat/protocol"
	"chat/server/internal/rooms"
)

// TestOperatorsCreateRooms: under rooms.Operators, the IsOperator hook
// decides who creates rooms; everyone joins a room that exists.
func TestOperatorsCreateRooms(t *testing.T) {
	op := newMember()
	h, _ := newHub(t, Config{Rooms: rooms.NewMemory(), RoomCreate: rooms.Operators,
		IsOperator: func(m Member) bool { return m == op }})
	guest := h.Connect(newMember())
	e := guest.Join(&protocol.Join{Room: "news", Name: "guest"})
	if e == nil || e.Code != protocol.CodeRoomCreateRefused || e.Closing() || e.Room != "news" {
		t.Fatalf("a guest creating: %v", e)
	}
	opConn := h.Connect(op)
	mustJoin(t, opConn, &protocol.Join{Room: "News", Name: "op"})
	mustJoin(t, guest, &protocol.Join{Room: "news", Name: "guest"})
	// The room exists for good: emptied and dropped, it is still there.
	guest.Close()
	opConn.Close()
	h.mu.Lock()
	held := len(h.rooms)
	h.mu.Unlock()
	if held != 0 {
		t.Fatalf("%d rooms held after everyone left", held)
	}
	again := h.Connect(newMember())
	mustJoin(t, again, &protocol.Join{Room: "news", Name: "guest"})
}

// TestWithoutHookNobodyIsOperator: a hub not told who operators are
// creates no rooms under rooms.Operators.
func TestWithoutHookNobodyIsOperator(t *testing.T) {
	h, _ := newHub(t, Config{Rooms: rooms.NewMemory(), RoomCreate: rooms.Operators})
	if e := h.Connect(newMember()).Join(&protocol.Join{Room: "x", Name: "a"}); e == nil || e.Code != protocol.CodeRoomCreateRefused {
		t.Fatalf("created without an operator hook: %v", e)
	}
}
