// Package hub keeps this node's rooms: which connections are in them, the
// life of each membership, presence batching, and fan-out of every stored
// message to the local members. A message is encoded once and the same
// bytes are queued to each member; queuing never blocks, so a slow member
// cannot delay anyone else (its connection cuts itself off when its queue
// overflows).
//
// The hub knows nothing of sockets (members are anything that can take a
// frame) nor of storage: messages, history and presence go through a
// broker.Broker, whose deliveries drive the fan-out, so a message is
// delivered only once it is durable, whichever node stored it.
//
// # Memberships
//
// Each membership (one connection in one room) has one owner, the hub, and
// goes through joining → replaying → live → leaving → gone. Its context is
// cancelled when it starts leaving (LEAVE, or the connection ending) and
// every step checks it: a join whose connection closed during a slow name
// check never enters the room, and a history replay stops queuing frames
// before LEFT is queued, so nothing of a room follows its LEFT.
//
// # Identities
//
// A connection may also be a device of a name (IDENTIFY): it then gets
// the name's notices (direct messages, mentions) and read markers from
// every room, in one or not. inbox.go has that part: identities, notes
// through the broker, mentions, READ, HISTORY and LIST.
//
// # Acting on messages
//
// changes.go has replies, changes of earlier messages (edit, delete,
// react, unreact: stored as entries of the room's history with their own
// seq, fanned out as UPDATE), typing indicators (broker notes, never
// stored) and search.
package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"chat/protocol"
	"chat/server/internal/broker"
	"chat/server/internal/files"
	"chat/server/internal/inbox"
	"chat/server/internal/limit"
	"chat/server/internal/moderation"
	"chat/server/internal/rooms"
)

// Member is one connection as the hub sees it.
type Member interface {
	// Deliver queues a frame. It never blocks; a connection that cannot
	// keep up ends itself with a slow-consumer error.
	Deliver(frame []byte)
	// Replay queues history frames, waiting while the queue is more than
	// half full. It stops, with ctx's error, once ctx is cancelled, and
	// checks ctx under the lock that orders Deliver: after a cancel, any
	// frame it queues precedes every frame Delivered after the cancel.
	// It fails once the connection has ended.
	Replay(ctx context.Context, frames [][]byte) error
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
	// MaxReplays caps the history replays one connection runs at once
	// (default 2); further joins wait for a turn, their live messages held.
	MaxReplays int
	// Owners, if set, decides who may use a name across the server (name
	// ownership); without it names are only unique within a room, nobody
	// is mentioned (only claimed names are), and there are no identities
	// nor direct-message rooms (IDENTIFY and their JOINs are forbidden).
	Owners Owners
	// Inbox keeps read markers and mentions and lists rooms (default: in
	// memory, listing no rooms).
	Inbox inbox.Store
	// MaxName is the longest name, in bytes (default
	// protocol.DefaultMaxName): mentions are looked for up to it.
	MaxName int
	// MaxRoom is the longest room name, in bytes (default
	// protocol.DefaultMaxRoom): a LIST query whose key is longer matches
	// no room.
	MaxRoom int
	MaxDMs  int // direct-message rooms listed in IDENTIFIED (default 100)
	// MaxRoomList is the most rooms a ROOMS lists (default 200).
	MaxRoomList int
	// PageDefault is the messages a HISTORY with limit 0 gets (default
	// 100), PageMax the most any gets (default 200), PageBytes the most
	// bytes of messages a PAGE carries (default 256 KiB).
	PageDefault, PageMax, PageBytes int
	// MentionQueue is how many stored messages that may mention someone
	// wait for their mentions to be looked up and stored (default 4096);
	// beyond it, mentions are dropped (and logged), never fan-out delayed.
	MentionQueue int
	// NoteQueue is how many notes (NOTICE, MARKER) from the broker wait
	// for the delivery goroutine (default 65536); beyond it they are
	// dropped and logged.
	NoteQueue int
	// Moderation keeps the rooms' operators, bans, mutes, topics,
	// invites and the audit log (default: in memory).
	Moderation moderation.Store
	// ModLimits bound each room's moderation lists.
	ModLimits moderation.Limits
	// OperatorToken makes a connection that presents it (MODERATE oper)
	// a server operator; empty: nobody can become one.
	OperatorToken string
	// InviteTTL is how long an invite code is valid when its MODERATE
	// asks for no time (default 7 days).
	InviteTTL time.Duration
	// CommitLatency, if set, is told the seconds from each SEND's arrival
	// to its ACK (a prometheus.Histogram, say). It is called on the
	// delivery goroutine and must not block.
	CommitLatency interface{ Observe(seconds float64) }
	Logger        *slog.Logger

	// Quotas.

	// Rooms, if set, records which rooms exist: the first JOIN of a room
	// that does not exist creates it, under RoomCreate, MaxServerRooms
	// and CreateLimit (see create.go). Without it, any JOIN makes a room.
	Rooms rooms.Registry
	// RoomCreate says who may create rooms (default rooms.Anyone).
	RoomCreate rooms.Policy
	// RoomCreateKey is the key a JOIN must carry to create a room under
	// rooms.WithKey.
	RoomCreateKey string
	// MaxServerRooms caps the rooms of the server (0: no cap).
	MaxServerRooms int
	// CreateLimit, if set, bounds the rooms one client address creates.
	CreateLimit *limit.Events
	// RingBytes bounds the bytes of recent messages kept in memory per
	// room (default 1 MiB), CacheBytes those of all rooms together
	// (default 256 MiB): beyond it, the rooms holding most are trimmed
	// to an equal share. Older history is read from the broker.
	RingBytes, CacheBytes int
	// LimitHit, if set, records a limit that refused a room creation
	// (session.Manager.LimitHit: the log line and its count); without
	// it the hub logs the hit itself.
	LimitHit func(kind, remote, detail string)
	// IsOperator reports whether a connection is a server operator,
	// who may create rooms under rooms.Operators, besides those that
	// presented the operator token (MODERATE oper).
	IsOperator func(m Member) bool

	// Acting on messages (changes.go).

	// TypingMaxMembers: rooms with more members get no typing
	// indicators (default 100).
	TypingMaxMembers int
	// TypingEvery is the least time between two IS-TYPING forwarded for
	// one connection in one room (default 2 s); TYPING in between is
	// dropped.
	TypingEvery time.Duration
	// SearchTimeout bounds one SEARCH's store read (default 10 s).
	SearchTimeout time.Duration

	// Files, if set, keeps shared files (files.go): UPLOAD, FETCH and
	// SENDs that carry a file. Without it they are refused.
	Files files.Store
}

