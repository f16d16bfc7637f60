// Package client is the Go client library for the chat server. A Client
// keeps one connection, re-establishing it with exponential backoff and
// jitter; it re-joins its rooms resuming from the last message seen, and
// keeps an outbox of unacknowledged messages that it re-sends with their
// original ids, so nothing is lost or doubled across reconnects. Events
// (messages, presence, acks, state changes) arrive on a channel.
//
// A client is in any number of rooms at once (up to the server's
// announced limit), direct-message rooms (DirectRoom) included. On every
// connection to a server that has identities it identifies itself as a
// device of its name (Identified): it then hears of mentions and direct
// messages from any room (Notice) and of the name's read markers, which
// every device of the name shares (MarkRead, ReadMarker). History pages
// back through a room (Page); ListRooms lists the server's rooms.
//
// A service may have several servers, the nodes of a cluster, which
// share rooms, history and identities: Config.Addrs lists them, and every
// address a host name resolves to counts as one more. Each reconnect
// tries them in turn, moving on at once from one that fails, and resumes
// on whichever answers; StateChanged and Server say which it is.
//
// The client keeps to the limits the server announces in WELCOME: every
// frame the server counts (JOIN, SEND, LEAVE, PING, BYE, and IDENTIFY,
// HISTORY, READ, LIST) waits in the
// client until a token bucket with the server's burst and rate lets it go,
// so a burst of sends is spread out instead of being slowed down or cut
// off by the server. Nothing is dropped; Drain waits for all of it.
//
// Moderation (moderation.go): Oper makes the client a server operator,
// Moderate asks for an action in a room (kick, ban, mute, delete, topic,
// invite-only, invites…) and returns the server's answer or refusal;
// ModEvents tell every member what an operator did, Joined carries the
// topic and our modes, JoinWith takes an invite code. A kick or ban ends
// the room (RoomError kicked or banned; Join again resumes it), a muted
// message is given up (RoomError muted, with Stays), and a deleted
// message has Deleted set.
//
// Acting on messages (messages.go): SendReply answers an earlier
// message; Edit, Delete and React change one, through the outbox like
// Send (sent again after a reconnect, applied once; an Acked confirms, a
// refusal is a RoomError with Stays listing the change's id); every
// member hears of a change as an Updated. Typing and StopTyping tell the
// room's other members (Typing events); Search finds messages in the
// rooms we may read. These need a server with protocol.WelcomeMessages.
//
// Order: the Message events of a room come in sequence order, ours
// included, and that is the order every member sees. An app that shows
// its own message as soon as it is typed must move it to its Seq when the
// Acked arrives (see Acked).
//
//	c, err := client.New(client.Config{Addr: "localhost:7878", Name: "alice"})
//	c.Join("general")
//	c.Send("general", "hello")
//	for ev := range c.Events() { … }
package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"chat/protocol"
)

// Config describes a client. Name and a server address (Addr or Addrs)
// are required.
type Config struct {
	// Addr is the server's address: host:port or tls://host:port, or a
	// ws:// or wss:// URL. It is one address, never split at commas (a
	// URL may contain them); SplitAddrs splits a list a person typed.
	Addr string
	// Addrs are more addresses of the same service, in the same forms:
	// the nodes of a cluster, which share rooms, history and identities.
	// On every connection attempt the client tries Addr, then Addrs in
	// order (at most MaxAddrs in all), and each of them at every IP
	// address its host name resolves to (at most 16 per name): a name
	// with three A/AAAA records is three servers. It moves to the next
	// at once when one fails (cannot be dialled, fails the handshake,
	// refuses with server-restarting, unavailable or
	// too-many-connections); the backoff (MinBackoff, MaxBackoff) is
	// between rounds through the whole list. After a connection is lost
	// the next round tries the other servers first. StateChanged says
	// which server a connection goes to.
	Addrs []string
	// LookupHost resolves a server's host name into IP addresses
	// (default net.DefaultResolver.LookupHost); tests set it to give a
	// name several addresses.
	LookupHost func(ctx context.Context, host string) ([]string, error)

	Name   string // the name to appear under
	Key    string // the server's access key, if it has one
	Secret string // name key: proves the name is ours; generated when empty (save it: it is the name's ownership)
	// TLS says which certificates to trust for tls:// and wss://
	// addresses.
	TLS TLSOptions
	// Dial opens connections; when nil, TLS.Dialer() picks TCP, TLS or
	// WebSocket by the form of the address. It is given the address as
	// configured, and the IP address chosen for it in the context
	// (TargetIP).
	Dial Dialer
	// Software goes into HELLO for the server's logs (default "chat-go").
	Software string
	// MinBackoff and MaxBackoff bound the wait between reconnect attempts
	// (defaults 250 ms and 30 s); each failure doubles it, with jitter.
	MinBackoff, MaxBackoff time.Duration
	// HandshakeTimeout bounds dialing plus HELLO/WELCOME (default 10 s),
	// for each server tried, and each host name's lookup.
	HandshakeTimeout time.Duration
	// WriteTimeout bounds one write (default 10 s).
	WriteTimeout time.Duration
	Logger       *slog.Logger
}

