package protocol

import "encoding/binary"

// ModAction is what a MODERATE asks for (README.md section 4,
// "Moderation"). The numbers are part of the wire format.
type ModAction byte

// Moderation actions.
const (
	// ModOper makes the connection a server operator; Text is the token.
	ModOper ModAction = 1
	// ModOp makes Target an operator of the room.
	ModOp ModAction = 2
	// ModDeop takes the room operator right away from Target.
	ModDeop ModAction = 3
	// ModKick removes Target from the room; it may join again.
	ModKick ModAction = 4
	// ModBan removes Target and refuses the name for Seconds (0: for good).
	ModBan ModAction = 5
	// ModBanAddress bans the addresses of Target's connections in the room
	// (IPv4 /32, IPv6 /64) for Seconds and removes every connection from them.
	ModBanAddress ModAction = 6
	// ModUnban lifts a ban of a name or of an address (Target).
	ModUnban ModAction = 7
	// ModMute refuses Target's SENDs in the room for Seconds (0: for good).
	ModMute ModAction = 8
	// ModUnmute lifts a mute.
	ModUnmute ModAction = 9
	// ModDelete removes the text of the message Seq.
	ModDelete ModAction = 10
	// ModTopic sets the room's topic to Text (empty: none).
	ModTopic ModAction = 11
	// ModInviteOnlyOn makes the room invite-only.
	ModInviteOnlyOn ModAction = 12
	// ModInviteOnlyOff opens the room to everybody again.
	ModInviteOnlyOff ModAction = 13
	// ModInvite makes an invite code valid for Seconds (0: the server's
	// default); MODERATED carries it.
	ModInvite ModAction = 14
)

var modActionNames = [...]string{
	ModOper: "oper", ModOp: "op", ModDeop: "deop", ModKick: "kick", ModBan: "ban",
	ModBanAddress: "ban-address", ModUnban: "unban", ModMute: "mute", ModUnmute: "unmute",
	ModDelete: "delete", ModTopic: "topic", ModInviteOnlyOn: "invite-only-on",
	ModInviteOnlyOff: "invite-only-off", ModInvite: "invite",
}

// String is the action's name in the spec, e.g. "ban-address".
func (a ModAction) String() string {
	if int(a) < len(modActionNames) && modActionNames[a] != "" {
		return modActionNames[a]
	}
	return "unknown"
}

// Known reports whether a is an action of this revision.
func (a ModAction) Known() bool { return a.String() != "unknown" }

// ParseModAction is the action named s (as String returns it).
func ParseModAction(s string) (ModAction, bool) {
	for i, n := range modActionNames {
		if n != "" && n == s {
			return ModAction(i), true
		}
	}
	return 0, false
}

// Moderate asks the server for a moderation action in Room.
type Moderate struct {
	Room    string // a joined room; empty only for ModOper
	Action  ModAction
	Target  string // a member name; for ModUnban a name or an address
	Seq     uint64 // ModDelete: the message
	Seconds uint64 // ModBan, ModBanAddress, ModMute: duration (0: for good); ModInvite: validity (0: default)
	Text    string // ModKick, ModBan: reason; ModTopic: the topic; ModOper: the token
}

// Moderated answers a Moderate that succeeded.
type Moderated struct {
	Room   string // canonical room; empty for ModOper
	Action ModAction
	Target string // as sent, canonical where a name
	Text   string // ModInvite: the invite code
}

// ModEvent tells every connection in Room what a moderator did. The
// targets of a kick or ban get it before they are removed.
type ModEvent struct {
	Room   string
	Action ModAction // never ModOper or ModInvite
	Actor  string    // the operator's name in the room, or "operator"
	Target string    // the name acted on, never an address
	Seq    uint64    // ModDelete: the deleted message
	Until  uint64    // end of a timed ban or mute, Unix milliseconds; 0: for good / not applicable
	Text   string    // reason or topic
}

// JoinedModes are the JOINED mode bits.
type JoinedModes uint64

const (
	// ModeInviteOnly: the room admits only invited names and operators.
	ModeInviteOnly JoinedModes = 1 << iota
	// ModeOperator: the joining name is an operator of the room.
	ModeOperator
	// ModeMuted: the joining name is muted in the room.
	ModeMuted
	// ModeNoTyping: the room has more members than the server forwards
	// typing indicators for (README.md section 4, "Acting on messages"):
	// a client sends no TYPING there and shows none.
	ModeNoTyping
)

func (*Moderate) Type() Type  { return TypeModerate }
func (*Moderated) Type() Type { return TypeModerated }
func (*ModEvent) Type() Type  { return TypeModEvent }

func (m *Moderate) appendPayload(b []byte) []byte {
	b = appendString(b, m.Room)
	b = append(b, byte(m.Action))
	b = appendString(b, m.Target)
	b = binary.AppendUvarint(b, m.Seq)
	b = binary.AppendUvarint(b, m.Seconds)
	return appendString(b, m.Text)
}

func (m *Moderate) decode(r *fieldReader) {
	m.Room = r.string("room")
	m.Action = ModAction(r.byte("action"))
	m.Target = r.string("target")
	m.Seq = r.uvarint("seq")
	m.Seconds = r.uvarint("seconds")
	m.Text = r.string("text")
}

func (m *Moderated) appendPayload(b []byte) []byte {
	b = appendString(b, m.Room)
	b = append(b, byte(m.Action))
	b = appendString(b, m.Target)
	return appendString(b, m.Text)
}

func (m *Moderated) decode(r *fieldReader) {
	m.Room = r.string("room")
	m.Action = ModAction(r.byte("action"))
	m.Target = r.string("target")
	m.Text = r.string("text")
}

func (m *ModEvent) appendPayload(b []byte) []byte {
	b = appendString(b, m.Room)
	b = append(b, byte(m.Action))
	b = appendString(b, m.Actor)
	b = appendString(b, m.Target)
	b = binary.AppendUvarint(b, m.Seq)
	b = binary.AppendUvarint(b, m.Until)
	return appendString(b, m.Text)
}

func (m *ModEvent) decode(r *fieldReader) {
	m.Room = r.string("room")
	m.Action = ModAction(r.byte("action"))
	m.Actor = r.string("actor")
	m.Target = r.string("target")
	m.Seq = r.uvarint("seq")
	m.Until = r.uvarint("until")
	m.Text = r.string("text")
}