// Owners decides whether a secret may use a name, claiming unclaimed names
// for the first secret that uses them (sqlite.Names).
type Owners interface {
	Claim(ctx context.Context, name, secret string) (bool, error)
	// Claimed returns those of keys (protocol.Key of names) that are
	// claimed.
	Claimed(ctx context.Context, keys []string) ([]string, error)
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
	def(&c.MaxReplays, 2)
	def(&c.MaxName, protocol.DefaultMaxName)
	def(&c.MaxRoom, protocol.DefaultMaxRoom)
	def(&c.MaxDMs, 100)
	def(&c.MaxRoomList, 200)
	def(&c.PageDefault, 100)
	def(&c.PageMax, 200)
	def(&c.PageBytes, 256<<10)
	def(&c.MentionQueue, 4096)
	def(&c.NoteQueue, 65536)
	if c.Inbox == nil {
		c.Inbox = inbox.NewMemory(nil, 0)
	}
	if c.Moderation == nil {
		c.Moderation = moderation.NewMemory(nil, 0)
	}
	if c.InviteTTL <= 0 {
		c.InviteTTL = 7 * 24 * time.Hour
	}
	if c.PresenceDelay <= 0 {
		c.PresenceDelay = 100 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	def(&c.RingBytes, 1<<20)
	def(&c.TypingMaxMembers, 100)
	if c.TypingEvery <= 0 {
		c.TypingEvery = 2 * time.Second
	}
	if c.SearchTimeout <= 0 {
		c.SearchTimeout = 10 * time.Second
	}
	def(&c.CacheBytes, 256<<20)
	if c.RoomCreate == "" {
		c.RoomCreate = rooms.Anyone
	}
}

// ErrShuttingDown is returned by Send once Shutdown has begun. The message
// is not stored and not acknowledged; the client sends it again after it
// reconnects.
var ErrShuttingDown = errors.New("hub: shutting down")

// Hub is the set of rooms of one node.
type Hub struct {
	cfg   Config
	b     broker.Broker
	conns atomic.Uint64 // connection ids, for the broker's presence

	mu    sync.Mutex
	rooms map[string]*room

	// sendMu orders Send against Shutdown: a message is either published
	// before the shutdown flush, or refused.
	sendMu  sync.RWMutex
	closing bool
	// stopping is set by Shutdown: the node is going away, and Close
	// takes all its presence out at once; the members leaving meanwhile
	// do not each wait for the broker (a networked one may be gone).
	stopping atomic.Bool

	// deliveries carries what the broker delivers to the delivery
	// goroutine, so the broker's commit loop never waits for a fan-out.
	// A delivery with done set is a barrier.
	deliveries chan delivery
	closeMu    sync.RWMutex // held for reading while sending on deliveries
	closed     bool         // deliveries is closed
	stopped    chan struct{}

	// notices are presence changes from other nodes and notes, waiting
	// for the delivery goroutine; noticeWake tells it there are some.
	noticeMu   sync.Mutex
	notices    []delivery
	notes      int // notes in notices
	noticeWake chan struct{}
	// modNotes counts the moderation notes this node has acted on: a
	// JOIN that saw it change while it was admitted reads the room's
	// moderation again (Hub.enter).
	modNotes atomic.Uint64

	// uploadMu guards uploaders: which connection last began each upload
	// (owner key + "\x00" + upload id), see Conn.Upload.
	uploadMu  sync.Mutex
	uploaders map[string]uploadClaim

	// idMu guards identified: the identified connections by name key.
	idMu       sync.Mutex
	identified map[string]map[*Conn]bool

	// readMu orders the READs of a name (see Conn.Read), striped by name.
	readMu [readStripes]sync.Mutex

	// cacheUsed is the bytes held by every room's ring; trimMu lets one
	// trimCaches run at a time.
	cacheUsed atomic.Int64
	trimMu    sync.Mutex
	// known are rooms seen to exist (rooms.Registry), so that JOINs of
	// them are not looked up each time.
	known knownRooms

	// mentions feeds the mention worker; mentionsDone is closed when it
	// has stopped.
	mentions     chan protocol.Msg
	mentionsDone chan struct{}

	// Counters for Stats: atomics, so that counting costs the hot path
	// no lock.
	joins      atomic.Uint64
	msgsStored atomic.Uint64
	pending    atomic.Int64 // SENDs published and not yet answered
	_          [64]byte     // fannedOut, written per member, on a cache line of its own
	fannedOut  atomic.Uint64
}

// Stats is what the hub has done and holds, for metrics.
type Stats struct {
	Joins      uint64 // memberships that entered a room
	Stored     uint64 // messages sent through this node and stored (re-sends not counted)
	Deliveries uint64 // MESSAGE frames fanned out live to members of this node
	// PublishPending is the messages published and not yet stored and
	// acknowledged: the store's queue, as this node sees it.
	PublishPending int64
	// FanoutQueue is the store's deliveries waiting for the delivery
	// goroutine.
	FanoutQueue int
	// Rooms is the rooms with members on this node; CachedMessages and
	// CachedBytes the recent messages held in their memory caches.
	Rooms                       int
	CachedMessages, CachedBytes int
}

// Stats counts. It visits every room (locking each briefly, one at a
// time): it is for a scrape now and then, not for the hot path.
func (h *Hub) Stats() Stats {
	st := Stats{Joins: h.joins.Load(), Stored: h.msgsStored.Load(), Deliveries: h.fannedOut.Load(),
		PublishPending: h.pending.Load(), FanoutQueue: len(h.deliveries)}
	h.mu.Lock()
	rooms := make([]*room, 0, len(h.rooms))
	for _, r := range h.rooms {
		rooms = append(rooms, r)
	}
	h.mu.Unlock()
	st.Rooms = len(rooms)
	for _, r := range rooms {
		r.mu.Lock()
		if r.ring != nil {
			st.CachedMessages += r.ring.n
			st.CachedBytes += r.ring.bytes
		}
		r.mu.Unlock()
	}
	return st
}

type delivery struct {
	results  []broker.Result
	msgs     []protocol.Msg
	room     string // presence changes from another node, with changes
	changes  []protocol.PresenceChange
	barrier  chan struct{}
	presence bool
	note     *broker.Note
}

// New creates a hub. open is given the hub's handler for what the broker
// delivers and returns the broker (broker.Local.Node, say).
func New(cfg Config, open func(broker.Handler) (broker.Broker, error)) (*Hub, error) {
	cfg.setDefaults()
	h := &Hub{cfg: cfg, rooms: map[string]*room{}, deliveries: make(chan delivery, 256), stopped: make(chan struct{}),
		noticeWake: make(chan struct{}, 1), identified: map[string]map[*Conn]bool{}, uploaders: map[string]uploadClaim{},
		mentions: make(chan protocol.Msg, cfg.MentionQueue), mentionsDone: make(chan struct{})}
	b, err := open(handler{h})
	if err != nil {
		return nil, err
	}
	h.b = b
	go h.deliver()
	go h.mentionWorker()
	return h, nil
}

// handler is the hub's broker.Handler: it hands deliveries to the
// delivery goroutine.
type handler struct{ h *Hub }

func (hd handler) Published(rs []broker.Result) { hd.h.push(delivery{results: rs}) }
func (hd handler) Messages(ms []protocol.Msg)   { hd.h.push(delivery{msgs: ms}) }

// PresenceChanged never blocks: the broker may call it while another
// node's hub waits on this one (two hubs on one Local), so notices go to
// a list the delivery goroutine empties.
func (hd handler) PresenceChanged(room string, cs []protocol.PresenceChange) {
	h := hd.h
	h.noticeMu.Lock()
	h.notices = append(h.notices, delivery{presence: true, room: room, changes: cs})
	h.noticeMu.Unlock()
	select {
	case h.noticeWake <- struct{}{}:
	default: // a wake-up is pending already
	}
}

func (h *Hub) push(d delivery) {
	h.closeMu.RLock()
	defer h.closeMu.RUnlock()
	if !h.closed {
		h.deliveries <- d
	}
}

// deliver acknowledges and fans out what the broker delivers, in order,
// and passes on presence notices from other nodes.
func (h *Hub) deliver() {
	defer close(h.stopped)
	for {
		select {
		case d, ok := <-h.deliveries:
			if !ok {
				return
			}
			switch {
			case d.barrier != nil:
				close(d.barrier)
			default:
				h.published(d.results)
				for i := range d.msgs {
					h.broadcast(&d.msgs[i])
				}
			}
		case <-h.noticeWake:
			h.noticeMu.Lock()
			notices := h.notices
			h.notices, h.notes = nil, 0
			h.noticeMu.Unlock()
			for _, d := range notices {
				if d.note != nil {
					h.noted(d.note)
					continue
				}
				h.presenceFromElsewhere(d.room, d.changes)
			}
		}
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
	h.stopping.Store(true)
	if err := h.b.Flush(ctx); err != nil {
		return err
	}
	done := make(chan struct{})
	h.closeMu.RLock()
	if h.closed {
		h.closeMu.RUnlock()
		return errors.New("hub: shut down after Close")
	}
	select {
	case h.deliveries <- delivery{barrier: done}:
	case <-ctx.Done():
		h.closeMu.RUnlock()
		return ctx.Err()
	}
	h.closeMu.RUnlock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close detaches from the broker and stops delivering. Call it after
// Shutdown. The mentions of messages stored before are stored before it
// returns.
func (h *Hub) Close() error {
	err := h.b.Close()
	h.closeMu.Lock()
	h.closed = true
	close(h.deliveries)
	h.closeMu.Unlock()
	<-h.stopped
	close(h.mentions) // only the delivery goroutine sends on it
	<-h.mentionsDone
	return err
}

// Conn is a connection's handle on the hub.
type Conn struct {
	h  *Hub
	m  Member
	id uint64
	// replays holds a token per history replay running for this
	// connection: a client joining many rooms at once cannot start
	// unbounded readers of the store.
	replays chan struct{}

	// ctx is cancelled when the connection closes: it stops what the
	// connection's requests wait for (name checks, store reads).
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex // a leaf lock: nothing else is acquired while it is held
	rooms  map[string]*member
	closed bool

	// idMu guards identity. It is held while frames are queued for the
	// identity (Deliver), never the other way round.
	idMu     sync.Mutex
	identity *identity

	// inbox is set once the connection has sent an inbox request
	// (IDENTIFY, HISTORY, READ, LIST): only then may it get MARKER and
	// NOTICE, frames a client of before the inbox does not know.
	inbox atomic.Bool

	// operator is set once the connection presented the operator token.
	operator atomic.Bool
	// searching holds a token while one of the connection's SEARCHes
	// runs: one at a time.
	searching chan struct{}
	// remote is the peer's address as the transport gives it, addr the
	// IP address in it (invalid for a member without one), for address
	// bans, the audit log and the per-address limit on room creations.
	remote string
	addr   netip.Addr

	// fetches queues the connection's FETCHes for its fetch goroutine,
	// started by the first (files.go).
	fetchOnce sync.Once
	fetches   chan *protocol.Fetch
	fetchDone chan struct{} // closed when the fetch goroutine has returned
	// uploads are the keys of Hub.uploaders this connection claims
	// (guarded by Hub.uploadMu): its close drops them without walking
	// every connection's.
	uploads map[string]struct{}
}

// Connect registers a new connection.
func (h *Hub) Connect(m Member) *Conn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &Conn{h: h, m: m, id: h.conns.Add(1), rooms: map[string]*member{},
		replays: make(chan struct{}, h.cfg.MaxReplays), searching: make(chan struct{}, 1), ctx: ctx, cancel: cancel}
	if ra, ok := m.(interface{ RemoteAddr() string }); ok {
		c.remote = ra.RemoteAddr()
		c.addr = moderation.ParseRemote(c.remote)
	}
	return c
}

// Joined returns how many rooms the connection is in or joining.
func (c *Conn) Joined() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.rooms)
}

