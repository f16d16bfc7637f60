package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Version is the protocol version this package speaks.
const Version = 1

// Magic opens every HELLO payload, so a server can tell a chat client from
// a stray HTTP request or TLS handshake on its port.
const Magic = "CHAT"

// Frame size limits, in bytes of type + payload (the length field's value).
const (
	// MaxFrame is the absolute limit in both directions. A peer never sends
	// a longer frame and refuses one before allocating anything for it.
	MaxFrame = 1 << 20
	// DefaultMaxClientFrame is the default limit for frames a server accepts
	// from clients; WELCOME announces the value in force.
	DefaultMaxClientFrame = 16 << 10
	// MaxHelloFrame bounds the first frame of a connection, before the
	// server has announced anything.
	MaxHelloFrame = 512
	// LengthSize is the size of the length prefix.
	LengthSize = 4
)

// Type identifies a message. Client-to-server types are below 0x80,
// server-to-client types have the high bit set; PING and PONG go both ways.
type Type byte

// Message types.
const (
	TypeHello      Type = 0x01
	TypeJoin       Type = 0x02
	TypeSend       Type = 0x03
	TypeLeave      Type = 0x04
	TypeBye        Type = 0x05
	TypePing       Type = 0x10
	TypePong       Type = 0x11
	TypeIdentify   Type = 0x06
	TypeHistory    Type = 0x07
	TypeRead       Type = 0x08
	TypeList       Type = 0x09
	TypeModerate   Type = 0x0a
	TypeChange     Type = 0x0b
	TypeTyping     Type = 0x0c
	TypeSearch     Type = 0x0d
	TypeUpload     Type = 0x0e
	TypeFetch      Type = 0x0f
	TypeWelcome    Type = 0x81
	TypeJoined     Type = 0x82
	TypeAck        Type = 0x83
	TypeMessage    Type = 0x84
	TypePresence   Type = 0x85
	TypeLeft       Type = 0x86
	TypeError      Type = 0x87
	TypeIdentified Type = 0x88
	TypePage       Type = 0x89
	TypeRooms      Type = 0x8a
	TypeMarker     Type = 0x8b
	TypeNotice     Type = 0x8c
	TypeModerated  Type = 0x8d
	TypeModEvent   Type = 0x8e
	TypeUpdate     Type = 0x8f
	TypeIsTyping   Type = 0x90
	TypeResults    Type = 0x91
	TypeUploaded   Type = 0x92
	TypePart       Type = 0x93
)

var typeNames = map[Type]string{
	TypeHello: "HELLO", TypeJoin: "JOIN", TypeSend: "SEND", TypeLeave: "LEAVE",
	TypeBye: "BYE", TypePing: "PING", TypePong: "PONG", TypeWelcome: "WELCOME",
	TypeJoined: "JOINED", TypeAck: "ACK", TypeMessage: "MESSAGE",
	TypePresence: "PRESENCE", TypeLeft: "LEFT", TypeError: "ERROR",
	TypeIdentify: "IDENTIFY", TypeHistory: "HISTORY", TypeRead: "READ", TypeList: "LIST",
	TypeIdentified: "IDENTIFIED", TypePage: "PAGE", TypeRooms: "ROOMS", TypeMarker: "MARKER",
	TypeNotice: "NOTICE", TypeModerate: "MODERATE", TypeModerated: "MODERATED", TypeModEvent: "MODEVENT",
	TypeChange: "CHANGE", TypeTyping: "TYPING", TypeSearch: "SEARCH", TypeUpdate: "UPDATE",
	TypeIsTyping: "IS-TYPING", TypeResults: "RESULTS", TypeUpload: "UPLOAD", TypeUploaded: "UPLOADED",
	TypeFetch: "FETCH", TypePart: "PART",
}

func (t Type) String() string {
	if s, ok := typeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("Type(0x%02x)", byte(t))
}

// DecodeError reports a frame that breaks the protocol. Code is the error
// code a server answers it with.
type DecodeError struct {
	Code   ErrorCode
	Reason string
}

func (e *DecodeError) Error() string { return e.Code.String() + ": " + e.Reason }

// ErrTruncated is returned by ReadFrame when the stream ends inside a frame.
var ErrTruncated = errors.New("protocol: stream ended inside a frame")

