// Package session runs the protocol for one connection: the handshake,
// the state machine over incoming frames, keepalive, and a bounded
// outgoing queue. It works over any Transport (TCP, WebSocket) and talks
// to the rooms through the Rooms interface.
package session

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"chat/protocol"
	"chat/server/internal/limit"
)

// Transport carries whole frames for one connection.
type Transport interface {
	// ReadFrame returns the body (type + payload) of the next frame, at
	// most max bytes. The body is valid until the next call. Errors from
	// the frame layer are *protocol.DecodeError.
	ReadFrame(max int) ([]byte, error)
	// WriteFrames writes complete frames (length prefix included), in one
	// system call where the transport allows.
	WriteFrames(frames [][]byte, deadline time.Time) error
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

// Member is what the rooms may do to a connection (the hub's Member).
type Member interface {
	Deliver(frame []byte)
	Replay(frames [][]byte) error
	Fail(e *protocol.Error)
}

// Rooms is what a connection may do in the rooms (the hub's Conn).
type Rooms interface {
	Join(j *protocol.Join) *protocol.Error
	// Send returns a *protocol.Error to send back, or another error when
	// the message was refused for shutdown (the client will resend it).
	Send(room, id, text string) error
	Leave(room string) *protocol.Error
	// Joined returns how many rooms the connection is in.
	Joined() int
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
	// MsgRate and MsgBurst bound the frames a client may send: a burst,
	// then MsgRate per second. Faster clients are slowed down (their frames
	// wait, like IRC's fake lag); one that keeps it up for FloodAfter is
	// disconnected. MsgRate 0 disables the limit.
	MsgRate    float64
	MsgBurst   int
	FloodAfter time.Duration // default 10 s
	// IdleTimeout closes connections that are in no room for this long
	// (default 2 minutes).
	IdleTimeout time.Duration
	Logger      *slog.Logger
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
	dur(&c.FloodAfter, 10*time.Second)
	dur(&c.IdleTimeout, 2*time.Minute)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// MinQueue is the smallest outgoing queue, in frames: a join queues up
// to 32 history frames at once and needs room to spare.
const MinQueue = 64

// Manager runs sessions and ends them all on shutdown.
type Manager struct {
	cfg     Config
	connect func(Member) Rooms
	keyHash [32]byte
	// limitHits counts limit hits by kind, for the logs.
	limitHits sync.Map // string → *atomic.Int64

	mu       sync.Mutex
	sessions map[*Session]struct{}
	closing  bool
	done     sync.WaitGroup
}

// NewManager returns a manager whose sessions enter rooms through connect.
func NewManager(cfg Config, connect func(Member) Rooms) *Manager {
	cfg.setDefaults()
	return &Manager{cfg: cfg, connect: connect, sessions: map[*Session]struct{}{}, keyHash: sha256.Sum256([]byte(cfg.Key))}
}

// LimitHit records that a limit stopped something, and logs it with the
// running count of that kind, so operators see abuse in their logs.
func (m *Manager) LimitHit(kind, remote, detail string) {
	v, _ := m.limitHits.LoadOrStore(kind, new(atomic.Int64))
	n := v.(*atomic.Int64).Add(1)
	m.cfg.Logger.Warn("limit", "kind", kind, "remote", remote, "detail", detail, "count", n)
}

// Count returns the number of live sessions.
func (m *Manager) Count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sessions)
}

