package protocol

import "encoding/binary"

// ChangeKind is what a CHANGE does to an earlier message of its room
// (README.md section 4, "Acting on messages"). The numbers are part of
// the wire format.
type ChangeKind byte

// Change kinds.
const (
	// ChangeEdit replaces the message's text (its sender's name only).
	ChangeEdit ChangeKind = 1
	// ChangeDelete removes the message's text for good (its sender's name,
	// a room operator or a server operator).
	ChangeDelete ChangeKind = 2
	// ChangeReact adds the name's reaction Emoji to the message.
	ChangeReact ChangeKind = 3
	// ChangeUnreact takes the name's reaction Emoji back.
	ChangeUnreact ChangeKind = 4
)

var changeKindNames = [...]string{ChangeEdit: "edit", ChangeDelete: "delete", ChangeReact: "react", ChangeUnreact: "unreact"}

// String is the kind's name in the spec, e.g. "edit".
func (k ChangeKind) String() string {
	if int(k) < len(changeKindNames) && changeKindNames[k] != "" {
		return changeKindNames[k]
	}
	return "unknown"
}

// Known reports whether k is a kind of this revision.
func (k ChangeKind) Known() bool { return k.String() != "unknown" }

// Reactions is the set of emoji a message can be reacted with. A server
// refuses any other with ERROR invalid.
var Reactions = [...]string{"👍", "❤️", "😂", "😮", "😢", "🎉", "🙏", "👀"}

// IsReaction reports whether s is one of Reactions.
func IsReaction(s string) bool {
	for _, r := range Reactions {
		if r == s {
			return true
		}
	}
	return false
}

// MaxReactionNames is how many names a Reaction lists at most; Count
// counts them all.
const MaxReactionNames = 50

// Reaction is one emoji's reactions to a message: how many names reacted
// with it and (up to MaxReactionNames of) who, oldest first.
type Reaction struct {
	Emoji string
	Count uint64
	Names []string
}

// Change asks the server to change the message Target of Room (type
// CHANGE). ID is a client change id, unique among the sender's messages
// and changes like a SEND's: a re-sent CHANGE with the same ID is
// answered like the first, not applied twice. The server answers ACK
// (with the seq of the change in the room's history) or ERROR.
type Change struct {
	Room   string
	Kind   ChangeKind
	Target uint64 // the sequence number of the message changed
	ID     string // 1–64 bytes, like SEND's id
	// Text is the new text for ChangeEdit (1 to max text bytes), the
	// emoji for ChangeReact and ChangeUnreact, empty for ChangeDelete.
	Text string
}

// Update tells that the message Target of Room changed (type UPDATE). It
// has its own place (Seq) in the room's history, between messages; a
// client counts it as seen (for resuming) but not as a message (for
// unread counts). State is the target's state now, with every change up
// to this one applied; it is nil in a replay when the target is itself
// replayed or a later UPDATE of the replay carries it.
type Update struct {
	Room   string
	Seq    uint64 // this change's sequence number in the room
	Time   uint64 // when the server stored the change
	Actor  string // who changed it: the sender, or an operator for a delete
	Kind   ChangeKind
	Target uint64 // the sequence number of the changed message
	Emoji  string // ChangeReact, ChangeUnreact: the emoji; else empty
	State  *Msg   // the target now; Room is not repeated on the wire
}

// Typing says that the user is typing in Room (type TYPING), or stopped
// (Stopped). A client sends it at most every 3 seconds while the user
// types; the server forwards it to the room's other members as
// IS-TYPING, at most one per connection and room every 2 seconds, and
// not at all in rooms above its typing size.
type Typing struct {
	Room    string
	Stopped bool
}

// IsTyping tells that Name is typing in Room, or stopped (type
// IS-TYPING). A client shows it for 6 seconds unless renewed, and drops it
// at Stopped or at a MESSAGE from Name. Never stored.
type IsTyping struct {
	Room    string
	Name    string
	Stopped bool
}

// Search asks for the messages that match Query in the rooms this
// connection has joined and the identified name's direct-message rooms,
// or only in Room (type SEARCH). Results come newest first; Before (Unix
// milliseconds, 0: now) pages back. Limit 0 asks for 20; a server sends
// at most 50. The server answers RESULTS.
type Search struct {
	Query  string
	Room   string
	Before uint64
	Limit  uint64
}

// Hit is one search result: a message and where Query matched in its Text.
type Hit struct {
	Room   string
	Seq    uint64
	Time   uint64
	Sender string
	Text   string
	// Matches are the matched parts of Text, as byte offsets
	// [Start, End), in order, not overlapping.
	Matches []Span
}

// Span is a byte range [Start, End) of a text.
type Span struct{ Start, End uint64 }

// Results answers SEARCH (type RESULTS).
type Results struct {
	Query string // as sent
	More  bool   // older results exist: ask again with Before = the last hit's Time
	Hits  []Hit
}

// Frame flags of this file.
const (
	updateState   = 1 // UPDATE: the target's state follows
	updateFile    = 2 // UPDATE: the state's file follows it
	typingStopped = 1 // TYPING, IS-TYPING
	resultsMore   = 1 // RESULTS
)

