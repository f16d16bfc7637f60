package chatapp

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"chat/app/internal/ui"
	"chat/client"
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
	owned := protocol.NewError(protocol.CodeNameOwned, "general",
		`the name "Ann" belongs to someone else on this server; if it is yours, use the name key from the device that claimed it`)
	for _, c := range []struct {
		err  error
		key  string
		want ui.JoinFailed
	}{
		{protocol.NewError(protocol.CodeNameTaken, "general", `"Ann" is already in general; choose another name`), "",
			ui.JoinFailed{Reason: "The name Ann is already taken in #general. Pick another name.", Field: ui.NameField}},
		{owned, "", ui.JoinFailed{Reason: "The name Ann belongs to someone else on this server. If it is yours, enter the name key from the device you first used it on (below), or pick another name.",
			Field: ui.NameField, OfferNameKey: true}},
		{protocol.NewError(protocol.CodeInvalidName, "general", "the name is empty"), "",
			ui.JoinFailed{Reason: "The server does not accept that name: the name is empty.", Field: ui.NameField}},
		{protocol.NewError(protocol.CodeInvalidRoom, "", "the room name is empty"), "",
			ui.JoinFailed{Reason: "The server does not accept that room name: the room name is empty.", Field: ui.RoomField}},
		{protocol.NewError(protocol.CodeUnsupportedVersion, "", "this server speaks protocol version 2, the client version 1: update the app"), "",
			ui.JoinFailed{Reason: "This app and the server speak different protocol versions: this server speaks protocol version 2, the client version 1: update the app."}},
		{protocol.NewError(protocol.CodeUnauthorized, "general", "this server needs its access key: ask its operator for it"), "",
			ui.JoinFailed{Reason: "This server is private: enter the server key its operator gave you.", Field: ui.KeyField}},
		{protocol.NewError(protocol.CodeUnauthorized, "general", "this server needs its access key: ask its operator for it"), "wrong",
			ui.JoinFailed{Reason: "This server did not accept that server key. Check it with the server's operator: it may have changed.", Field: ui.KeyField}},
		{protocol.NewError(protocol.CodeTooLong, "general", "the name is 40 bytes; the limit is 32"), "",
			ui.JoinFailed{Reason: "The name is too long: the name is 40 bytes; the limit is 32.", Field: ui.NameField}},
		{protocol.NewError(protocol.CodeTooLong, "", "the room name is 70 bytes; the limit is 64"), "",
			ui.JoinFailed{Reason: "The room name is too long: the room name is 70 bytes; the limit is 64.", Field: ui.RoomField}},
		{protocol.NewError(protocol.CodeTLSRequired, "", "this port needs TLS: connect with tls://HOST:PORT (not the plain protocol)"), "",
			ui.JoinFailed{Reason: "This server takes only TLS connections: write its address as tls://chat.example.org:7878.", Field: ui.ServerField}},
		{errors.New("boom"), "", ui.JoinFailed{Reason: "Disconnected: boom."}},
	} {
		got := refusal(c.err, attempt{server: "chat.example.org:7878", name: "Ann", room: "general", key: c.key})
		if got != c.want {
			t.Errorf("refusal(%v, key %q) = %+v; want %+v", c.err, c.key, got, c.want)
		}
		if strings.Contains(got.Reason, "..") {
			t.Errorf("refusal(%v) = %q: doubled period", c.err, got.Reason)
		}
	}
}

func TestCertWhy(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{x509.UnknownAuthorityError{}, "not signed by an authority this device trusts"},
		{x509.HostnameError{Host: "chat.example.org"}, "made out for another name than chat.example.org"},
		{x509.CertificateInvalidError{Reason: x509.Expired}, "has expired"},
		{errors.New("odd"), "This device does not trust its certificate: odd."},
	} {
		got := certWhy(&client.CertificateError{Host: "chat.example.org", Fingerprint: "SHA256:00", Err: c.err})
		if !strings.Contains(got, c.want) {
			t.Errorf("certWhy(%v) = %q, want it to say %q", c.err, got, c.want)
		}
	}
}