// Join enters a room. A refusal comes back as an ERROR to send; the
// caller has checked lengths and the name and room rules. A join that the
// connection's end overtakes returns nil and leaves no trace.
func (c *Conn) Join(j *protocol.Join) *protocol.Error {
	key := roomKey(j.Room)
	// Who may join a direct-message room is checked before the room
	// count (spec section 4, step 2).
	if inbox.IsDirect(key) {
		if e := c.h.directAccess(key, protocol.Key(j.Name), j.Secret); e != nil {
			return e
		}
	}
	mem, e := c.begin(key, j)
	if mem == nil {
		return e
	}
	if entered, e := c.h.enter(mem, j); !entered {
		c.end(mem)
		return e
	}
	return nil
}

// begin registers a membership in state joining, so that the connection's
// Close finds and cancels it while it is still being set up.
func (c *Conn) begin(key string, j *protocol.Join) (*member, *protocol.Error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for old := c.rooms[key]; old != nil && old.state == leaving && !c.closed; old = c.rooms[key] {
		// Left, its LEFT waiting for the ACK of a last SEND: the JOIN
		// follows that LEFT. The ACK comes as soon as the store answers.
		c.mu.Unlock()
		<-old.gone
		c.mu.Lock()
	}
	switch {
	case c.closed:
		return nil, nil
	case c.rooms[key] != nil:
		return nil, protocol.NewError(protocol.CodeUnexpected, key, "already joined "+key)
	case len(c.rooms) >= c.h.cfg.MaxRooms:
		return nil, protocol.NewError(protocol.CodeTooManyRooms, key,
			fmt.Sprintf("a connection can be in at most %d rooms", c.h.cfg.MaxRooms))
	}
	ctx, cancel := context.WithCancel(context.Background())
	mem := &member{conn: c, roomKey: key, name: j.Name, nameKey: protocol.Key(j.Name), secretHash: secretHash(j.Secret),
		ctx: ctx, cancel: cancel, gone: make(chan struct{})}
	c.rooms[key] = mem
	return mem, nil
}

