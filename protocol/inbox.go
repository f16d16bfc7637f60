package protocol

import "encoding/binary"

// Identify makes the connection a device of Name, proved by Secret (the
// name key): it then receives the name's read markers (MARKER) and the
// notices of messages for it (NOTICE) from every room, joined or not. The
// server answers IDENTIFIED. A connection identifies at most once.
type Identify struct {
	Name   string
	Secret string // must not be empty: an identity is a claimed name
	Key    string // server access key, as in JOIN
}

// History asks for older messages of a joined room: the newest Limit
// messages with a sequence number below Before (Before 0: the newest
// messages of the room, its head included). Limit 0 asks for the server's
// default (100); a server sends at most 200 messages and 256 KiB in one
// PAGE. The server answers PAGE.
type History struct {
	Room   string
	Before uint64
	Limit  uint64
	// Full asks for PAGE records with every MESSAGE field (reply,
	// edited, reactions); only to a server with WelcomeMessages.
	Full bool
	// Files asks for full records that also carry their file (implies
	// Full); only to a server with WelcomeFiles.
	Files bool
}

// HISTORY's flag bits.
const (
	// HistoryFull asks for full PAGE records.
	HistoryFull = 1
	// HistoryFiles asks for full PAGE records with their files.
	HistoryFiles = 2
)

// Read moves the read marker of the name this connection joined Room
// under: every message up to Seq has been read. Markers only move forward,
// and never past the room's head. The JOIN must have carried a secret
// (else ERROR forbidden). When the marker moves, every device of the name
// gets MARKER, this connection included; otherwise nothing is answered.
type Read struct {
	Room string
	Seq  uint64
}

// List asks for the rooms of the server whose key contains the key of
// Query (all rooms for an empty Query). The server answers ROOMS.
type List struct{ Query string }

// Identified answers IDENTIFY: Name is the name as claimed, DMs the
// direct-message rooms of the name that hold messages, most recently
// active first (at most 100 of them).
type Identified struct {
	Name string
	DMs  []RoomState
}

// RoomState is where a room stands for one name.
type RoomState struct {
	Room string
	Head uint64 // last sequence number
	Time uint64 // time of the last message, Unix milliseconds
	Read uint64 // the name's read marker
}

// PageFirst flags a PAGE that reaches the room's first message: nothing
// older exists.
const PageFirst = 1

// PageFull flags a PAGE whose records carry every MESSAGE field (reply,
// edited, reactions): the answer to a HISTORY with HistoryFull.
const PageFull = 2

// PageFiles flags a PAGE whose full records are each followed by their
// file: the answer to a HISTORY with HistoryFiles.
const PageFiles = 4

// Page answers HISTORY: messages of Room below Before, oldest first, at
// most 200 of them and 256 KiB of frame. First is set when no older
// message exists; otherwise the next page is asked for with Before set to
// the first message's Seq.
type Page struct {
	Room     string
	Before   uint64 // as asked
	First    bool
	Full     bool  // records carry every MESSAGE field (HISTORY asked for it)
	Files    bool  // full records are followed by their file (HISTORY asked for it)
	Messages []Msg // Room is not repeated on the wire; decoded copies carry it
}

// Rooms answers LIST: the rooms that have messages or members, never
// direct-message rooms, most members first, then most recently active
// first; at most 200 of them.
type Rooms struct {
	Query string
	Rooms []RoomInfo
}

// RoomInfo describes one room in a room list.
type RoomInfo struct {
	Room    string
	Members uint64 // names in the room now
	Head    uint64 // last sequence number, 0 for a room without messages
	Time    uint64 // time of the last message, Unix milliseconds; 0 if none
}

// Marker tells every device of a name that the name's read marker in
// Room moved to Seq.
type Marker struct {
	Room string
	Seq  uint64
}

// NoticeKind says why a NOTICE was sent.
type NoticeKind byte

const (
	// NoticeMention: the message names the receiver (@name).
	NoticeMention NoticeKind = 1
	// NoticeDirect: the message was posted in a direct-message room of
	// the receiver's name.
	NoticeDirect NoticeKind = 2
)

func (k NoticeKind) String() string {
	switch k {
	case NoticeMention:
		return "mention"
	case NoticeDirect:
		return "direct"
	}
	return "unknown"
}

// Notice carries a message that concerns the receiving identity, sent to
// every identified connection of the name whether or not it is in the
// room (a connection in the room also gets the MESSAGE).
type Notice struct {
	Kind NoticeKind
	Msg  Msg
}

func (*Identify) Type() Type   { return TypeIdentify }
func (*History) Type() Type    { return TypeHistory }
func (*Read) Type() Type       { return TypeRead }
func (*List) Type() Type       { return TypeList }
func (*Identified) Type() Type { return TypeIdentified }
func (*Page) Type() Type       { return TypePage }
func (*Rooms) Type() Type      { return TypeRooms }
func (*Marker) Type() Type     { return TypeMarker }
func (*Notice) Type() Type     { return TypeNotice }

func (m *Identify) appendPayload(b []byte) []byte {
	b = appendString(b, m.Name)
	b = appendString(b, m.Secret)
	return appendString(b, m.Key)
}

func (m *Identify) decode(r *fieldReader) {
	m.Name = r.string("name")
	m.Secret = string(r.raw("secret"))
	m.Key = string(r.raw("key"))
}

