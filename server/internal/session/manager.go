// Package session runs the protocol for one connection: the handshake,
// the state machine over incoming frames, keepalive, and a bounded
// outgoing queue. It works over any Transport (TCP, TLS, WebSocket) and
// talks to the rooms through the Rooms interface.
//
// Connections cost as little as possible while idle and while fanning
// out: on transports that allow it (plain TCP on Linux, see Direct) an
// idle session has no goroutine at all (its socket waits in a Poller) and
// frames are written by a few flusher goroutines without blocking, one
// writev per connection per pass, so a burst of frames for a connection
// goes out in one system call.
package session

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"chat/protocol"
)

// Transport carries whole frames for one connection.
type Transport interface {
	// ReadFrame returns the body (type + payload) of the next frame, at
	// most max bytes, waiting for it. The body is valid until the next
	// call. Errors from the frame layer are *protocol.DecodeError.
	ReadFrame(max int) ([]byte, error)
	// WriteFrames writes complete frames (length prefix included), in one
	// system call where the transport allows. It may block: the session's
	// watchdog closes the transport when a write takes too long.
	WriteFrames(frames [][]byte) error
	// CloseWrite ends the outgoing direction after the last frame, so the
	// peer reads everything, and makes reads end by linger.
	CloseWrite(linger time.Time) error
	// Discard reads and drops input until the stream ends or fails.
	Discard() error
	// Close closes the connection at once.
	Close() error
	// RemoteAddr identifies the peer in logs.
	RemoteAddr() string
}

// Direct is implemented by transports that can also be written without
// blocking (a plain TCP socket on Linux). Direct() reports whether this
// connection can.
type Direct interface {
	Direct() bool
	// TryWrite writes what the socket takes now and returns how many
	// bytes that was; fewer than given means the socket is full.
	TryWrite(frames [][]byte) (int, error)
}

// Parker is implemented by transports whose reader can give its goroutine
// up while nothing arrives, leaving the socket to the Poller (plain TCP
// and TLS on Linux). CanPark reports whether this connection can.
type Parker interface {
	CanPark() bool
	// TryReadFrame is ReadFrame that returns ErrWouldBlock at once when no
	// byte of a next frame has arrived, nor is buffered anywhere.
	TryReadFrame(max int) ([]byte, error)
	// SyscallConn gives the Poller the socket.
	SyscallConn() syscall.RawConn
}

// ErrWouldBlock is TryReadFrame's answer when nothing is there to read.
var ErrWouldBlock = errors.New("session: no input yet")

// Poller waits for input on idle connections (transport.Poller): Arm calls
// ready once when the connection has input; Forget drops it.
type Poller interface {
	Arm(conn syscall.RawConn, id uint64, ready func()) error
	Forget(conn syscall.RawConn, id uint64)
}

// Member is what the rooms may do to a connection (the hub's Member).
type Member interface {
	Deliver(frame []byte)
	Replay(ctx context.Context, frames [][]byte) error
	Fail(e *protocol.Error)
}

// Rooms is what a connection may do in the rooms (the hub's Conn). Each
// request returns an ERROR to send back, if any; answers are queued.
type Rooms interface {
	Join(j *protocol.Join) *protocol.Error
	// SendReply publishes a SEND (reply 0: it answers no message). It
	// returns a *protocol.Error to send back, or another error when the
	// message was refused for shutdown (the client will resend it).
	SendReply(room, id, text string, reply uint64) error
	// SendFile is SendReply of a message that carries the file fileID
	// ("" for none; section 4, "Files").
	SendFile(room, id, text string, reply uint64, fileID string) error
	// Upload stores an UPLOAD's chunk (or begins the upload) and answers
	// UPLOADED.
	Upload(u *protocol.Upload) *protocol.Error
	// Fetch answers a FETCH with a PART, later, off the reader; it may
	// wait while the connection has many FETCHes under way.
	Fetch(f *protocol.Fetch) *protocol.Error
	// Change publishes a CHANGE; errors as SendReply's.
	Change(ch *protocol.Change) error
	// Typing forwards a TYPING to the room's other members (or drops it).
	Typing(room string, stopped bool) *protocol.Error
	// Search answers a SEARCH with RESULTS, later, off the reader.
	Search(q *protocol.Search) *protocol.Error
	Leave(room string) *protocol.Error
	// Identify makes the connection a device of a name (IDENTIFY).
	Identify(id *protocol.Identify) *protocol.Error
	// History answers HISTORY with a PAGE.
	History(q *protocol.History) *protocol.Error
	// Read moves a read marker (READ).
	Read(room string, seq uint64) *protocol.Error
	// List answers LIST with ROOMS.
	List(query string) *protocol.Error
	// Moderate carries out a MODERATE and answers MODERATED.
	Moderate(m *protocol.Moderate) *protocol.Error
	// Joined returns how many rooms the connection is in.
	Joined() int
	// Identified reports whether the connection has identified.
	Identified() bool
	Close()
}

