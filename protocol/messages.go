package protocol

import (
	"encoding/binary"
	"time"
)

// Message is one of the protocol's messages. The set is closed: the types in
// this file are all there is.
type Message interface {
	// Type is the frame type byte of the message.
	Type() Type
	appendPayload(b []byte) []byte
	decode(r *fieldReader)
}

// Hello is the first frame a client sends.
type Hello struct {
	Version uint64 // protocol version the client speaks
	Client  string // software name and version, for logs, e.g. "chat-go/1.2.0"
}

// Join asks to enter a room under a name. With Resume set, the server sends
// every message with a sequence number above After; without it, the last
// messages of the room (WELCOME.History of them).
type Join struct {
	Room   string
	Name   string
	Resume bool
	After  uint64
	Key    string // server access key; empty when the server has none
	Secret string // name ownership secret; empty for a name not yet claimed
	// Epoch is the history epoch After belongs to (from an earlier
	// JOINED), 0 if unknown. A server whose room has another epoch
	// ignores Resume: the history the client saw is gone.
	Epoch uint64
	// Invite is an invite code of an invite-only room (from MODERATED
	// of an invite); empty for none.
	Invite string
}

// Send posts Text to Room. ID is chosen by the client, unique among its
// messages; sending the same ID again never creates a second message.
type Send struct {
	Room string
	ID   string // 1 to MaxIDLen opaque bytes
	Text string
	// Reply is the sequence number of an earlier message of Room this
	// one answers; 0: none. Only to a server with WelcomeMessages.
	Reply uint64
	// File is the ID of a file this connection's name uploaded to Room
	// (UPLOADED's File.ID); empty for none. With a File, Text is its
	// caption and may be empty. Only to a server with WelcomeFiles.
	File string
}

// Leave leaves a room. The server answers LEFT.
type Leave struct{ Room string }

// Bye ends the session cleanly: the server leaves every room and closes.
type Bye struct{}

// Ping asks the peer for a PONG carrying the same Nonce.
type Ping struct{ Nonce uint64 }

// Pong answers a PING.
type Pong struct{ Nonce uint64 }

// Welcome answers HELLO with the server's limits.
type Welcome struct {
	Version  uint64 // protocol version in use
	Server   string // software name and version
	Time     uint64 // server clock, Unix milliseconds
	MaxFrame uint64 // longest frame (type + payload) the server accepts
	MaxText  uint64 // longest message text, in bytes
	MaxName  uint64 // longest name, in bytes
	MaxRoom  uint64 // longest room name, in bytes
	MaxRooms uint64 // rooms one connection may be in at once
	History  uint64 // messages replayed on a join without resume
	PingMs   uint64 // keepalive interval, milliseconds
	Flags    WelcomeFlags
	Limits   Limits // appended in revision 2; all zero from an older server
}

// Limits are the rules a server announces so that a client can keep them
// instead of discovering them by being cut off. Zero means "not announced".
type Limits struct {
	// SendIntervalMs is the sustained rate of client frames (every frame
	// after HELLO but PONG): one per SendIntervalMs milliseconds, rounded
	// up. A client that sends faster is read slower (its ACKs slow down);
	// one that stays over the rate for FloodAfterMs is cut off with
	// rate-limited.
	SendIntervalMs uint64
	// SendBurst is how many frames may be sent at once on top of the rate.
	SendBurst uint64
	// FloodAfterMs is how long a client may stay over the rate.
	FloodAfterMs uint64
	// RetryAfterMs is how long to wait before reconnecting after
	// rate-limited.
	RetryAfterMs uint64
	// QueueFrames is how many frames the server holds for this connection
	// before it cuts it off as a slow consumer.
	QueueFrames uint64
	// MaxListed is the most member names a JOINED lists.
	MaxListed uint64
	// PresenceBatchAbove: rooms with more members get presence changes
	// gathered and sent together, up to a second late.
	PresenceBatchAbove uint64
	// IdleTimeoutMs: a connection in no room for this long is closed with
	// timeout (without the reconnect flag). 0: never.
	IdleTimeoutMs uint64
	// FileBytesPerSec is the rate of file bytes (UPLOAD data and PART
	// data together) one connection gets; a client paces its uploads to
	// it. 0: not announced (no files).
	FileBytesPerSec uint64
	// MaxUpload is the largest file the server takes, in bytes.
	MaxUpload uint64
}

// WelcomeFlags describe server policies.
type WelcomeFlags uint64

