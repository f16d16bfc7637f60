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
	Connecting   State = iota // first connection attempt
	Connected                 // handshake done; rooms are being joined or are joined
	Reconnecting              // connection lost; retrying with backoff
	Closed                    // stopped for good: Close was called or the server refused terminally
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

// StateChanged reports a new connection state.
type StateChanged struct {
	State State
	// Err is why: the lost connection's error for Reconnecting, the reason
	// for Closed (nil after Close).
	Err error
	// RetryIn is the wait before the next attempt, for Reconnecting.
	RetryIn time.Duration
}

// Joined reports that a room was joined, or re-joined after a reconnect.
type Joined struct {
	Room    string   // canonical room name
	Name    string   // our name in the room
	Members []string // names listed by the server (maybe not all of them)
	Count   int      // members in the room
	Resumed bool     // a re-join: only missed messages follow
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
}

// Acked reports that one of our messages is stored as Seq.
type Acked struct {
	Room string
	ID   string
	Seq  uint64
	Time time.Time
}

// Presence reports members joining and leaving.
type Presence struct {
	Room    string
	Count   int
	Changes []protocol.PresenceChange
}

// Left confirms Leave.
type Left struct{ Room string }

// RoomError reports that a room was refused or lost (name taken, invalid
// name, too many rooms…). The client no longer tries to be
// in that room; messages still queued for it are returned in Unsent.
type RoomError struct {
	Room   string
	Err    *protocol.Error
	Unsent []string // ids of queued messages that will not be sent
}

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
