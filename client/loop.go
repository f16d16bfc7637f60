package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"chat/protocol"
)

// loop owns all of a Client's state; it runs on one goroutine, so nothing
// here needs a lock.
type loop struct {
	c *Client

	rooms  map[string]*room // rooms we are in or want to be in, by key
	outbox []*outgoing      // unacknowledged messages, in send order

	conn        *connection // nil while disconnected
	server      target      // where conn goes
	lost        *target     // where the connection just lost went: the next round tries it last
	gen         int         // generation of the newest connection attempt
	welcome     *protocol.Welcome
	attempt     int         // consecutive failed attempts
	connectedAt time.Time   // when the current connection's WELCOME came
	retry       *time.Timer // pending reconnect, nil if none
	retryC      <-chan time.Time
	dialing     bool
	cancelDial  context.CancelFunc

	dialed   chan dialResult
	incoming chan incoming
	tick     *time.Ticker
	tickC    <-chan time.Time
	lastRecv time.Time
	pingedAt time.Time // keepalive's last PING
	probeBy  time.Time // a Nudge expects a frame before this, if set

	// sendq holds the frames the server counts against its rate (every
	// frame but PONG) until the pacer lets them go: the client keeps to
	// the announced limits instead of being slowed down or cut off.
	sendq []queued
	// inflight counts the SENDs handed to the writer on the current
	// connection and not acknowledged yet. pump holds SENDs back while it
	// is at maxInflight, whatever the announced rate: the server answers
	// each with an ACK and the message itself, and a client that pushes a
	// long outbox at once would overflow the server's queue towards it and
	// be cut off as a slow consumer, on every reconnect.
	inflight int
	pace     pacer
	paceT    *time.Timer // wakes the loop when the next token is due; nil if none
	paceC    <-chan time.Time
	// filePace paces upload chunks to the server's file rate (files.go);
	// fileT wakes the loop when it has bytes again.
	filePace filePacer
	fileT    *time.Timer
	fileC    <-chan time.Time
	// fetches are the FETCHes of Downloads without their PART yet, in
	// the order asked (files.go).
	fetches []*fetchReq

	drainWaiters []chan struct{}
	stopped      bool

	// identifying: IDENTIFY is sent on the current connection and neither
	// IDENTIFIED nor the ERROR refusing it has come back.
	identifying bool
	// lists are the LIST queries without their ROOMS yet, in the order
	// sent; the server answers in order. Those lost with a connection are
	// asked again on the next one.
	lists []string

	// mods are the MODERATEs on the current connection without their
	// MODERATED or ERROR yet, in the order sent. requests numbers them
	// and IDENTIFY (identifyOrder), whose refusals both have no room.
	mods          []*modRequest
	requests      uint64
	identifyOrder uint64
	// searches are the SEARCHes on the current connection without their
	// RESULTS or ERROR yet, in the order sent (numbered by requests too).
	searches []*searchRequest
	// operToken is the operator token the server took (Oper): the client
	// becomes an operator again with it on every new connection.
	operToken string
	oper      bool // the current connection is a server operator's
	// removed are where the rooms a kick or ban removed us from stood,
	// by key (at most maxRemoved): joining one again resumes there, as
	// after a reconnect, instead of replaying its history.
	removed map[string]resumePoint
}

// resumePoint is where a room the client was removed from stood.
type resumePoint struct{ lastSeen, epoch, read uint64 }

// maxRemoved bounds loop.removed.
const maxRemoved = 64

// roomState is where a room stands on the current connection. Every
// request in flight has its own state, so that a Join or Leave that
// crosses an answer on the wire is applied after it, never lost.
type roomState int

const (
	// roomWanted: the user wants to be in the room, and the current
	// connection has no JOIN for it: none yet, or no connection at all.
	// The next connection joins it.
	roomWanted roomState = iota
	// roomJoining: JOIN sent on the current connection; JOINED or an
	// ERROR for the room comes next.
	roomJoining
	// roomJoined: JOINED arrived on the current connection.
	roomJoined
	// roomLeaving: LEAVE sent on the current connection; LEFT comes next.
	// A room leaving when the connection drops is gone (the server forgets
	// it with the connection), unless the user joined it again meanwhile.
	roomLeaving
)

func (s roomState) String() string {
	return [...]string{"wanted", "joining", "joined", "leaving"}[s]
}

type room struct {
	key   string
	state roomState
	// rejoin (leaving): the user joined again while LEAVE was in flight;
	// once LEFT arrives the client sends JOIN (resuming) for it.
	rejoin bool
	// leaveOnJoined (joining): the user left while JOIN was in flight; a
	// LEAVE before JOINED could reach the server after a refused JOIN,
	// which is a protocol error, so it waits for JOINED.
	leaveOnJoined bool

	everJoined bool // so later joins resume
	lastSeen   uint64
	epoch      uint64 // history epoch lastSeen belongs to (from JOINED); 0 unknown
	head       uint64 // head at the last JOINED: seq <= head is history

	// members are the room's names (by key) as of the last JOINED and the
	// PRESENCE since; complete when that JOINED listed everyone.
	members  map[string]string
	complete bool

	// read is our name's read marker as the server last said (JOINED,
	// MARKER); mark is the highest MarkRead, to be sent while above read.
	// readQueued: a READ is in sendq; it carries mark when it goes, so
	// marks made meanwhile are coalesced into it.
	read, mark uint64
	readQueued bool
	// history holds the HISTORY requests without their PAGE yet, in the
	// order sent; those lost with a connection are asked again after the
	// room is re-joined.
	history []protocol.History

	// invite is the invite code JoinWith gave, sent with JOIN until the
	// room is joined.
	invite string
	// topic and modes are the room's as of the last JOINED and the
	// MODEVENTs since.
	topic string
	modes protocol.JoinedModes
	// refused counts the ERROR muted on the current connection not yet
	// matched with the message they refused; refusal is the last one
	// (see onMuted).
	refused int
	refusal *protocol.Error
	// typingSent is when Typing last sent TYPING (zero: not since the
	// last message or StopTyping).
	typingSent time.Time
}