// end forgets a membership that is gone.
func (c *Conn) end(mem *member) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if mem.state == gone {
		return
	}
	mem.state = gone
	mem.cancel()
	close(mem.gone)
	if c.rooms[mem.roomKey] == mem {
		delete(c.rooms, mem.roomKey)
	}
}

// enter takes a joining membership into its room: name check, presence,
// JOINED, and history. entered is false for a refusal (e says why) and
// for a membership cancelled meanwhile (e is nil: nobody to answer).
func (h *Hub) enter(mem *member, j *protocol.Join) (entered bool, e *protocol.Error) {
	key := mem.roomKey
	if ok, e := h.mayEnter(mem, j); !ok {
		return false, e
	}
	if o := h.cfg.Owners; o != nil {
		ok, err := o.Claim(mem.ctx, j.Name, j.Secret)
		switch {
		case mem.ctx.Err() != nil:
			return false, nil // the connection ended meanwhile: nobody to answer
		case err != nil:
			h.cfg.Logger.Error("checking name ownership", "err", err)
			return false, protocol.NewError(protocol.CodeUnavailable, key, "the server cannot check names right now; try again")
		case !ok:
			return false, protocol.NewError(protocol.CodeNameOwned, key, fmt.Sprintf(
				"the name %q belongs to someone else on this server; if it is yours, use the name key from the device that claimed it", j.Name))
		}
	}
	// The name's read marker and mentions, for JOINED: a name without a
	// key has none.
	var st readState
	if j.Secret != "" {
		var err error
		st.read, st.mentions, err = h.cfg.Inbox.State(mem.ctx, mem.nameKey, key)
		switch {
		case mem.ctx.Err() != nil:
			return false, nil
		case err != nil:
			h.cfg.Logger.Error("reading a read marker", "err", err)
			return false, protocol.NewError(protocol.CodeUnavailable, key, "the server cannot read your read markers right now; try again")
		}
	}
	notes := h.modNotes.Load()
	st.mod, st.modRev, e = h.admit(mem, j)
	switch {
	case mem.ctx.Err() != nil:
		return false, nil
	case e != nil:
		return false, e
	}
	r := h.lockRoom(key)
	replay, entered, e := h.enterLocked(r, mem, j, st)
	r.mu.Unlock()
	h.keepCacheBudget() // the room may have loaded its history
	if !entered {
		h.dropIfEmpty(r)
		return false, e
	}
	if h.modNotes.Load() != notes && h.bannedSinceAdmitted(r, mem) {
		return true, nil // in and out again: the replay is not started
	}
	if replay != nil {
		go replay()
	}
	return true, nil
}

