package ui

import (
	"time"

	"chat/protocol"
)

// The view models and intents of acting on messages (issue 15): replies,
// edits, deletions, reactions, typing and search. The loop translates the
// client library's Updated, Typing and SearchResults into these.

// Reaction is one emoji's reactions to a message: how many reacted, who
// (up to the server's list, oldest first), and whether we are among them.
type Reaction struct {
	Emoji string
	Count int
	Names []string
	Mine  bool
}

// MessageState is a message's state after a change: its text (empty and
// Deleted for a deleted one), when it was last edited, and its reactions
// in the order of protocol.Reactions.
type MessageState struct {
	Text      string
	Deleted   bool
	Edited    time.Time
	Reactions []Reaction
}

// MessageChanged reports a change of message Target of Room (an edit, a
// deletion, a reaction). Seq is the change's own number in the room: it
// is not a message and never counts as unread. State is the target's new
// state; nil when the message the replay brings already has it.
type MessageChanged struct {
	Room   string
	Seq    uint64
	Target uint64
	Kind   protocol.ChangeKind
	Actor  string
	Own    bool // Actor is our name
	State  *MessageState
}

// Typing reports that Name is typing in Room (Stopped: no longer). The UI
// forgets it typingFor after the last one.
type Typing struct {
	Room, Name string
	Stopped    bool
}

// typingFor is how long a Typing shows without another: the client sends
// one every few seconds while the user types.
const typingFor = 6 * time.Second

// SearchHit is one message found: Matches are the byte ranges of Text
// that matched the query's words.
type SearchHit struct {
	Room    string
	Seq     uint64
	Time    time.Time
	Sender  string
	Text    string
	Matches []protocol.Span
}

// SearchResults answers a SearchIntent: the hits, newest first; More says
// older ones exist (a SearchIntent with Before the last hit's Time brings
// them). Err, when set, says in a sentence why the search failed.
type SearchResults struct {
	Query string
	Hits  []SearchHit
	More  bool
	Err   string
	// Before is the SearchIntent's Before: zero for a new search, else a
	// page of older hits to add.
	Before time.Time
}

// ChangeResult tells the id the client library gave an edit, deletion or
// reaction, or why it refused it (Err set). The server's refusal comes
// later as a RoomFailed with Stays.
type ChangeResult struct {
	Room string
	ID   string
	Err  error
}

// EditIntent asks to replace the text of our message Seq in Room.
type EditIntent struct {
	Room string
	Seq  uint64
	Text string
}

// DeleteIntent asks to delete message Seq of Room: ours, or any as an
// operator of the room.
type DeleteIntent struct {
	Room string
	Seq  uint64
}

// ReactIntent adds (On) or takes back our reaction Emoji to message Seq
// of Room.
type ReactIntent struct {
	Room  string
	Seq   uint64
	Emoji string
	On    bool
}

// TypingIntent tells Room that the user is typing (Stopped false: the
// composer's text changed) or stopped (the text was sent or cleared). The
// client library limits how often it tells the server.
type TypingIntent struct {
	Room    string
	Stopped bool
}

// SearchIntent asks the server for the messages matching Query in the
// conversations we may read (Room set: only that one), older than Before
// when it is set. A SearchResults answers.
type SearchIntent struct {
	Query  string
	Room   string
	Before time.Time
}

func (EditIntent) isIntent()   {}
func (DeleteIntent) isIntent() {}
func (ReactIntent) isIntent()  {}
func (TypingIntent) isIntent() {}
func (SearchIntent) isIntent() {}