func (*Change) Type() Type   { return TypeChange }
func (*Update) Type() Type   { return TypeUpdate }
func (*Typing) Type() Type   { return TypeTyping }
func (*IsTyping) Type() Type { return TypeIsTyping }
func (*Search) Type() Type   { return TypeSearch }
func (*Results) Type() Type  { return TypeResults }

func (m *Change) appendPayload(b []byte) []byte {
	b = appendString(b, m.Room)
	b = append(b, byte(m.Kind))
	b = binary.AppendUvarint(b, m.Target)
	b = appendString(b, m.ID)
	return appendString(b, m.Text)
}

func (m *Change) decode(r *fieldReader) {
	m.Room = r.string("room")
	m.Kind = ChangeKind(r.byte("kind"))
	m.Target = r.uvarint("target")
	m.ID = string(r.raw("id"))
	m.Text = r.string("text")
}

func (m *Update) appendPayload(b []byte) []byte {
	b = appendString(b, m.Room)
	b = binary.AppendUvarint(b, m.Seq)
	b = binary.AppendUvarint(b, m.Time)
	b = appendString(b, m.Actor)
	b = append(b, byte(m.Kind))
	b = binary.AppendUvarint(b, m.Target)
	b = appendString(b, m.Emoji)
	if m.State == nil {
		return append(b, 0)
	}
	if m.State.File == nil {
		b = append(b, updateState)
		return m.State.appendRecord(b)
	}
	// The file comes after the record, so that a decoder of an older
	// revision reads the record and ignores the rest.
	b = append(b, updateState|updateFile)
	b = m.State.appendRecord(b)
	return appendFile(b, m.State.File)
}

func (m *Update) decode(r *fieldReader) {
	m.Room = r.string("room")
	m.Seq = r.uvarint("seq")
	m.Time = r.uvarint("time")
	m.Actor = r.string("actor")
	m.Kind = ChangeKind(r.byte("kind"))
	m.Target = r.uvarint("target")
	m.Emoji = r.string("emoji")
	if flags := r.byte("flags"); flags&updateState != 0 {
		m.State = &Msg{Room: m.Room}
		m.State.decodeRecord(r)
		if flags&updateFile != 0 {
			m.State.File = decodeFile(r)
		}
	}
}

func (m *Typing) appendPayload(b []byte) []byte {
	b = appendString(b, m.Room)
	return append(b, boolFlag(m.Stopped, typingStopped))
}

func (m *Typing) decode(r *fieldReader) {
	m.Room = r.string("room")
	m.Stopped = r.byte("flags")&typingStopped != 0
}

func (m *IsTyping) appendPayload(b []byte) []byte {
	b = appendString(b, m.Room)
	b = appendString(b, m.Name)
	return append(b, boolFlag(m.Stopped, typingStopped))
}

func (m *IsTyping) decode(r *fieldReader) {
	m.Room = r.string("room")
	m.Name = r.string("name")
	m.Stopped = r.byte("flags")&typingStopped != 0
}

func (m *Search) appendPayload(b []byte) []byte {
	b = appendString(b, m.Query)
	b = appendString(b, m.Room)
	b = binary.AppendUvarint(b, m.Before)
	return binary.AppendUvarint(b, m.Limit)
}

func (m *Search) decode(r *fieldReader) {
	m.Query = r.string("query")
	m.Room = r.string("room")
	m.Before = r.uvarint("before")
	m.Limit = r.uvarint("limit")
}

func (m *Results) appendPayload(b []byte) []byte {
	b = appendString(b, m.Query)
	b = append(b, boolFlag(m.More, resultsMore))
	b = binary.AppendUvarint(b, uint64(len(m.Hits)))
	for i := range m.Hits {
		h := &m.Hits[i]
		b = appendString(b, h.Room)
		b = binary.AppendUvarint(b, h.Seq)
		b = binary.AppendUvarint(b, h.Time)
		b = appendString(b, h.Sender)
		b = appendString(b, h.Text)
		b = binary.AppendUvarint(b, uint64(len(h.Matches)))
		for _, s := range h.Matches {
			b = binary.AppendUvarint(b, s.Start)
			b = binary.AppendUvarint(b, s.End)
		}
	}
	return b
}

func (m *Results) decode(r *fieldReader) {
	m.Query = r.string("query")
	m.More = r.byte("flags")&resultsMore != 0
	n := r.count("hits", 6)
	if n > 0 {
		m.Hits = make([]Hit, n)
		for i := range m.Hits {
			h := &m.Hits[i]
			h.Room = r.string("room")
			h.Seq = r.uvarint("seq")
			h.Time = r.uvarint("time")
			h.Sender = r.string("sender")
			h.Text = r.string("text")
			if k := r.count("matches", 2); k > 0 {
				h.Matches = make([]Span, k)
				for j := range h.Matches {
					h.Matches[j].Start = r.uvarint("start")
					h.Matches[j].End = r.uvarint("end")
				}
			}
		}
	}
}

func boolFlag(b bool, flag byte) byte {
	if b {
		return flag
	}
	return 0
}
