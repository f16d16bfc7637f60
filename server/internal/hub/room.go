package hub

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"

	"chat/protocol"
	"chat/server/internal/broker"
	"chat/server/internal/moderation"
)

// room is this node's side of one room: its local members, a cache of
// recent frames and pending presence. Every field is guarded by mu.
type room struct {
	name string // canonical: protocol.Key of what users typed
	h    *Hub

	mu        sync.Mutex
	loaded    bool // subscribed, ring filled
	closed    bool // dropped from the hub; look the room up again
	members   map[*member]bool
	ring      *ring
	delivered uint64 // last sequence number fanned out
	epoch     uint64 // the history's epoch, from the broker
	// count is the room's members (names, through every node) as last
	// counted: at a join and at each presence flush. Typing indicators
	// stop above Config.TypingMaxMembers.
	count int
	// mod is the room's moderation settings as last read (nil before
	// the first join), modRev their revision: SEND's mute check reads it.
	mod    *moderation.State
	modRev uint64

	presence      []protocol.PresenceChange
	presenceTimer *time.Timer
}

// memberState is where a membership is in its life. It only moves
// forward; transitions happen under the connection's mu.
type memberState int

const (
	joining   memberState = iota // registered; name check and presence under way
	replaying                    // in the room, history being replayed, live frames held
	live                         // in the room, live frames delivered directly
	leaving                      // cancelled: being taken out of the room
	gone                         // out of the room and of the connection
)

// member is one connection's membership of one room.
type member struct {
	conn       *Conn
	roomKey    string
	name       string
	nameKey    string
	secretHash string
	// ctx is cancelled when the membership starts leaving; every step of
	// joining and replaying checks it.
	ctx    context.Context
	cancel context.CancelFunc

	// Guarded by conn.mu.
	state   memberState
	room    *room         // set once the membership is in the room
	pending int           // SENDs published and not yet answered
	leftDue bool          // LEAVE confirmed once pending reaches 0
	gone    chan struct{} // closed when the membership is gone

	// backlog holds live frames while old history is replayed; nil when
	// the member gets live frames directly. Guarded by room.mu.
	backlog [][]byte
	// ahead is the resume point of a member that had seen more of the
	// room than this node had delivered when it joined (see enterLocked);
	// live messages up to it are not sent. Guarded by room.mu.
	ahead uint64

	// typingAt is when the membership's last IS-TYPING was forwarded,
	// typingOn whether it was a start not yet followed by a stop.
	// Guarded by conn.mu.
	typingAt time.Time
	typingOn bool
	// acked is the highest seq acknowledged to the membership: a change
	// or reply may name it before its broadcast reaches this node.
	// Guarded by conn.mu.
	acked uint64
}

func (m *member) presence() broker.Presence {
	return broker.Presence{Name: m.name, SecretHash: m.secretHash, Conn: m.conn.id}
}

// secretHash is how a name's secret is compared in presence: brokers
// never hold secrets themselves.
func secretHash(secret string) string {
	if secret == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(secret))
	return string(sum[:])
}

func newRoom(name string, h *Hub) *room {
	return &room{name: name, h: h, members: map[*member]bool{}}
}

// load subscribes to the room and fills the ring. Called with mu held,
// before first use.
func (r *room) load(ctx context.Context) error {
	b, size := r.h.b, r.h.cfg.RingSize
	pos, err := b.Subscribe(ctx, r.name)
	if err != nil {
		return err
	}
	msgs, err := b.Last(ctx, r.name, size)
	if err != nil {
		b.Unsubscribe(r.name)
		return err
	}
	r.ring = newRing(size, r.h.cfg.RingBytes, &r.h.cacheUsed)
	for i := range msgs {
		m := &msgs[i]
		if m.Change == nil {
			r.ring.push(m.Seq, protocol.Encode(m))
			continue
		}
		// Reads give a change entry the target's current state: the
		// replay's rule (ring.since) needs it on the last change only.
		frame := protocol.Encode(m.Update(m.Change.State))
		bare := frame
		if m.Change.State != nil {
			bare = protocol.Encode(m.Update(nil))
		}
		r.ring.pushChange(m.Seq, frame, bare, m.Change.Target)
	}
	r.delivered = pos.Offset
	if len(msgs) > 0 {
		r.delivered = max(r.delivered, msgs[len(msgs)-1].Seq)
	}
	r.epoch = pos.Epoch
	r.loaded = true
	return nil
}

// hasName reports whether a local member of the room has the name key.
// Called with mu held.
func (r *room) hasName(key string) bool {
	for m := range r.members {
		if m.nameKey == key {
			return true
		}
	}
	return false
}

// send queues a frame for the member, or holds it while the member
// catches up on old history.
func (m *member) send(frame []byte, maxBacklog int) {
	if m.backlog == nil {
		m.conn.m.Deliver(frame)
		return
	}
	if len(m.backlog) >= maxBacklog {
		m.conn.m.Fail(protocol.NewError(protocol.CodeSlowConsumer, m.roomKey,
			"too many new messages while replaying history; reconnect to resume"))
		return
	}
	m.backlog = append(m.backlog, frame)
}

// addPresence records a change. Small rooms hear of it at once; big rooms
// get the changes of PresenceDelay (times the room's hundreds of members,
// up to ten times) in one frame, so that thousands of joins cost
// thousands of frames, not millions.
func (r *room) addPresence(c protocol.PresenceChange) {
	cfg := &r.h.cfg
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
	if len(r.presence) == 0 {
		return
	}
	_, count, err := r.h.b.PresenceList(context.Background(), r.name, 0)
	if err != nil {
		r.h.cfg.Logger.Error("counting presence", "room", r.name, "err", err)
	} else {
		r.count = count
	}
	for len(r.presence) > 0 {
		n := min(len(r.presence), maxPresenceChanges)
		frame := protocol.Encode(&protocol.Presence{Room: r.name, Count: uint64(count), Changes: r.presence[:n]})
		r.presence = r.presence[n:]
		for m := range r.members {
			m.send(frame, 1<<30)
		}
	}
	r.presence = nil
}
