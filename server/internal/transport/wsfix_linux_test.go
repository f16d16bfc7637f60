//go:build linux

package transport

import (
	"encoding/binary"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"chat/protocol"
	"chat/server/internal/session"
)

// TestWSCloseDuringSlowRead: the connection is closed (the write
// watchdog's abort, a failed write's Close) while the reader is filling
// a large message's pooled buffer. The buffer is the reader's: Close must
// not give it back to the pool under it (-race sees the shared body).
func TestWSCloseDuringSlowRead(t *testing.T) {
	w, c := wsPair(t)
	big := protocol.Encode(&protocol.Send{Room: "r", ID: "x", Text: strings.Repeat("y", 50_000)})
	msg := clientFrame(true, opBinary, big, [4]byte{1, 2, 3, 4})
	if _, err := c.Write(msg[:4096]); err != nil { // the header, the length prefix, part of the body
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := w.ReadFrame(protocol.MaxFrame)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // the reader has its buffer and waits for the rest
	_ = w.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a frame read from a closed connection")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the reader did not end")
	}
}

// TestWSPingFloodBounded: PINGs keep coming while a frame is half
// written and the client does not read; only the latest PING is
// answered (RFC 6455 5.5.3), so what waits is one PONG at most.
func TestWSPingFloodBounded(t *testing.T) {
	w, c := wsPair(t)
	big := protocol.Encode(&protocol.Msg{Room: "r", Seq: 1, Text: strings.Repeat("x", 60_000)})
	n, err := w.TryWrite([][]byte{big})
	if err != nil || n >= len(big) {
		t.Fatalf("TryWrite: %d, %v: the test needs a write cut inside the frame", n, err)
	}
	const pings = 2000
	var in []byte
	for i := range pings {
		in = append(in, clientFrame(true, opPing, []byte(strings.Repeat("p", 100)+string(rune('a'+i%26))), [4]byte{byte(i), 1, 2, 3})...)
	}
	hello := protocol.Encode(&protocol.Send{Room: "r", ID: "end", Text: "x"})
	in = append(in, clientFrame(true, opBinary, hello, [4]byte{5, 6, 7, 8})...)
	go func() { _, _ = c.Write(in) }()
	if _, err := w.ReadFrame(protocol.MaxFrame); err != nil {
		t.Fatal(err)
	}
	w.wmu.Lock()
	pending := len(w.ctrl)
	last := append([]byte(nil), w.ctrl...)
	w.wmu.Unlock()
	if pending > 2*(maxHeader+maxControl) {
		t.Fatalf("%d bytes of control frames wait after %d PINGs: unbounded", pending, pings)
	}
	want := strings.Repeat("p", 100) + string(rune('a'+(pings-1)%26))
	if len(last) < 2 || last[0] != 0x80|opPong || string(last[2:]) != want {
		t.Fatalf("waiting: % x, want the PONG to the last PING", last[:min(len(last), 8)])
	}
}

// TestWSDroppedCountedOnlyWhenWritten: after our CLOSE, frames given to
// the writer are dropped; they count as written only when the write
// reached them, or the session would skip bytes of the frame before them.
func TestWSDroppedCountedOnlyWhenWritten(t *testing.T) {
	w, _ := wsPair(t)
	big := protocol.Encode(&protocol.Msg{Room: "r", Seq: 1, Text: strings.Repeat("x", 200_000)})
	small := protocol.Encode(&protocol.Msg{Room: "r", Seq: 2, Text: "after"})
	n, err := w.TryWrite([][]byte{big, small})
	if err != nil || n >= len(big) {
		t.Fatalf("TryWrite: %d, %v: the test needs a write cut inside the frame", n, err)
	}
	if err := w.CloseWrite(time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	rest := big[n:]
	k, err := w.TryWrite([][]byte{rest, small}) // the client reads nothing: the socket is full
	if err != nil {
		t.Fatal(err)
	}
	if k >= len(rest) {
		t.Fatalf("the rest of a %d-byte frame went out into a full socket (%d)", len(rest), k)
	}
	if _, err := w.TryWrite([][]byte{rest[k:], small}); err != nil {
		t.Fatalf("after %d bytes counted: %v", k, err)
	}
}

// TestWSCloseCodeChecked: the client's close code is echoed when it may
// be sent; one that must not be (RFC 6455 7.4), or a reason that is not
// UTF-8, is answered with 1002.
func TestWSCloseCodeChecked(t *testing.T) {
	code := func(c uint16, reason string) []byte {
		return append(binary.BigEndian.AppendUint16(nil, c), reason...)
	}
	cases := []struct {
		payload []byte
		want    uint16
	}{
		{nil, 0}, // no code: an empty CLOSE answers it
		{code(1000, "bye"), 1000},
		{code(1001, ""), 1001},
		{code(1003, ""), 1003},
		{code(1011, ""), 1011},
		{code(3000, ""), 3000},
		{code(4999, "é"), 4999},
		{code(999, ""), closeProtocolError},
		{code(0, ""), closeProtocolError},
		{code(1004, ""), closeProtocolError},
		{code(1005, ""), closeProtocolError},
		{code(1006, ""), closeProtocolError},
		{code(1015, ""), closeProtocolError},
		{code(1016, ""), closeProtocolError},
		{code(2999, ""), closeProtocolError},
		{code(5000, ""), closeProtocolError},
		{code(1000, "\xff\xfe"), closeProtocolError},
	}
	for _, tc := range cases {
		w, c := wsPair(t)
		go func() { _, _ = c.Write(clientFrame(true, opClose, tc.payload, [4]byte{9, 9, 9, 9})) }()
		if _, err := w.ReadFrame(protocol.MaxFrame); err != io.EOF {
			t.Fatalf("% x: %v, want io.EOF", tc.payload, err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		f, err := readServerFrame(c)
		if err != nil {
			t.Fatalf("% x: %v", tc.payload, err)
		}
		if tc.want == 0 {
			if f.op != opClose || len(f.payload) != 0 {
				t.Fatalf("client's empty close: got op %#x % x, want an empty CLOSE", f.op, f.payload)
			}
			continue
		}
		if f.op != opClose || len(f.payload) < 2 || binary.BigEndian.Uint16(f.payload) != tc.want {
			t.Fatalf("client's close % x: got op %#x % x, want CLOSE %d", tc.payload, f.op, f.payload, tc.want)
		}
	}
}

// TestWSClientCloseWhileWriting: the client closes while the session's
// writer is blocked on it (it reads slowly). The answer waits for the
// frame being written, then goes out: the client sees its close
// answered (1000), not the connection cut (1006).
func TestWSClientCloseWhileWriting(t *testing.T) {
	url, members, _ := wsManagerServer(t, 4096)
	c := dialSmall(t, url, 4096)
	var m session.Member
	select {
	case m = <-members:
	case <-time.After(10 * time.Second):
		t.Fatal("no session")
	}
	cutsBefore := wsCuts.Load()
	for i := range 40 {
		m.Deliver(protocol.Encode(&protocol.Msg{Room: "r", Seq: uint64(i), Sender: "s", Text: strings.Repeat("z", 20_000)}))
	}
	// The writer is waiting for the client once a write stopped inside a
	// frame (800 KB against 4 KiB socket buffers).
	for deadline := time.Now().Add(10 * time.Second); wsCuts.Load() == cutsBefore; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no write stopped inside a frame: the writer never waited for the client")
		}
	}
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatalf("the close handshake failed: %v", err)
	}
}
