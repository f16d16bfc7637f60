// Package inbox defines what the server remembers for names across
// rooms: read markers, unread mentions, and the lists a name's devices
// ask for (its direct-message rooms, the rooms of the server). The server
// keeps it in SQLite (sqlite.Inbox) beside the history; Memory serves
// tests and fuzzing. A cluster implements Store on its shared store.
//
// Names are given by key (protocol.Key) and rooms by canonical name.
package inbox

import (
	"context"
	"slices"
	"strings"
	"sync"

	"chat/protocol"
)

// Store keeps read markers and mentions and lists rooms.
type Store interface {
	// State returns name's read marker in room (0: none) and how many
	// stored mentions of name in room lie above it.
	State(ctx context.Context, name, room string) (read, mentions uint64, err error)
	// Advance moves name's read marker in room to seq if that is
	// forward, and reports whether it moved. Mentions at or below the
	// marker are forgotten. Markers never move back.
	Advance(ctx context.Context, name, room string, seq uint64) (moved bool, err error)
	// Mention records that message seq of room mentions each of names,
	// except those whose marker is at or past seq already. At most the
	// store's limit of mentions is kept per name; the oldest go first.
	Mention(ctx context.Context, room string, seq uint64, names []string) error
	// Direct returns the direct-message rooms of name that hold
	// messages, most recently active first, at most limit, with name's
	// read marker in each.
	Direct(ctx context.Context, name string, limit int) ([]protocol.RoomState, error)
	// Active returns rooms that hold messages, not direct-message rooms,
	// whose name contains match (a key; "" matches all), most recently
	// active first, at most limit. Members is left 0. A store may
	// search only its most recently active rooms, to bound the cost of
	// a search that matches few (sqlite.InboxOptions.ListScan); rooms
	// with members are listed anyway, from presence and Heads.
	Active(ctx context.Context, match string, limit int) ([]protocol.RoomInfo, error)
	// Heads returns the head and last-activity time of those of rooms
	// that hold messages. Members is left 0.
	Heads(ctx context.Context, rooms []string) ([]protocol.RoomInfo, error)
}

// IsDirect reports whether room, a canonical room name, is a
// direct-message room.
func IsDirect(room string) bool { return strings.HasPrefix(room, protocol.DMPrefix) }

// Memory is a Store in memory. Room activity comes from heads, which
// returns the last message of every room that has one (nil: none).
type Memory struct {
	heads       func() []protocol.Msg
	maxMentions int

	mu       sync.Mutex
	markers  map[[2]string]uint64
	mentions map[string][]mention // by name, oldest first
}

type mention struct {
	room string
	seq  uint64
}

// NewMemory returns an empty store keeping at most maxMentions mentions
// per name (0: 1000).
func NewMemory(heads func() []protocol.Msg, maxMentions int) *Memory {
	if maxMentions <= 0 {
		maxMentions = 1000
	}
	return &Memory{heads: heads, maxMentions: maxMentions, markers: map[[2]string]uint64{}, mentions: map[string][]mention{}}
}

// State implements Store.
func (m *Memory) State(_ context.Context, name, room string) (uint64, uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	read := m.markers[[2]string{name, room}]
	var n uint64
	for _, x := range m.mentions[name] {
		if x.room == room && x.seq > read {
			n++
		}
	}
	return read, n, nil
}

// Advance implements Store.
func (m *Memory) Advance(_ context.Context, name, room string, seq uint64) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [2]string{name, room}
	if seq <= m.markers[k] {
		return false, nil
	}
	m.markers[k] = seq
	m.mentions[name] = slices.DeleteFunc(m.mentions[name], func(x mention) bool { return x.room == room && x.seq <= seq })
	if len(m.mentions[name]) == 0 {
		delete(m.mentions, name)
	}
	return true, nil
}

// Mention implements Store.
func (m *Memory) Mention(_ context.Context, room string, seq uint64, names []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, name := range names {
		if seq <= m.markers[[2]string{name, room}] || slices.Contains(m.mentions[name], mention{room, seq}) {
			continue
		}
		list := append(m.mentions[name], mention{room, seq})
		if len(list) > m.maxMentions {
			list = slices.Delete(list, 0, len(list)-m.maxMentions)
		}
		m.mentions[name] = list
	}
	return nil
}

func (m *Memory) lastMessages() []protocol.Msg {
	if m.heads == nil {
		return nil
	}
	msgs := m.heads()
	slices.SortFunc(msgs, func(a, b protocol.Msg) int {
		if a.Time != b.Time {
			return -cmpUint(a.Time, b.Time)
		}
		return strings.Compare(b.Room, a.Room)
	})
	return msgs
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Direct implements Store.
func (m *Memory) Direct(_ context.Context, name string, limit int) ([]protocol.RoomState, error) {
	var out []protocol.RoomState
	for _, last := range m.lastMessages() {
		if len(out) >= limit {
			break
		}
		a, b, ok := protocol.ParseDM(last.Room)
		if !ok || last.Room != protocol.DMRoom(a, b) || (name != a && name != b) {
			continue
		}
		m.mu.Lock()
		read := m.markers[[2]string{name, last.Room}]
		m.mu.Unlock()
		out = append(out, protocol.RoomState{Room: last.Room, Head: last.Seq, Time: last.Time, Read: read})
	}
	return out, nil
}

// Active implements Store.
func (m *Memory) Active(_ context.Context, match string, limit int) ([]protocol.RoomInfo, error) {
	var out []protocol.RoomInfo
	for _, last := range m.lastMessages() {
		if len(out) >= limit {
			break
		}
		if !IsDirect(last.Room) && strings.Contains(last.Room, match) {
			out = append(out, protocol.RoomInfo{Room: last.Room, Head: last.Seq, Time: last.Time})
		}
	}
	return out, nil
}

// Heads implements Store.
func (m *Memory) Heads(_ context.Context, rooms []string) ([]protocol.RoomInfo, error) {
	var out []protocol.RoomInfo
	for _, last := range m.lastMessages() {
		if slices.Contains(rooms, last.Room) {
			out = append(out, protocol.RoomInfo{Room: last.Room, Head: last.Seq, Time: last.Time})
		}
	}
	return out, nil
}