// Config holds the limits and timings of sessions. Zero values take the defaults.
type Config struct {
	ServerName       string        // WELCOME server field
	PingInterval     time.Duration // default 30 s
	HandshakeTimeout time.Duration // default 10 s
	WriteTimeout     time.Duration // a write blocked this long ends the session (default 10 s)
	Linger           time.Duration // how long a closing session waits for the peer to close (default 2 s)
	QueueFrames      int           // outgoing queue bound, frames (default 4096)
	QueueBytes       int           // outgoing queue bound, bytes (default 8 MiB)
	MaxFrame         int           // longest frame accepted after HELLO
	MaxText          int
	MaxName          int
	MaxRoom          int
	MaxRooms         int // announced in WELCOME; the hub enforces it
	History          int // announced in WELCOME; the hub replays it
	// Key, if set, must be in every JOIN. It is compared in constant time
	// and never logged.
	Key string
	// RoomCreateKey, if set, is the room creation key (hub.Config): it
	// lets a JOIN in as the server key does, so that one key field can
	// carry both.
	RoomCreateKey string
	// MsgRate and MsgBurst bound the frames a client may send: a burst,
	// then MsgRate per second. Faster clients are slowed down (their frames
	// wait, like IRC's fake lag); one that keeps it up for FloodAfter is
	// disconnected. MsgRate 0 disables the limit.
	MsgRate    float64
	MsgBurst   int
	FloodAfter time.Duration // default 10 s
	// SearchRate and SearchBurst bound a connection's SEARCHes besides
	// the frame rate (default 1 a second after a burst of 5): a search
	// over it waits, as frames over MsgRate do.
	SearchRate  float64
	SearchBurst int
	// IdleTimeout closes connections that are in no room for this long
	// (default 2 minutes).
	IdleTimeout time.Duration
	// RetryAfter is how long a client cut off with rate-limited is asked
	// to wait before reconnecting (default 5 s); announced in WELCOME.
	RetryAfter time.Duration
	// MaxListed and PresenceBatchAbove are the hub's, announced in WELCOME
	// so that clients know them.
	MaxListed, PresenceBatchAbove int
	// Files says the server keeps files (WelcomeFiles: UPLOAD, FETCH,
	// SEND's file). MaxUpload is the largest file, announced in WELCOME.
	Files     bool
	MaxUpload int64
	// FileRate and FileBurst bound the file bytes (UPLOAD data, FETCHed
	// parts) of a connection, which do not count against MsgRate: a burst
	// of FileBurst bytes, then FileRate a second (default 8 MiB/s after
	// 1 MiB). A client over it is slowed down, never cut off.
	FileRate  float64
	FileBurst int
	// Poller, if set, holds idle Direct connections without a goroutine.
	Poller Poller
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	dur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	num := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	dur(&c.PingInterval, 30*time.Second)
	dur(&c.HandshakeTimeout, 10*time.Second)
	dur(&c.WriteTimeout, 10*time.Second)
	dur(&c.Linger, 2*time.Second)
	num(&c.QueueFrames, 4096)
	c.QueueFrames = max(c.QueueFrames, MinQueue)
	num(&c.QueueBytes, 8<<20)
	num(&c.MaxFrame, protocol.DefaultMaxClientFrame)
	num(&c.MaxText, protocol.DefaultMaxText)
	num(&c.MaxName, protocol.DefaultMaxName)
	num(&c.MaxRoom, protocol.DefaultMaxRoom)
	num(&c.MaxRooms, protocol.DefaultMaxRooms)
	num(&c.History, 100)
	num(&c.MsgBurst, 20)
	if c.SearchRate <= 0 {
		c.SearchRate = 1
	}
	num(&c.SearchBurst, 5)
	if c.FileRate <= 0 {
		c.FileRate = DefaultFileRate
	}
	num(&c.FileBurst, 1<<20)
	dur(&c.FloodAfter, 10*time.Second)
	dur(&c.IdleTimeout, 2*time.Minute)
	dur(&c.RetryAfter, 5*time.Second)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// DefaultFileRate is the default FileRate, bytes a second.
const DefaultFileRate = 8 << 20

// MinQueue is the smallest outgoing queue, in frames: a join queues up
// to 32 history frames at once and needs room to spare.
const MinQueue = 64

// Manager runs sessions and ends them all on shutdown.
type Manager struct {
	cfg      Config
	connect  func(Member) Rooms
	keyHash  [32]byte
	flushers []*flusher
	ids      atomic.Uint64
	// limitHits counts limit hits by kind, for the logs and metrics.
	limitHits sync.Map // string → *atomic.Int64
	// slowCuts counts sessions cut off with slow-consumer, for metrics.
	slowCuts atomic.Int64
	// createHash is the SHA-256 of Config.RoomCreateKey, if set.
	createHash *[32]byte

	mu       sync.Mutex
	sessions map[*Session]struct{}
	closing  bool
	// refusal, while set, turns every new session away with it (the
	// node cannot store messages: cluster mode without NATS).
	refusal *protocol.Error
	done    sync.WaitGroup
}

// NewManager returns a manager whose sessions enter rooms through connect.
func NewManager(cfg Config, connect func(Member) Rooms) *Manager {
	cfg.setDefaults()
	m := &Manager{cfg: cfg, connect: connect, sessions: map[*Session]struct{}{}, keyHash: sha256.Sum256([]byte(cfg.Key))}
	if cfg.RoomCreateKey != "" {
		h := sha256.Sum256([]byte(cfg.RoomCreateKey))
		m.createHash = &h
	}
	// One flusher per CPU: writing is system calls, more flushers than
	// CPUs would only take turns.
	for range runtime.GOMAXPROCS(0) {
		f := newFlusher()
		m.flushers = append(m.flushers, f)
		go f.run()
	}
	return m
}

// Count returns the number of live sessions.
func (m *Manager) Count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sessions)
}