// lockRoom returns the room with this key, created if needed, locked.
func (h *Hub) lockRoom(key string) *room {
	for {
		h.mu.Lock()
		r := h.rooms[key]
		if r == nil {
			r = newRoom(key, h)
			h.rooms[key] = r
		}
		h.mu.Unlock()
		r.mu.Lock()
		if !r.closed {
			return r
		}
		// Emptied and dropped between lookup and lock: look again.
		r.mu.Unlock()
	}
}

// enterLocked runs with r.mu held, and returns with it held. replay, if
// not nil, is to run on its own goroutine once r.mu is released.
func (h *Hub) enterLocked(r *room, mem *member, j *protocol.Join, st readState) (replay func(), entered bool, e *protocol.Error) {
	c := mem.conn
	if !r.loaded {
		if err := r.load(mem.ctx); err != nil {
			if mem.ctx.Err() != nil {
				return nil, false, nil
			}
			h.cfg.Logger.Error("loading room history", "room", r.name, "err", err)
			return nil, false, protocol.NewError(protocol.CodeUnavailable, r.name, "the room's history cannot be read; try again")
		}
	}
	// Retention may have removed the room's oldest messages: nobody is
	// told to expect them.
	floor, err := h.b.Floor(mem.ctx, r.name)
	if err != nil {
		if mem.ctx.Err() != nil {
			return nil, false, nil
		}
		h.cfg.Logger.Error("reading the room's oldest kept message", "room", r.name, "err", err)
		return nil, false, protocol.NewError(protocol.CodeUnavailable, r.name, "the room's history cannot be read; try again")
	}
	first, err := h.b.PresenceAdd(mem.ctx, r.name, mem.presence())
	switch {
	case errors.Is(err, broker.ErrNameTaken):
		return nil, false, protocol.NewError(protocol.CodeNameTaken, r.name,
			fmt.Sprintf("%q is already in %s; choose another name", j.Name, r.name))
	case err != nil && mem.ctx.Err() != nil:
		// Cancelled mid-call: the entry may have been made all the same
		// (a networked broker). Removing is harmless if it was not.
		h.leavePresence(r, mem)
		return nil, false, nil
	case err != nil:
		h.cfg.Logger.Error("entering presence", "room", r.name, "err", err)
		return nil, false, protocol.NewError(protocol.CodeUnavailable, r.name, "the server cannot enter you in the room right now; try again")
	}
	// Entered in presence; a cancel from here on is undone below.
	// The point of no return, decided under c.mu against Close and LEAVE:
	// either the membership is cancelled and goes no further, or it is in
	// the room and whoever cancels it later finds it there.
	c.mu.Lock()
	cancelled := mem.ctx.Err() != nil
	if !cancelled {
		mem.room = r
		mem.state = live
	}
	c.mu.Unlock()
	if cancelled {
		h.leavePresence(r, mem)
		return nil, false, nil
	}
	r.members[mem] = true
	r.setMod(st.mod, st.modRev)
	h.joins.Add(1)

	head := r.delivered
	after := head - min(uint64(h.cfg.History), head)
	if j.Resume && (j.Epoch == 0 || j.Epoch == r.epoch) {
		after = min(j.After, head)
		if j.Epoch != 0 && j.After > head {
			// The client has seen more of this history than this node
			// has delivered yet: in a cluster it came from a node further
			// ahead. It is told its own position, not a lower head (which
			// would read as a reset), and the messages up to it that
			// reach this node later are not sent to it again.
			after, head = j.After, j.After
			mem.ahead = j.After
		}
	}
	if mem.ahead == 0 {
		// History starts at the oldest message kept: a resume point
		// below it is raised, which tells the client that the messages
		// in between were removed.
		after = max(after, min(floor, head))
	}
	names, count, err := h.b.PresenceList(mem.ctx, r.name, h.cfg.MaxListed)
	if err != nil {
		h.cfg.Logger.Error("listing presence", "room", r.name, "err", err)
	} else {
		r.count = count
	}
	md := modes(st.mod, mem, time.Now())
	if count > h.cfg.TypingMaxMembers {
		md |= protocol.ModeNoTyping
	}
	c.m.Deliver(protocol.Encode(&protocol.Joined{Room: r.name, Name: j.Name, After: after, Head: head,
		Count: uint64(count), Members: names, Epoch: r.epoch, Read: min(st.read, head), Mentions: st.mentions,
		Topic: st.mod.Topic, Modes: md}))
	// History: a few frames go straight into the queue; more are replayed
	// at the client's pace by catchUp, without holding the room, while
	// live messages wait in the member's backlog.
	var frames [][]byte
	fromLog := !r.ring.covers(after) && mem.ahead == 0
	if !fromLog {
		frames = r.ring.since(after)
		if len(frames) <= directReplay {
			for _, f := range frames {
				c.m.Deliver(f)
			}
			frames = nil
		}
	}
	catchUp := fromLog || frames != nil
	if catchUp {
		mem.backlog = [][]byte{}
		c.setState(mem, replaying)
	}
	if first {
		r.addPresence(protocol.PresenceChange{Kind: protocol.PresenceJoined, Name: j.Name})
	}
	if catchUp {
		return func() { c.catchUp(mem, frames, after, head) }, true, nil
	}
	return nil, true, nil
}

