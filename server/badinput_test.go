package main

import (
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"

	"chat/client"
	"chat/internal/testserver"
	"chat/protocol"
)

func frame(typ protocol.Type, payload ...byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(payload)+1))
	return append(append(b, byte(typ)), payload...)
}

var helloFrame = protocol.Encode(&protocol.Hello{Version: protocol.Version, Client: "bad-input-test"})

// malformedCase is bad input on a fresh connection and the ERROR it gets.
type malformedCase struct {
	name  string
	input [][]byte // written in order; HELLO first unless the case is about the handshake
	code  protocol.ErrorCode
}

func malformedCases() []malformedCase {
	joinFrame := protocol.Encode(&protocol.Join{Room: "general", Name: "mallory"})
	identifyFrame := protocol.Encode(&protocol.Identify{Name: "mallory", Secret: "mallory's key"})
	return []malformedCase{
		{"HTTP request on the port", [][]byte{[]byte("GET / HTTP/1.1\r\nHost: chat\r\n\r\n")}, protocol.CodeFrameTooLarge},
		{"TLS handshake on the port", [][]byte{{0x16, 0x03, 0x01, 0x00, 0xf0, 0x01, 0x00, 0x00, 0xec, 0x03, 0x03}}, protocol.CodeFrameTooLarge},
		{"garbage bytes", [][]byte{frame(protocol.TypeHello, []byte("\xde\xad\xbe\xef\x00\x01garbage")...)}, protocol.CodeMalformed},
		{"zero-length frame", [][]byte{{0, 0, 0, 0}}, protocol.CodeMalformed},
		{"hello over the pre-handshake limit", [][]byte{frame(protocol.TypeHello, make([]byte, protocol.MaxHelloFrame)...)}, protocol.CodeFrameTooLarge},
		{"length over the limit", [][]byte{helloFrame, {0x00, 0x10, 0x00, 0x00, byte(protocol.TypeSend)}}, protocol.CodeFrameTooLarge},
		{"unknown type", [][]byte{helloFrame, frame(0x42, 1, 2, 3)}, protocol.CodeUnknownType},
		{"truncated frame", [][]byte{helloFrame, frame(protocol.TypeSend, 7, 'g', 'e', 'n')}, protocol.CodeMalformed},
		{"bad varint", [][]byte{helloFrame, frame(protocol.TypePing, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)}, protocol.CodeMalformed},
		{"unknown type before hello", [][]byte{frame(0x42, 1, 2, 3)}, protocol.CodeUnknownType},
		{"join before hello", [][]byte{joinFrame}, protocol.CodeUnexpected},
		{"send before join", [][]byte{helloFrame, protocol.Encode(&protocol.Send{Room: "general", ID: "x", Text: "hi"})}, protocol.CodeUnexpected},
		{"leave before join", [][]byte{helloFrame, protocol.Encode(&protocol.Leave{Room: "general"})}, protocol.CodeUnexpected},
		{"second hello", [][]byte{helloFrame, helloFrame}, protocol.CodeUnexpected},
		{"server-to-client type", [][]byte{helloFrame, protocol.Encode(&protocol.Ack{Room: "general", ID: "x", Seq: 1})}, protocol.CodeUnexpected},
		{"join twice", [][]byte{helloFrame, joinFrame, joinFrame}, protocol.CodeUnexpected},
		{"unsupported version", [][]byte{protocol.Encode(&protocol.Hello{Version: 99})}, protocol.CodeUnsupportedVersion},
		{"invalid UTF-8 in text", [][]byte{helloFrame, joinFrame, frame(protocol.TypeSend, append([]byte{7, 'g', 'e', 'n', 'e', 'r', 'a', 'l', 1, 'i', 3}, 'a', 0xff, 0xfe)...)}, protocol.CodeInvalidUTF8},
		{"invalid UTF-8 in name", [][]byte{helloFrame, frame(protocol.TypeJoin, 7, 'g', 'e', 'n', 'e', 'r', 'a', 'l', 2, 0xc3, 0x28, 0, 0, 0, 0)}, protocol.CodeInvalidUTF8},
		{"over-long name", [][]byte{helloFrame, protocol.Encode(&protocol.Join{Room: "general", Name: strings.Repeat("n", protocol.DefaultMaxName+1)})}, protocol.CodeTooLong},
		{"over-long room", [][]byte{helloFrame, protocol.Encode(&protocol.Join{Room: strings.Repeat("r", protocol.DefaultMaxRoom+1), Name: "mallory"})}, protocol.CodeTooLong},
		{"over-long text", [][]byte{helloFrame, joinFrame, protocol.Encode(&protocol.Send{Room: "general", ID: "x", Text: strings.Repeat("t", protocol.DefaultMaxText+1)})}, protocol.CodeTooLong},
		{"empty text", [][]byte{helloFrame, joinFrame, protocol.Encode(&protocol.Send{Room: "general", ID: "x", Text: ""})}, protocol.CodeTooLong},
		{"empty message id", [][]byte{helloFrame, joinFrame, protocol.Encode(&protocol.Send{Room: "general", ID: "", Text: "hi"})}, protocol.CodeTooLong},
		{"over-long message id", [][]byte{helloFrame, joinFrame, protocol.Encode(&protocol.Send{Room: "general", ID: strings.Repeat("i", protocol.MaxIDLen+1), Text: "hi"})}, protocol.CodeTooLong},
		{"history before join", [][]byte{helloFrame, protocol.Encode(&protocol.History{Room: "general"})}, protocol.CodeUnexpected},
		{"read before join", [][]byte{helloFrame, protocol.Encode(&protocol.Read{Room: "general", Seq: 1})}, protocol.CodeUnexpected},
		{"identify twice", [][]byte{helloFrame, identifyFrame, identifyFrame}, protocol.CodeUnexpected},
		{"over-long identify name", [][]byte{helloFrame, protocol.Encode(&protocol.Identify{Name: strings.Repeat("n", protocol.DefaultMaxName+1), Secret: "k"})}, protocol.CodeTooLong},
	}
}

