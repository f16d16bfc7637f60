// Package hub keeps the rooms: who is in them, presence, and fan-out of
// every stored message to every member. A message is encoded once and the
// same bytes are queued to each member; queuing never blocks, so a slow
// member cannot delay anyone else (its connection cuts itself off when its
// queue overflows).
//
// The hub knows nothing of sockets: members are anything that can take a
// frame. Storage is a history.Log, whose commit results drive the fan-out,
// so a message is delivered only once it is durable.
package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"chat/protocol"
	"chat/server/internal/history"
)

// Member is one connection as the hub sees it.
type Member interface {
	// Deliver queues a frame. It never blocks; a connection that cannot
	// keep up ends itself with a slow-consumer error.
	Deliver(frame []byte)
	// Replay queues history frames, waiting while the queue is more than
	// half full. It fails once the connection has ended.
	Replay(frames [][]byte) error
	// Fail ends the connection with e as its last frame.
	Fail(e *protocol.Error)
}

// Config sets the hub's policies. Zero values take the defaults.
type Config struct {
	History            int           // messages replayed on a join without resume (default 100)
	MaxRooms           int           // rooms per connection (default protocol.DefaultMaxRooms)
	MaxListed          int           // member names listed in JOINED (default 500)
	RingSize           int           // recent messages kept in memory per room (default 1024, at least History)
	PresenceBatchAbove int           // rooms with more members get presence batched (default 64)
	PresenceDelay      time.Duration // how long presence changes are gathered in a big room, per 100 members, up to 10× (default 100 ms)
	CatchUpBacklog     int           // live messages held for a member while old history is read (default 10000)
	// Owners, if set, decides who may use a name across the server (name
	// ownership); without it names are only unique within a room.
	Owners Owners
	Logger *slog.Logger
}

// Owners decides whether a secret may use a name, claiming unclaimed names
// for the first secret that uses them (sqlite.Names).
type Owners interface {
	Claim(ctx context.Context, name, secret string) (bool, error)
}

func (c *Config) setDefaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.History, 100)
	def(&c.MaxRooms, protocol.DefaultMaxRooms)
	def(&c.MaxListed, 500)
	def(&c.RingSize, 1024)
	c.RingSize = max(c.RingSize, c.History)
	def(&c.PresenceBatchAbove, 64)
	def(&c.CatchUpBacklog, 10000)
	if c.PresenceDelay <= 0 {
		c.PresenceDelay = 100 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// ErrShuttingDown is returned by Send once Shutdown has begun. The message
// is not stored and not acknowledged; the client sends it again after it
// reconnects.
var ErrShuttingDown = errors.New("hub: shutting down")

// Hub is the set of rooms of one server.
type Hub struct {
	cfg Config
	log history.Log

	mu    sync.Mutex
	rooms map[string]*room

	// sendMu orders Send against Shutdown: a message is either appended to
	// the log before the shutdown flush, or refused.
	sendMu  sync.RWMutex
	closing bool

	// deliveries carries commit results from the log's commit loop to the
	// delivery goroutine, so the next group commit does not wait for the
	// fan-out of the last one. A batch with done set is a barrier.
	deliveries chan delivery
	stopped    chan struct{} // closed when the delivery goroutine exits
}

type delivery struct {
	results []history.Result
	done    chan struct{}
}

// New creates a hub. open is called with the hub's commit sink and returns
// the log the hub stores messages in.
func New(cfg Config, open func(history.Sink) (history.Log, error)) (*Hub, error) {
	cfg.setDefaults()
	h := &Hub{cfg: cfg, rooms: map[string]*room{}, deliveries: make(chan delivery, 256), stopped: make(chan struct{})}
	log, err := open(func(rs []history.Result) { h.deliveries <- delivery{results: rs} })
	if err != nil {
		return nil, err
	}
	h.log = log
	go h.deliver()
	return h, nil
}

// deliver acknowledges and fans out committed messages, in commit order.
func (h *Hub) deliver() {
	defer close(h.stopped)
	for d := range h.deliveries {
		if d.done != nil {
			close(d.done)
			continue
		}
		h.committed(d.results)
	}
}

// Config returns the hub's configuration with defaults filled in.
func (h *Hub) Config() Config { return h.cfg }

// Shutdown stops accepting messages and returns once every message
// accepted before has been stored, acknowledged and fanned out.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.sendMu.Lock()
	h.closing = true
	h.sendMu.Unlock()
	if err := h.log.Flush(ctx); err != nil {
		return err
	}
	done := make(chan struct{})
	select {
	case h.deliveries <- delivery{done: done}:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close closes the log. Call it after Shutdown.
func (h *Hub) Close() error {
	err := h.log.Close() // no more results after this
	close(h.deliveries)
	<-h.stopped
	return err
}

// Conn is a member's handle on the hub: one per connection.
type Conn struct {
	h *Hub
	m Member

	mu    sync.Mutex // a leaf lock: nothing else is acquired while it is held
	rooms map[string]*member
}

// Connect registers a new connection.
func (h *Hub) Connect(m Member) *Conn {
	return &Conn{h: h, m: m, rooms: map[string]*member{}}
}

// Joined returns how many rooms the connection is in.
func (c *Conn) Joined() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.rooms)
}