// leavePresence takes a membership that never entered the room out of
// the broker's presence again.
func (h *Hub) leavePresence(r *room, mem *member) {
	if _, err := h.b.PresenceRemove(context.Background(), r.name, mem.presence()); err != nil {
		h.cfg.Logger.Error("leaving presence", "room", r.name, "err", err)
	}
}

func (c *Conn) setState(mem *member, s memberState) {
	c.mu.Lock()
	if mem.state < leaving {
		mem.state = s
	}
	c.mu.Unlock()
}

// directReplay is the most history frames queued at once on a join; a
// session's queue holds at least twice as many (see session.MinQueue).
const directReplay = 32

// catchUp replays history to a member at the client's pace: frames taken
// from the ring if given, else (after, head] read from the broker. Then it
// delivers the live messages that arrived meanwhile. It stops as soon as
// the membership is cancelled.
func (c *Conn) catchUp(mem *member, frames [][]byte, after, head uint64) {
	select {
	case c.replays <- struct{}{}:
		defer func() { <-c.replays }()
	case <-mem.ctx.Done():
		return
	}
	if frames != nil {
		if c.m.Replay(mem.ctx, frames) != nil {
			return // left, or the connection ended
		}
	} else if !c.replayLog(mem, after, head) {
		return
	}
	r := mem.room
	r.mu.Lock()
	defer r.mu.Unlock()
	if mem.ctx.Err() == nil && r.members[mem] {
		for _, f := range mem.backlog {
			c.m.Deliver(f)
		}
		mem.backlog = nil
		c.setState(mem, live)
	}
}

// replayPage is how many messages one history read fetches.
const replayPage = 512

// replayLog replays (after, head] from the broker, page by page.
func (c *Conn) replayLog(mem *member, after, head uint64) bool {
	room := mem.roomKey
	after0 := after // the resume point: changes of older targets carry their state
	stated := map[uint64]bool{}
	for after < head {
		msgs, err := c.h.b.Since(mem.ctx, room, after, int(min(head-after, replayPage)))
		if mem.ctx.Err() != nil {
			return false
		}
		if err == nil && len(msgs) == 0 {
			// Retention may have removed the rest since the join.
			if floor, ferr := c.h.b.Floor(mem.ctx, room); ferr == nil && floor >= head {
				return true
			}
		}
		if err != nil || len(msgs) == 0 {
			c.h.cfg.Logger.Error("reading history for a resume", "room", room, "err", err)
			c.m.Fail(protocol.NewError(protocol.CodeUnavailable, room, "history could not be read; reconnect to resume"))
			return false
		}
		frames := replayFrames(msgs, after0, stated)
		if c.m.Replay(mem.ctx, frames) != nil {
			return false
		}
		after = msgs[len(msgs)-1].Seq
	}
	return true
}

// membership returns the connection's live or replaying membership of room.
func (c *Conn) membership(key string) *member {
	c.mu.Lock()
	defer c.mu.Unlock()
	if mem := c.rooms[key]; mem != nil && (mem.state == live || mem.state == replaying) {
		return mem
	}
	return nil
}

// Send publishes a message from this connection to room; the ACK and the
// broadcast follow once it is durable. The error is a *protocol.Error for
// a room not joined, ErrShuttingDown during shutdown.
func (c *Conn) Send(room, id, text string) error { return c.SendReply(room, id, text, 0) }

// SendReply is Send of a message that answers message reply of the room
// (0: none), which must be a message this node has delivered.
func (c *Conn) SendReply(room, id, text string, reply uint64) error {
	return c.SendFile(room, id, text, reply, "")
}