// Limit kinds LimitHit is told of (transports and other packages may add
// their own: a kind is always a constant of the code, never input, so the
// set stays small).
const (
	LimitConnections   = "connections"     // per-address connection limits (transport)
	LimitPlainOnTLS    = "plain-on-tls"    // the plain protocol on the TLS port (transport)
	LimitMessageRate   = "message-rate"    // a client over -msg-rate, slowed down
	LimitFlood         = "flood"           // a client over -msg-rate for -flood-after, cut off
	LimitKey           = "key"             // a JOIN without the right server key
	LimitIdle          = "idle"            // a connection in no room for -idle-timeout
	LimitFrameTooLarge = "frame-too-large" // a frame above -max-frame
	LimitProxyProtocol = "proxy-protocol"  // a trusted proxy's connection without a valid PROXY header (transport)
	// Room creations refused by the hub (hub/create.go, which cannot
	// import this package, uses the same words).
	LimitRoomCreation = "room-creation" // an address over -new-rooms-per-hour
	LimitServerRooms  = "server-rooms"  // the server at -max-server-rooms
)

// LimitKinds lists the kinds above, for metrics that show each kind
// (at zero too) before it first happens.
var LimitKinds = []string{LimitConnections, LimitPlainOnTLS, LimitMessageRate, LimitFlood, LimitKey, LimitIdle, LimitFrameTooLarge,
	LimitProxyProtocol, LimitRoomCreation, LimitServerRooms}

// LimitHits returns how often each kind of limit has been hit.
func (m *Manager) LimitHits() map[string]int64 {
	out := map[string]int64{}
	m.limitHits.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return out
}