const (
	// WelcomeKeyRequired: joins must carry the server's access key.
	WelcomeKeyRequired WelcomeFlags = 1 << iota
	// WelcomeInbox: the server speaks IDENTIFY, HISTORY, READ and LIST.
	WelcomeInbox WelcomeFlags = 1 << 1
	// WelcomeModeration: the server speaks MODERATE and JOIN's invite.
	WelcomeModeration WelcomeFlags = 1 << 2
	// WelcomeMessages: the server understands CHANGE, TYPING, SEARCH,
	// SEND's reply and HISTORY's flags (README.md section 4, "Acting on
	// messages").
	WelcomeMessages WelcomeFlags = 1 << 3
	// WelcomeFiles: the server speaks UPLOAD and FETCH, SEND's file and
	// HISTORY's files flag (README.md section 4, "Files").
	WelcomeFiles WelcomeFlags = 1 << 4
)

// Joined confirms a join. The history that follows it is the messages of
// the room with sequence numbers in (After, Head], as MESSAGE frames in
// order; live messages continue seamlessly after them.
type Joined struct {
	Room    string   // canonical room name
	Name    string   // name as registered
	After   uint64   // history starts after this sequence number
	Head    uint64   // last sequence number in the room at join time
	Count   uint64   // members in the room, including the joiner
	Members []string // member names; at most a server-chosen number of them
	// Epoch identifies this room's history: a random non-zero number that
	// changes when the history is reset or restored, so that a client's
	// sequence numbers from another epoch are not mistaken for this one's.
	// 0 from a server that has none.
	Epoch uint64
	// Read is the joining name's read marker in this room (see READ): the
	// last sequence number a device of the name has read. 0 for none, and
	// for a name joined without a name key (the server keeps no marker).
	Read uint64
	// Mentions counts the messages after Read that mention the name.
	Mentions uint64
	// Topic is the room's topic set by an operator; empty for none.
	Topic string
	// Modes: ModeInviteOnly, ModeOperator, ModeMuted.
	Modes JoinedModes
}

// Ack confirms that the message with ID is durably stored as Seq.
type Ack struct {
	Room string
	ID   string
	Seq  uint64
	Time uint64 // Unix milliseconds
}

// Msg is a chat message as stored and delivered (type MESSAGE).
type Msg struct {
	Room   string
	Seq    uint64 // per-room sequence number, from 1, without gaps
	Time   uint64 // server time, Unix milliseconds
	Sender string
	ID     string // the sender's client message id
	// Text is the message, or empty when it was deleted (by its sender or
	// an operator).
	Text string
	// Reply is the sequence number of the message of the same room this
	// one answers; 0: none.
	Reply uint64
	// Edited is when the text last changed (an edit, or the deletion),
	// Unix milliseconds; 0: never.
	Edited uint64
	// Reactions are the message's reactions, one per emoji, in the order
	// of protocol.Reactions.
	Reactions []Reaction
	// File is the file the message carries (README.md section 4,
	// "Files"); nil for none. When set, Text is its caption and may be
	// empty: a message with an empty Text is deleted only when File is
	// nil.
	File *File
	// Change is set only on the entries of a room's history that change
	// an earlier message (servers' storage and brokers); such an entry is
	// sent as UPDATE (Msg.Update), never as MESSAGE. Its Text is empty.
	Change *ChangeEntry
}

// ChangeEntry is what a change entry of a room's history did.
type ChangeEntry struct {
	Kind   ChangeKind
	Target uint64
	Emoji  string // ChangeReact, ChangeUnreact
	// State is the target's state after the change, or later: brokers
	// fill it when they deliver or read the entry; nil when the target is
	// gone (history retention) or not known.
	State *Msg
}

// Update is the UPDATE frame of change entry m (m.Change != nil), with
// State as given.
func (m *Msg) Update(state *Msg) *Update {
	return &Update{Room: m.Room, Seq: m.Seq, Time: m.Time, Actor: m.Sender,
		Kind: m.Change.Kind, Target: m.Change.Target, Emoji: m.Change.Emoji, State: state}
}

// PresenceKind says what happened to a member.
type PresenceKind byte

const (
	PresenceJoined PresenceKind = 1
	PresenceLeft   PresenceKind = 2
)

func (k PresenceKind) String() string {
	switch k {
	case PresenceJoined:
		return "joined"
	case PresenceLeft:
		return "left"
	}
	return "unknown"
}

// PresenceChange is one member entering or leaving.
type PresenceChange struct {
	Kind PresenceKind
	Name string
}

// Presence reports members joining and leaving a room, possibly several at
// once; Count is the member count after the changes.
type Presence struct {
	Room    string
	Count   uint64
	Changes []PresenceChange
}