// SendFile is SendReply of a message that carries the file fileID (""
// for none), which the member's name must hold (uploaded, files.Store.Held):
// else the refusal is not-found with the SEND's id.
func (c *Conn) SendFile(room, id, text string, reply uint64, fileID string) error {
	key := roomKey(room)
	mem := c.membership(key)
	if mem == nil {
		return protocol.NewError(protocol.CodeUnexpected, key, "SEND to "+key+", which this connection has not joined")
	}
	r := mem.room
	// A muted name's message is refused before it is stored (c.mu is a
	// leaf lock: the room's is taken without it).
	if !c.operator.Load() {
		if e := r.muted(mem.nameKey); e != nil {
			e.ID = id
			return e
		}
	}
	if reply != 0 {
		if e := r.checkTarget(mem, reply, id, "answers"); e != nil {
			return e
		}
	}
	var file *protocol.File
	if fileID != "" {
		var err error
		if file, err = c.heldFile(mem, id, fileID); err != nil {
			return err
		}
	}
	c.typed(mem) // a message ends its sender's typing: the next TYPING is news
	return c.publish(mem, &broker.Publication{Room: key, Sender: mem.name, ID: id, Text: text, Reply: reply, File: file, Tag: mem, Received: time.Now()})
}

// publish publishes p for membership mem, whose ACK (or refusal) follows
// once the store has answered.
func (c *Conn) publish(mem *member, p *broker.Publication) error {
	c.mu.Lock()
	if mem.state != live && mem.state != replaying {
		c.mu.Unlock()
		return protocol.NewError(protocol.CodeUnexpected, mem.roomKey, "SEND to "+mem.roomKey+", which this connection has not joined")
	}
	mem.pending++ // its ACK must precede the membership's LEFT
	c.mu.Unlock()
	c.h.sendMu.RLock()
	defer c.h.sendMu.RUnlock()
	err := ErrShuttingDown
	if !c.h.closing {
		c.h.pending.Add(1)
		err = c.h.b.Publish(p)
		if err != nil {
			c.h.pending.Add(-1)
		}
	}
	if err != nil {
		c.settled(mem)
	}
	return err
}

// settled counts one of the membership's publications as answered, and
// sends the LEFT that waited for it.
func (c *Conn) settled(mem *member) {
	c.mu.Lock()
	mem.pending--
	due := mem.leftDue && mem.pending == 0
	if due {
		mem.leftDue = false
	}
	c.mu.Unlock()
	if due {
		c.m.Deliver(protocol.Encode(&protocol.Left{Room: mem.roomKey}))
		c.end(mem)
	}
}

// Leave leaves a room and confirms it with LEFT.
func (c *Conn) Leave(room string) *protocol.Error {
	key := roomKey(room)
	mem := c.membership(key)
	if mem == nil {
		return protocol.NewError(protocol.CodeUnexpected, key, "LEAVE for "+key+", which this connection has not joined")
	}
	c.leave(mem, true)
	return nil
}

// Close ends every membership; call it when the connection ends. Joins
// still under way are cancelled and leave no trace.
func (c *Conn) Close() {
	c.cancel()
	c.forget()
	c.h.forgetUploads(c)
	c.mu.Lock()
	c.closed = true
	mems := make([]*member, 0, len(c.rooms))
	for _, m := range c.rooms {
		mems = append(mems, m)
	}
	c.mu.Unlock()
	for _, m := range mems {
		c.leave(m, false)
	}
}

// leave ends a membership: cancelled first, so that no replay frame can
// follow, then out of the room and presence, and LEFT if confirm — once
// every SEND of the membership has its ACK, so that nothing of the room
// follows LEFT. The membership stays in the connection's table until
// then: a JOIN of the room waits for it.
func (c *Conn) leave(mem *member, confirm bool) {
	c.mu.Lock()
	if mem.state >= leaving {
		c.mu.Unlock()
		return
	}
	mem.state = leaving
	mem.cancel()
	r := mem.room // nil while joining: enterLocked sees the cancel and stops
	c.mu.Unlock()
	if r != nil {
		c.h.exit(r, mem)
	}
	c.mu.Lock()
	wait := confirm && mem.pending > 0
	mem.leftDue = wait
	c.mu.Unlock()
	if wait {
		return // settled sends LEFT and ends the membership
	}
	if confirm {
		c.m.Deliver(protocol.Encode(&protocol.Left{Room: mem.roomKey}))
	}
	c.end(mem)
}

// exit takes a cancelled membership out of its room.
func (h *Hub) exit(r *room, mem *member) {
	r.mu.Lock()
	if !r.members[mem] {
		r.mu.Unlock()
		return
	}
	delete(r.members, mem)
	mem.backlog = nil
	var last bool
	if !h.stopping.Load() {
		var err error
		last, err = h.b.PresenceRemove(context.Background(), r.name, mem.presence())
		if err != nil {
			h.cfg.Logger.Error("leaving presence", "room", r.name, "err", err)
		}
	}
	if last {
		r.addPresence(protocol.PresenceChange{Kind: protocol.PresenceLeft, Name: mem.name})
	}
	r.mu.Unlock()
	h.dropIfEmpty(r)
}

// dropIfEmpty forgets a room nobody here is in: its history stays with the
// broker, and this node stops hearing of it.
func (h *Hub) dropIfEmpty(r *room) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.members) == 0 && !r.closed {
		r.closed = true
		r.flushPresence()
		if r.presenceTimer != nil {
			r.presenceTimer.Stop()
		}
		if h.rooms[r.name] == r {
			delete(h.rooms, r.name)
		}
		if r.loaded {
			h.b.Unsubscribe(r.name)
			r.ring.release()
		}
	}
}

