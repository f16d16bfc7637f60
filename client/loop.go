package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"chat/protocol"
)

// loop owns all of a Client's state; it runs on one goroutine, so nothing
// here needs a lock.
type loop struct {
	c *Client

	rooms  map[string]*room // rooms we are in or want to be in, by key
	outbox []*outgoing      // unacknowledged messages, in send order

	conn       *connection // nil while disconnected
	gen        int         // generation of the newest connection attempt
	welcome    *protocol.Welcome
	attempt    int         // consecutive failed attempts
	retry      *time.Timer // pending reconnect, nil if none
	retryC     <-chan time.Time
	dialing    bool
	cancelDial context.CancelFunc

	dialed   chan dialResult
	incoming chan incoming
	tick     *time.Ticker
	tickC    <-chan time.Time
	lastRecv time.Time
	pingedAt time.Time // keepalive's last PING
	probeBy  time.Time // a Nudge expects a frame before this, if set

	drainWaiters []chan struct{}
	stopped      bool
}

type room struct {
	key        string
	joinedOn   int  // generation of the connection it is joined on; 0 if none
	everJoined bool // so later joins resume
	lastSeen   uint64
	head       uint64 // head at the last JOINED: seq <= head is history
	leaving    bool
}

type outgoing struct {
	room, id, text string
	sentOn         int // generation of the connection it was last written to
}

type connection struct {
	gen     int
	conn    Conn
	out     chan []byte   // frames for the writer goroutine
	dead    chan struct{} // closed when the writer stops
	ping    time.Duration
	flushed bool // out is closed and the writer is finishing; loop only
}

type dialResult struct {
	gen     int
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
		c:        c,
		rooms:    map[string]*room{},
		dialed:   make(chan dialResult, 1),
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
		}
	}
	close(l.c.done)
}

func (l *loop) setState(s State, err error, retryIn time.Duration) {
	l.c.state.Store(int32(s))
	l.c.events.push(StateChanged{State: s, Err: err, RetryIn: retryIn})
}

// dial starts a connection attempt in the background.
func (l *loop) dial() {
	l.gen++
	gen := l.gen
	ctx, cancel := context.WithTimeout(context.Background(), l.c.cfg.HandshakeTimeout)
	l.dialing, l.cancelDial = true, cancel
	cfg := l.c.cfg
	go func() {
		defer cancel()
		conn, w, err := handshake(ctx, cfg)
		select {
		case l.dialed <- dialResult{gen, conn, w, err}:
		case <-l.c.done:
			if conn != nil {
				conn.Close()
			}
		}
	}()
}

// handshake connects and exchanges HELLO and WELCOME.
func handshake(ctx context.Context, cfg Config) (Conn, *protocol.Welcome, error) {
	conn, err := cfg.Dial(ctx, cfg.Addr)
	if err != nil {
		return nil, nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() }) // unblocks the read below
	defer stop()
	hello := protocol.Encode(&protocol.Hello{Version: protocol.Version, Client: cfg.Software})
	deadline, _ := ctx.Deadline()
	if err := conn.WriteFrames([][]byte{hello}, deadline); err != nil {
		conn.Close()
		return nil, nil, err
	}
	body, err := conn.ReadFrame()
	if err != nil {
		conn.Close()
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
		l.connectionLost(r.err)
		return
	}
	l.attempt = 0
	l.welcome = r.welcome
	l.c.maxText.Store(int64(r.welcome.MaxText))
	ping := time.Duration(r.welcome.PingMs) * time.Millisecond
	if ping <= 0 {
		ping = 30 * time.Second
	}
	l.conn = &connection{gen: r.gen, conn: r.conn, out: make(chan []byte, 1024), dead: make(chan struct{}), ping: ping}
	go l.conn.write(l.c.cfg.WriteTimeout)
	go l.read(l.conn)
	l.lastRecv = time.Now()
	l.tick = time.NewTicker(ping / 2)
	l.tickC = l.tick.C
	l.setState(Connected, nil, 0)
	l.dropOversized()
	for _, r := range l.rooms {
		if !r.leaving {
			l.sendJoin(r)
		}
	}
}