// wanted reports whether the user wants to be in r (as opposed to r being
// on its way out).
func (r *room) wanted() bool {
	switch r.state {
	case roomLeaving:
		return r.rejoin
	case roomJoining:
		return !r.leaveOnJoined
	}
	return true
}

// outgoing is a message (SEND) or a change (CHANGE) of the outbox.
type outgoing struct {
	room, id, text string
	reply          uint64           // SEND's reply target; 0: none
	change         *protocol.Change // set for a CHANGE
	up             *upload          // set for a SEND with a file (SendFile): the upload that goes first
	sentOn         int              // generation of the connection it was handed to the writer on
}

// frame is o's frame on the wire.
func (o *outgoing) frame() []byte {
	if o.change != nil {
		return protocol.Encode(o.change)
	}
	s := &protocol.Send{Room: o.room, ID: o.id, Text: o.text, Reply: o.reply}
	if o.up != nil {
		s.File = o.up.fileID
	}
	return protocol.Encode(s)
}

// queued is a frame waiting for the pacer; send is the message of a SEND.
// A READ is built when it goes (read is its room), so that it carries the
// newest mark.
type queued struct {
	frame []byte
	send  *outgoing
	read  *room
}

// maxInflight bounds the SENDs on the wire without an ACK.
const maxInflight = 128

// outCap is the capacity of a connection's writer queue; pump leaves
// outReserve of it for what writeNow sends directly (PONG, BYE).
const (
	outCap     = 1024
	outReserve = 64
)

type connection struct {
	gen     int
	conn    Conn
	out     chan []byte   // frames for the writer goroutine
	dead    chan struct{} // closed when the writer stops
	wrote   chan struct{} // signalled after each write: out has room again
	ping    time.Duration
	flushed bool // out is closed and the writer is finishing; loop only
}

type dialResult struct {
	gen     int
	server  target
	conn    Conn
	welcome *protocol.Welcome
	err     error
}

type incoming struct {
	gen int
	msg protocol.Message
	err error
}

func newLoop(c *Client) *loop {
	return &loop{
		c:     c,
		rooms: map[string]*room{},
		// Unbuffered: a handshake is handed over only to a running loop,
		// which closes it if stale; once the loop has stopped, done is
		// closed and the dialer closes it. A buffer could keep an open
		// connection parked forever when a handshake completes during Close.
		dialed:   make(chan dialResult),
		incoming: make(chan incoming, 256),
	}
}

func (l *loop) run() {
	l.setState(Connecting, nil, 0)
	l.dial()
	for !l.stopped {
		select {
		case f := <-l.c.cmds:
			f(l)
		case r := <-l.dialed:
			l.onDialed(r)
		case in := <-l.incoming:
			if l.conn != nil && in.gen == l.conn.gen {
				l.onIncoming(in)
			}
		case <-l.retryC:
			l.retry, l.retryC = nil, nil
			l.dial()
		case now := <-l.tickC:
			l.keepalive(now)
		case <-l.paceC:
			l.paceT, l.paceC = nil, nil
			l.pump()
		case <-l.fileC:
			l.fileT, l.fileC = nil, nil
			l.pump()
		case <-l.wroteC():
			l.pump()
		}
	}
	close(l.c.done)
}

// wroteC is the current connection's wrote channel, nil if none.
func (l *loop) wroteC() <-chan struct{} {
	if l.conn == nil {
		return nil
	}
	return l.conn.wrote
}

func (l *loop) setState(s State, err error, retryIn time.Duration) {
	l.c.state.Store(int32(s))
	ev := StateChanged{State: s, Err: err, RetryIn: retryIn}
	if s == Connected {
		ev.Addr, ev.Remote = l.server.addr, l.server.remote()
		l.c.server.Store(&[2]string{ev.Addr, ev.Remote})
	} else {
		l.c.server.Store(nil)
	}
	l.c.events.push(ev)
}

// dial starts a round of connection attempts in the background (connect):
// every server address, and every IP address of their names, in turn.
// The backoff is between rounds, not between the servers of a round, so
// that the client moves on at once from a server that is down.
func (l *loop) dial() {
	l.gen++
	gen := l.gen
	ctx, cancel := context.WithCancel(context.Background())
	l.dialing, l.cancelDial = true, cancel
	cfg, lost := l.c.cfg, l.lost
	go func() {
		defer cancel()
		conn, w, t, err := connect(ctx, cfg, lost)
		select {
		case l.dialed <- dialResult{gen, t, conn, w, err}:
		case <-l.c.done:
			if conn != nil {
				conn.Close()
			}
		}
	}()
}

// handshakePing is the nonce of the PING sent with HELLO. Its varint is
// the byte '\n': a web server that got HELLO waits for the end of a
// request line, and this ends it, so that a client pointed at a web port
// gets an HTTP error at once instead of silence until a timeout. A chat
// server just answers PONG.
const handshakePing = '\n'

