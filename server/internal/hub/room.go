package hub

import (
	"context"
	"sync"
	"time"

	"chat/protocol"
	"chat/server/internal/history"
)

// room is one room's live state. Every field is guarded by mu.
type room struct {
	name string // canonical: protocol.Key of what users typed

	mu        sync.Mutex
	loaded    bool
	closed    bool // dropped from the hub; look the room up again
	members   map[*member]bool
	byName    map[string]*member // by protocol.Key(name)
	ring      *ring
	delivered uint64 // last sequence number fanned out

	presence      []protocol.PresenceChange
	presenceTimer *time.Timer
}

// member is one connection's presence in one room.
type member struct {
	conn   *Conn
	room   *room
	name   string
	key    string
	secret string
	// backlog holds live frames while old history is replayed from the
	// log; nil when the member is receiving live frames directly.
	backlog [][]byte
}

func newRoom(name string) *room {
	return &room{name: name, members: map[*member]bool{}, byName: map[string]*member{}}
}

// load fills the ring from the log. Called with mu held, before first use.
func (r *room) load(log history.Log, size int) error {
	msgs, err := log.Last(context.Background(), r.name, size)
	if err != nil {
		return err
	}
	r.ring = newRing(size)
	for i := range msgs {
		r.ring.push(msgs[i].Seq, protocol.Encode(&msgs[i]))
	}
	if len(msgs) > 0 {
		r.delivered = msgs[len(msgs)-1].Seq
	}
	r.loaded = true
	return nil
}

func (r *room) add(m *member) {
	r.members[m] = true
	r.byName[m.key] = m
}

func (r *room) remove(m *member) {
	delete(r.members, m)
	if r.byName[m.key] == m {
		delete(r.byName, m.key)
	}
}

func (r *room) listNames(limit int) []string {
	names := make([]string, 0, min(limit, len(r.members)))
	for m := range r.members {
		if len(names) == limit {
			break
		}
		names = append(names, m.name)
	}
	return names
}

// send queues a frame for the member, or holds it while the member
// catches up on old history.
func (m *member) send(frame []byte, maxBacklog int) {
	if m.backlog == nil {
		m.conn.m.Deliver(frame)
		return
	}
	if len(m.backlog) >= maxBacklog {
		m.conn.m.Fail(protocol.NewError(protocol.CodeSlowConsumer, m.room.name,
			"too many new messages while replaying history; reconnect to resume"))
		return
	}
	m.backlog = append(m.backlog, frame)
}

// addPresence records a change. Small rooms hear of it at once; big rooms
// get the changes of PresenceDelay in one frame, so that thousands of
// joins cost thousands of frames, not millions.
func (r *room) addPresence(c protocol.PresenceChange, cfg Config) {
	r.presence = append(r.presence, c)
	if len(r.members) <= cfg.PresenceBatchAbove {
		r.flushPresence()
		return
	}
	if r.presenceTimer == nil {
		r.presenceTimer = time.AfterFunc(cfg.PresenceDelay, func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.presenceTimer = nil
			r.flushPresence()
		})
	}
}

// maxPresenceChanges keeps PRESENCE frames well below the frame limit.
const maxPresenceChanges = 1000

func (r *room) flushPresence() {
	for len(r.presence) > 0 {
		n := min(len(r.presence), maxPresenceChanges)
		frame := protocol.Encode(&protocol.Presence{Room: r.name, Count: uint64(len(r.members)), Changes: r.presence[:n]})
		r.presence = r.presence[n:]
		for m := range r.members {
			m.send(frame, 1<<30)
		}
	}
	r.presence = nil
}
