package transport

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chat/internal/testserver"
	"chat/protocol"
	"chat/server/internal/session"
)

// tlsPair is a TLS connection over loopback: the server's side as the
// server's transport, the client's over a socket the test can hold back,
// to deliver a TLS record in pieces.
type tlsPair struct {
	server *TCP
	client *tls.Conn
	wire   *heldConn
}

// heldConn is the client's socket. While held, what TLS writes is kept in
// out instead of sent, after the first pass writes.
type heldConn struct {
	net.Conn
	mu   sync.Mutex
	held bool
	pass int // writes still sent while held
	out  bytes.Buffer
}

func (h *heldConn) Write(b []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.held && h.pass == 0 {
		return h.out.Write(b)
	}
	if h.held {
		h.pass--
	}
	return h.Conn.Write(b)
}

// hold keeps what the client writes from now on.
func (h *heldConn) hold() {
	h.mu.Lock()
	h.held = true
	h.mu.Unlock()
}

// release sends what was held, in one write, and stops holding.
func (h *heldConn) release() error {
	_, err := h.Conn.Write(h.take())
	return err
}

// take returns what was held and stops holding.
func (h *heldConn) take() []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.held = false
	b := bytes.Clone(h.out.Bytes())
	h.out.Reset()
	return b
}

func newTLSPair(t *testing.T) *tlsPair {
	t.Helper()
	certFile, keyFile, _ := testserver.SelfSigned(t, t.TempDir())
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type accepted struct {
		t   *TCP
		err error
	}
	done := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- accepted{err: err}
			return
		}
		opts := &TCPOptions{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}, HandshakeTimeout: 5 * time.Second,
			Refused: func(string, string, string) {}, Logger: slog.New(slog.DiscardHandler)}
		tc, sock, err := handshake(c, c.RemoteAddr().String(), opts)
		if err != nil {
			c.Close()
			done <- accepted{err: err}
			return
		}
		done <- accepted{t: newTLS(tc, sock)}
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	wire := &heldConn{Conn: raw}
	client := tls.Client(wire, &tls.Config{InsecureSkipVerify: true})
	if err := client.Handshake(); err != nil {
		t.Fatal(err)
	}
	a := <-done
	if a.err != nil {
		t.Fatal(a.err)
	}
	t.Cleanup(func() { client.Close(); a.t.Close() })
	if !a.t.CanPark() || a.t.Direct() {
		t.Fatalf("a TLS transport: CanPark %v (want true), Direct %v (want false: TLS writes whole records)", a.t.CanPark(), a.t.Direct())
	}
	return &tlsPair{server: a.t, client: client, wire: wire}
}

func frame(text string) []byte {
	return protocol.Encode(&protocol.Send{Room: "general", ID: "id", Text: text})
}

// testPoller is one Poller for the tests that wait for input (a Poller
// lives as long as the process).
var testPoller = sync.OnceValues(NewPoller)

// testPollerIDs keeps the tests' Arm ids unique.
var testPollerIDs atomic.Uint64

// waitReadable waits, in the real Poller, until tr's socket has input or
// a hang-up: the synchronisation for "the bytes have arrived", instead of
// sleeping and hoping they have.
func waitReadable(t *testing.T, tr *TCP) {
	t.Helper()
	poller, err := testPoller()
	if err != nil {
		t.Fatal(err)
	}
	id := testPollerIDs.Add(1) + 1<<40 // apart from the ids tests choose
	ready := make(chan struct{})
	if err := poller.Arm(tr.SyscallConn(), id, func() { close(ready) }); err != nil {
		t.Fatal(err)
	}
	defer poller.Forget(tr.SyscallConn(), id)
	select {
	case <-ready:
	case <-time.After(5 * time.Second):
		t.Fatal("no input on the socket after 5s")
	}
}

// tryRead calls TryReadFrame until it returns a frame or an error other
// than ErrWouldBlock, waiting for input in between (the bytes are on
// their way over loopback).
func tryRead(t *testing.T, tr *TCP) []byte {
	t.Helper()
	for range 10000 { // a frame arrives in far fewer pieces
		body, err := tr.TryReadFrame(protocol.MaxFrame)
		if err == nil {
			return bytes.Clone(body)
		}
		if !errors.Is(err, session.ErrWouldBlock) {
			t.Fatalf("TryReadFrame: %v", err)
		}
		waitReadable(t, tr)
	}
	t.Fatal("TryReadFrame: no whole frame after 10000 pieces")
	return nil
}

func wantText(t *testing.T, body []byte, text string) {
	t.Helper()
	m, err := protocol.Decode(body)
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := m.(*protocol.Send); !ok || s.Text != text {
		t.Fatalf("read %+v, want a SEND of %q", m, text)
	}
}