// handshake connects to addr and exchanges HELLO and WELCOME.
func handshake(ctx context.Context, cfg Config, addr string) (Conn, *protocol.Welcome, error) {
	conn, err := cfg.Dial(ctx, addr)
	if err != nil {
		return nil, nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() }) // unblocks the read below
	defer stop()
	hello := protocol.Encode(&protocol.Hello{Version: protocol.Version, Client: cfg.Software})
	ping := protocol.Encode(&protocol.Ping{Nonce: handshakePing})
	deadline, _ := ctx.Deadline()
	if err := conn.WriteFrames([][]byte{hello, ping}, deadline); err != nil {
		conn.Close()
		return nil, nil, err
	}
	body, err := conn.ReadFrame()
	if err != nil {
		conn.Close()
		if errors.Is(err, ErrWebPort) {
			return nil, nil, fmt.Errorf("%s answered in HTTP: %w%s", addr, ErrWebPort, webSocketHint(addr))
		}
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("no answer from the server within %v", cfg.HandshakeTimeout)
		}
		return nil, nil, err
	}
	msg, err := protocol.Decode(body)
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("not a chat server: %w", err)
	}
	switch m := msg.(type) {
	case *protocol.Welcome:
		if !stop() {
			return nil, nil, ctx.Err()
		}
		return conn, m, nil
	case *protocol.Error:
		conn.Close()
		return nil, nil, m
	default:
		conn.Close()
		return nil, nil, fmt.Errorf("the server answered HELLO with %v", msg.Type())
	}
}

func (l *loop) onDialed(r dialResult) {
	if r.gen != l.gen || l.stopped {
		if r.conn != nil {
			r.conn.Close()
		}
		return
	}
	l.dialing, l.cancelDial = false, nil
	if r.err != nil {
		// Every server failed: the next round starts from the first, in
		// the order configured.
		l.lost = nil
		l.connectionLost(r.err)
		return
	}
	l.server, l.lost = r.server, nil
	// The backoff is reset only once this connection proves healthy
	// (healthy): a server that closes every connection after WELCOME
	// must not be redialled in a tight loop.
	l.connectedAt = time.Now()
	l.welcome = r.welcome
	l.c.maxText.Store(int64(r.welcome.MaxText))
	ping := millis(r.welcome.PingMs)
	if ping <= 0 {
		ping = 30 * time.Second
	}
	l.conn = &connection{gen: r.gen, conn: r.conn, out: make(chan []byte, outCap), dead: make(chan struct{}),
		wrote: make(chan struct{}, 1), ping: ping}
	go l.conn.write(l.c.cfg.WriteTimeout)
	go l.read(l.conn)
	l.lastRecv = time.Now()
	l.pace = newPacer(r.welcome.Limits, l.lastRecv)
	l.filePace = newFilePacer(r.welcome.Limits, l.lastRecv)
	if l.files() {
		l.c.maxUpload.Store(int64(min(r.welcome.Limits.MaxUpload, 1<<62)))
	} else {
		l.c.maxUpload.Store(0)
	}
	l.tick = time.NewTicker(ping / 2)
	l.tickC = l.tick.C
	l.setState(Connected, nil, 0)
	l.dropOversized()
	l.dropUnsupported()
	l.dropNoFiles()
	l.identify()
	l.reoper()
	for _, r := range l.rooms {
		if r.state == roomWanted && !l.refuseLong(r.key) {
			l.sendJoin(r)
		}
	}
	l.sendFetches()
}

// refuseLong reports whether the server announced limits that the room's
// canonical name (or our name) exceeds; it then forgets the room and says
// so with a RoomError, without sending anything: the server would answer
// too-long, which closes the connection, and a retry would meet the same
// answer. The check is on the key, which NFKC may make longer than the
// name typed.
func (l *loop) refuseLong(key string) bool {
	if l.welcome == nil {
		return false
	}
	var text string
	maxRoom := l.welcome.MaxRoom
	if protocol.IsDM(key) {
		maxRoom = max(maxRoom, uint64(protocol.MaxDMRoom(int(min(l.welcome.MaxName, 1<<20)))))
	}
	switch {
	case uint64(len(key)) > maxRoom:
		text = fmt.Sprintf("the room name is %d bytes; the server allows %d", len(key), maxRoom)
	case uint64(max(len(l.c.cfg.Name), len(l.c.nameKey))) > l.welcome.MaxName:
		text = fmt.Sprintf("the name %q is longer than the %d bytes the server allows", l.c.cfg.Name, l.welcome.MaxName)
	default:
		return false
	}
	unsent := l.forgetRoom(key)
	l.c.events.push(RoomError{Room: key, Unsent: unsent, Err: &protocol.Error{Code: protocol.CodeTooLong, Room: key, Text: text}})
	return true
}

// read forwards frames of one connection to the loop.
func (l *loop) read(conn *connection) {
	for {
		var in incoming
		body, err := conn.conn.ReadFrame()
		if err == nil {
			in.msg, err = protocol.Decode(body)
			var derr *protocol.DecodeError
			if errors.As(err, &derr) && derr.Code == protocol.CodeUnknownType && body[0] >= 0x80 {
				// A server frame of a later revision (as MODEVENT was to
				// clients before moderation): the spec says ignore it.
				l.c.cfg.Logger.Debug("ignoring an unknown server frame", "type", fmt.Sprintf("0x%02x", body[0]))
				continue
			}
		}
		in.gen, in.err = conn.gen, err
		select {
		case l.incoming <- in:
		case <-l.c.done:
			return
		}
		if err != nil {
			return
		}
	}
}