// Serve runs a session on t until it ends.
func (m *Manager) Serve(t Transport) {
	s := &Session{mgr: m, t: t, cfg: &m.cfg, start: time.Now()}
	s.cond.L = &s.mu
	s.lastRecv.Store(s.start.UnixNano())
	s.rooms = m.connect(s)

	m.mu.Lock()
	closing := m.closing
	if !closing {
		m.sessions[s] = struct{}{}
		m.done.Add(1)
	}
	m.mu.Unlock()
	if closing {
		s.Fail(protocol.NewError(protocol.CodeServerRestarting, "", "server restarting"))
		_ = t.Discard()
		_ = t.Close()
		return
	}
	defer m.done.Done()

	// Made stopped and then started, so s.timer is set before tick can run.
	s.timer = time.AfterFunc(math.MaxInt64, s.tick)
	s.timer.Reset(m.cfg.HandshakeTimeout)
	m.cfg.Logger.Debug("connection opened", "remote", t.RemoteAddr())
	s.readLoop()
	s.timer.Stop()
	s.leaveRooms()
	_ = t.Close()

	m.mu.Lock()
	delete(m.sessions, s)
	m.mu.Unlock()
	s.mu.Lock()
	reason := s.reason
	s.mu.Unlock()
	m.cfg.Logger.Info("connection closed", "remote", t.RemoteAddr(), "client", s.client,
		"duration", time.Since(s.start).Round(time.Millisecond), "reason", reason)
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
			_ = s.t.Close()
		}
		<-done
		return ctx.Err()
	}
}

// Session is one client connection.
type Session struct {
	mgr    *Manager
	cfg    *Config
	t      Transport
	rooms  Rooms
	start  time.Time
	timer  *time.Timer
	client string // from HELLO; reader goroutine only

	ready    atomic.Bool  // HELLO done
	lastRecv atomic.Int64 // Unix nanoseconds of the last complete frame
	nonce    atomic.Uint64

	// Rate limiting, reader goroutine only.
	bucket       *limit.Bucket
	limitedSince time.Time // when the client started sending too fast; zero if it is not
	// noRoomSince is when the session was last seen in no room; zero while
	// it is in one. Timer goroutine only.
	noRoomSince time.Time

	leaveOnce sync.Once

	mu      sync.Mutex
	cond    sync.Cond // signalled when the queue drains or the session closes
	queue   [][]byte
	queued  int // bytes in queue
	writing bool
	closing bool      // no more frames are queued; the write side closes when the queue is written
	closeAt time.Time // when closing began
	reason  string    // why the session ended, for the log
}

// Deliver implements Member: it queues a frame without blocking. When the
// queue is full the client is not keeping up: what is queued is dropped
// (the client resumes it after reconnecting) and the session ends with
// slow-consumer.
func (s *Session) Deliver(frame []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return
	}
	if len(s.queue) >= s.cfg.QueueFrames || s.queued+len(frame) > s.cfg.QueueBytes {
		clear(s.queue)
		s.queue, s.queued = s.queue[:0], 0
		s.failLocked(protocol.NewError(protocol.CodeSlowConsumer, "",
			fmt.Sprintf("more than %d frames waiting to be read; reconnect to resume", s.cfg.QueueFrames)))
		return
	}
	s.enqueueLocked(frame)
}

