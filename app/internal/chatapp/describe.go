package chatapp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"syscall"

	"chat/app/internal/ui"
	"chat/client"
	"chat/protocol"
)

// unreachable words a failed first connection for the join form.
func unreachable(addr string, err error) string {
	return fmt.Sprintf("Cannot reach the chat server at %s%s. Check the address, or try again when the server is up.", addr, because(dialReason(err)))
}

// offline words why the chat is offline, for the banner: a failed
// reconnect attempt, or the loss of the connection (lost). The UI adds the
// final period and when the next attempt is.
func offline(addr string, lost bool, err error) string {
	if lost {
		return "Lost the connection to " + addr + because(netReason(err))
	}
	return "Cannot reach the server at " + addr + because(dialReason(err))
}

// because is ": reason", or nothing when the reason is not known.
func because(reason string) string {
	if reason == "" {
		return ""
	}
	return ": " + reason
}

// dialReason is netReason for a connection attempt. A browser tells a
// page nothing about a WebSocket that did not open (no refused port, no
// unknown host, no certificate: it is not the page's business), and the
// WebSocket library reports that as a closed connection; then the only
// honest reason is none.
func dialReason(err error) string {
	if errors.Is(err, net.ErrClosed) {
		return ""
	}
	return netReason(err)
}

// webSocketStatus is how the WebSocket library reports an HTTP answer
// other than the protocol switch (a page not found, say).
var webSocketStatus = regexp.MustCompile(`expected handshake response status code 101 but got (\d+)`)

// netReason is the short, human part of a network error. Errors of the
// libraries below are often chains of Go calls ("failed to WebSocket
// dial: failed to send handshake request: Get …"): the user gets words.
func netReason(err error) string {
	var dnsErr *net.DNSError
	var perr *protocol.Error
	var tlsRecord tls.RecordHeaderError
	switch {
	case err == nil:
		return ""
	case errors.Is(err, net.ErrClosed):
		return "the connection was closed"
	case errors.As(err, &tlsRecord):
		return "it does not answer in TLS (try the address without tls://)"
	case webSocketStatus.MatchString(err.Error()):
		return "there is no chat server's WebSocket at that address (the web server answered with status " + webSocketStatus.FindStringSubmatch(err.Error())[1] + ")"
	case strings.Contains(err.Error(), "malformed HTTP"):
		return "it does not answer as a web server (this may be the chat port, not the web address)"
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
	return strings.TrimSuffix(strings.TrimPrefix(err.Error(), "failed to WebSocket dial: "), ".")
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

// attempt is what a join asked for: the words for its refusal name it.
// joining is whether the room has not been joined yet.
type attempt struct {
	server, name, room, key string
	joining                 bool
}

// refusal words an error that ends a join or a chat (a RoomError's, or a
// terminal StateChanged's) and names the form field to fix.
func refusal(err error, a attempt) ui.JoinFailed {
	var e *protocol.Error
	if !errors.As(err, &e) {
		// The client gives up by itself on what retrying cannot fix
		// about the address (a web port given as the chat port, say):
		// the server field is the one to change.
		prefix := "Disconnected: "
		if a.joining {
			prefix = "Cannot connect: "
		}
		return ui.JoinFailed{Reason: prefix + netReason(err) + ".", Field: ui.ServerField}
	}
	fail := func(reason string, f ui.Field) ui.JoinFailed { return ui.JoinFailed{Reason: reason, Field: f} }
	switch e.Code {
	case protocol.CodeNameOwned:
		// The server remembers who claimed the name: it is not about this
		// room, and the owner's other device holds the fix.
		return ui.JoinFailed{
			Reason: fmt.Sprintf("The name %s belongs to someone else on this server. "+
				"If it is yours, enter the name key from the device you first used it on (below), or pick another name.", a.name),
			Field: ui.NameField, OfferNameKey: true,
		}
	case protocol.CodeNameTaken:
		return fail(fmt.Sprintf("The name %s is already taken in #%s. Pick another name.", a.name, a.room), ui.NameField)
	case protocol.CodeInvalidName:
		return fail("The server does not accept that name: "+serverText(e)+".", ui.NameField)
	case protocol.CodeInvalidRoom:
		return fail("The server does not accept that room name: "+serverText(e)+".", ui.RoomField)
	case protocol.CodeUnsupportedVersion:
		return fail("This app and the server speak different protocol versions: "+serverText(e)+".", ui.NoField)
	case protocol.CodeUnauthorized:
		if a.key == "" {
			return fail("This server is private: enter the server key its operator gave you.", ui.KeyField)
		}
		return fail("This server did not accept that server key. Check it with the server's operator: it may have changed.", ui.KeyField)
	case protocol.CodeTLSRequired:
		if !strings.Contains(a.server, "://") {
			// A plain address for a server that only speaks TLS: the fix
			// is one prefix away.
			return fail("This server takes only TLS connections: write its address as tls://"+a.server+".", ui.ServerField)
		}
	case protocol.CodeTooManyRooms:
		return fail("The server allows no more rooms for this connection.", ui.RoomField)
	case protocol.CodeBanned:
		return fail(fmt.Sprintf("You are banned from #%s: %s. Pick another room.", a.room, serverText(e)), ui.RoomField)
	case protocol.CodeInviteOnly:
		return fail(fmt.Sprintf("#%s is invite-only: ask one of its operators for an invite code and type it after the room's name: %s CODE.", a.room, a.room), ui.RoomField)
	case protocol.CodeTooLong:
		text := serverText(e)
		switch {
		case strings.Contains(text, "room name"):
			return fail("The room name is too long: "+text+".", ui.RoomField)
		case strings.Contains(text, "name"):
			return fail("The name is too long: "+text+".", ui.NameField)
		}
		return fail("The server refused: "+text+".", ui.NoField)
	}
	return fail("The server refused: "+serverText(e)+".", ui.NoField)
}

// roomRefusal words the refusal of a conversation other than the one the
// form asked for (a remembered room, one joined from the room list, a
// direct conversation): shown in that conversation, the others go on.
func roomRefusal(err error, a attempt) string {
	var e *protocol.Error
	if errors.As(err, &e) && e.Code == protocol.CodeForbidden {
		if protocol.IsDM(a.room) {
			return "This direct conversation is not yours: only its two people can open it."
		}
		return "The server refused: " + serverText(e) + "."
	}
	return refusal(err, a).Reason
}

// certWhy says in words why the system does not trust a certificate, for
// the prompt that offers to trust it anyway.
func certWhy(e *client.CertificateError) string {
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(e.Err, &unknown):
		return "Its certificate is not signed by an authority this device trusts; self-hosted servers often use such a self-signed certificate."
	case errors.As(e.Err, &host):
		return "Its certificate was made out for another name than " + e.Host + "."
	case errors.As(e.Err, &invalid) && invalid.Reason == x509.Expired:
		return "Its certificate has expired or is not valid yet (or this device's clock is wrong)."
	case e.Err != nil:
		return "This device does not trust its certificate: " + strings.TrimSuffix(e.Err.Error(), ".") + "."
	}
	return "This device does not trust its certificate."
}