// write sends queued frames, as many per system call as are waiting.
func (c *connection) write(timeout time.Duration) {
	defer close(c.dead)
	defer c.conn.Close()
	out := c.out
	batch := make([][]byte, 0, 64)
	for f := range out {
		batch = append(batch[:0], f)
	more:
		for len(batch) < cap(batch) {
			select {
			case f, ok := <-out:
				if !ok {
					break more
				}
				batch = append(batch, f)
			default:
				break more
			}
		}
		if err := c.conn.WriteFrames(batch, time.Now().Add(timeout)); err != nil {
			return
		}
		select {
		case c.wrote <- struct{}{}:
		default:
		}
	}
}

// writeNow hands a frame to the writer at once, bypassing the pacer: for
// PONG, which the server does not count, and BYE. It never blocks the
// loop: pump leaves room in out for these, and a writer so stuck that
// even that is full has a dead connection, which is closed (the reader
// reports the failure).
func (l *loop) writeNow(frame []byte) {
	if l.conn == nil || l.conn.flushed {
		return
	}
	select {
	case l.conn.out <- frame:
	default:
		l.conn.conn.Close()
	}
}

// enqueue sends m as soon as the pacer allows, after the frames queued
// before it: JOIN, SEND and LEAVE must reach the server in the order the
// loop made them.
func (l *loop) enqueue(m protocol.Message) {
	if l.conn == nil {
		return
	}
	l.sendq = append(l.sendq, queued{frame: protocol.Encode(m)})
	l.pump()
}

// enqueueFirst puts m before everything queued: a keepalive PING must not
// wait behind a long outbox, or a dead connection would go unnoticed for
// as long as it takes to drain.
func (l *loop) enqueueFirst(m protocol.Message) {
	if l.conn == nil {
		return
	}
	l.sendq = append([]queued{{frame: protocol.Encode(m)}}, l.sendq...)
	l.pump()
}

// pump writes queued frames while the pacer has tokens, and sets a timer
// for the next token otherwise. It stops, without blocking, when the
// writer's queue is full (the writer's next write wakes it) and at a SEND
// while maxInflight are unacknowledged (an ACK wakes it).
func (l *loop) pump() {
	now := time.Now()
	l.pumpFrames(now)
	l.pumpUploads(now)
	l.sendFetches()
}

// pumpFrames writes the frames of sendq; see pump.
func (l *loop) pumpFrames(now time.Time) {
	for len(l.sendq) > 0 && l.conn != nil {
		if len(l.conn.out) >= outCap-outReserve {
			return
		}
		if r := l.sendq[0].read; r != nil && r.mark <= r.read {
			// A MARKER (from another device, say) got there first.
			r.readQueued = false
			l.sendq[0] = queued{}
			l.sendq = l.sendq[1:]
			continue
		}
		if l.sendq[0].send != nil && l.inflight >= maxInflight {
			return
		}
		if wait := l.pace.take(now); wait > 0 {
			if l.paceT == nil {
				l.paceT = time.NewTimer(wait)
				l.paceC = l.paceT.C
			}
			return
		}
		q := l.sendq[0]
		l.sendq[0] = queued{}
		l.sendq = l.sendq[1:]
		if q.send != nil {
			q.send.sentOn = l.conn.gen
			l.inflight++
		}
		if r := q.read; r != nil {
			r.readQueued = false
			q.frame = protocol.Encode(&protocol.Read{Room: r.key, Seq: r.mark})
		}
		l.writeNow(q.frame)
	}
}

// maxAnnounced caps the durations a server announces in WELCOME: absurd
// values would overflow time.Duration (a negative interval or ping), and
// nothing sensible waits longer than this.
const maxAnnounced = time.Hour

// millis converts a duration announced in milliseconds, clamped to
// maxAnnounced.
func millis(ms uint64) time.Duration {
	if ms >= uint64(maxAnnounced/time.Millisecond) {
		return maxAnnounced
	}
	return time.Duration(ms) * time.Millisecond
}

// pacer is a token bucket that keeps the client within the rate the
// server announced in WELCOME, with a margin: the server counts frames
// when it reads them, and network and timer jitter bunch them.
type pacer struct {
	interval time.Duration // one token per interval; 0: no limit
	burst    float64       // most tokens held
	tokens   float64
	last     time.Time
}

// newPacer returns the pacer for a new connection. The server's bucket
// starts full at the first frame it counts, which is the PING sent with
// HELLO, so the client's starts one token short of its capacity.
func newPacer(lim protocol.Limits, now time.Time) pacer {
	if lim.SendIntervalMs == 0 {
		return pacer{}
	}
	interval := millis(lim.SendIntervalMs)
	interval += interval / 10
	// One token less than the server's, so that a little bunching on the
	// way never puts the client over the server's count.
	burst := max(1, float64(lim.SendBurst)-1)
	return pacer{interval: interval, burst: burst, tokens: burst - 1, last: now}
}

// take spends a token if there is one and returns 0; otherwise it returns
// how long until one is there.
func (p *pacer) take(now time.Time) time.Duration {
	if p.interval == 0 {
		return 0
	}
	if now.After(p.last) {
		p.tokens = min(p.burst, p.tokens+float64(now.Sub(p.last))/float64(p.interval))
		p.last = now
	}
	if p.tokens >= 1 {
		p.tokens--
		return 0
	}
	return max(1, time.Duration((1-p.tokens)*float64(p.interval))) // never 0, which would mean taken
}

