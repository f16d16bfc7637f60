package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"chat/protocol"
)

// Moderation (protocol README, MODERATE): server operators (Oper) and the
// operators of a room act on its members and messages with Moderate; every
// connection in the room hears of it as a ModEvent. The kicked and the
// banned lose the room (a RoomError with code kicked or banned; they may
// Join again, and a banned name is refused until the ban ends), a muted
// name's messages are refused (a RoomError with code muted that keeps the
// room and gives the message up), and a deleted message arrives with
// Deleted set and no text.

// Moderation is a request of Moderate. Which fields count depends on the
// action (protocol.ModAction): Target for op, deop, kick, ban,
// ban-address, unban (a name or an address), mute and unmute; Seq for
// delete; For for ban, ban-address and mute (0: for good) and invite (how
// long the code is valid; 0: the server's default); Text for kick and ban
// (the reason) and topic (the new topic; empty clears it).
type Moderation struct {
	Action protocol.ModAction
	Target string
	Seq    uint64
	For    time.Duration
	Text   string
}

// Moderated is the server's answer to a Moderate that succeeded.
type Moderated struct {
	Room   string // canonical room
	Action protocol.ModAction
	Target string // canonical where a name
	// Invite is the invite code, for the invite action: a name joins the
	// invite-only room with it (JoinOptions.Invite).
	Invite string
}

// ModEvent reports what an operator did in a joined room; every member
// hears of it, its target included (before a kick or ban removes it).
type ModEvent struct {
	Room   string
	Action protocol.ModAction
	Actor  string // the operator's name in the room, or "operator" for a server operator outside it
	Target string // the name acted on (never an address); empty where none
	Seq    uint64 // delete: the message deleted, which now has no text
	// Until is when a timed ban or mute ends; zero when for good or not
	// applicable.
	Until time.Time
	Text  string // the reason of a kick or ban, the topic of a topic
	// Self: Target is our name.
	Self bool
}

// OperRefused reports that the server no longer takes the operator token
// Oper was given: on a new connection the client asks again with it (an
// operator is one per connection), and the server refused (the token
// changed). The client forgets the token.
type OperRefused struct {
	Err error
}

func (ModEvent) isEvent()    {}
func (OperRefused) isEvent() {}

// JoinOptions are the options of JoinWith.
type JoinOptions struct {
	// Invite is an invite code of an invite-only room, from an operator's
	// invite (Moderated.Invite). The client sends it until the room is
	// joined; a name that joined with a valid code stays allowed.
	Invite string
}

// ErrConnectionLost: the connection was lost before the server answered
// a Moderate, which may or may not have been done. The client does not
// send it again: see the room's ModEvents, or ask again.
var ErrConnectionLost = errors.New("the connection was lost before the server answered; the action may or may not have been done")

// ErrNoModeration: the server is older than this client and has no
// moderation.
var ErrNoModeration = errors.New("the server does not support moderation (it is older than this client)")

// JoinWith is Join with options: an invite code for an invite-only room.
func (c *Client) JoinWith(room string, opts JoinOptions) error {
	key, err := c.RoomKey(room)
	if err != nil {
		return err
	}
	return c.do(func(l *loop) {
		if r := l.rooms[key]; r != nil && !r.everJoined && r.state != roomJoined {
			r.invite = opts.Invite // joined on the next JOIN
		}
		l.join(key, opts.Invite)
	})
}

// Oper makes this client a server operator with the operator token the
// server was started with: it may then moderate every room. The client
// keeps the token and becomes an operator again on every new connection
// (OperRefused says if that fails). It returns the server's refusal
// (forbidden for a wrong token) as a *protocol.Error.
func (c *Client) Oper(ctx context.Context, token string) error {
	_, err := c.moderate(ctx, "", protocol.Moderate{Action: protocol.ModOper, Text: token})
	return err
}