// ReadFrame reads one frame from r and returns its body (type + payload).
// The length is checked against max before anything is allocated; buf is
// reused when it is large enough, so the body is only valid until the next
// call with the same buf. A clean end of stream between frames is io.EOF.
func ReadFrame(r io.Reader, max int, buf []byte) ([]byte, error) {
	var hdr [LengthSize]byte
	if n, err := io.ReadFull(r, hdr[:]); err != nil {
		if n > 0 && errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, ErrTruncated
		}
		return nil, err
	}
	n, err := BodyLength(hdr, max)
	if err != nil {
		return nil, err
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, ErrTruncated
		}
		return nil, err
	}
	return buf, nil
}

// BodyLength validates a length prefix against max and returns it.
func BodyLength(hdr [LengthSize]byte, max int) (int, error) {
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 {
		return 0, &DecodeError{Code: CodeMalformed, Reason: "zero-length frame"}
	}
	if max > MaxFrame {
		max = MaxFrame
	}
	if uint64(n) > uint64(max) {
		return 0, &DecodeError{Code: CodeFrameTooLarge,
			Reason: fmt.Sprintf("frame of %d bytes exceeds the limit of %d%s", n, max, sniff(hdr))}
	}
	return int(n), nil
}

// sniff recognises the first bytes of other protocols that reach a chat
// peer by mistake, so the error can say what happened.
func sniff(hdr [LengthSize]byte) string {
	switch s := string(hdr[:]); {
	case (hdr[0] == 0x16 || hdr[0] == 0x15) && hdr[1] == 0x03:
		return " (this looks like TLS: the other side expects TLS, this one speaks the plain chat protocol)"
	case s == "HTTP":
		return " (this looks like an HTTP response: the address is a web server, not a chat server)"
	case s == "GET " || s == "POST" || s == "HEAD" || s == "PUT " || s == "OPTI" || s == "CONN" || s == "PRI ":
		return " (this looks like an HTTP request: this port speaks the chat protocol, not HTTP)"
	}
	return ""
}

// AppendFrame appends m as a complete frame (length, type, payload) to dst.
func AppendFrame(dst []byte, m Message) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, byte(m.Type()))
	dst = m.appendPayload(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-LengthSize))
	return dst
}

// Encode returns m as a complete frame in a new slice.
func Encode(m Message) []byte { return AppendFrame(make([]byte, 0, 64), m) }

// Decode parses a frame body (type + payload, without the length prefix).
// Strings in the result are copies; body may be reused afterwards.
func Decode(body []byte) (Message, error) {
	if len(body) == 0 {
		return nil, &DecodeError{Code: CodeMalformed, Reason: "empty frame"}
	}
	var m Message
	switch Type(body[0]) {
	case TypeHello:
		m = new(Hello)
	case TypeJoin:
		m = new(Join)
	case TypeSend:
		m = new(Send)
	case TypeLeave:
		m = new(Leave)
	case TypeBye:
		m = new(Bye)
	case TypePing:
		m = new(Ping)
	case TypePong:
		m = new(Pong)
	case TypeWelcome:
		m = new(Welcome)
	case TypeJoined:
		m = new(Joined)
	case TypeAck:
		m = new(Ack)
	case TypeMessage:
		m = new(Msg)
	case TypePresence:
		m = new(Presence)
	case TypeLeft:
		m = new(Left)
	case TypeError:
		m = new(Error)
	case TypeIdentify:
		m = new(Identify)
	case TypeHistory:
		m = new(History)
	case TypeRead:
		m = new(Read)
	case TypeList:
		m = new(List)
	case TypeIdentified:
		m = new(Identified)
	case TypePage:
		m = new(Page)
	case TypeRooms:
		m = new(Rooms)
	case TypeMarker:
		m = new(Marker)
	case TypeNotice:
		m = new(Notice)
	case TypeModerate:
		m = new(Moderate)
	case TypeModerated:
		m = new(Moderated)
	case TypeModEvent:
		m = new(ModEvent)
	case TypeChange:
		m = new(Change)
	case TypeTyping:
		m = new(Typing)
	case TypeSearch:
		m = new(Search)
	case TypeUpdate:
		m = new(Update)
	case TypeIsTyping:
		m = new(IsTyping)
	case TypeResults:
		m = new(Results)
	case TypeUpload:
		m = new(Upload)
	case TypeUploaded:
		m = new(Uploaded)
	case TypeFetch:
		m = new(Fetch)
	case TypePart:
		m = new(Part)
	default:
		return nil, &DecodeError{Code: CodeUnknownType, Reason: fmt.Sprintf("unknown message type 0x%02x", body[0])}
	}
	r := fieldReader{b: body[1:]}
	m.decode(&r)
	if r.err != nil {
		r.err.Reason = Type(body[0]).String() + " " + r.err.Reason
		return nil, r.err
	}
	return m, nil
}