// disconnect drops the current connection. Rooms wanted are joined again
// on the next one; rooms being left are gone, since the server forgot
// them with the connection.
func (l *loop) disconnect(cause error) {
	if l.conn == nil {
		return
	}
	lost := l.server
	l.lost = &lost
	if !l.conn.flushed {
		close(l.conn.out)
		l.conn.conn.Close()
	}
	l.conn = nil
	l.tick.Stop()
	l.tickC = nil
	l.probeBy = time.Time{}
	l.identifying = false
	l.failModerations(cause)
	l.failSearches(cause)
	// Queued frames belonged to this connection: the next one sends JOIN
	// for every wanted room and the outbox after each JOINED.
	clear(l.sendq)
	l.sendq = l.sendq[:0]
	l.inflight = 0
	if l.paceT != nil {
		l.paceT.Stop()
		l.paceT, l.paceC = nil, nil
	}
	if l.fileT != nil {
		l.fileT.Stop()
		l.fileT, l.fileC = nil, nil
	}
	for key, r := range l.rooms {
		if !r.wanted() {
			unsent := l.forgetRoom(key)
			l.c.events.push(Left{Room: key, Unsent: unsent})
			continue
		}
		r.state, r.rejoin, r.leaveOnJoined, r.readQueued = roomWanted, false, false, false
		r.refused = 0 // the messages not placed are sent again, and answered again
	}
}

// wantsRooms reports whether any room is wanted.
func (l *loop) wantsRooms() bool {
	for _, r := range l.rooms {
		if r.wanted() {
			return true
		}
	}
	return false
}

// parked reports whether the client is idle: no connection, none being
// dialled and none scheduled (after the server's idle timeout).
func (l *loop) parked() bool {
	return l.conn == nil && l.retry == nil && !l.dialing && !l.stopped
}

// retryAfter is how long to stay away after rate-limited: what the server
// announced, or 5 seconds from a server that announced nothing.
func (l *loop) retryAfter() time.Duration {
	if l.welcome != nil && l.welcome.Limits.RetryAfterMs > 0 {
		return millis(l.welcome.Limits.RetryAfterMs)
	}
	return 5 * time.Second
}

// connectionLost schedules a reconnect, or stops for errors that a retry
// cannot fix.
func (l *loop) connectionLost(err error) {
	l.disconnect(err)
	var perr *protocol.Error
	var cerr *CertificateError
	idle := errors.As(err, &perr) && perr.Code == protocol.CodeTimeout && perr.Closing() && !perr.Reconnect()
	if idle && !l.wantsRooms() {
		// The server's idle timeout: a connection in no room for too long
		// is closed, without a reconnect flag. That is no reason to stop,
		// nor to come straight back: the client parks, and the next Join
		// (or Nudge) dials again.
		l.c.cfg.Logger.Debug("connection closed while idle", "err", err)
		l.setState(Reconnecting, err, 0)
		return
	}
	// (A timeout that crossed a Join: reconnect with backoff, below.)
	if !idle && (errors.As(err, &perr) && perr.Closing() && !perr.Reconnect() || errors.As(err, &cerr) || errors.Is(err, ErrWebPort)) {
		l.shutdown(err, false)
		return
	}
	d := min(l.c.cfg.MaxBackoff, l.c.cfg.MinBackoff<<min(l.attempt, 20))
	d = d/2 + rand.N(d/2+1) // jitter, so a restarted server is not hit by everyone at once
	if errors.As(err, &perr) && perr.Code == protocol.CodeRateLimited {
		d = max(d, l.retryAfter())
	}
	l.attempt++
	l.retry = time.NewTimer(d)
	l.retryC = l.retry.C
	l.c.cfg.Logger.Debug("connection lost", "err", err, "retry_in", d)
	l.setState(Reconnecting, err, d)
}

// shutdown stops the loop. With bye it says BYE first: queued frames are
// dropped (Close abandons what is not acknowledged), and BYE waits for a
// token, at most a second, since the server counts it too.
func (l *loop) shutdown(reason error, bye bool) {
	if l.stopped {
		return
	}
	if bye && l.conn != nil {
		if wait := l.pace.take(time.Now()); wait > 0 {
			time.Sleep(min(wait, time.Second))
		}
		l.writeNow(protocol.Encode(&protocol.Bye{}))
		close(l.conn.out) // the writer sends what is queued and BYE, then closes
		l.conn.flushed = true
		select {
		case <-l.conn.dead:
		case <-time.After(2 * time.Second):
			l.conn.conn.Close()
		}
	}
	l.disconnect(ErrClosed)
	if l.cancelDial != nil {
		l.cancelDial()
	}
	if l.retry != nil {
		l.retry.Stop()
	}
	l.stopped = true
	l.c.state.Store(int32(Closed))
	l.c.events.push(StateChanged{State: Closed, Err: reason})
	l.c.events.close()
}

// healthyAfter is how long a connection must stay up to reset the
// backoff, when its rooms have not all been joined.
const healthyAfter = 5 * time.Second

// healthy resets the backoff once the connection has proved itself: every
// wanted room joined, or up for healthyAfter.
func (l *loop) healthy(now time.Time) {
	if l.conn == nil || l.attempt == 0 {
		return
	}
	if now.Sub(l.connectedAt) < healthyAfter {
		for _, r := range l.rooms {
			if r.state != roomJoined && r.wanted() {
				return
			}
		}
		if len(l.rooms) == 0 {
			return // nothing proved yet
		}
	}
	l.attempt = 0
}