// Left confirms LEAVE: no more frames for Room follow.
type Left struct{ Room string }

// Error reports a problem. Flags say whether the connection closes after it
// and whether reconnecting may help.
type Error struct {
	Code  ErrorCode
	Flags ErrorFlags
	Room  string // the room it concerns, if any
	Text  string // for humans
	// ID is the client id of the SEND or CHANGE this error refuses, when
	// it refuses one that a server with WelcomeMessages took apart from
	// the others (a change refused, a muted message); else empty.
	ID string
}

// ErrorFlags qualify an ERROR.
type ErrorFlags byte

const (
	// ErrorClosing: this is the last frame; the server closes the connection.
	ErrorClosing ErrorFlags = 1 << iota
	// ErrorReconnect: the condition is transient; reconnect (with backoff)
	// and resume.
	ErrorReconnect
)

func (e *Error) Error() string {
	s := e.Code.String()
	if e.Room != "" {
		s += " in " + e.Room
	}
	if e.Text != "" {
		s += ": " + e.Text
	}
	return s
}

// Closing reports whether the connection ends after this error.
func (e *Error) Closing() bool { return e.Flags&ErrorClosing != 0 }

// Reconnect reports whether reconnecting may succeed.
func (e *Error) Reconnect() bool { return e.Flags&ErrorReconnect != 0 }

// Millis converts t to Unix milliseconds as used on the wire.
func Millis(t time.Time) uint64 { return uint64(t.UnixMilli()) }

// FromMillis converts wire milliseconds to a time.Time.
func FromMillis(ms uint64) time.Time { return time.UnixMilli(int64(ms)) }

func (*Hello) Type() Type    { return TypeHello }
func (*Join) Type() Type     { return TypeJoin }
func (*Send) Type() Type     { return TypeSend }
func (*Leave) Type() Type    { return TypeLeave }
func (*Bye) Type() Type      { return TypeBye }
func (*Ping) Type() Type     { return TypePing }
func (*Pong) Type() Type     { return TypePong }
func (*Welcome) Type() Type  { return TypeWelcome }
func (*Joined) Type() Type   { return TypeJoined }
func (*Ack) Type() Type      { return TypeAck }
func (*Msg) Type() Type      { return TypeMessage }
func (*Presence) Type() Type { return TypePresence }
func (*Left) Type() Type     { return TypeLeft }
func (*Error) Type() Type    { return TypeError }

func (m *Hello) appendPayload(b []byte) []byte {
	b = append(b, Magic...)
	b = binary.AppendUvarint(b, m.Version)
	return appendString(b, m.Client)
}

func (m *Hello) decode(r *fieldReader) {
	if len(r.b) < len(Magic) || string(r.b[:len(Magic)]) != Magic {
		r.fail(CodeMalformed, "does not start with \""+Magic+"\": not a chat client")
		return
	}
	r.b = r.b[len(Magic):]
	m.Version = r.uvarint("version")
	m.Client = r.string("client")
}

const joinResume = 1

func (m *Join) appendPayload(b []byte) []byte {
	b = appendString(b, m.Room)
	b = appendString(b, m.Name)
	var flags byte
	if m.Resume {
		flags |= joinResume
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, m.After)
	b = appendString(b, m.Key)
	b = appendString(b, m.Secret)
	b = binary.AppendUvarint(b, m.Epoch)
	return appendString(b, m.Invite)
}

func (m *Join) decode(r *fieldReader) {
	m.Room = r.string("room")
	m.Name = r.string("name")
	m.Resume = r.byte("flags")&joinResume != 0
	m.After = r.uvarint("after")
	m.Key = string(r.raw("key"))
	m.Secret = string(r.raw("secret"))
	m.Epoch = r.optUvarint("epoch")
	m.Invite = string(r.optRaw("invite"))
}

func (m *Send) appendPayload(b []byte) []byte {
	b = appendString(b, m.Room)
	b = appendString(b, m.ID)
	b = appendString(b, m.Text)
	if m.Reply != 0 || m.File != "" {
		b = binary.AppendUvarint(b, m.Reply)
	}
	if m.File != "" {
		b = appendString(b, m.File)
	}
	return b
}

func (m *Send) decode(r *fieldReader) {
	m.Room = r.string("room")
	m.ID = string(r.raw("id"))
	m.Text = r.string("text")
	m.Reply = r.optUvarint("reply")
	m.File = r.optString("file")
}

func (m *Leave) appendPayload(b []byte) []byte { return appendString(b, m.Room) }
func (m *Leave) decode(r *fieldReader)         { m.Room = r.string("room") }