// read forwards frames of one connection to the loop.
func (l *loop) read(conn *connection) {
	for {
		var in incoming
		body, err := conn.conn.ReadFrame()
		if err == nil {
			in.msg, err = protocol.Decode(body)
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
	}
}

func (l *loop) writeFrame(m protocol.Message) {
	if l.conn == nil {
		return
	}
	select {
	case l.conn.out <- protocol.Encode(m):
	case <-l.conn.dead: // the reader reports the failure
	}
}

// disconnect drops the current connection.
func (l *loop) disconnect() {
	if l.conn == nil {
		return
	}
	if !l.conn.flushed {
		close(l.conn.out)
		l.conn.conn.Close()
	}
	l.conn = nil
	l.tick.Stop()
	l.tickC = nil
	l.probeBy = time.Time{}
	for _, r := range l.rooms {
		r.joinedOn = 0
	}
}

// connectionLost schedules a reconnect, or stops for errors that a retry
// cannot fix.
func (l *loop) connectionLost(err error) {
	l.disconnect()
	var perr *protocol.Error
	var cerr *CertificateError
	if errors.As(err, &perr) && perr.Closing() && !perr.Reconnect() || errors.As(err, &cerr) {
		l.shutdown(err, false)
		return
	}
	d := min(l.c.cfg.MaxBackoff, l.c.cfg.MinBackoff<<min(l.attempt, 20))
	d = d/2 + rand.N(d/2+1) // jitter, so a restarted server is not hit by everyone at once
	if errors.As(err, &perr) && perr.Code == protocol.CodeRateLimited {
		d = max(d, 5*time.Second)
	}
	l.attempt++
	l.retry = time.NewTimer(d)
	l.retryC = l.retry.C
	l.c.cfg.Logger.Debug("connection lost", "err", err, "retry_in", d)
	l.setState(Reconnecting, err, d)
}

func (l *loop) shutdown(reason error, bye bool) {
	if l.stopped {
		return
	}
	if bye && l.conn != nil {
		l.writeFrame(&protocol.Bye{})
		close(l.conn.out) // the writer sends what is queued and BYE, then closes
		l.conn.flushed = true
		select {
		case <-l.conn.dead:
		case <-time.After(2 * time.Second):
			l.conn.conn.Close()
		}
	}
	l.disconnect()
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

func (l *loop) keepalive(now time.Time) {
	if l.conn == nil {
		return
	}
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
		l.writeFrame(&protocol.Ping{Nonce: uint64(now.UnixNano())})
		l.pingedAt = now
	}
}

func (l *loop) nudge() {
	switch {
	case l.retry != nil:
		l.retry.Stop()
		l.retry, l.retryC = nil, nil
		l.dial()
	case l.conn != nil && l.probeBy.IsZero():
		l.probeBy = time.Now().Add(5 * time.Second)
		l.writeFrame(&protocol.Ping{Nonce: uint64(time.Now().UnixNano())})
		// Check again soon after the deadline, whatever the ping interval.
		time.AfterFunc(5100*time.Millisecond, func() {
			select {
			case l.c.cmds <- func(l *loop) { l.keepalive(time.Now()) }:
			case <-l.c.done:
			}
		})
	}
}

func (l *loop) sendJoin(r *room) {
	l.writeFrame(&protocol.Join{Room: r.key, Name: l.c.cfg.Name, Resume: r.everJoined, After: r.lastSeen,
		Key: l.c.cfg.Key, Secret: l.c.cfg.Secret})
}

func (l *loop) join(key string) {
	if r := l.rooms[key]; r != nil {
		r.leaving = false
		return
	}
	r := &room{key: key}
	l.rooms[key] = r
	l.sendJoin(r)
}

func (l *loop) leave(key string) error {
	r := l.rooms[key]
	if r == nil || r.leaving {
		return ErrNotInRoom
	}
	if r.joinedOn != 0 {
		r.leaving = true
		l.writeFrame(&protocol.Leave{Room: key})
		return nil
	}
	l.forgetRoom(key)
	l.c.events.push(Left{Room: key})
	return nil
}

// forgetRoom drops a room and the messages queued for it, returning their ids.
func (l *loop) forgetRoom(key string) []string {
	delete(l.rooms, key)
	var unsent []string
	kept := l.outbox[:0]
	for _, o := range l.outbox {
		if o.room == key {
			unsent = append(unsent, o.id)
		} else {
			kept = append(kept, o)
		}
	}
	clear(l.outbox[len(kept):])
	l.outbox = kept
	l.checkDrained()
	return unsent
}

func (l *loop) send(key, id, text string) error {
	r := l.rooms[key]
	if r == nil || r.leaving {
		return ErrNotInRoom
	}
	o := &outgoing{room: key, id: id, text: text}
	l.outbox = append(l.outbox, o)
	if r.joinedOn != 0 && l.conn != nil {
		l.writeSend(o)
	}
	return nil
}

func (l *loop) writeSend(o *outgoing) {
	o.sentOn = l.conn.gen
	l.writeFrame(&protocol.Send{Room: o.room, ID: o.id, Text: o.text})
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
		l.c.events.push(RoomError{Room: room, Unsent: ids, Err: protocol.NewError(protocol.CodeTooLong, room,
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
		if r == nil || r.joinedOn == 0 || m.Seq <= r.lastSeen {
			return // not ours, or seen already
		}
		r.lastSeen = m.Seq
		l.c.events.push(Message{Room: m.Room, Seq: m.Seq, Time: protocol.FromMillis(m.Time), Sender: m.Sender,
			ID: m.ID, Text: m.Text, Own: protocol.Key(m.Sender) == l.c.nameKey, History: m.Seq <= r.head})
	case *protocol.Ack:
		for i, o := range l.outbox {
			if o.id == m.ID && o.room == m.Room {
				l.outbox = append(l.outbox[:i], l.outbox[i+1:]...)
				l.c.events.push(Acked{Room: m.Room, ID: m.ID, Seq: m.Seq, Time: protocol.FromMillis(m.Time)})
				l.checkDrained()
				break
			}
		}
	case *protocol.Presence:
		l.c.events.push(Presence{Room: m.Room, Count: int(m.Count), Changes: m.Changes})
	case *protocol.Left:
		if r := l.rooms[m.Room]; r != nil && r.leaving {
			l.forgetRoom(m.Room)
			l.c.events.push(Left{Room: m.Room})
		}
	case *protocol.Ping:
		l.writeFrame(&protocol.Pong{Nonce: m.Nonce})
	case *protocol.Pong:
	case *protocol.Error:
		l.onError(m)
	default:
		l.connectionLost(fmt.Errorf("the server sent %v, which only clients send", m.Type()))
	}
}

func (l *loop) onJoined(j *protocol.Joined) {
	r := l.rooms[j.Room]
	if r == nil || r.leaving {
		return
	}
	resumed := r.everJoined
	if !resumed || j.Head < r.lastSeen {
		// First join, or the server's history was reset: start where the
		// server's replay starts.
		r.lastSeen = j.After
	}
	r.everJoined, r.head, r.joinedOn = true, j.Head, l.conn.gen
	l.c.events.push(Joined{Room: j.Room, Name: j.Name, Members: j.Members, Count: int(j.Count), Resumed: resumed})
	for _, o := range l.outbox {
		if o.room == j.Room {
			l.writeSend(o)
		}
	}
}

func (l *loop) onError(e *protocol.Error) {
	if e.Closing() {
		l.connectionLost(e)
		return
	}
	// A refused join or a lost room: stop trying that room.
	var unsent []string
	if e.Room != "" && l.rooms[e.Room] != nil {
		unsent = l.forgetRoom(e.Room)
	}
	l.c.events.push(RoomError{Room: e.Room, Err: e, Unsent: unsent})
}