func (l *loop) keepalive(now time.Time) {
	if l.conn == nil {
		return
	}
	l.healthy(now)
	idle := now.Sub(l.lastRecv)
	// Dead only once a PING of ours has gone unanswered: a tick that came
	// a little late may find 1.5 × ping of silence before any was sent.
	asked := l.pingedAt.After(l.lastRecv)
	switch {
	case idle >= l.conn.ping*3/2 && asked:
		l.connectionLost(fmt.Errorf("no data from the server for %v", idle.Round(time.Second)))
	case !l.probeBy.IsZero() && now.After(l.probeBy):
		l.connectionLost(errors.New("the server did not answer a ping"))
	case idle >= l.conn.ping:
		l.enqueueFirst(&protocol.Ping{Nonce: uint64(now.UnixNano())})
		l.pingedAt = now
	}
}

func (l *loop) nudge() {
	switch {
	case l.parked():
		l.dial()
	case l.retry != nil:
		l.retry.Stop()
		l.retry, l.retryC = nil, nil
		l.dial()
	case l.conn != nil && l.probeBy.IsZero():
		l.probeBy = time.Now().Add(5 * time.Second)
		l.enqueueFirst(&protocol.Ping{Nonce: uint64(time.Now().UnixNano())})
		// Check again soon after the deadline, whatever the ping interval.
		time.AfterFunc(5100*time.Millisecond, func() {
			select {
			case l.c.cmds <- func(l *loop) { l.keepalive(time.Now()) }:
			case <-l.c.done:
			}
		})
	}
}

// sendJoin sends JOIN for r on the current connection, resuming after the
// last message seen (and its epoch) if r was joined before.
func (l *loop) sendJoin(r *room) {
	r.state, r.rejoin, r.leaveOnJoined = roomJoining, false, false
	j := &protocol.Join{Room: r.key, Name: l.c.cfg.Name, Key: l.c.cfg.Key, Secret: l.c.cfg.Secret, Invite: r.invite}
	if r.everJoined {
		j.Resume, j.After, j.Epoch = true, r.lastSeen, r.epoch
	}
	l.enqueue(j)
}

func (l *loop) join(key, invite string) {
	r := l.rooms[key]
	if l.welcome != nil && l.welcome.Flags&protocol.WelcomeModeration == 0 {
		invite = "" // a server of before moderation: no invite-only rooms
	}
	switch {
	case r == nil:
		r = &room{key: key, invite: invite}
		if p, ok := l.removed[key]; ok {
			delete(l.removed, key)
			r.everJoined, r.lastSeen, r.epoch, r.read = true, p.lastSeen, p.epoch, p.read
		}
		l.rooms[key] = r
		if l.conn != nil && !l.refuseLong(key) {
			l.sendJoin(r)
		}
	case r.state == roomLeaving:
		r.rejoin = true // JOIN once LEFT has arrived
	case r.state == roomJoining:
		r.leaveOnJoined = false
	}
	if l.parked() {
		l.dial()
	}
}

func (l *loop) leave(key string) error {
	r := l.rooms[key]
	if r == nil || !r.wanted() {
		return ErrNotInRoom
	}
	switch r.state {
	case roomWanted:
		unsent := l.forgetRoom(key)
		l.c.events.push(Left{Room: key, Unsent: unsent})
	case roomJoining:
		r.leaveOnJoined = true
	case roomJoined:
		r.state = roomLeaving
		l.enqueue(&protocol.Leave{Room: key})
	case roomLeaving:
		r.rejoin = false
	}
	return nil
}

// forgetRoom drops a room and the messages queued for it, returning their ids.
func (l *loop) forgetRoom(key string) []string {
	delete(l.rooms, key)
	var unsent []string
	kept := l.outbox[:0]
	for _, o := range l.outbox {
		if o.room == key {
			l.unwire(o)
			unsent = append(unsent, o.id)
		} else {
			kept = append(kept, o)
		}
	}
	clear(l.outbox[len(kept):])
	l.outbox = kept
	// SENDs held back for the room must not follow: the server would
	// take a SEND for a room we are not in as a protocol error.
	l.sendq = slices.DeleteFunc(l.sendq, func(q queued) bool {
		return q.send != nil && q.send.room == key || q.read != nil && q.read.key == key
	})
	l.checkDrained()
	l.startUploads()
	l.pump()
	return unsent
}

// queue puts a message or change in the outbox, and on the wire if the
// room is joined.
func (l *loop) queue(o *outgoing) error {
	r := l.rooms[o.room]
	if r == nil || !r.wanted() {
		return ErrNotInRoom
	}
	if o.reply != 0 && l.unsupported() {
		o.reply = 0 // an older server: a plain message
	}
	if o.change == nil {
		r.typingSent = time.Time{} // the message ends the typing the others see
	}
	l.outbox = append(l.outbox, o)
	if r.state == roomJoined {
		l.writeSend(o)
	}
	return nil
}

func (l *loop) writeSend(o *outgoing) {
	if l.conn == nil {
		return
	}
	if o.up != nil && o.up.fileID == "" {
		l.startUploads() // the SEND follows the upload
		return
	}
	l.sendq = append(l.sendq, queued{frame: o.frame(), send: o})
	l.pump()
}

// unwire notes that o is off the outbox: if it was on the wire, a SEND
// more may go.
func (l *loop) unwire(o *outgoing) {
	if l.conn != nil && o.sentOn == l.conn.gen && l.inflight > 0 {
		l.inflight--
		o.sentOn = 0
	}
}

// dropOversized removes queued messages the new server's limits refuse,
// which would otherwise end every connection.
func (l *loop) dropOversized() {
	limit := int(l.welcome.MaxText)
	kept := l.outbox[:0]
	dropped := map[string][]string{}
	for _, o := range l.outbox {
		if len(o.text) > limit {
			dropped[o.room] = append(dropped[o.room], o.id)
		} else {
			kept = append(kept, o)
		}
	}
	clear(l.outbox[len(kept):])
	l.outbox = kept
	for room, ids := range dropped {
		l.c.events.push(RoomError{Room: room, Unsent: ids, Stays: true, Err: protocol.NewError(protocol.CodeTooLong, room,
			fmt.Sprintf("the server accepts messages up to %d bytes", limit))})
	}
	l.checkDrained()
}