// runMalformed sends each case on its own connection from dial and checks
// it gets its ERROR, closing, and then the close. Each case then waits
// for srv to log the connection closed (its rooms left): the next case
// joins under the same name.
func runMalformed(t *testing.T, srv *testserver.Server, dial func(t *testing.T) *testserver.Raw) {
	for _, tc := range malformedCases() {
		t.Run(tc.name, func(t *testing.T) {
			r := dial(t)
			for _, b := range tc.input {
				r.Write(b)
			}
			var got *protocol.Error
			for got == nil {
				m, err := r.Read()
				if err != nil {
					t.Fatalf("no ERROR before the connection ended: %v", err)
				}
				switch m := m.(type) {
				case *protocol.Error:
					got = m
				case *protocol.Welcome, *protocol.Joined, *protocol.Presence, *protocol.Msg, *protocol.Ping, *protocol.Identified:
				default:
					t.Fatalf("unexpected %T before the error", m)
				}
			}
			if got.Code != tc.code || !got.Closing() || got.Reconnect() || got.Text == "" {
				t.Fatalf("got %v (flags %b), want a closing %v with an explanation", got, got.Flags, tc.code)
			}
			r.ExpectClosed()
			local := r.Conn.LocalAddr().String()
			srv.WaitLog("connection closed", func(rec map[string]any) bool { return rec["remote"] == local })
		})
	}
}

// TestMalformedInputGetsItsErrorAndAClose sends each kind of bad input on
// its own connection. Each gets an ERROR with its code and the closing
// flag, then the connection closes; a member connected throughout keeps
// chatting as if nothing happened.
func TestMalformedInputGetsItsErrorAndAClose(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	bystander := join(t, srv, "bystander")
	friend := join(t, srv, "friend")
	runMalformed(t, srv, func(t *testing.T) *testserver.Raw { return testserver.Dial(t, srv.Addr) })

	// Clients of another protocol are told what went wrong in words.
	for _, probe := range []struct{ input, hint string }{
		{"GET / HTTP/1.1\r\n\r\n", "HTTP"},
		{"\x16\x03\x01\x00\xf0", "TLS"},
	} {
		r := testserver.Dial(t, srv.Addr)
		r.Write([]byte(probe.input))
		if e := testserver.Expect[*protocol.Error](r); !strings.Contains(e.Text, probe.hint) {
			t.Errorf("%q got %q, which does not mention %s", probe.input, e.Text, probe.hint)
		}
	}

	// Nobody else noticed: the two members still chat, and the bystander's
	// connection never dropped.
	if _, err := bystander.C.Send("general", "still fine?"); err != nil {
		t.Fatal(err)
	}
	friend.WaitText(t, "still fine?")
	for _, ev := range bystander.Events() {
		if sc, ok := ev.(client.StateChanged); ok && sc.State != client.Connecting && sc.State != client.Connected {
			t.Errorf("bystander's connection changed state: %+v", sc)
		}
	}
	// Each protocol error was logged for the operator, without texts.
	if n := len(srv.LogRecords("protocol error")); n < len(malformedCases()) {
		t.Errorf("%d protocol errors logged for %d cases", n, len(malformedCases()))
	}
	if strings.Contains(srv.Log(), "still fine?") {
		t.Error("the server logged a message text")
	}
}

