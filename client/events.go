package client

import (
	"fmt"
	"sync"
	"time"

	"chat/protocol"
)

// State is the connection state of a Client.
type State int

// States, in the order a client usually goes through them.
const (
	Connecting State = iota // first connection attempt
	Connected               // handshake done; rooms are being joined or are joined
	// Reconnecting: connection lost; retrying with backoff after
	// RetryIn. RetryIn 0 means idle instead: the server closed a
	// connection that was in no room (its idle timeout, Err has code
	// timeout), and the client dials again on the next Join or Nudge.
	Reconnecting
	Closed // stopped for good: Close was called or the server refused terminally
)

func (s State) String() string {
	switch s {
	case Connecting:
		return "connecting"
	case Connected:
		return "connected"
	case Reconnecting:
		return "reconnecting"
	case Closed:
		return "closed"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Event is something that happened; see the types below.
type Event interface{ isEvent() }

// StateChanged reports a new connection state. While the state is not
// Connected the client hears of nobody joining or leaving: the member
// counts of Joined and Presence are unknown then, and apps should show
// them as such (not the last count) until the next Joined.
type StateChanged struct {
	State State
	// Err is why: the lost connection's error for Reconnecting, the reason
	// for Closed (nil after Close).
	Err error
	// RetryIn is the wait before the next attempt, for Reconnecting; 0
	// when idle (no attempt until the next Join or Nudge).
	RetryIn time.Duration
	// Addr is the server address connected to, for Connected: one of
	// Config.Addr and Config.Addrs, as configured. Remote is the IP
	// address and port dialled ("" when the dialer resolved the name
	// itself, as in the browser): which of a name's servers it is.
	Addr, Remote string
}

// Joined reports that a room was joined, or re-joined after a reconnect.
//
// Members is a snapshot for a member list, not news: do not derive "bob
// joined" notices from it (nor from the difference between two Joined
// events). When a resumed Joined lists members that differ from those the
// client knew, the client follows it with a Presence event carrying the
// difference, which is what apps should announce.
type Joined struct {
	Room string // canonical room name
	Name string // our name in the room
	// Members are the names listed by the server; a big room lists only
	// some (Count is the total).
	Members []string
	// Count is the number of members, us included, as of this event; it
	// is kept current by Presence events. While the connection is not
	// Connected (see StateChanged) nobody tells the client who comes and
	// goes: apps should show the count as unknown then, not the last one.
	Count int
	// Resumed: a re-join after a reconnect (or a Join while a Leave was on
	// its way); only missed messages follow, unless Reset.
	Resumed bool
	// Reset: the room's history on the server is not the one the client
	// saw before (it was reset or restored from a backup; the server's
	// history epoch changed, or its sequence numbers went back). Apps must
	// discard what they show for this room: the history that follows
	// replaces it, with sequence numbers that may repeat old ones. Only
	// ever set with Resumed.
	Reset bool
	// Read is our name's read marker in the room (the last sequence
	// number read on any device of the name), Mentions the number of
	// messages after it that mention us. Both 0 from an older server.
	Read     uint64
	Mentions int
	// Head is the room's last sequence number when the join took effect.
	Head uint64
	// Removed, when not 0, is set on a resumed join: the messages the
	// client had not seen, up to this sequence number, were removed by
	// the server's history retention and will not come. Apps can say
	// "messages before X were removed". Never set with Reset.
	Removed uint64
	// Topic is the room's topic, set by an operator; empty for none.
	// ModEvents of action topic change it.
	Topic string
	// InviteOnly: the room admits only invited names and operators.
	// Operator: our name is an operator of the room (it may Moderate).
	// Muted: our name is muted in the room (its messages are refused).
	// ModEvents change them.
	InviteOnly, Operator, Muted bool
	// NoTyping: the room is above the server's size for typing
	// indicators: nobody's typing is shown there (Typing sends nothing).
	NoTyping bool
}

// Message is a chat message, from history or live.
type Message struct {
	Room    string
	Seq     uint64
	Time    time.Time
	Sender  string
	ID      string // the sender's client message id
	Text    string
	Own     bool // sent under our name
	History bool // sent before we joined (replayed), not live
	// Mention: the text names us (protocol.Mentions), in a room that is
	// not a direct-message room, and we did not send it.
	Mention bool
	// Deleted: the message was deleted, by its sender or an operator;
	// Text is empty. Apps show it as "message deleted", in its place.
	Deleted bool
	// Reply is the sequence number of the message of the same room this
	// one answers; 0: none.
	Reply uint64
	// Edited is when the text last changed (an edit, or the deletion);
	// zero: never. Apps mark the message "edited".
	Edited time.Time
	// Reactions are the message's reactions, one per emoji that has any,
	// in the order of protocol.Reactions.
	Reactions []Reaction
	// File is the file the message carries; nil for none (Text is then
	// its caption, and may be empty without the message being Deleted).
	// Download or FetchFile read it (and its preview, File.Thumb).
	File *protocol.File
}

// Acked reports that one of our messages is stored as Seq, or one of our
// changes (Edit, Delete, React; its Updated follows) is stored as the
// change entry Seq.
//
// Seq is the message's place in the room; it is the order every member
// sees. A message sent while offline, or while others were posting, may
// be stored after messages that arrived before the Acked: an app that
// shows its own messages at once (as pending) must move them to their Seq
// once acknowledged, or show them only when their Message arrives, which
// comes in Seq order with everyone else's.
type Acked struct {
	Room string
	ID   string
	Seq  uint64
	Time time.Time
}

// Presence reports members joining and leaving. After a resumed Joined,
// the client emits one too, with the members who came and went while it
// was away (only when the server listed every member, before and now).
// Count is current as of the event, and unknown while not Connected.
type Presence struct {
	Room    string
	Count   int
	Changes []protocol.PresenceChange
}

// Left confirms Leave.
//
// Messages sent to the room before Leave are sent before the LEAVE and
// acknowledged as usual. Those that can no longer be sent — queued while
// offline, or unacknowledged when the connection dropped during the
// leave — are listed in Unsent: they were not stored, and the client
// forgets them (Drain does not wait for them).
type Left struct {
	Room   string
	Unsent []string // ids of queued messages that will not be sent
}

// RoomError reports that a room was refused or lost (name taken, invalid
// name, too many rooms…). The client no longer tries to be
// in that room; messages still queued for it are returned in Unsent.
type RoomError struct {
	Room   string
	Err    *protocol.Error
	Unsent []string // ids of queued messages that will not be sent
	// Stays is set when the client is still in the room and only the
	// Unsent messages were given up (a server that now allows shorter
	// messages), or a read marker was refused (forbidden: the server
	// keeps none for the room; MarkRead is given up there). Otherwise
	// the room was refused or lost.
	Stays bool
}

// Identified reports that the server knows this connection as a device
// of our name; it follows every (re)connection to a server that has
// identities (see protocol.WelcomeInbox; an older server sends none).
// From then on Notice and ReadMarker events come for every room of the
// name, joined or not. DMs are the name's direct-message rooms that hold
// messages, most recent first: an app lists them (and may Join them) even
// on a device that never joined them.
type Identified struct {
	Name string
	DMs  []RoomState
}

// IdentityRefused reports that the server refused to take this connection
// as a device of our name, instead of Identified. Err says why: usually
// name-owned (another name key owns the name on this server: the rooms'
// JOINs are refused for the same reason, each with its RoomError) or
// too-long (the name is longer than the server allows; checked by the
// client, nothing is sent). The connection and its rooms carry on: only
// the Notice and ReadMarker events of rooms not joined are missing. The
// client tries again on the next connection.
type IdentityRefused struct {
	Err *protocol.Error
}

// RoomState is where a room stands for our name, without joining it.
type RoomState struct {
	Room string    // canonical room name
	Peer string    // for a direct-message room: the other name's key
	Head uint64    // last sequence number
	Time time.Time // time of the last message
	Read uint64    // our read marker
}

// Notice is a message that concerns us, from any room, joined or not: a
// mention of our name (Kind protocol.NoticeMention), or a message in one
// of our direct-message rooms (protocol.NoticeDirect; the first one
// creates the conversation on the receiving side, which Joins it to show
// it). For a joined room the same message also arrives as a Message.
// Notices come only after Identified, and the direct ones for our own
// messages too (from every device of the name: Message.Own is set).
type Notice struct {
	Kind    protocol.NoticeKind
	Message Message
}

// Page answers History: messages of Room before Before (as asked; 0 for
// the newest), oldest first, with History set. First is set when nothing
// older exists: the page reaches the room's first message. A page may hold
// fewer messages than asked for (the server caps pages by count and size):
// ask again before the first one's Seq until First.
type Page struct {
	Room     string
	Before   uint64
	First    bool
	Messages []Message
}

// ReadMarker reports that our name's read marker in Room moved to Seq,
// on this device (confirming MarkRead) or another one of the name. It
// comes for joined rooms, and for the name's other rooms once Identified.
type ReadMarker struct {
	Room string
	Seq  uint64
}

// RoomList answers ListRooms.
type RoomList struct {
	Query string
	Rooms []RoomInfo
}

// RoomInfo describes one room of the server.
type RoomInfo struct {
	Room       string
	Members    int
	Head       uint64
	LastActive time.Time // zero for a room without messages
}

func (Identified) isEvent()      {}
func (IdentityRefused) isEvent() {}
func (Notice) isEvent()          {}
func (Page) isEvent()            {}
func (ReadMarker) isEvent()      {}
func (RoomList) isEvent()        {}

func (StateChanged) isEvent() {}
func (Joined) isEvent()       {}
func (Message) isEvent()      {}
func (Acked) isEvent()        {}
func (Presence) isEvent()     {}
func (Left) isEvent()         {}
func (RoomError) isEvent()    {}

// eventQueue hands events to the application without ever blocking the
// client's loop: it buffers without limit and feeds a channel.
type eventQueue struct {
	mu     sync.Mutex
	cond   sync.Cond
	items  []Event
	closed bool
	out    chan Event
}

func newEventQueue() *eventQueue {
	q := &eventQueue{out: make(chan Event)}
	q.cond.L = &q.mu
	go q.pump()
	return q
}

func (q *eventQueue) push(e Event) {
	q.mu.Lock()
	q.items = append(q.items, e)
	q.mu.Unlock()
	q.cond.Signal()
}

// close delivers what is queued, then closes the channel.
func (q *eventQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Signal()
}

func (q *eventQueue) pump() {
	for {
		q.mu.Lock()
		for len(q.items) == 0 && !q.closed {
			q.cond.Wait()
		}
		if len(q.items) == 0 {
			q.mu.Unlock()
			close(q.out)
			return
		}
		e := q.items[0]
		q.items[0] = nil
		q.items = q.items[1:]
		q.mu.Unlock()
		q.out <- e
	}
}