func (m *Bye) appendPayload(b []byte) []byte { return b }
func (m *Bye) decode(*fieldReader)           {}

func (m *Ping) appendPayload(b []byte) []byte { return binary.AppendUvarint(b, m.Nonce) }
func (m *Ping) decode(r *fieldReader)         { m.Nonce = r.uvarint("nonce") }
func (m *Pong) appendPayload(b []byte) []byte { return binary.AppendUvarint(b, m.Nonce) }
func (m *Pong) decode(r *fieldReader)         { m.Nonce = r.uvarint("nonce") }

func (m *Welcome) appendPayload(b []byte) []byte {
	b = binary.AppendUvarint(b, m.Version)
	b = appendString(b, m.Server)
	for _, v := range [...]uint64{m.Time, m.MaxFrame, m.MaxText, m.MaxName, m.MaxRoom,
		m.MaxRooms, m.History, m.PingMs, uint64(m.Flags)} {
		b = binary.AppendUvarint(b, v)
	}
	l := &m.Limits
	for _, v := range [...]uint64{l.SendIntervalMs, l.SendBurst, l.FloodAfterMs, l.RetryAfterMs,
		l.QueueFrames, l.MaxListed, l.PresenceBatchAbove, l.IdleTimeoutMs} {
		b = binary.AppendUvarint(b, v)
	}
	if l.FileBytesPerSec == 0 && l.MaxUpload == 0 {
		return b
	}
	for _, v := range [...]uint64{l.FileBytesPerSec, l.MaxUpload} {
		b = binary.AppendUvarint(b, v)
	}
	return b
}

func (m *Welcome) decode(r *fieldReader) {
	m.Version = r.uvarint("version")
	m.Server = r.string("server")
	m.Time = r.uvarint("time")
	m.MaxFrame = r.uvarint("max frame")
	m.MaxText = r.uvarint("max text")
	m.MaxName = r.uvarint("max name")
	m.MaxRoom = r.uvarint("max room")
	m.MaxRooms = r.uvarint("max rooms")
	m.History = r.uvarint("history")
	m.PingMs = r.uvarint("ping interval")
	m.Flags = WelcomeFlags(r.uvarint("flags"))
	l := &m.Limits
	l.SendIntervalMs = r.optUvarint("send interval")
	l.SendBurst = r.optUvarint("send burst")
	l.FloodAfterMs = r.optUvarint("flood after")
	l.RetryAfterMs = r.optUvarint("retry after")
	l.QueueFrames = r.optUvarint("queue frames")
	l.MaxListed = r.optUvarint("max listed")
	l.PresenceBatchAbove = r.optUvarint("presence batch above")
	l.IdleTimeoutMs = r.optUvarint("idle timeout")
	l.FileBytesPerSec = r.optUvarint("file rate")
	l.MaxUpload = r.optUvarint("max upload")
}

func (m *Joined) appendPayload(b []byte) []byte {
	b = appendString(b, m.Room)
	b = appendString(b, m.Name)
	b = binary.AppendUvarint(b, m.After)
	b = binary.AppendUvarint(b, m.Head)
	b = binary.AppendUvarint(b, m.Count)
	b = binary.AppendUvarint(b, uint64(len(m.Members)))
	for _, name := range m.Members {
		b = appendString(b, name)
	}
	b = binary.AppendUvarint(b, m.Epoch)
	b = binary.AppendUvarint(b, m.Read)
	b = binary.AppendUvarint(b, m.Mentions)
	b = appendString(b, m.Topic)
	return binary.AppendUvarint(b, uint64(m.Modes))
}

func (m *Joined) decode(r *fieldReader) {
	m.Room = r.string("room")
	m.Name = r.string("name")
	m.After = r.uvarint("after")
	m.Head = r.uvarint("head")
	m.Count = r.uvarint("count")
	n := r.count("members", 1)
	if n > 0 {
		m.Members = make([]string, n)
		for i := range m.Members {
			m.Members[i] = r.string("member")
		}
	}
	m.Epoch = r.optUvarint("epoch")
	m.Read = r.optUvarint("read")
	m.Mentions = r.optUvarint("mentions")
	m.Topic = r.optString("topic")
	m.Modes = JoinedModes(r.optUvarint("modes"))
}

func (m *Ack) appendPayload(b []byte) []byte {
	b = appendString(b, m.Room)
	b = appendString(b, m.ID)
	b = binary.AppendUvarint(b, m.Seq)
	return binary.AppendUvarint(b, m.Time)
}

func (m *Ack) decode(r *fieldReader) {
	m.Room = r.string("room")
	m.ID = string(r.raw("id"))
	m.Seq = r.uvarint("seq")
	m.Time = r.uvarint("time")
}