// TestStreamEndingInsideAFrameIsDropped: a client that closes mid-frame is
// just gone; nothing is stored.
func TestStreamEndingInsideAFrameIsDropped(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	r, _ := testserver.JoinRoom(t, srv.Addr, "general", "quitter")
	full := protocol.Encode(&protocol.Send{Room: "general", ID: "x", Text: "never complete"})
	r.Write(full[:len(full)-3])
	r.Conn.(*net.TCPConn).CloseWrite() // FIN, not a reset: the stream ends inside the frame
	srv.WaitLog("connection closed", func(rec map[string]any) bool {
		return rec["reason"] == "connection ended inside a frame"
	})
	watcher, j := testserver.JoinRoom(t, srv.Addr, "general", "watcher")
	if j.Head != 0 || j.Count != 1 {
		t.Fatalf("after the partial frame: head %d, %d members", j.Head, j.Count)
	}
	watcher.Send(&protocol.Bye{})
}

func TestTimeouts(t *testing.T) {
	// A client gets at least half a ping interval to answer a PING: 500 ms
	// here, enough for a loaded machine running the race detector.
	srv := testserver.Start(t, testserver.Options{Args: []string{"-handshake-timeout", "500ms", "-ping", "1s"}})

	t.Run("no hello", func(t *testing.T) {
		r := testserver.Dial(t, srv.Addr)
		e := testserver.Expect[*protocol.Error](r)
		if e.Code != protocol.CodeTimeout || !e.Reconnect() {
			t.Fatalf("got %+v", e)
		}
		r.ExpectClosed()
	})

	t.Run("hello dribbled a byte at a time", func(t *testing.T) {
		r := testserver.Dial(t, srv.Addr)
		start := time.Now()
		for _, b := range helloFrame {
			if _, err := r.Conn.Write([]byte{b}); err != nil {
				break // closed on us: good
			}
			time.Sleep(100 * time.Millisecond) // the dribble is the behaviour under test
		}
		e := testserver.Expect[*protocol.Error](r)
		if e.Code != protocol.CodeTimeout || time.Since(start) > 5*time.Second {
			t.Fatalf("got %+v after %v", e, time.Since(start))
		}
	})

	t.Run("silent after hello", func(t *testing.T) {
		// Not answering PINGs: the server gives up 1.5x the interval after
		// the last frame it got, the HELLO; start is taken before it.
		start := time.Now()
		r, _ := testserver.Handshake(t, srv.Addr)
		var pings int
		for {
			m, err := r.Read()
			if err != nil {
				t.Fatalf("connection ended without an error frame after %d pings: %v", pings, err)
			}
			if _, ok := m.(*protocol.Ping); ok {
				pings++
				continue
			}
			e, ok := m.(*protocol.Error)
			if !ok || e.Code != protocol.CodeTimeout {
				t.Fatalf("got %+v", m)
			}
			break
		}
		if pings == 0 || time.Since(start) < 1500*time.Millisecond {
			t.Fatalf("timed out after %v with %d pings: too early", time.Since(start), pings)
		}
	})

	t.Run("answering pings keeps the connection", func(t *testing.T) {
		r, _ := testserver.Handshake(t, srv.Addr)
		deadline := time.Now().Add(3 * time.Second) // three ping intervals
		for time.Now().Before(deadline) {
			m, err := r.Read()
			if err != nil {
				t.Fatal(err)
			}
			switch m := m.(type) {
			case *protocol.Ping:
				r.Send(&protocol.Pong{Nonce: m.Nonce})
			default:
				t.Fatalf("got %+v", m)
			}
		}
	})

	t.Run("server answers pings", func(t *testing.T) {
		r, _ := testserver.Handshake(t, srv.Addr)
		r.Send(&protocol.Ping{Nonce: 4242})
		if p := testserver.Expect[*protocol.Pong](r); p.Nonce != 4242 {
			t.Fatalf("pong nonce %d", p.Nonce)
		}
	})
}