func (l *loop) drained() chan struct{} {
	ch := make(chan struct{})
	l.drainWaiters = append(l.drainWaiters, ch)
	l.checkDrained()
	return ch
}

func (l *loop) checkDrained() {
	if len(l.outbox) > 0 {
		return
	}
	for _, ch := range l.drainWaiters {
		close(ch)
	}
	l.drainWaiters = nil
}

func (l *loop) onIncoming(in incoming) {
	if in.err != nil {
		l.connectionLost(in.err)
		return
	}
	l.lastRecv = time.Now()
	l.probeBy = time.Time{}
	switch m := in.msg.(type) {
	case *protocol.Joined:
		l.onJoined(m)
	case *protocol.Msg:
		r := l.rooms[m.Room]
		if r == nil || r.state != roomJoined || m.Seq <= r.lastSeen {
			return // not ours, on its way out, or seen already
		}
		r.lastSeen = m.Seq
		l.c.events.push(l.message(m, m.Seq <= r.head))
	case *protocol.Ack:
		for i, o := range l.outbox {
			if o.id == m.ID && o.room == m.Room {
				if r := l.rooms[m.Room]; r != nil && r.refused > 0 {
					// Those sent before it without an ACK were refused.
					l.placeRefusals(r, o)
					i = slices.Index(l.outbox, o)
				}
				l.unwire(o)
				l.outbox = append(l.outbox[:i], l.outbox[i+1:]...)
				l.c.events.push(Acked{Room: m.Room, ID: m.ID, Seq: m.Seq, Time: protocol.FromMillis(m.Time)})
				if r := l.rooms[m.Room]; r != nil && r.refused > 0 {
					l.placeRefusals(r, nil) // the ACK a refusal waited for came
				}
				l.checkDrained()
				l.pump()
				break
			}
		}
	case *protocol.Presence:
		r := l.rooms[m.Room]
		if r == nil || r.state != roomJoined {
			return
		}
		for _, ch := range m.Changes {
			switch ch.Kind {
			case protocol.PresenceJoined:
				r.members[protocol.Key(ch.Name)] = ch.Name
			case protocol.PresenceLeft:
				delete(r.members, protocol.Key(ch.Name))
			}
		}
		l.c.events.push(Presence{Room: m.Room, Count: int(m.Count), Changes: m.Changes})
	case *protocol.Left:
		l.onLeft(m)
	case *protocol.Ping:
		l.writeNow(protocol.Encode(&protocol.Pong{Nonce: m.Nonce}))
	case *protocol.Pong:
	case *protocol.Error:
		l.onError(m)
	case *protocol.Identified:
		l.onIdentified(m)
	case *protocol.Notice:
		l.c.events.push(Notice{Kind: m.Kind, Message: l.message(&m.Msg, false)})
	case *protocol.Marker:
		l.onMarker(m)
	case *protocol.Page:
		l.onPage(m)
	case *protocol.Rooms:
		l.onRooms(m)
	case *protocol.Moderated:
		l.onModerated(m)
	case *protocol.ModEvent:
		l.onModEvent(m)
	case *protocol.Update:
		l.onUpdate(m)
	case *protocol.IsTyping:
		l.onIsTyping(m)
	case *protocol.Results:
		l.onResults(m)
	case *protocol.Uploaded:
		l.onUploaded(m)
	case *protocol.Part:
		l.onPart(m)
	default:
		l.connectionLost(fmt.Errorf("the server sent %v, which only clients send", m.Type()))
	}
}

func (l *loop) onJoined(j *protocol.Joined) {
	r := l.rooms[j.Room]
	if r == nil || r.state != roomJoining {
		return // the state machine sends one JOIN per room and connection
	}
	if r.leaveOnJoined {
		// Left while the JOIN was on its way: leave at once, silently,
		// after the messages sent meanwhile, which the server
		// acknowledges before LEFT.
		r.state, r.leaveOnJoined = roomLeaving, false
		l.writeOutbox(j.Room)
		l.enqueue(&protocol.Leave{Room: j.Room})
		return
	}
	resumed := r.everJoined
	// The history the client saw is gone when the server's epoch differs
	// (reset, or restored from a backup), or, from a server without
	// epochs, when the room's head is below what the client saw.
	reset := resumed && (r.epoch != 0 && j.Epoch != 0 && j.Epoch != r.epoch || j.Head < r.lastSeen)
	if !resumed || reset {
		// Start where the server's replay starts.
		r.lastSeen = j.After
	}
	if reset {
		// Marks and pages asked for belong to the history that is gone;
		// the app starts over with this one.
		r.read, r.mark, r.history = 0, 0, nil
	}
	var removed uint64
	if resumed && !reset && j.After > r.lastSeen {
		// The server's retention removed what we had not seen up to
		// After (protocol: JOINED raises a resume point below the
		// oldest message kept); the history follows from there.
		removed, r.lastSeen = j.After, j.After
	}
	r.read = max(r.read, j.Read)
	r.everJoined, r.head, r.epoch, r.state = true, j.Head, j.Epoch, roomJoined
	r.invite, r.topic, r.modes = "", j.Topic, j.Modes
	before, knewAll := r.members, r.complete
	r.members = make(map[string]string, len(j.Members))
	for _, n := range j.Members {
		r.members[protocol.Key(n)] = n
	}
	r.complete = uint64(len(j.Members)) == j.Count
	l.c.events.push(Joined{Room: j.Room, Name: j.Name, Members: j.Members, Count: int(j.Count), Resumed: resumed, Reset: reset,
		Read: j.Read, Mentions: int(min(j.Mentions, 1<<31-1)), Head: j.Head, Removed: removed, Topic: j.Topic,
		InviteOnly: j.Modes&protocol.ModeInviteOnly != 0, Operator: j.Modes&protocol.ModeOperator != 0, Muted: j.Modes&protocol.ModeMuted != 0,
		NoTyping: j.Modes&protocol.ModeNoTyping != 0})
	l.healthy(time.Now())
	if resumed && knewAll && r.complete {
		if changes := memberChanges(before, r.members); len(changes) > 0 {
			l.c.events.push(Presence{Room: j.Room, Count: int(j.Count), Changes: changes})
		}
	}
	if reset {
		l.dropTargets(j.Room)
	}
	l.writeOutbox(j.Room)
	if l.inbox() {
		r.mark = min(r.mark, max(r.head, r.lastSeen))
		l.queueRead(r)
		for i := range r.history {
			r.history[i].Full, r.history[i].Files = l.messages(), l.files()
			l.enqueue(&r.history[i])
		}
	}
	l.sendFetches()
}