// Errors returned by the Client's methods.
var (
	ErrClosed    = errors.New("client is closed")
	ErrNotInRoom = errors.New("not in that room: Join it first")
)

// Client is a connection to a chat server that survives disconnects.
// Its methods are safe for concurrent use.
type Client struct {
	cfg     Config
	nameKey string
	cmds    chan func(*loop)
	events  *eventQueue
	done    chan struct{}
	state   atomic.Int32
	maxText atomic.Int64
	// maxUpload is the server's -max-upload (0: no files, or not known yet).
	maxUpload atomic.Int64
	server    atomic.Pointer[[2]string] // address and remote of the connection; nil while not connected
}

// New validates cfg and starts connecting in the background.
func New(cfg Config) (*Client, error) {
	switch n := len(cfg.addresses()); {
	case n == 0:
		return nil, errors.New("client: no server address")
	case n > MaxAddrs:
		return nil, fmt.Errorf("client: %d server addresses; at most %d", n, MaxAddrs)
	}
	if err := protocol.CheckMemberName(cfg.Name); err != nil {
		return nil, fmt.Errorf("client: the name %w", err)
	}
	if cfg.Secret == "" {
		cfg.Secret = NewSecret()
	}
	if cfg.Dial == nil {
		cfg.Dial = cfg.TLS.Dialer()
	}
	if cfg.Software == "" {
		cfg.Software = "chat-go"
	}
	setDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	setDur(&cfg.MinBackoff, 250*time.Millisecond)
	setDur(&cfg.MaxBackoff, 30*time.Second)
	setDur(&cfg.HandshakeTimeout, 10*time.Second)
	setDur(&cfg.WriteTimeout, 10*time.Second)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		cfg:     cfg,
		nameKey: protocol.Key(cfg.Name),
		cmds:    make(chan func(*loop)),
		events:  newEventQueue(),
		done:    make(chan struct{}),
	}
	c.maxText.Store(protocol.DefaultMaxText)
	l := newLoop(c)
	go l.run()
	return c, nil
}

// NewSecret returns a random name secret.
func NewSecret() string {
	return hex.EncodeToString(randomBytes(16))
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails: crypto/rand panics instead of returning errors
	return b
}

// Events returns the channel of events. It is closed after the final
// StateChanged{State: Closed}. Read it steadily: events are buffered
// without limit.
func (c *Client) Events() <-chan Event { return c.events.out }

// State returns the current connection state.
func (c *Client) State() State { return State(c.state.Load()) }

// Server returns the server address of the current connection (as
// configured) and the IP address and port dialled ("" when unknown);
// both "" while not connected.
func (c *Client) Server() (addr, remote string) {
	if s := c.server.Load(); s != nil {
		return s[0], s[1]
	}
	return "", ""
}

// Name returns the client's name.
func (c *Client) Name() string { return c.cfg.Name }

// Secret returns the name secret in use (worth saving with the name).
func (c *Client) Secret() string { return c.cfg.Secret }

// do runs f on the client's loop and waits for it.
func (c *Client) do(f func(*loop)) error {
	ran := make(chan struct{})
	select {
	case c.cmds <- func(l *loop) { f(l); close(ran) }:
		<-ran
		return nil
	case <-c.done:
		return ErrClosed
	}
}

// Join asks to enter room. The outcome arrives as a Joined or RoomError
// event. While disconnected, the join happens on the next connection.
// A direct-message room (DirectRoom; any spelling or order of the two
// names) is joined under its canonical name, which the events carry; only
// the two names' owners may join it (others are refused locally, or by the
// server with forbidden).
// Joining a room that is being left (Leave called, Left not yet arrived)
// joins it again once the server has confirmed the leave, resuming where
// it was left; no Left is emitted then. Joining a room already joined or
// being joined does nothing.
func (c *Client) Join(room string) error {
	key, err := c.RoomKey(room)
	if err != nil {
		return err
	}
	return c.do(func(l *loop) { l.join(key, "") })
}

// RoomKey checks a room name as Join does and returns the name the
// client and its events use for the room: its key, and for a
// direct-message room the canonical name, whatever the spelling.
func (c *Client) RoomKey(room string) (string, error) {
	if err := protocol.CheckRoom(room); err != nil {
		return "", fmt.Errorf("the room name %w", err)
	}
	if !protocol.IsDM(room) {
		return protocol.Key(room), nil
	}
	a, b, _ := protocol.ParseDM(room)
	if c.nameKey != a && c.nameKey != b {
		return "", fmt.Errorf("%s is a direct-message room of other names than %s", room, c.cfg.Name)
	}
	return protocol.DMPrefix + a + protocol.DMPrefix + b, nil
}

// key is the key of a room given to a method, for looking it up: as
// RoomKey, without refusing anything (what is not joined is not found).
func (c *Client) key(room string) string {
	if k, err := c.RoomKey(room); err == nil {
		return k
	}
	return protocol.Key(room)
}