// Moderate asks for a moderation action in room, a room joined on the
// current connection, and waits for the server's answer or the end of
// ctx. A server operator (Oper) may act in rooms it has not joined. The
// server's refusal comes back as a *protocol.Error: forbidden
// (not an operator of the room, or the target is a server operator),
// not-found (no such member, message or ban), and so on. It fails with
// ErrNotInRoom for a room not joined, ErrNotConnected while the room is
// not joined on the current connection, and ErrConnectionLost when the
// connection drops before the answer. Use Oper for the oper action.
func (c *Client) Moderate(ctx context.Context, room string, m Moderation) (Moderated, error) {
	switch m.Action {
	case protocol.ModOper:
		return Moderated{}, errors.New("use Oper to become a server operator")
	case 0:
		return Moderated{}, errors.New("no moderation action given")
	}
	if m.For < 0 {
		return Moderated{}, fmt.Errorf("the duration %v is negative", m.For)
	}
	secs := uint64((m.For + time.Second - 1) / time.Second) // a part of a second counts as one: 0 would mean for good
	key, err := c.RoomKey(room)
	if err != nil {
		return Moderated{}, err
	}
	return c.moderate(ctx, key, protocol.Moderate{Action: m.Action, Target: m.Target, Seq: m.Seq, Seconds: secs, Text: m.Text})
}

type modReply struct {
	ans Moderated
	err error
}

// modRequest is a MODERATE on the wire, waiting for its MODERATED or
// ERROR; the server answers them in order.
type modRequest struct {
	msg   protocol.Moderate
	order uint64        // when it was queued, among IDENTIFY and the other MODERATEs
	reply chan modReply // buffered: the loop never waits for a caller gone
	auto  bool          // the client's own oper on a new connection
}

func (c *Client) moderate(ctx context.Context, key string, m protocol.Moderate) (Moderated, error) {
	m.Room = key
	req := &modRequest{msg: m, reply: make(chan modReply, 1)}
	var err error
	if e := c.do(func(l *loop) { err = l.moderate(req) }); e != nil {
		return Moderated{}, e
	}
	if err != nil {
		return Moderated{}, err
	}
	select {
	case r := <-req.reply:
		return r.ans, r.err
	case <-ctx.Done():
		return Moderated{}, ctx.Err()
	case <-c.done:
		return Moderated{}, ErrClosed
	}
}

func (l *loop) moderate(req *modRequest) error {
	if l.welcome != nil && l.welcome.Flags&protocol.WelcomeModeration == 0 {
		return ErrNoModeration
	}
	if req.msg.Action != protocol.ModOper && !l.oper && l.operToken == "" {
		// A room operator acts in a room joined on this connection; a
		// server operator in any room (also while the client's oper on
		// a new connection is on its way: it goes first).
		r := l.rooms[req.msg.Room]
		if r == nil || !r.wanted() {
			return ErrNotInRoom
		}
		if l.conn == nil || r.state != roomJoined {
			return ErrNotConnected
		}
	}
	if l.conn == nil {
		return ErrNotConnected
	}
	l.sendModeration(req)
	return nil
}

func (l *loop) sendModeration(req *modRequest) {
	l.requests++
	req.order = l.requests
	l.mods = append(l.mods, req)
	l.enqueue(&req.msg)
}

// reoper becomes a server operator again on a new connection, with the
// token the user gave Oper.
func (l *loop) reoper() {
	if l.operToken != "" {
		l.sendModeration(&modRequest{msg: protocol.Moderate{Action: protocol.ModOper, Text: l.operToken},
			reply: make(chan modReply, 1), auto: true})
	}
}

func (l *loop) onModerated(m *protocol.Moderated) {
	if len(l.mods) == 0 {
		return // not asked on this connection: nothing waits for it
	}
	req := l.mods[0]
	l.mods = l.mods[1:]
	if req.msg.Action == protocol.ModOper {
		l.operToken, l.oper = req.msg.Text, true
	}
	req.reply <- modReply{ans: Moderated{Room: m.Room, Action: m.Action, Target: m.Target, Invite: m.Text}}
}

// moderationRefused reports whether e answers the oldest MODERATE on the
// wire, and if so hands it to its caller. Errors come in the order of the
// frames they answer; those that end a membership (kicked, banned) or
// refuse a SEND (muted) or a JOIN (invite-only) answer no MODERATE.
func (l *loop) moderationRefused(e *protocol.Error) bool {
	if len(l.mods) == 0 {
		return false
	}
	switch e.Code {
	case protocol.CodeKicked, protocol.CodeBanned, protocol.CodeMuted, protocol.CodeInviteOnly:
		return false
	}
	req := l.mods[0]
	if e.Room != req.msg.Room {
		return false
	}
	if e.Room == "" && l.identifying && l.identifyOrder < req.order {
		return false // IDENTIFY went first: this refuses it
	}
	if len(l.searches) > 0 && l.searches[0].order < req.order && l.searches[0].msg.Room == e.Room && e.ID == "" {
		return false // a SEARCH went first: this refuses it
	}
	l.mods = l.mods[1:]
	if req.auto {
		l.operToken = ""
		l.c.events.push(OperRefused{Err: e})
	}
	req.reply <- modReply{err: e}
	return true
}