// SlowConsumerCuts returns how many sessions were cut off because their
// client did not read fast enough.
func (m *Manager) SlowConsumerCuts() int64 { return m.slowCuts.Load() }

// QueueStats describes the sessions' outgoing queues at one moment:
// frames (and bytes) waiting to be written, in all and in the fullest.
type QueueStats struct {
	Sessions            int
	Frames, Bytes       int
	MaxFrames, MaxBytes int
}

// Queues measures the outgoing queues. It locks each session briefly, one
// at a time: it is for a scrape now and then, not for the hot path.
func (m *Manager) Queues() QueueStats {
	m.mu.Lock()
	all := make([]*Session, 0, len(m.sessions))
	for s := range m.sessions {
		all = append(all, s)
	}
	m.mu.Unlock()
	st := QueueStats{Sessions: len(all)}
	for _, s := range all {
		s.mu.Lock()
		frames, bytes := len(s.queue), s.queued
		s.mu.Unlock()
		st.Frames += frames
		st.Bytes += bytes
		st.MaxFrames = max(st.MaxFrames, frames)
		st.MaxBytes = max(st.MaxBytes, bytes)
	}
	return st
}

// LimitHit records that a limit stopped something, and logs it with the
// running count of that kind, so operators see abuse in their logs.
func (m *Manager) LimitHit(kind, remote, detail string) {
	v, _ := m.limitHits.LoadOrStore(kind, new(atomic.Int64))
	n := v.(*atomic.Int64).Add(1)
	m.cfg.Logger.Warn("limit", "kind", kind, "remote", remote, "detail", detail, "count", n)
}

// Serve runs a session on t and returns when it has ended.
func (m *Manager) Serve(t Transport) {
	done := make(chan struct{})
	m.Start(t, func() { close(done) })
	<-done
}

// Start runs a session on t in the background; onEnd (if not nil) is
// called once the session has ended and t is closed.
func (m *Manager) Start(t Transport, onEnd func()) {
	s := newSession(m, t, onEnd)
	m.mu.Lock()
	var refuse *protocol.Error
	switch {
	case m.closing:
		refuse = protocol.NewError(protocol.CodeServerRestarting, "", "server restarting")
	case m.refusal != nil:
		refuse = m.refusal
	default:
		m.sessions[s] = struct{}{}
		m.done.Add(1)
	}
	m.mu.Unlock()
	if refuse != nil {
		go func() {
			s.Fail(refuse)
			_ = t.Discard()
			_ = t.Close()
			s.ended()
		}()
		return
	}
	m.cfg.Logger.Debug("connection opened", "remote", t.RemoteAddr())
	s.startTimer()
	go s.read()
}

func (m *Manager) remove(s *Session) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.sessions[s]; ok {
		delete(m.sessions, s)
		m.done.Done()
	}
}

// Refuse ends every session with e and turns new ones away with it until
// Accept: a cluster node that lost its storage sends its clients to
// another node rather than take messages it cannot store.
func (m *Manager) Refuse(e *protocol.Error) {
	m.mu.Lock()
	m.refusal = e
	all := make([]*Session, 0, len(m.sessions))
	for s := range m.sessions {
		all = append(all, s)
	}
	m.mu.Unlock()
	for _, s := range all {
		s.Fail(e)
	}
}

// Accept ends a Refuse: new sessions are served again.
func (m *Manager) Accept() {
	m.mu.Lock()
	m.refusal = nil
	m.mu.Unlock()
}

// Shutdown tells every session the server is restarting and waits for
// them to end; those still open when ctx ends are cut off. Call it after
// the hub has flushed, so acknowledgements go out before the notice.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	m.closing = true
	all := make([]*Session, 0, len(m.sessions))
	for s := range m.sessions {
		all = append(all, s)
	}
	m.mu.Unlock()
	for _, s := range all {
		s.Fail(protocol.NewError(protocol.CodeServerRestarting, "", "server restarting; reconnect in a moment"))
	}
	done := make(chan struct{})
	go func() { m.done.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		for _, s := range all {
			s.abort()
		}
		<-done
		return ctx.Err()
	}
}
