package testserver

import (
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"chat/protocol"
)

// Raw is a bare protocol connection for tests that need to control every
// byte: send malformed input, stop reading, resume by hand.
type Raw struct {
	t    testing.TB
	Conn net.Conn
}

// Dial connects to addr without any handshake.
func Dial(t testing.TB, addr string) *Raw {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &Raw{t: t, Conn: c}
}

// Handshake dials and completes HELLO/WELCOME.
func Handshake(t testing.TB, addr string) (*Raw, *protocol.Welcome) {
	t.Helper()
	r := Dial(t, addr)
	r.Send(&protocol.Hello{Version: protocol.Version, Client: "raw-test"})
	return r, Expect[*protocol.Welcome](r)
}

// JoinRoom completes a handshake and joins room as name, returning the
// JOINED frame; history frames are left unread.
func JoinRoom(t testing.TB, addr, room, name string) (*Raw, *protocol.Joined) {
	t.Helper()
	r, _ := Handshake(t, addr)
	r.Send(&protocol.Join{Room: room, Name: name})
	return r, Expect[*protocol.Joined](r)
}

// Send writes one message.
func (r *Raw) Send(m protocol.Message) { r.Write(protocol.Encode(m)) }

// Write writes raw bytes.
func (r *Raw) Write(b []byte) {
	r.t.Helper()
	_ = r.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.Conn.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// Read returns the next message, waiting up to 10 seconds.
func (r *Raw) Read() (protocol.Message, error) {
	_ = r.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	body, err := protocol.ReadFrame(r.Conn, protocol.MaxFrame, nil)
	if err != nil {
		return nil, err
	}
	return protocol.Decode(body)
}

// Expect reads messages, skipping PING and PRESENCE, until one of type T
// arrives; anything else fails the test.
func Expect[T protocol.Message](r *Raw) T {
	r.t.Helper()
	for {
		m, err := r.Read()
		if err != nil {
			var zero T
			r.t.Fatalf("waiting for %T: %v", zero, err)
		}
		switch m.(type) {
		case *protocol.Ping, *protocol.Presence:
			continue
		}
		if v, ok := m.(T); ok {
			return v
		}
		var zero T
		r.t.Fatalf("got %T %+v, want %T", m, m, zero)
	}
}

// ExpectClosed reads until the server closes the connection and fails on
// any frame other than PING/PRESENCE.
func (r *Raw) ExpectClosed() {
	r.t.Helper()
	for {
		m, err := r.Read()
		if errors.Is(err, io.EOF) || isReset(err) {
			return
		}
		if err != nil {
			r.t.Fatalf("waiting for the server to close: %v", err)
		}
		switch m.(type) {
		case *protocol.Ping, *protocol.Presence:
			continue
		}
		r.t.Fatalf("got %T %+v, want the connection closed", m, m)
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "read"
}

// Messages reads MESSAGE frames until n have arrived (skipping others
// except ERROR, which fails the test).
func (r *Raw) Messages(n int) []*protocol.Msg {
	r.t.Helper()
	var out []*protocol.Msg
	for len(out) < n {
		m, err := r.Read()
		if err != nil {
			r.t.Fatalf("after %d of %d messages: %v", len(out), n, err)
		}
		switch m := m.(type) {
		case *protocol.Msg:
			out = append(out, m)
		case *protocol.Error:
			r.t.Fatalf("after %d of %d messages: %v", len(out), n, m)
		}
	}
	return out
}

// String describes the connection for test logs.
func (r *Raw) String() string { return fmt.Sprintf("raw %v", r.Conn.LocalAddr()) }

// Wrap makes a Raw of a connection the test opened itself (TLS, say).
func Wrap(t testing.TB, c net.Conn) *Raw {
	t.Cleanup(func() { c.Close() })
	return &Raw{t: t, Conn: c}
}
