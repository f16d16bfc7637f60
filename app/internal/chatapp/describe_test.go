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
	"time"

	"chat/app/internal/ui"
	"chat/client"
	"chat/internal/testserver"
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
		{errors.New("boom"), "", ui.JoinFailed{Reason: "Disconnected: boom.", Field: ui.ServerField}},
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

// A terminal error that is not the server's refusal ends a join with a
// sentence about the address, not "Disconnected" (the client library
// will stop at a web port given as the chat port with such an error).
func TestRefusalOfAJoinByTheClient(t *testing.T) {
	webPort := fmt.Errorf("127.0.0.1:8080 answered in HTTP: %w: ws://127.0.0.1:8080/ws", errors.New("this is the server's web port; the apps use port 7878 (or a ws:// URL)"))
	got := refusal(webPort, attempt{server: "127.0.0.1:8080", name: "Ann", room: "general", joining: true})
	want := ui.JoinFailed{Reason: "Cannot connect: 127.0.0.1:8080 answered in HTTP: this is the server's web port; the apps use port 7878 (or a ws:// URL): ws://127.0.0.1:8080/ws.", Field: ui.ServerField}
	if got != want {
		t.Errorf("refusal = %+v; want %+v", got, want)
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

// failedAttempt returns the error of the first failed attempt of a real
// client connecting to addr, and whether the client gave up for good.
func failedAttempt(t *testing.T, addr string) (err error, terminal bool) {
	t.Helper()
	c, err := client.New(client.Config{Addr: addr, Name: "probe", HandshakeTimeout: time.Second, MinBackoff: time.Minute, MaxBackoff: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.Join("general") // fails only if the client has given up already: its events say why
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-c.Events():
			if s, ok := ev.(client.StateChanged); ok {
				switch s.State {
				case client.Reconnecting:
					return s.Err, false
				case client.Closed:
					return s.Err, true
				case client.Connected:
					t.Fatalf("%s: connected", addr)
				}
			}
		case <-deadline:
			t.Fatalf("%s: no failed attempt within 10 s", addr)
		}
	}
}

// goisms are pieces of Go error chains that must not reach the user.
var goisms = []string{"dial tcp", "failed to", `Get "`, "connect: connection", "use of closed", "tls: ", "http://", "net/http", "status code 101"}

// TestOfflineSentencesOfRealDials words the errors that real failed
// connection attempts produce (refused ports, the wrong port, the wrong
// protocol), as the offline banner and the join form show them.
func TestOfflineSentencesOfRealDials(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	for _, c := range []struct {
		addr, want string // want "" checks only that it is words
	}{
		{dead, "nothing is listening there"},
		{"ws://" + dead + "/ws", "nothing is listening there"},
		{"ws://" + srv.Addr + "/ws", "does not answer as a web server"},
		{"ws://" + srv.HTTPAddr + "/nope", "no chat server's WebSocket at that address (the web server answered with status 404)"},
		{"tls://" + srv.Addr, "does not answer in TLS"},
		// The web port given as the chat address: the client library
		// will stop at it with an error of its own (ErrWebPort); until
		// then it is a handshake timeout.
		{srv.HTTPAddr, ""},
	} {
		err, terminal := failedAttempt(t, c.addr)
		words := []string{offline(c.addr, false, err), unreachable(c.addr, err)}
		if terminal {
			// The client gave up: the join form says why, with the address.
			words = []string{refusal(err, attempt{server: c.addr, name: "probe", room: "general", joining: true}).Reason}
		}
		for _, got := range words {
			if !strings.Contains(got, c.addr) || !strings.Contains(got, c.want) {
				t.Errorf("%s: %v worded %q; want it to name the address and say %q", c.addr, err, got, c.want)
			}
			for _, g := range goisms {
				if strings.Contains(got, g) {
					t.Errorf("%s: %v worded %q, with %q in it", c.addr, err, got, g)
				}
			}
		}
	}

	// In the browser, the WebSocket library gets no reason for a failed
	// dial and wraps net.ErrClosed (coder/websocket's ws_js.go; the browser
	// test sees the real one).
	url := "ws://" + dead + "/ws"
	jsErr := fmt.Errorf("failed to WebSocket dial %q: %w", url, net.ErrClosed)
	if got, want := offline(url, false, jsErr), "Cannot reach the server at "+url; got != want {
		t.Errorf("the browser's failed dial: %q, want %q", got, want)
	}

	// A connection that was up and is lost.
	c, err := client.New(client.Config{Addr: srv.Addr, Name: "probe", MinBackoff: time.Minute, MaxBackoff: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var lost error
	for ev := range c.Events() {
		if s, ok := ev.(client.StateChanged); ok && s.State == client.Connected {
			srv.Kill()
		}
		if s, ok := ev.(client.StateChanged); ok && s.State == client.Reconnecting {
			lost = s.Err
			break
		}
	}
	if got, want := offline(srv.Addr, true, lost), "Lost the connection to "+srv.Addr+": the server closed the connection"; got != want {
		t.Errorf("lost connection (%v): %q, want %q", lost, got, want)
	}
}