func (m *History) appendPayload(b []byte) []byte {
	b = appendString(b, m.Room)
	b = binary.AppendUvarint(b, m.Before)
	b = binary.AppendUvarint(b, m.Limit)
	var flags uint64
	if m.Full || m.Files {
		flags |= HistoryFull
	}
	if m.Files {
		flags |= HistoryFiles
	}
	if flags != 0 {
		b = binary.AppendUvarint(b, flags) // flags is a uint (README.md section 3)
	}
	return b
}

func (m *History) decode(r *fieldReader) {
	m.Room = r.string("room")
	m.Before = r.uvarint("before")
	m.Limit = r.uvarint("limit")
	flags := r.optUvarint("flags")
	m.Files = flags&HistoryFiles != 0
	m.Full = flags&HistoryFull != 0 || m.Files
}

func (m *Read) appendPayload(b []byte) []byte {
	b = appendString(b, m.Room)
	return binary.AppendUvarint(b, m.Seq)
}

func (m *Read) decode(r *fieldReader) {
	m.Room = r.string("room")
	m.Seq = r.uvarint("seq")
}

func (m *List) appendPayload(b []byte) []byte { return appendString(b, m.Query) }
func (m *List) decode(r *fieldReader)         { m.Query = r.string("query") }

func (m *Identified) appendPayload(b []byte) []byte {
	b = appendString(b, m.Name)
	b = binary.AppendUvarint(b, uint64(len(m.DMs)))
	for _, d := range m.DMs {
		b = appendString(b, d.Room)
		b = binary.AppendUvarint(b, d.Head)
		b = binary.AppendUvarint(b, d.Time)
		b = binary.AppendUvarint(b, d.Read)
	}
	return b
}

func (m *Identified) decode(r *fieldReader) {
	m.Name = r.string("name")
	n := r.count("dms", 4)
	if n > 0 {
		m.DMs = make([]RoomState, n)
		for i := range m.DMs {
			d := &m.DMs[i]
			d.Room = r.string("room")
			d.Head = r.uvarint("head")
			d.Time = r.uvarint("time")
			d.Read = r.uvarint("read")
		}
	}
}

func (m *Page) appendPayload(b []byte) []byte {
	b = appendString(b, m.Room)
	b = binary.AppendUvarint(b, m.Before)
	var flags byte
	if m.First {
		flags |= PageFirst
	}
	if m.Full || m.Files {
		flags |= PageFull
	}
	if m.Files {
		flags |= PageFiles
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(len(m.Messages)))
	for i := range m.Messages {
		x := &m.Messages[i]
		if m.Files {
			b = appendFile(x.appendRecord(b), x.File)
		} else if m.Full {
			b = x.appendRecord(b)
		} else {
			b = x.appendBase(b)
		}
	}
	return b
}

func (m *Page) decode(r *fieldReader) {
	m.Room = r.string("room")
	m.Before = r.uvarint("before")
	flags := r.byte("flags")
	m.First = flags&PageFirst != 0
	m.Full = flags&PageFull != 0
	m.Files = m.Full && flags&PageFiles != 0
	// A record is at least 5 bytes (seq, time and three empty strings),
	// a full one 8 (reply, edited, no reactions), one with files 9.
	minRecord := 5
	if m.Full {
		minRecord = 8
	}
	if m.Files {
		minRecord = 9
	}
	n := r.count("messages", minRecord)
	if n > 0 {
		m.Messages = make([]Msg, n)
		for i := range m.Messages {
			x := &m.Messages[i]
			x.Room = m.Room
			if m.Full {
				x.decodeRecord(r)
				if m.Files {
					x.File = decodeFile(r)
				}
			} else {
				x.decodeBase(r)
			}
		}
	}
}

func (m *Rooms) appendPayload(b []byte) []byte {
	b = appendString(b, m.Query)
	b = binary.AppendUvarint(b, uint64(len(m.Rooms)))
	for _, x := range m.Rooms {
		b = appendString(b, x.Room)
		b = binary.AppendUvarint(b, x.Members)
		b = binary.AppendUvarint(b, x.Head)
		b = binary.AppendUvarint(b, x.Time)
	}
	return b
}

func (m *Rooms) decode(r *fieldReader) {
	m.Query = r.string("query")
	n := r.count("rooms", 4)
	if n > 0 {
		m.Rooms = make([]RoomInfo, n)
		for i := range m.Rooms {
			x := &m.Rooms[i]
			x.Room = r.string("room")
			x.Members = r.uvarint("members")
			x.Head = r.uvarint("head")
			x.Time = r.uvarint("time")
		}
	}
}

func (m *Marker) appendPayload(b []byte) []byte {
	b = appendString(b, m.Room)
	return binary.AppendUvarint(b, m.Seq)
}

func (m *Marker) decode(r *fieldReader) {
	m.Room = r.string("room")
	m.Seq = r.uvarint("seq")
}

func (m *Notice) appendPayload(b []byte) []byte {
	b = append(b, byte(m.Kind))
	return m.Msg.appendFields(b)
}

func (m *Notice) decode(r *fieldReader) {
	m.Kind = NoticeKind(r.byte("kind"))
	m.Msg.decode(r)
}
