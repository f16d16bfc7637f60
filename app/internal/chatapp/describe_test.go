package chatapp

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"chat/app/internal/ui"
	"chat/protocol"
)

func TestNetReason(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}
	for _, c := range []struct {
		err  error
		want string
	}{
		{refused, "nothing is listening there (connection refused)"},
		{&net.OpError{Op: "dial", Err: &net.DNSError{Name: "chat.invalid", Err: "no such host"}}, "the host name chat.invalid is not known"},
		{fmt.Errorf("reading: %w", io.EOF), "the server closed the connection"},
		{&net.OpError{Op: "read", Err: &os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}}, "the server closed the connection"},
		{protocol.NewError(protocol.CodeServerRestarting, "", "back soon."), "back soon"},
		{errors.New("no data from the server for 3s"), "no data from the server for 3s"},
	} {
		if got := netReason(c.err); got != c.want {
			t.Errorf("netReason(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

func TestRefusal(t *testing.T) {
	for _, c := range []struct {
		err       error
		want      string
		wantField ui.Field
	}{
		{protocol.NewError(protocol.CodeNameTaken, "general", "someone has it"), "The name Ann is already taken in #general. Pick another name.", ui.NameField},
		{protocol.NewError(protocol.CodeInvalidName, "general", "the name is empty"), "The server does not accept that name: the name is empty.", ui.NameField},
		{protocol.NewError(protocol.CodeInvalidRoom, "", "the room name is empty"), "The server does not accept that room name: the room name is empty.", ui.RoomField},
		{protocol.NewError(protocol.CodeUnsupportedVersion, "", "this server speaks protocol version 2, the client version 1: update the app"),
			"This app and the server speak different protocol versions: this server speaks protocol version 2, the client version 1: update the app.", ui.NoField},
		{protocol.NewError(protocol.CodeTooLong, "general", "the name is 40 bytes; the limit is 32"), "The name is too long: the name is 40 bytes; the limit is 32.", ui.NameField},
		{protocol.NewError(protocol.CodeTooLong, "", "the room name is 70 bytes; the limit is 64"), "The room name is too long: the room name is 70 bytes; the limit is 64.", ui.RoomField},
		{protocol.NewError(protocol.CodeReplaced, "general", ""), "You joined #general as Ann from somewhere else, so this window left the room.", ui.NoField},
		{errors.New("boom"), "Disconnected: boom.", ui.NoField},
	} {
		got, field := refusal(c.err, "Ann", "general")
		if got != c.want || field != c.wantField {
			t.Errorf("refusal(%v) = %q, %v; want %q, %v", c.err, got, field, c.want, c.wantField)
		}
		if strings.Contains(got, "..") {
			t.Errorf("refusal(%v) = %q: doubled period", c.err, got)
		}
	}
}