func (m *Msg) appendPayload(b []byte) []byte { return m.appendFields(b) }

// appendFields writes MESSAGE: the fields of the first revision, and the
// later ones (reply, edited, reactions) only when one is set, so a plain
// message is the same bytes as before them.
func (m *Msg) appendFields(b []byte) []byte {
	b = appendString(b, m.Room)
	b = m.appendBase(b)
	if m.Reply == 0 && m.Edited == 0 && len(m.Reactions) == 0 && m.File == nil {
		return b
	}
	b = m.appendExtra(b)
	if m.File != nil {
		b = appendFile(b, m.File)
	}
	return b
}

func (m *Msg) appendBase(b []byte) []byte {
	b = binary.AppendUvarint(b, m.Seq)
	b = binary.AppendUvarint(b, m.Time)
	b = appendString(b, m.Sender)
	b = appendString(b, m.ID)
	return appendString(b, m.Text)
}

func (m *Msg) appendExtra(b []byte) []byte {
	b = binary.AppendUvarint(b, m.Reply)
	b = binary.AppendUvarint(b, m.Edited)
	b = binary.AppendUvarint(b, uint64(len(m.Reactions)))
	for i := range m.Reactions {
		x := &m.Reactions[i]
		b = appendString(b, x.Emoji)
		b = binary.AppendUvarint(b, x.Count)
		b = binary.AppendUvarint(b, uint64(len(x.Names)))
		for _, n := range x.Names {
			b = appendString(b, n)
		}
	}
	return b
}

// appendRecord writes m inside a list (a full PAGE, UPDATE's state): the
// fields of MESSAGE after room, all of them.
func (m *Msg) appendRecord(b []byte) []byte {
	return m.appendExtra(m.appendBase(b))
}

func (m *Msg) decode(r *fieldReader) {
	m.Room = r.string("room")
	m.decodeBase(r)
	if r.err == nil && len(r.b) > 0 {
		m.decodeExtra(r)
	}
	if r.err == nil && len(r.b) > 0 {
		m.File = decodeFile(r)
	}
}

func (m *Msg) decodeBase(r *fieldReader) {
	m.Seq = r.uvarint("seq")
	m.Time = r.uvarint("time")
	m.Sender = r.string("sender")
	m.ID = string(r.raw("id"))
	m.Text = r.string("text")
}

func (m *Msg) decodeExtra(r *fieldReader) {
	m.Reply = r.uvarint("reply")
	m.Edited = r.uvarint("edited")
	if n := r.count("reactions", 3); n > 0 {
		m.Reactions = make([]Reaction, n)
		for i := range m.Reactions {
			x := &m.Reactions[i]
			x.Emoji = r.string("emoji")
			x.Count = r.uvarint("count")
			if k := r.count("names", 1); k > 0 {
				x.Names = make([]string, k)
				for j := range x.Names {
					x.Names[j] = r.string("name")
				}
			}
		}
	}
}

func (m *Msg) decodeRecord(r *fieldReader) {
	m.decodeBase(r)
	m.decodeExtra(r)
}

func (m *Presence) appendPayload(b []byte) []byte {
	b = appendString(b, m.Room)
	b = binary.AppendUvarint(b, m.Count)
	b = binary.AppendUvarint(b, uint64(len(m.Changes)))
	for _, c := range m.Changes {
		b = append(b, byte(c.Kind))
		b = appendString(b, c.Name)
	}
	return b
}

func (m *Presence) decode(r *fieldReader) {
	m.Room = r.string("room")
	m.Count = r.uvarint("count")
	n := r.count("changes", 2)
	if n > 0 {
		m.Changes = make([]PresenceChange, n)
		for i := range m.Changes {
			m.Changes[i].Kind = PresenceKind(r.byte("kind"))
			m.Changes[i].Name = r.string("name")
		}
	}
}

func (m *Left) appendPayload(b []byte) []byte { return appendString(b, m.Room) }
func (m *Left) decode(r *fieldReader)         { m.Room = r.string("room") }

func (m *Error) appendPayload(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(m.Code))
	b = append(b, byte(m.Flags))
	b = appendString(b, m.Room)
	b = appendString(b, m.Text)
	if m.ID != "" {
		b = appendString(b, m.ID)
	}
	return b
}

func (m *Error) decode(r *fieldReader) {
	m.Code = ErrorCode(r.uvarint("code"))
	m.Flags = ErrorFlags(r.byte("flags"))
	m.Room = r.string("room")
	m.Text = r.string("text")
	m.ID = string(r.optRaw("id"))
}