// Leave leaves room; a Left event confirms it. A room being left when the
// connection drops is left too (the server forgets it with the
// connection): Left is emitted then. Messages sent to the room before
// Leave go out before the LEAVE; those that cannot (queued offline, or
// unacknowledged when the connection dropped) are listed in Left.Unsent.
func (c *Client) Leave(room string) error {
	var err error
	if e := c.do(func(l *loop) { err = l.leave(c.key(room)) }); e != nil {
		return e
	}
	return err
}

// Send queues text for room and returns the message's id. The message
// goes out now if connected, otherwise after the next reconnect; an Acked
// event with this id confirms it is stored. Send fails only for a room not
// joined (or being joined), an empty or over-long text, or a closed client.
func (c *Client) Send(room, text string) (id string, err error) {
	return c.SendReply(room, text, 0)
}

// History asks for up to limit messages of a joined room older than
// before (0: the newest), limit 0 meaning the server's default (100; it
// sends at most 200); a Page event answers, with the messages oldest
// first. Page back to the start by asking before the first message's Seq
// until a Page has First set.
//
// It fails with ErrNotInRoom for a room not joined, ErrNotConnected
// while the room is not joined on the current connection (call it again
// after the next Joined), and ErrUnsupported for a server without
// scrollback. From a server with files (protocol.WelcomeFiles) the
// page's messages carry their File. A request sent when the connection drops is sent again
// after the room is re-joined, unless the re-join has Reset set (the
// pages asked for belong to a history that is gone).
func (c *Client) History(room string, before uint64, limit int) error {
	var err error
	if e := c.do(func(l *loop) { err = l.history(c.key(room), before, limit) }); e != nil {
		return e
	}
	return err
}

// MarkRead moves our read marker in room forward to seq: every message
// up to seq has been read. A ReadMarker event confirms it, on every
// device of the name. Markers only move forward: a seq at or below the
// marker (or a mark already made) is ignored. Marks are coalesced: while
// a READ waits to be sent (sending is paced), later marks replace its
// seq, so only the highest goes out. Marks made while disconnected, or
// not confirmed when the connection dropped, are sent after the room is
// joined again if still ahead of the server's marker (Joined.Read). A
// mark above the last message the client has seen in the room is
// lowered to it.
//
// The room must be joined (or being joined): ErrNotInRoom otherwise;
// ErrUnsupported for a server without read markers.
func (c *Client) MarkRead(room string, seq uint64) error {
	var err error
	if e := c.do(func(l *loop) { err = l.markRead(c.key(room), seq) }); e != nil {
		return e
	}
	return err
}

// ListRooms asks for the server's rooms whose name contains query (all
// for ""), direct-message rooms excepted; a RoomList event answers, the
// busiest rooms first. It fails with ErrNotConnected while not connected
// and ErrUnsupported for a server without a room list. A request sent
// when the connection drops is sent again on the next connection.
func (c *Client) ListRooms(query string) error {
	var err error
	if e := c.do(func(l *loop) { err = l.listRooms(query) }); e != nil {
		return e
	}
	return err
}

// DirectRoom returns the name of the direct-message room between our
// name and peer; Join it to open the conversation (the first message
// makes it appear to peer, as a Notice). The name is canonical: the same
// on both sides, whatever the spelling of the names.
func (c *Client) DirectRoom(peer string) string { return protocol.DMRoom(c.cfg.Name, peer) }

// Pending returns the ids of messages (and changes: Edit, Delete, React)
// sent but not acknowledged yet.
func (c *Client) Pending() []string {
	var ids []string
	_ = c.do(func(l *loop) {
		for _, o := range l.outbox {
			ids = append(ids, o.id)
		}
	})
	return ids
}

// Nudge checks the connection now: while waiting to reconnect it dials at
// once; while connected it pings and reconnects if nothing comes back
// within a few seconds. Apps call it when they come back to the foreground
// or the network changes.
func (c *Client) Nudge() { _ = c.do(func(l *loop) { l.nudge() }) }

// Drain waits until every sent message is acknowledged, ctx ends, or the
// client closes. Messages given up on (the Unsent of Left and RoomError)
// no longer count: Drain does not wait for them.
func (c *Client) Drain(ctx context.Context) error {
	var empty chan struct{}
	if err := c.do(func(l *loop) { empty = l.drained() }); err != nil {
		return err
	}
	select {
	case <-empty:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%d messages still unacknowledged: %w", len(c.Pending()), ctx.Err())
	case <-c.done:
		return ErrClosed
	}
}

// Close says BYE and stops. Messages not yet acknowledged are abandoned;
// call Drain first to wait for them.
func (c *Client) Close() error {
	if err := c.do(func(l *loop) { l.shutdown(nil, true) }); err != nil {
		return nil // already closed
	}
	<-c.done
	return nil
}

// Done is closed when the client has stopped.
func (c *Client) Done() <-chan struct{} { return c.done }
