package ui

import "time"

// The UI's view models: what the app loop reports through UI.Apply, in the
// UI's own types. The loop converts the client library's events into them,
// so the UI does not depend on the library's types for the conversations,
// the connection and the room list. (Messages, acknowledgements and pages
// of history still arrive as client.Message, client.Acked and
// client.Page, which the message list takes as they are.)

// ConnState is the connection's state as the UI shows it.
type ConnState int

// Connection states.
const (
	Connecting ConnState = iota
	Connected
	Reconnecting // RetryIn says when the next attempt is
	Closed
)

// Connection reports a change of the connection's state. While it is not
// Connected, member counts are unknown until each room's next RoomJoined.
type Connection struct {
	State   ConnState
	Err     error         // why, for Reconnecting and Closed: a sentence for the user
	RetryIn time.Duration // wait before the next attempt, for Reconnecting
	// NoFiles, with Connected: the server takes no files, so there is no
	// attach button (until a connection to one that does).
	NoFiles bool
}

// RoomJoined reports that a room or a direct-message conversation was
// joined, or joined again after a reconnect. The first one of a join
// session for the room the form asked for takes the UI from the form to
// the conversations.
type RoomJoined struct {
	Room    string   // canonical name
	Name    string   // our name in it
	Members []string // a snapshot of the members (a big room lists some)
	Count   int      // members, us included
	// Resumed: only the messages after the last one the client saw
	// follow (a re-join after a reconnect, or a join while the room's
	// leave was on its way), not the newest ones.
	Resumed bool
	// Reset: the room's history started over on the server; what is
	// shown of it must go (the history that follows replaces it).
	Reset bool
	// Read is our read marker in the room, Head its last message's
	// sequence number, Mentions the messages after Read that mention us.
	Read, Head uint64
	Mentions   int
	// Quiet: the user turned the conversation's notifications off.
	Quiet bool
	// Topic is the room's topic (empty: none). InviteOnly: the room
	// admits only invited names; Operator: we may moderate it; Muted:
	// our messages are refused there.
	Topic                       string
	InviteOnly, Operator, Muted bool
	// Removed, when not 0 on a resumed join: messages up to this number
	// that we had not seen were removed by the server's history
	// retention and will not come.
	Removed uint64
}

// PresenceChange is one member coming or going.
type PresenceChange struct {
	Name   string
	Joined bool // false: left
}

// Presence reports members coming and going in Room; Count is current.
type Presence struct {
	Room    string
	Count   int
	Changes []PresenceChange
}

// RoomFailed reports that Room was refused or lost (Stays false), or that
// only some messages to it could not be sent (Stays true). Reason is for
// the user; Unsent are the ids of the messages given up.
type RoomFailed struct {
	Room   string
	Reason string
	Unsent []string
	Stays  bool
}

// Conversation is where a conversation stands without being joined: the
// direct-message rooms the server lists for our name.
type Conversation struct {
	Room string    // canonical name
	Peer string    // the other name's key, for a direct-message room
	Head uint64    // last sequence number
	Read uint64    // our read marker
	Time time.Time // of the last message
	// Quiet: the user turned the conversation's notifications off.
	Quiet bool
}

// Identity reports that the server knows the connection as a device of
// Name, with the direct-message conversations of the name.
type Identity struct {
	Name string
	DMs  []Conversation
}

// ReadMarker reports that our read marker in Room moved to Seq, on this
// device or another one of our name.
type ReadMarker struct {
	Room string
	Seq  uint64
}

// DirectoryRoom is one room of the server's room list.
type DirectoryRoom struct {
	Room       string
	Members    int
	LastActive time.Time // zero for a room without messages
}

// Directory answers a ListRoomsIntent: the server's rooms matching Query.
type Directory struct {
	Query string
	Rooms []DirectoryRoom
}

// ModerateResult answers a ModerateIntent: Text says what was done
// where the room hears nothing of it (an invite code, becoming a server
// operator), Err why it was refused. Either may be empty: the room's
// ModEvent (client.ModEvent) tells the rest.
type ModerateResult struct {
	Room string
	Text string
	Err  string
}

// NotificationsAsk tells whether notifications need the user's
// permission first (the browser's, not yet given or refused): the UI then
// offers to turn them on, which must be a user gesture.
type NotificationsAsk struct{ Ask bool }