// dropTargets forgets what the queued entries of room point at after the
// room's history was reset: a seq of the old history names another
// message (or none) in the new one, so a queued change would edit,
// delete or react to the wrong message. The changes are given up (a
// RoomError with Stays lists them); the messages go, as plain messages
// without their reply target.
func (l *loop) dropTargets(room string) {
	var dropped []string
	l.outbox = slices.DeleteFunc(l.outbox, func(o *outgoing) bool {
		if o.room != room {
			return false
		}
		o.reply = 0
		if o.change != nil {
			l.unwire(o)
			dropped = append(dropped, o.id)
			return true
		}
		return false
	})
	if len(dropped) > 0 {
		l.c.events.push(RoomError{Room: room, Unsent: dropped, Stays: true, Err: protocol.NewError(protocol.CodeNotFound, room,
			"the room's history was reset: the messages these changes were for are gone")})
	}
	l.checkDrained()
}

// writeOutbox sends the queued messages of room.
func (l *loop) writeOutbox(room string) {
	for _, o := range l.outbox {
		if o.room == room {
			l.writeSend(o)
		}
	}
}

// memberChanges is the presence that turns the member set before into
// after: who left, then who joined, each sorted by name.
func memberChanges(before, after map[string]string) []protocol.PresenceChange {
	var left, joined []string
	for k, n := range before {
		if _, ok := after[k]; !ok {
			left = append(left, n)
		}
	}
	for k, n := range after {
		if _, ok := before[k]; !ok {
			joined = append(joined, n)
		}
	}
	slices.Sort(left)
	slices.Sort(joined)
	var changes []protocol.PresenceChange
	for _, n := range left {
		changes = append(changes, protocol.PresenceChange{Kind: protocol.PresenceLeft, Name: n})
	}
	for _, n := range joined {
		changes = append(changes, protocol.PresenceChange{Kind: protocol.PresenceJoined, Name: n})
	}
	return changes
}

func (l *loop) onLeft(m *protocol.Left) {
	r := l.rooms[m.Room]
	if r == nil || r.state != roomLeaving {
		return
	}
	if r.rejoin {
		// Joined again while leaving: the server has forgotten us now, so
		// the JOIN is accepted; it resumes where the room was left.
		l.sendJoin(r)
		return
	}
	unsent := l.forgetRoom(m.Room)
	l.c.events.push(Left{Room: m.Room, Unsent: unsent})
}

func (l *loop) onError(e *protocol.Error) {
	if e.Closing() {
		l.connectionLost(e)
		return
	}
	if l.fetchRefused(e) || l.settle(e) || l.searchRefused(e) || l.moderationRefused(e) {
		return
	}
	if e.Code == protocol.CodeMuted {
		l.onMuted(e)
		return
	}
	if l.identifying && e.Room == "" {
		// Errors come in the order of the frames they answer: this one
		// refuses IDENTIFY. The rooms carry on without it.
		l.identifying = false
		l.c.events.push(IdentityRefused{Err: e})
		l.sendFetches()
		return
	}
	r := l.rooms[e.Room]
	if r != nil && r.state == roomJoined && e.Code == protocol.CodeForbidden {
		// Not about the join, which succeeded: a READ refused, since
		// the server keeps no marker for the room (a join without a
		// name key). The room stays; its marks are given up.
		r.mark = r.read
		l.c.events.push(RoomError{Room: e.Room, Err: e, Stays: true})
		return
	}
	// A refused join or a lost room: stop trying that room.
	var unsent []string
	if r != nil && r.everJoined && (e.Code == protocol.CodeKicked || e.Code == protocol.CodeBanned) {
		if l.removed == nil {
			l.removed = map[string]resumePoint{}
		}
		for k := range l.removed {
			if len(l.removed) < maxRemoved {
				break
			}
			delete(l.removed, k)
		}
		l.removed[e.Room] = resumePoint{r.lastSeen, r.epoch, r.read}
	}
	if e.Room != "" && r != nil {
		unsent = l.forgetRoom(e.Room)
	}
	l.c.events.push(RoomError{Room: e.Room, Err: e, Unsent: unsent})
	if r != nil && !r.wanted() {
		l.c.events.push(Left{Room: e.Room}) // it was being left: that is done too
	}
}