// failModerations answers the MODERATEs still waiting when the connection
// is lost.
func (l *loop) failModerations(cause error) {
	for _, req := range l.mods {
		req.reply <- modReply{err: fmt.Errorf("%w (%v)", ErrConnectionLost, cause)}
	}
	clear(l.mods)
	l.mods = l.mods[:0]
	l.oper = false // until the next connection's oper is answered
}

func (l *loop) onModEvent(m *protocol.ModEvent) {
	r := l.rooms[m.Room]
	if r == nil || r.state != roomJoined {
		return // not ours, or on its way out
	}
	self := m.Target != "" && protocol.Key(m.Target) == l.c.nameKey
	switch m.Action {
	case protocol.ModTopic:
		r.topic = m.Text
	case protocol.ModInviteOnlyOn:
		r.modes |= protocol.ModeInviteOnly
	case protocol.ModInviteOnlyOff:
		r.modes &^= protocol.ModeInviteOnly
	case protocol.ModOp:
		if self {
			r.modes |= protocol.ModeOperator
		}
	case protocol.ModDeop:
		if self {
			r.modes &^= protocol.ModeOperator
		}
	case protocol.ModMute:
		if self {
			r.modes |= protocol.ModeMuted
		}
	case protocol.ModUnmute:
		if self {
			r.modes &^= protocol.ModeMuted
		}
	}
	ev := ModEvent{Room: m.Room, Action: m.Action, Actor: m.Actor, Target: m.Target, Seq: m.Seq, Text: m.Text, Self: self}
	if m.Until != 0 {
		ev.Until = protocol.FromMillis(m.Until)
	}
	l.c.events.push(ev)
}

// Muted SENDs. The server refuses a muted name's SEND at once with
// ERROR muted, which names the room but not the message, while it
// acknowledges the SENDs it took only once they are stored: a refusal can
// overtake the ACK of an earlier message. The client works out which
// message each refusal was for from two facts: ACKs of a connection's
// messages to a room come in the order sent, and each SEND gets an ACK or
// a refusal. So when an ACK comes, the room's messages sent before it
// that have none were refused; and when the refusals not yet placed are
// as many as the room's messages on the wire without an ACK, all of those
// were refused. Those are given up (RoomError with Stays), never re-sent.

// onMuted counts a refusal of a muted SEND in the room.
func (l *loop) onMuted(e *protocol.Error) {
	r := l.rooms[e.Room]
	if r == nil {
		l.c.events.push(RoomError{Room: e.Room, Err: e, Stays: true})
		return
	}
	r.modes |= protocol.ModeMuted
	r.refused++
	r.refusal = e
	l.placeRefusals(r, nil)
}

// placeRefusals gives up the room's messages known to have been refused:
// those on the wire before acked (the message just acknowledged, if
// any), or all on the wire when the refusals count them all.
func (l *loop) placeRefusals(r *room, acked *outgoing) {
	if r.refused == 0 || l.conn == nil {
		return
	}
	var wire []*outgoing
	for _, o := range l.outbox {
		if o == acked {
			break
		}
		if o.room == r.key && o.sentOn == l.conn.gen {
			wire = append(wire, o)
		}
	}
	if acked == nil && len(wire) != r.refused {
		return // some of them are stored, and their ACKs are on the way
	}
	wire = wire[:min(len(wire), r.refused)]
	if len(wire) == 0 {
		return
	}
	r.refused -= len(wire)
	unsent := make([]string, 0, len(wire))
	for _, o := range wire {
		l.unwire(o)
		unsent = append(unsent, o.id)
	}
	l.outbox = slices.DeleteFunc(l.outbox, func(o *outgoing) bool { return slices.Contains(wire, o) })
	l.c.events.push(RoomError{Room: r.key, Err: r.refusal, Unsent: unsent, Stays: true})
	l.checkDrained()
	l.pump()
}
