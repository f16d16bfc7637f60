// Package rooms defines the server's record of which rooms exist, for the
// room creation policy and the cap on rooms (spec section 6, "Creating
// rooms"). A room exists once a JOIN created it, and from then on for
// good: leaving it empty, or retention removing its messages, does not
// undo that (an operator's word is needed to remove a room, which this
// server does not offer yet). Rooms that held messages before the record
// was kept count as existing. Direct-message rooms are not recorded:
// they are not created under the policy and do not count against the cap.
//
// The single server keeps the record in SQLite (sqlite.Rooms: the rooms
// table the history keeps each room's epoch in), a cluster in JetStream
// (cluster.Rooms); Memory serves tests. roomstest is the suite both pass.
package rooms

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Registry records which rooms exist. Rooms are given by canonical name.
type Registry interface {
	// Exists reports whether room exists.
	Exists(ctx context.Context, room string) (bool, error)
	// Create makes room exist and reports whether this call created it
	// (false: it existed already). If max > 0 and max rooms exist, it
	// creates nothing and returns ErrFull. The cap is exact on one
	// server; in a cluster, rooms created through other nodes within a
	// second may pass it (cluster.Rooms).
	Create(ctx context.Context, room string, max int) (created bool, err error)
	// Count returns how many rooms exist.
	Count(ctx context.Context) (int, error)
}

// ErrFull is Create's answer when the server has its most rooms.
var ErrFull = errors.New("rooms: the server has as many rooms as it may")

// Policy says who may create a room.
type Policy string

// Room creation policies.
const (
	Anyone    Policy = "anyone"    // any JOIN creates the room it names
	WithKey   Policy = "key"       // a JOIN creates a room only with the room creation key
	Operators Policy = "operators" // only server operators create rooms
)

// ParsePolicy reads a policy as given on the command line.
func ParsePolicy(s string) (Policy, error) {
	switch p := Policy(s); p {
	case Anyone, WithKey, Operators:
		return p, nil
	}
	return "", fmt.Errorf("room creation policy must be anyone, key or operators, not %q", s)
}

// Memory is a Registry in memory.
type Memory struct {
	mu    sync.Mutex
	rooms map[string]bool
}

// NewMemory returns an empty registry.
func NewMemory() *Memory { return &Memory{rooms: map[string]bool{}} }

// Exists implements Registry.
func (m *Memory) Exists(_ context.Context, room string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rooms[room], nil
}

// Create implements Registry.
func (m *Memory) Create(_ context.Context, room string, max int) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.rooms[room] {
		return false, nil
	}
	if max > 0 && len(m.rooms) >= max {
		return false, ErrFull
	}
	m.rooms[room] = true
	return true, nil
}

// Count implements Registry.
func (m *Memory) Count(context.Context) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.rooms), nil
}