func wantWouldBlock(t *testing.T, tr *TCP) {
	t.Helper()
	if body, err := tr.TryReadFrame(protocol.MaxFrame); !errors.Is(err, session.ErrWouldBlock) {
		t.Fatalf("TryReadFrame = %q, %v; want ErrWouldBlock", body, err)
	}
}

// TestTLSReadsWithoutBlocking: the reader of a TLS session can ask for a
// frame without blocking, and parks only when neither the socket nor
// crypto/tls holds one: frames that came in one record, a record that
// arrives in pieces, and a frame over several records are all read whole.
func TestTLSReadsWithoutBlocking(t *testing.T) {
	p := newTLSPair(t)
	wantWouldBlock(t, p.server)

	// Two frames in one record: the second comes from TLS's buffer, with
	// nothing left on the socket.
	if _, err := p.client.Write(append(frame("one"), frame("two")...)); err != nil {
		t.Fatal(err)
	}
	wantText(t, tryRead(t, p.server), "one")
	wantText(t, mustTryRead(t, p.server), "two")
	wantWouldBlock(t, p.server)

	// A record that arrives in two pieces: the first piece is no frame
	// yet, and must not be lost while the reader waits for the rest.
	p.wire.hold()
	if _, err := p.client.Write(frame("split record")); err != nil {
		t.Fatal(err)
	}
	record := p.wire.take()
	if _, err := p.wire.Conn.Write(record[:7]); err != nil {
		t.Fatal(err)
	}
	waitReadable(t, p.server) // the piece is in the server's socket
	wantWouldBlock(t, p.server)
	wantWouldBlock(t, p.server)
	if _, err := p.wire.Conn.Write(record[7:]); err != nil {
		t.Fatal(err)
	}
	wantText(t, tryRead(t, p.server), "split record")

	// A frame larger than one TLS record (16 KiB).
	big := string(bytes.Repeat([]byte("x"), 40<<10))
	if _, err := p.client.Write(frame(big)); err != nil {
		t.Fatal(err)
	}
	wantText(t, tryRead(t, p.server), big)
	wantWouldBlock(t, p.server)

	// The client closes: the reader learns it, not ErrWouldBlock forever.
	p.client.Close()
	for range 100 {
		_, err := p.server.TryReadFrame(protocol.MaxFrame)
		if err != nil && !errors.Is(err, session.ErrWouldBlock) {
			return
		}
		waitReadable(t, p.server)
	}
	t.Fatal("the client's close never reached the reader")
}

// mustTryRead reads a frame that must already be there.
func mustTryRead(t *testing.T, tr *TCP) []byte {
	t.Helper()
	body, err := tr.TryReadFrame(protocol.MaxFrame)
	if err != nil {
		t.Fatalf("TryReadFrame: %v (the frame was already buffered)", err)
	}
	return bytes.Clone(body)
}

// TestPollerWakesAParkedTLSSession: after ErrWouldBlock the socket is
// armed in the Poller, which calls back when the client sends again.
func TestPollerWakesAParkedTLSSession(t *testing.T) {
	p := newTLSPair(t)
	poller, err := NewPoller()
	if err != nil {
		t.Fatal(err)
	}
	wantWouldBlock(t, p.server)
	woken := make(chan struct{})
	if err := poller.Arm(p.server.SyscallConn(), 1, func() { close(woken) }); err != nil {
		t.Fatal(err)
	}
	// A spurious wake would come at once; nothing can signal that none
	// is coming, so this look is bounded, and it delays nothing else.
	select {
	case <-woken:
		t.Fatal("woken with nothing sent")
	case <-time.After(50 * time.Millisecond):
	}
	if _, err := p.client.Write(frame("wake up")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-woken:
	case <-time.After(5 * time.Second):
		t.Fatal("the poller did not wake the session")
	}
	wantText(t, tryRead(t, p.server), "wake up")
	poller.Forget(p.server.SyscallConn(), 1)
}

// TestTLSBlockingReadsStillWork: ReadFrame (used while a session closes)
// and try reads mix on one connection.
func TestTLSBlockingReadsStillWork(t *testing.T) {
	p := newTLSPair(t)
	wantWouldBlock(t, p.server)
	go func() {
		// The pause is the behaviour under test: the frame comes while
		// ReadFrame blocks, not before. (Sent early, the test would still
		// pass, only test less.)
		time.Sleep(20 * time.Millisecond)
		p.client.Write(frame("blocking"))
	}()
	body, err := p.server.ReadFrame(protocol.MaxFrame)
	if err != nil {
		t.Fatal(err)
	}
	wantText(t, body, "blocking")
	p.client.Close()
	if _, err := p.server.ReadFrame(protocol.MaxFrame); !errors.Is(err, io.EOF) {
		t.Fatalf("after the client closed: %v, want EOF", err)
	}
}