func (c *Conn) membership(room string) *member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rooms[room]
}

// Join enters a room. A refusal comes back as an ERROR to send; the
// caller has checked lengths and the name and room rules.
func (c *Conn) Join(j *protocol.Join) *protocol.Error {
	key := protocol.Key(j.Room)
	c.mu.Lock()
	_, already := c.rooms[key]
	count := len(c.rooms)
	c.mu.Unlock()
	if already {
		return protocol.NewError(protocol.CodeUnexpected, key, "already joined "+key)
	}
	if count >= c.h.cfg.MaxRooms {
		return protocol.NewError(protocol.CodeTooManyRooms, key,
			fmt.Sprintf("a connection can be in at most %d rooms", c.h.cfg.MaxRooms))
	}
	if o := c.h.cfg.Owners; o != nil {
		ok, err := o.Claim(context.Background(), j.Name, j.Secret)
		if err != nil {
			c.h.cfg.Logger.Error("checking name ownership", "err", err)
			return protocol.NewError(protocol.CodeUnavailable, key, "the server cannot check names right now; try again")
		}
		if !ok {
			return protocol.NewError(protocol.CodeNameOwned, key, fmt.Sprintf(
				"the name %q belongs to someone else on this server; if it is yours, use the name key from the device that claimed it", j.Name))
		}
	}
	for {
		r := c.h.room(key)
		r.mu.Lock()
		if r.closed {
			// Emptied and dropped between lookup and lock: look again.
			r.mu.Unlock()
			continue
		}
		return c.join(r, j)
	}
}

// join runs with r.mu held and releases it.
func (c *Conn) join(r *room, j *protocol.Join) *protocol.Error {
	h := c.h
	if !r.loaded {
		if err := r.load(h.log, h.cfg.RingSize); err != nil {
			r.mu.Unlock()
			h.dropIfEmpty(r)
			h.cfg.Logger.Error("loading room history", "room", r.name, "err", err)
			return protocol.NewError(protocol.CodeUnavailable, r.name, "the room's history cannot be read; try again")
		}
	}
	nameKey := protocol.Key(j.Name)
	if p := r.byName[nameKey]; p != nil && (j.Secret == "" || p.secret != j.Secret) {
		r.mu.Unlock()
		return protocol.NewError(protocol.CodeNameTaken, r.name,
			fmt.Sprintf("%q is already in %s; choose another name", p.name, r.name))
	}

	head := r.delivered
	after := head - min(uint64(h.cfg.History), head)
	if j.Resume {
		after = min(j.After, head)
	}
	mem := &member{conn: c, room: r, name: j.Name, key: nameKey, secret: j.Secret}
	newName := r.add(mem)
	c.mu.Lock()
	c.rooms[r.name] = mem
	c.mu.Unlock()

	joined := &protocol.Joined{Room: r.name, Name: j.Name, After: after, Head: head,
		Count: r.count(), Members: r.listNames(h.cfg.MaxListed)}
	c.m.Deliver(protocol.Encode(joined))
	// History: a few frames go straight into the queue; more are replayed
	// at the client's pace by catchUp, without holding the room, while
	// live messages wait in the member's backlog.
	var replay [][]byte
	fromLog := !r.ring.covers(after)
	if !fromLog {
		replay = r.ring.since(after)
		if len(replay) <= directReplay {
			for _, f := range replay {
				c.m.Deliver(f)
			}
			replay = nil
		}
	}
	catchUp := fromLog || replay != nil
	if catchUp {
		mem.backlog = [][]byte{}
	}
	if newName {
		r.addPresence(protocol.PresenceChange{Kind: protocol.PresenceJoined, Name: j.Name}, h.cfg)
	}
	r.mu.Unlock()
	if catchUp {
		go c.catchUp(mem, replay, after, head)
	}
	return nil
}

// directReplay is the most history frames queued at once on a join; a
// session's queue holds at least twice as many (see session.MinQueue).
const directReplay = 32

// catchUp replays history to a member at the client's pace: frames taken
// from the ring if given, else (after, head] read from the log. Then it
// delivers the live messages that arrived meanwhile.
func (c *Conn) catchUp(mem *member, frames [][]byte, after, head uint64) {
	if frames != nil {
		if c.m.Replay(frames) != nil {
			return // the connection ended; its close removes the member
		}
	} else if !c.replayLog(mem.room.name, after, head) {
		return
	}
	r := mem.room
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.members[mem] {
		for _, f := range mem.backlog {
			c.m.Deliver(f)
		}
		mem.backlog = nil
	}
}

