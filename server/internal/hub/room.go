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
	closed    bool               // dropped from the hub; look the room up again
	members   map[*member]bool   // one per connection in the room
	byName    map[string]*person // by protocol.Key(name): a name may have several connections
	ring      *ring
	delivered uint64 // last sequence number fanned out

	presence      []protocol.PresenceChange
	presenceTimer *time.Timer
}

// person is a name in a room with its connections (devices, or a stale
// connection not yet timed out). Presence reports names, not connections.
type person struct {
	name   string
	secret string
	conns  int
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
	return &room{name: name, members: map[*member]bool{}, byName: map[string]*person{}}
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

// add puts a connection in the room and reports whether its name is new
// there (not already present through another connection).
func (r *room) add(m *member) (newName bool) {
	r.members[m] = true
	p := r.byName[m.key]
	if p == nil {
		p = &person{name: m.name, secret: m.secret}
		r.byName[m.key] = p
	}
	p.conns++
	return p.conns == 1
}

// remove takes a connection out and reports whether that was its name's
// last connection in the room.
func (r *room) remove(m *member) (nameGone bool) {
	delete(r.members, m)
	p := r.byName[m.key]
	p.conns--
	if p.conns == 0 {
		delete(r.byName, m.key)
		return true
	}
	return false
}

// count is the number of names in the room.
func (r *room) count() uint64 { return uint64(len(r.byName)) }

func (r *room) listNames(limit int) []string {
	names := make([]string, 0, min(limit, len(r.byName)))
	for _, p := range r.byName {
		if len(names) == limit {
			break
		}
		names = append(names, p.name)
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
// get the changes of PresenceDelay (times the room's hundreds of members,
// up to ten times) in one frame, so that thousands of joins cost
// thousands of frames, not millions.
func (r *room) addPresence(c protocol.PresenceChange, cfg Config) {
	r.presence = append(r.presence, c)
	if len(r.members) <= cfg.PresenceBatchAbove {
		r.flushPresence()
		return
	}
	if r.presenceTimer == nil {
		// The bigger the room, the longer changes are gathered: every
		// frame goes to every member, so a join storm in a room of
		// thousands costs thousands of frames per flush.
		delay := cfg.PresenceDelay * time.Duration(min(max(len(r.members)/100, 1), 10))
		r.presenceTimer = time.AfterFunc(delay, func() {
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
		frame := protocol.Encode(&protocol.Presence{Room: r.name, Count: r.count(), Changes: r.presence[:n]})
		r.presence = r.presence[n:]
		for m := range r.members {
			m.send(frame, 1<<30)
		}
	}
	r.presence = nil
}
