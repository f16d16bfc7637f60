package chatapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"chat/app/internal/ui"
	"chat/protocol"
)

// unreachable words a failed first connection for the join form.
func unreachable(addr string, err error) string {
	return fmt.Sprintf("Cannot reach the chat server at %s: %s. Check the address, or try again when the server is up.", addr, netReason(err))
}

// netReason is the short, human part of a network error.
func netReason(err error) string {
	var dnsErr *net.DNSError
	var perr *protocol.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "nothing is listening there (connection refused)"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "the server closed the connection"
	case errors.As(err, &dnsErr):
		return "the host name " + dnsErr.Name + " is not known"
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return "the network is unreachable"
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return "no answer in time"
	case errors.As(err, &perr):
		return serverText(perr)
	}
	return strings.TrimSuffix(err.Error(), ".")
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// serverText is what the server said, or the code's name if nothing.
func serverText(e *protocol.Error) string {
	if e.Text != "" {
		return strings.TrimSuffix(e.Text, ".")
	}
	return e.Code.String()
}

// refusal words an error that ends a join or a chat (a RoomError's, or a
// terminal StateChanged's) and names the form field to fix.
func refusal(err error, name, room string) (string, ui.Field) {
	var e *protocol.Error
	if !errors.As(err, &e) {
		return "Disconnected: " + strings.TrimSuffix(err.Error(), ".") + ".", ui.NoField
	}
	switch e.Code {
	case protocol.CodeNameTaken:
		return fmt.Sprintf("The name %s is already taken in #%s. Pick another name.", name, room), ui.NameField
	case protocol.CodeInvalidName:
		return "The server does not accept that name: " + serverText(e) + ".", ui.NameField
	case protocol.CodeInvalidRoom:
		return "The server does not accept that room name: " + serverText(e) + ".", ui.RoomField
	case protocol.CodeUnsupportedVersion:
		return "This app and the server speak different protocol versions: " + serverText(e) + ".", ui.NoField
	case protocol.CodeUnauthorized:
		return "This server is private: it needs an access key, which this app cannot send yet.", ui.NoField
	case protocol.CodeReplaced:
		return fmt.Sprintf("You joined #%s as %s from somewhere else, so this window left the room.", room, name), ui.NoField
	case protocol.CodeTooManyRooms:
		return "The server allows no more rooms for this connection.", ui.RoomField
	case protocol.CodeTooLong:
		text := serverText(e)
		switch {
		case strings.Contains(text, "room name"):
			return "The room name is too long: " + text + ".", ui.RoomField
		case strings.Contains(text, "name"):
			return "The name is too long: " + text + ".", ui.NameField
		}
		return "The server refused: " + text + ".", ui.NoField
	}
	return "The server refused: " + serverText(e) + ".", ui.NoField
}