// published acknowledges this node's senders; it runs on the delivery
// goroutine, before the messages of the same commit are broadcast.
func (h *Hub) published(results []broker.Result) {
	for i := range results {
		res := &results[i]
		if w, ok := res.Request.Tag.(modWait); ok {
			h.pending.Add(-1)
			w <- *res // buffered: never blocks
			continue
		}
		mem, ok := res.Request.Tag.(*member)
		if !ok {
			continue
		}
		h.pending.Add(-1)
		c := mem.conn
		if e := changeRefusal(res); e != nil {
			c.m.Deliver(protocol.Encode(e))
		} else if res.Err != nil {
			h.cfg.Logger.Error("storing a message", "room", res.Request.Room, "err", res.Err)
			c.m.Fail(protocol.NewError(protocol.CodeUnavailable, res.Request.Room,
				"the message could not be stored; it will be sent again after reconnecting"))
		} else {
			// Counted before the ACK goes out: whoever has the ACK finds
			// the message in the metrics.
			if o := h.cfg.CommitLatency; o != nil && !res.Request.Received.IsZero() {
				o.Observe(time.Since(res.Request.Received).Seconds())
			}
			change := res.Request.Change != nil
			if !res.Duplicate && !change {
				h.msgsStored.Add(1)
			}
			c.mu.Lock()
			mem.acked = max(mem.acked, res.Msg.Seq)
			c.mu.Unlock()
			c.m.Deliver(protocol.Encode(&protocol.Ack{Room: res.Msg.Room, ID: res.Msg.ID, Seq: res.Msg.Seq, Time: res.Msg.Time}))
			switch {
			case res.Duplicate:
			case change:
				h.changed(res, c.remote)
			default:
				h.stored(&res.Msg)
			}
		}
		c.settled(mem)
	}
}

// broadcast fans a stored message out to the room's local members.
func (h *Hub) broadcast(m *protocol.Msg) {
	h.mu.Lock()
	r := h.rooms[m.Room]
	h.mu.Unlock()
	if r == nil {
		return // nobody here is in the room
	}
	h.broadcastTo(r, m)
	h.keepCacheBudget()
}

// broadcastTo fans m out to r's members and keeps its frame in r's ring.
func (h *Hub) broadcastTo(r *room, m *protocol.Msg) {
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
	var frame []byte
	if ch := m.Change; ch != nil {
		// A change entry goes out as UPDATE with the target's new state,
		// and the ring's copy of the target takes that state.
		frame = protocol.Encode(m.Update(ch.State))
		if ch.State != nil {
			r.ring.apply(r.name, ch.Target, ch.State)
			r.ring.pushChange(m.Seq, frame, protocol.Encode(m.Update(nil)), ch.Target)
		} else {
			// The broker could not read the target's state (a cluster
			// node whose record read failed): the ring's copy of the
			// target may hold a text the change removed. Replays from
			// here on are read from the broker, which has it.
			h.cfg.Logger.Warn("a change came without its message's state; replays of the room are read from the store", "room", r.name, "seq", m.Seq, "target", ch.Target)
			r.ring.restartAfter(m.Seq)
		}
	} else {
		frame = protocol.Encode(m)
		r.ring.push(m.Seq, frame)
	}
	r.flushPresence() // keep presence and messages in the order they happened
	r.delivered = m.Seq
	for mem := range r.members {
		if m.Seq > mem.ahead {
			// Counted before it is queued, so whoever has the frame finds
			// it counted. Only this goroutine writes the counter: the
			// atomic add costs no waiting.
			h.fannedOut.Add(1)
			mem.send(frame, h.cfg.CatchUpBacklog)
		}
	}
}

// presenceFromElsewhere passes on names entering or leaving a room through
// other nodes (or expiring with a dead one).
func (h *Hub) presenceFromElsewhere(room string, changes []protocol.PresenceChange) {
	h.mu.Lock()
	r := h.rooms[room]
	h.mu.Unlock()
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	for _, c := range changes {
		if c.Kind == protocol.PresenceLeft && r.hasName(protocol.Key(c.Name)) {
			// The name left through another node but is here: a device
			// that moved to this node (the other node's removal reached
			// us after our own entry was made). It has not left.
			continue
		}
		r.addPresence(c)
	}
}

// keepCacheBudget trims the rooms' rings when together they hold more
// than CacheBytes. Call it holding no room's lock.
func (h *Hub) keepCacheBudget() {
	if h.cacheUsed.Load() > int64(h.cfg.CacheBytes) {
		h.trimCaches()
	}
}

// trimCaches cuts every ring down to an equal share of nine tenths of
// CacheBytes: rooms holding less keep all they hold, so the total ends
// below the budget, and the next trim is due only after a tenth of it
// has been filled again (a trim walks every room). One runs at a time;
// a call while one runs returns at once.
func (h *Hub) trimCaches() {
	if !h.trimMu.TryLock() {
		return
	}
	defer h.trimMu.Unlock()
	h.mu.Lock()
	rs := make([]*room, 0, len(h.rooms))
	for _, r := range h.rooms {
		rs = append(rs, r)
	}
	h.mu.Unlock()
	share := h.cfg.CacheBytes / 10 * 9 / max(len(rs), 1)
	for _, r := range rs {
		r.mu.Lock()
		if r.loaded && !r.closed {
			r.ring.trim(share)
		}
		r.mu.Unlock()
	}
}
