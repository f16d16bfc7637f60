package protocol

import "fmt"

// ErrorCode identifies the reason of an ERROR frame. The hundreds say the
// class: 1xx the client broke the protocol, 2xx a join was refused,
// 3xx a server-side condition that a reconnect may cure.
type ErrorCode uint64

// Error codes. The spec (README.md) lists them with their flags.
const (
	CodeMalformed          ErrorCode = 100 // payload cannot be decoded
	CodeFrameTooLarge      ErrorCode = 101 // length prefix above the limit
	CodeUnknownType        ErrorCode = 102 // type byte not in the spec
	CodeUnexpected         ErrorCode = 103 // message not allowed now (SEND before JOIN, second HELLO, …)
	CodeInvalidUTF8        ErrorCode = 104 // a text field is not valid UTF-8
	CodeUnsupportedVersion ErrorCode = 105 // HELLO version the server does not speak
	CodeTooLong            ErrorCode = 106 // a field is longer than WELCOME allows, or empty where it must not be
	CodeTLSRequired        ErrorCode = 107 // plain protocol on a port that needs TLS
	CodeInvalidName        ErrorCode = 200 // name has characters that are not allowed
	CodeNameTaken          ErrorCode = 201 // another member of the room has this name
	CodeInvalidRoom        ErrorCode = 202 // room name has characters that are not allowed
	CodeTooManyRooms       ErrorCode = 203 // connection is already in WELCOME.MaxRooms rooms
	CodeUnauthorized       ErrorCode = 204 // missing or wrong server key; closes, to slow down guessing
	CodeNameOwned          ErrorCode = 205 // the name belongs to another name key on this server
	CodeForbidden          ErrorCode = 206 // needs an identity this connection lacks: another pair's DM, a name without name key
	CodeBanned             ErrorCode = 207 // the name or address is banned from the room, or was just banned
	CodeMuted              ErrorCode = 208 // a SEND of a name muted in the room; not stored
	CodeInviteOnly         ErrorCode = 209 // the room is invite-only and the JOIN has no valid invite
	CodeKicked             ErrorCode = 210 // an operator removed the name from the room
	CodeNotFound           ErrorCode = 211 // a moderation target (member, message, ban) does not exist
	CodeRoomCreateRefused  ErrorCode = 212 // the room does not exist and this JOIN may not create it (room creation policy)
	CodeRoomLimit          ErrorCode = 213 // the room does not exist and creating it is over a limit (server's rooms, address's creations)
	CodeInvalid            ErrorCode = 214 // a request's value the server does not take: a reaction outside protocol.Reactions, a search without words, a change of a kind it does not know
	CodeTooBig             ErrorCode = 215 // a file over the server's -max-upload
	CodeQuota              ErrorCode = 216 // storing the file would exceed the name's or the server's file quota
	CodeServerRestarting   ErrorCode = 300 // server is shutting down
	CodeSlowConsumer       ErrorCode = 301 // the client did not read fast enough
	CodeTimeout            ErrorCode = 302 // handshake or keepalive deadline passed
	CodeRateLimited        ErrorCode = 303 // the client sent too much, too fast
	CodeUnavailable        ErrorCode = 304 // storage failed; the message was not stored
	CodeTooManyConnections ErrorCode = 305 // per-address connection limit reached
)

type codeInfo struct {
	name  string
	flags ErrorFlags
}

var codes = map[ErrorCode]codeInfo{
	CodeMalformed:          {"malformed", ErrorClosing},
	CodeFrameTooLarge:      {"frame-too-large", ErrorClosing},
	CodeUnknownType:        {"unknown-type", ErrorClosing},
	CodeUnexpected:         {"unexpected", ErrorClosing},
	CodeInvalidUTF8:        {"invalid-utf8", ErrorClosing},
	CodeUnsupportedVersion: {"unsupported-version", ErrorClosing},
	CodeTooLong:            {"too-long", ErrorClosing},
	CodeTLSRequired:        {"tls-required", ErrorClosing},
	CodeInvalidName:        {"invalid-name", 0},
	CodeNameTaken:          {"name-taken", 0},
	CodeInvalidRoom:        {"invalid-room", 0},
	CodeTooManyRooms:       {"too-many-rooms", 0},
	CodeUnauthorized:       {"unauthorized", ErrorClosing},
	CodeNameOwned:          {"name-owned", 0},
	CodeForbidden:          {"forbidden", 0},
	CodeBanned:             {"banned", 0},
	CodeMuted:              {"muted", 0},
	CodeInviteOnly:         {"invite-only", 0},
	CodeKicked:             {"kicked", 0},
	CodeNotFound:           {"not-found", 0},
	CodeRoomCreateRefused:  {"room-create-refused", 0},
	CodeRoomLimit:          {"room-limit", 0},
	CodeInvalid:            {"invalid", 0},
	CodeTooBig:             {"too-big", 0},
	CodeQuota:              {"quota", 0},
	CodeServerRestarting:   {"server-restarting", ErrorClosing | ErrorReconnect},
	CodeSlowConsumer:       {"slow-consumer", ErrorClosing | ErrorReconnect},
	CodeTimeout:            {"timeout", ErrorClosing | ErrorReconnect},
	CodeRateLimited:        {"rate-limited", ErrorClosing | ErrorReconnect},
	CodeUnavailable:        {"unavailable", ErrorClosing | ErrorReconnect},
	CodeTooManyConnections: {"too-many-connections", ErrorClosing | ErrorReconnect},
}

// String returns the code's short name, e.g. "name-taken".
func (c ErrorCode) String() string {
	if info, ok := codes[c]; ok {
		return info.name
	}
	return fmt.Sprintf("error-%d", uint64(c))
}

// DefaultFlags are the flags a server sends with this code.
func (c ErrorCode) DefaultFlags() ErrorFlags {
	if info, ok := codes[c]; ok {
		return info.flags
	}
	return ErrorClosing
}

// NewError builds an ERROR frame with the code's default flags.
func NewError(code ErrorCode, room, text string) *Error {
	return &Error{Code: code, Flags: code.DefaultFlags(), Room: room, Text: text}
}