// Replay implements Member: it queues history, pacing itself to the
// client's reading speed instead of overflowing the queue.
func (s *Session) Replay(frames [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range frames {
		for !s.closing && (len(s.queue) >= s.cfg.QueueFrames/2 || s.queued+len(f) > s.cfg.QueueBytes/2) {
			s.cond.Wait()
		}
		if s.closing {
			return errors.New("session closed")
		}
		s.enqueueLocked(f)
	}
	return nil
}

// Fail implements Member: e is the last frame the client gets.
func (s *Session) Fail(e *protocol.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failLocked(e)
}

func (s *Session) enqueueLocked(frame []byte) {
	s.queue = append(s.queue, frame)
	s.queued += len(frame)
	if !s.writing {
		s.writing = true
		go s.writeLoop()
	}
}

// failLocked starts closing: queue e (nil for a quiet close, as after
// BYE), let the writer drain the queue and close the write side.
func (s *Session) failLocked(e *protocol.Error) {
	if s.closing {
		return
	}
	if e != nil {
		s.queue = append(s.queue, protocol.Encode(e))
		s.reason = e.Error()
	} else if s.reason == "" {
		s.reason = "client said bye"
	}
	s.closing, s.closeAt = true, time.Now()
	s.cond.Broadcast()
	if !s.writing {
		s.writing = true
		go s.writeLoop()
	}
	// Leave the rooms now, not when the socket is finally closed, so the
	// name is free and others see the member go. Not inline: Fail may be
	// called by the hub with a room locked.
	go s.leaveRooms()
}

func (s *Session) leaveRooms() { s.leaveOnce.Do(s.rooms.Close) }

// writeLoop writes queued frames, all that are waiting in one call, and
// exits when the queue is empty, so idle sessions have no writer goroutine.
func (s *Session) writeLoop() {
	for {
		s.mu.Lock()
		if len(s.queue) == 0 {
			s.writing = false
			closing := s.closing
			s.queue = nil // idle sessions hold no buffers
			s.cond.Broadcast()
			s.mu.Unlock()
			if closing {
				_ = s.t.CloseWrite(time.Now().Add(s.cfg.Linger))
			}
			return
		}
		batch := s.queue
		s.queue, s.queued = nil, 0
		s.mu.Unlock()

		err := s.t.WriteFrames(batch, time.Now().Add(s.cfg.WriteTimeout))
		clear(batch)
		s.mu.Lock()
		s.cond.Broadcast()
		if err != nil {
			s.writing = false
			if !s.closing {
				s.reason = "write failed: " + err.Error()
				s.closing, s.closeAt = true, time.Now()
			}
			s.queue = nil
			s.mu.Unlock()
			_ = s.t.Close()
			s.leaveRooms()
			return
		}
		s.mu.Unlock()
	}
}

func (s *Session) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// readLoop reads and handles frames until the connection ends.
func (s *Session) readLoop() {
	for {
		limit := protocol.MaxHelloFrame
		if s.ready.Load() {
			limit = s.cfg.MaxFrame
		}
		body, err := s.t.ReadFrame(limit)
		if err != nil {
			var de *protocol.DecodeError
			if errors.As(err, &de) {
				s.protocolError(protocol.NewError(de.Code, "", de.Reason))
				return
			}
			s.mu.Lock()
			if s.reason == "" {
				s.reason = readEndReason(err)
			}
			// Nothing more is queued for a connection whose reading ended;
			// a write failing now must not rewrite why it ended.
			s.closing = true
			s.cond.Broadcast()
			s.mu.Unlock()
			return
		}
		s.lastRecv.Store(time.Now().UnixNano())
		if s.isClosing() {
			continue // after BYE or an error: read to the end, ignore
		}
		msg, err := protocol.Decode(body)
		if err != nil {
			var de *protocol.DecodeError
			errors.As(err, &de)
			s.protocolError(protocol.NewError(de.Code, "", de.Reason))
			return
		}
		if !s.throttle(msg) {
			return
		}
		if e := s.handle(msg); e != nil {
			if e.Closing() {
				s.protocolError(e)
				return
			}
			s.Deliver(protocol.Encode(e))
		}
	}
}

// throttle applies the message rate limit before msg is handled: it waits
// while the client is over its rate, and ends the session when the client
// has been over it for FloodAfter. It reports whether to go on.
func (s *Session) throttle(msg protocol.Message) bool {
	if s.cfg.MsgRate <= 0 || !s.ready.Load() {
		return true
	}
	if _, ok := msg.(*protocol.Pong); ok {
		return true
	}
	now := time.Now()
	if s.bucket == nil {
		s.bucket = limit.NewBucket(s.cfg.MsgRate, s.cfg.MsgBurst, now)
	}
	wait := s.bucket.Take(now)
	if wait == 0 {
		s.limitedSince = time.Time{}
		return true
	}
	if s.limitedSince.IsZero() {
		s.limitedSince = now
		s.mgr.LimitHit("message-rate", s.t.RemoteAddr(), fmt.Sprintf("over %g frames/s: slowing down", s.cfg.MsgRate))
	}
	if now.Sub(s.limitedSince) >= s.cfg.FloodAfter {
		s.mgr.LimitHit("flood", s.t.RemoteAddr(), fmt.Sprintf("over %g frames/s for %v: disconnected", s.cfg.MsgRate, s.cfg.FloodAfter))
		s.protocolError(protocol.NewError(protocol.CodeRateLimited, "",
			fmt.Sprintf("more than %g messages a second for %v; wait before reconnecting", s.cfg.MsgRate, s.cfg.FloodAfter)))
		return false
	}
	// Not reading meanwhile also stops the client's socket: it slows down
	// whether or not it understands why.
	time.Sleep(wait)
	return !s.isClosing()
}

func readEndReason(err error) string {
	if errors.Is(err, protocol.ErrTruncated) {
		return "connection ended inside a frame"
	}
	return "read: " + err.Error()
}

// protocolError sends e, then reads and drops whatever else the client
// sends until it closes, so the ERROR is not lost to a TCP reset caused
// by unread input.
func (s *Session) protocolError(e *protocol.Error) {
	s.mgr.cfg.Logger.Info("protocol error", "remote", s.t.RemoteAddr(), "code", e.Code.String(), "detail", e.Text)
	s.Fail(e)
	_ = s.t.Discard()
}

// handle applies one frame. It returns an ERROR for the client, if any.
func (s *Session) handle(msg protocol.Message) *protocol.Error {
	if !s.ready.Load() {
		hello, ok := msg.(*protocol.Hello)
		if !ok {
			return protocol.NewError(protocol.CodeUnexpected, "", fmt.Sprintf("%v before HELLO", msg.Type()))
		}
		if hello.Version != protocol.Version {
			return protocol.NewError(protocol.CodeUnsupportedVersion, "",
				fmt.Sprintf("this server speaks protocol version %d, the client version %d: update the app", protocol.Version, hello.Version))
		}
		s.client = hello.Client
		s.ready.Store(true)
		s.timer.Reset(s.tickInterval()) // from the handshake deadline to keepalive
		s.Deliver(protocol.Encode(s.welcome()))
		return nil
	}
	switch m := msg.(type) {
	case *protocol.Join:
		return s.join(m)
	case *protocol.Send:
		return s.send(m)
	case *protocol.Leave:
		return s.rooms.Leave(m.Room)
	case *protocol.Bye:
		s.Fail(nil)
	case *protocol.Ping:
		s.Deliver(protocol.Encode(&protocol.Pong{Nonce: m.Nonce}))
	case *protocol.Pong:
	case *protocol.Hello:
		return protocol.NewError(protocol.CodeUnexpected, "", "second HELLO")
	default:
		return protocol.NewError(protocol.CodeUnexpected, "", fmt.Sprintf("%v is sent by servers, not clients", msg.Type()))
	}
	return nil
}

func (s *Session) welcome() *protocol.Welcome {
	c := s.cfg
	return &protocol.Welcome{
		Version: protocol.Version, Server: c.ServerName, Time: protocol.Millis(time.Now()),
		MaxFrame: uint64(c.MaxFrame), MaxText: uint64(c.MaxText), MaxName: uint64(c.MaxName),
		MaxRoom: uint64(c.MaxRoom), MaxRooms: uint64(c.MaxRooms), History: uint64(c.History),
		PingMs: uint64(c.PingInterval.Milliseconds()), Flags: s.mgr.welcomeFlags(),
	}
}

func (m *Manager) welcomeFlags() protocol.WelcomeFlags {
	if m.cfg.Key != "" {
		return protocol.WelcomeKeyRequired
	}
	return 0
}

func tooLong(room, what string, n, limit int) *protocol.Error {
	return protocol.NewError(protocol.CodeTooLong, room, fmt.Sprintf("%s is %d bytes; the limit is %d", what, n, limit))
}

func (s *Session) join(j *protocol.Join) *protocol.Error {
	switch {
	case len(j.Room) > s.cfg.MaxRoom:
		return tooLong("", "the room name", len(j.Room), s.cfg.MaxRoom)
	case len(j.Name) > s.cfg.MaxName:
		return tooLong(j.Room, "the name", len(j.Name), s.cfg.MaxName)
	}
	if s.cfg.Key != "" {
		// Hashes make the comparison constant-time whatever the lengths.
		if got := sha256.Sum256([]byte(j.Key)); subtle.ConstantTimeCompare(got[:], s.mgr.keyHash[:]) != 1 {
			s.mgr.LimitHit("key", s.t.RemoteAddr(), "JOIN without the right server key")
			return protocol.NewError(protocol.CodeUnauthorized, j.Room, "this server needs its access key: ask its operator for it")
		}
	}
	if err := protocol.CheckName(j.Room); err != nil {
		return protocol.NewError(protocol.CodeInvalidRoom, j.Room, "the room name "+err.Error())
	}
	if err := protocol.CheckName(j.Name); err != nil {
		return protocol.NewError(protocol.CodeInvalidName, j.Room, "the name "+err.Error())
	}
	return s.rooms.Join(j)
}

func (s *Session) send(m *protocol.Send) *protocol.Error {
	switch {
	case len(m.ID) == 0 || len(m.ID) > protocol.MaxIDLen:
		return protocol.NewError(protocol.CodeTooLong, m.Room, fmt.Sprintf("a message id must be 1 to %d bytes, not %d", protocol.MaxIDLen, len(m.ID)))
	case len(m.Text) == 0:
		return protocol.NewError(protocol.CodeTooLong, m.Room, "the message is empty")
	case len(m.Text) > s.cfg.MaxText:
		return tooLong(m.Room, "the message", len(m.Text), s.cfg.MaxText)
	}
	var e *protocol.Error
	if err := s.rooms.Send(m.Room, m.ID, m.Text); errors.As(err, &e) {
		return e
	}
	// Any other error means shutdown: not stored, not acknowledged; the
	// client re-sends after it reconnects.
	return nil
}

// tick runs the handshake deadline and keepalive.
func (s *Session) tick() {
	now := time.Now()
	s.mu.Lock()
	closing, closeAt := s.closing, s.closeAt
	s.mu.Unlock()
	if closing {
		// The writer and the peer get WriteTimeout + Linger to finish.
		if now.Sub(closeAt) > s.cfg.WriteTimeout+s.cfg.Linger {
			_ = s.t.Close()
			return
		}
		s.timer.Reset(s.cfg.Linger)
		return
	}
	if !s.ready.Load() {
		s.Fail(protocol.NewError(protocol.CodeTimeout, "", fmt.Sprintf("no HELLO within %v", s.cfg.HandshakeTimeout)))
		s.timer.Reset(s.cfg.Linger)
		return
	}
	if s.rooms.Joined() > 0 {
		s.noRoomSince = time.Time{}
	} else if s.noRoomSince.IsZero() {
		s.noRoomSince = now
	} else if now.Sub(s.noRoomSince) >= s.cfg.IdleTimeout {
		s.mgr.LimitHit("idle", s.t.RemoteAddr(), "in no room")
		s.Fail(protocol.NewError(protocol.CodeTimeout, "", fmt.Sprintf("in no room for %v", s.cfg.IdleTimeout)))
		s.timer.Reset(s.cfg.Linger)
		return
	}
	idle := now.Sub(time.Unix(0, s.lastRecv.Load()))
	p := s.cfg.PingInterval
	switch {
	case idle >= p*3/2:
		s.Fail(protocol.NewError(protocol.CodeTimeout, "", fmt.Sprintf("nothing received for %v", idle.Round(10*time.Millisecond))))
		s.timer.Reset(s.cfg.Linger)
		return
	case idle >= p:
		s.Deliver(protocol.Encode(&protocol.Ping{Nonce: s.nonce.Add(1)}))
	}
	s.timer.Reset(s.tickInterval())
}

// tickInterval is how often keepalive and the idle timeout are checked.
func (s *Session) tickInterval() time.Duration {
	return min(s.cfg.PingInterval, s.cfg.IdleTimeout) / 2
}