// replayLog replays (after, head] from the log, page by page.
func (c *Conn) replayLog(room string, after, head uint64) bool {
	ctx := context.Background()
	for after < head {
		msgs, err := c.h.log.Since(ctx, room, after, int(min(head-after, 512)))
		if err != nil || len(msgs) == 0 {
			c.h.cfg.Logger.Error("reading history for a resume", "room", room, "err", err)
			c.m.Fail(protocol.NewError(protocol.CodeUnavailable, room, "history could not be read; reconnect to resume"))
			return false
		}
		frames := make([][]byte, len(msgs))
		for i := range msgs {
			frames[i] = protocol.Encode(&msgs[i])
		}
		if c.m.Replay(frames) != nil {
			return false
		}
		after = msgs[len(msgs)-1].Seq
	}
	return true
}

func (c *Conn) forget(room string) {
	c.mu.Lock()
	delete(c.rooms, room)
	c.mu.Unlock()
}

// Send stores a message from this connection in room; the ACK and the
// broadcast follow once it is durable. The error is a *protocol.Error for
// a room not joined, ErrShuttingDown during shutdown.
func (c *Conn) Send(room, id, text string) error {
	key := protocol.Key(room)
	mem := c.membership(key)
	if mem == nil {
		return protocol.NewError(protocol.CodeUnexpected, key, "SEND to "+key+", which this connection has not joined")
	}
	c.h.sendMu.RLock()
	defer c.h.sendMu.RUnlock()
	if c.h.closing {
		return ErrShuttingDown
	}
	return c.h.log.Append(&history.Request{Room: key, Sender: mem.name, ID: id, Text: text, Tag: c})
}

// Leave leaves a room and confirms it with LEFT.
func (c *Conn) Leave(room string) *protocol.Error {
	key := protocol.Key(room)
	mem := c.membership(key)
	if mem == nil {
		return protocol.NewError(protocol.CodeUnexpected, key, "LEAVE for "+key+", which this connection has not joined")
	}
	c.leave(mem, true)
	return nil
}

// Close leaves every room; call it when the connection ends.
func (c *Conn) Close() {
	c.mu.Lock()
	mems := make([]*member, 0, len(c.rooms))
	for _, m := range c.rooms {
		mems = append(mems, m)
	}
	c.mu.Unlock()
	for _, m := range mems {
		c.leave(m, false)
	}
}

func (c *Conn) leave(mem *member, confirm bool) {
	r := mem.room
	r.mu.Lock()
	if !r.members[mem] {
		r.mu.Unlock() // already gone
		return
	}
	nameGone := r.remove(mem)
	c.forget(r.name)
	if confirm {
		c.m.Deliver(protocol.Encode(&protocol.Left{Room: r.name}))
	}
	if nameGone {
		r.addPresence(protocol.PresenceChange{Kind: protocol.PresenceLeft, Name: mem.name}, c.h.cfg)
	}
	r.mu.Unlock()
	c.h.dropIfEmpty(r)
}

// room returns the room with this key, creating it if needed.
func (h *Hub) room(key string) *room {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.rooms[key]
	if r == nil {
		r = newRoom(key)
		h.rooms[key] = r
	}
	return r
}

// dropIfEmpty forgets a room nobody is in; its history stays in the log.
func (h *Hub) dropIfEmpty(r *room) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.members) == 0 && !r.closed {
		r.closed = true
		r.flushPresence()
		if h.rooms[r.name] == r {
			delete(h.rooms, r.name)
		}
	}
}

// committed acknowledges senders and fans stored messages out; it runs on
// the delivery goroutine.
func (h *Hub) committed(results []history.Result) {
	for i := range results {
		res := &results[i]
		c := res.Request.Tag.(*Conn)
		if res.Err != nil {
			h.cfg.Logger.Error("storing a message", "room", res.Request.Room, "err", res.Err)
			c.m.Fail(protocol.NewError(protocol.CodeUnavailable, res.Request.Room,
				"the message could not be stored; it will be sent again after reconnecting"))
			continue
		}
		c.m.Deliver(protocol.Encode(&protocol.Ack{Room: res.Msg.Room, ID: res.Msg.ID, Seq: res.Msg.Seq, Time: res.Msg.Time}))
		if !res.Duplicate {
			h.broadcast(&res.Msg)
		}
	}
}

func (h *Hub) broadcast(m *protocol.Msg) {
	h.mu.Lock()
	r := h.rooms[m.Room]
	h.mu.Unlock()
	if r == nil {
		return // nobody is in the room
	}
	frame := protocol.Encode(m)
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.loaded || r.closed || m.Seq <= r.delivered {
		// The room (re)loaded its history after this message was stored,
		// so its members got it from there.
		return
	}
	if m.Seq != r.delivered+1 {
		h.cfg.Logger.Error("sequence gap in fan-out", "room", r.name, "delivered", r.delivered, "seq", m.Seq)
	}
	r.flushPresence() // keep presence and messages in the order they happened
	r.ring.push(m.Seq, frame)
	r.delivered = m.Seq
	for mem := range r.members {
		mem.send(frame, h.cfg.CatchUpBacklog)
	}
}
