package transport

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"chat/protocol"
	"chat/server/internal/session"
)

// stubRooms is a session's rooms in tests that only fan frames out.
type stubRooms struct{ session.Rooms }

func (stubRooms) Close()           {}
func (stubRooms) Joined() int      { return 1 }
func (stubRooms) Identified() bool { return false }

// smallBufferListener gives accepted connections a tiny send buffer, so
// the server's writes stop part-way through frames and headers.
type smallBufferListener struct {
	net.Listener
	sndbuf int
}

func (l smallBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil && l.sndbuf > 0 {
		_ = c.(*net.TCPConn).SetWriteBuffer(l.sndbuf)
	}
	return c, err
}

// wsManagerServer runs real sessions (flushers, Poller) over WebSockets
// served on 127.0.0.1; each session's Member comes out of members.
func wsManagerServer(t *testing.T, sndbuf int) (url string, members <-chan session.Member, poller *Poller) {
	t.Helper()
	poller, err := NewPoller()
	if err != nil {
		t.Fatal(err)
	}
	mc := make(chan session.Member, 100)
	created := make(chan session.Member, 1)
	mgr := session.NewManager(session.Config{
		HandshakeTimeout: time.Minute, PingInterval: time.Minute, IdleTimeout: time.Minute, WriteTimeout: 30 * time.Second,
		QueueFrames: 1 << 16, QueueBytes: 256 << 20, Poller: poller, Logger: slog.New(slog.DiscardHandler),
	}, func(m session.Member) session.Rooms { created <- m; return stubRooms{} })
	// A session is handed to the test once Start has made it whole.
	var startMu sync.Mutex
	start := func(t session.Transport, onEnd func()) {
		startMu.Lock()
		defer startMu.Unlock()
		mgr.Start(t, onEnd)
		mc <- <-created
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(WebSocketHandler(start, nil, nil, func(string, string, string) {}, slog.New(slog.DiscardHandler)))
	srv.Listener = smallBufferListener{Listener: ln, sndbuf: sndbuf}
	srv.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = mgr.Shutdown(ctx)
		srv.Close()
	})
	return "ws://" + ln.Addr().String(), mc, poller
}

// dialSmall dials a WebSocket with a tiny receive buffer.
func dialSmall(t *testing.T, url string, rcvbuf int) *websocket.Conn {
	t.Helper()
	d := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
		}); err != nil {
			return err
		}
		return serr
	}}
	hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(protocol.MaxFrame + protocol.LengthSize)
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// TestWSStressFanOutWithPings: frames of random sizes (headers of 2, 4
// and 10 bytes) are fanned out to WebSocket clients over sockets with
// tiny buffers, so writes stop inside frames and inside headers, while
// each client reads at an uneven pace and sends PINGs all along. The
// client library checks the framing: a PONG written into a half-written
// frame would break it. Every frame arrives whole and in order, and
// every PING is answered.
func TestWSStressFanOutWithPings(t *testing.T) {
	url, members, _ := wsManagerServer(t, 4096)
	const clients = 6
	const frames = 1500
	type result struct {
		got   int
		pings int
		err   error
	}
	results := make(chan result, clients)
	var conns []*websocket.Conn
	for range clients {
		conns = append(conns, dialSmall(t, url, 4096))
	}
	var ms []session.Member
	for range clients {
		select {
		case m := <-members:
			ms = append(ms, m)
		case <-time.After(10 * time.Second):
			t.Fatal("no session")
		}
	}
	cutsBefore := wsCuts.Load()
	// Frame 0 (70 KiB, far more than the tiny socket buffers on both
	// sides hold) goes to every client before any reads: each flusher's
	// first TryWrite finds an empty socket, which takes part of the frame
	// and no more, so every session has a write cut inside a frame
	// whatever the timing of the rest.
	f0 := protocol.Encode(&protocol.Msg{Room: "r", Seq: 0, Sender: "s", Text: stressText(0)})
	for _, m := range ms {
		m.Deliver(f0)
	}
	for deadline := time.Now().Add(10 * time.Second); wsCuts.Load()-cutsBefore < clients; {
		if time.Now().After(deadline) {
			t.Fatalf("only %d writes cut inside frame 0 of %d clients", wsCuts.Load()-cutsBefore, clients)
		}
		time.Sleep(time.Millisecond)
	}
	for ci, c := range conns {
		go func() {
			r := rand.New(rand.NewPCG(uint64(ci), 7))
			stop := make(chan struct{})
			pings := make(chan int, 1)
			go func() { // PINGs all along, each waiting for its PONG
				n := 0
				defer func() { pings <- n }()
				for {
					select {
					case <-stop:
						return
					default:
					}
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					err := c.Ping(ctx)
					cancel()
					if err != nil {
						select {
						case <-stop: // the reader stopped: a PING in flight is not answered to it
							return
						default:
						}
						n = -1 - n
						return
					}
					n++
				}
			}()
			res := result{}
			for res.got < frames {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				typ, b, err := c.Read(ctx)
				cancel()
				if err != nil {
					res.err = fmt.Errorf("after %d frames: %w", res.got, err)
					break
				}
				if typ != websocket.MessageBinary || len(b) < protocol.LengthSize || int(binary.BigEndian.Uint32(b)) != len(b)-protocol.LengthSize {
					res.err = fmt.Errorf("frame %d: not one protocol frame: %v %d bytes", res.got, typ, len(b))
					break
				}
				m, err := protocol.Decode(b[protocol.LengthSize:])
				if err != nil {
					res.err = fmt.Errorf("frame %d: %v", res.got, err)
					break
				}
				msg := m.(*protocol.Msg)
				if msg.Seq != uint64(res.got) || msg.Text != stressText(res.got) {
					res.err = fmt.Errorf("frame %d: got seq %d (%d bytes of text)", res.got, msg.Seq, len(msg.Text))
					break
				}
				res.got++
				if r.IntN(40) == 0 {
					// A reader's pause (the behaviour under test): the
					// socket fills, writes stop part-way.
					time.Sleep(time.Duration(r.IntN(5)) * time.Millisecond)
				}
			}
			// Pings keep going while the reader drains what is left.
			close(stop)
			go func() {
				for {
					if _, _, err := c.Read(context.Background()); err != nil {
						return
					}
				}
			}()
			res.pings = <-pings
			results <- res
		}()
	}
	for i := 1; i < frames; i++ {
		f := protocol.Encode(&protocol.Msg{Room: "r", Seq: uint64(i), Sender: "s", Text: stressText(i)})
		for _, m := range ms {
			m.Deliver(f) // one encoding for every receiver
		}
		if i%50 == 49 {
			// Bursts, as the hub's fan-out makes them.
			time.Sleep(time.Millisecond)
		}
	}
	total := 0
	for range clients {
		select {
		case r := <-results:
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.pings < 0 {
				t.Fatalf("a PING was not answered after %d", -1-r.pings)
			}
			total += r.pings
		case <-time.After(60 * time.Second):
			t.Fatal("HANG: the fan-out did not arrive")
		}
	}
	cuts := wsCuts.Load() - cutsBefore
	t.Logf("%d clients × %d frames, %d PINGs answered, %d writes cut inside a frame", clients, frames, total, cuts)
	if cuts == 0 {
		t.Error("no write was cut inside a frame: the test did not test partial writes")
	}
	if total < clients {
		t.Errorf("only %d PINGs answered", total)
	}
}

// stressText is frame i's text: mostly short, some beyond 125 bytes (a
// 4-byte header), a few beyond 64 KiB (10 bytes).
func stressText(i int) string {
	switch {
	case i%97 == 0:
		return strings.Repeat(string(rune('a'+i%26)), 70_000+i)
	case i%7 == 0:
		return strings.Repeat(string(rune('a'+i%26)), 200+i%3000)
	}
	return strings.Repeat(string(rune('a'+i%26)), i%120)
}

// socketPair is a connected TCP pair on 127.0.0.1: the server side with
// a tiny send buffer, the client side with a tiny receive buffer.
func socketPair(t *testing.T) (server *net.TCPConn, client *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.TCPConn).SetReadBuffer(4096)
	s := <-accepted
	if s == nil {
		t.Fatal("no connection")
	}
	_ = s.(*net.TCPConn).SetWriteBuffer(4096)
	t.Cleanup(func() { c.Close(); s.Close() })
	return s.(*net.TCPConn), c.(*net.TCPConn)
}

// clientFrame is a masked client frame.
func clientFrame(fin bool, op byte, payload []byte, mask [4]byte) []byte {
	return clientFrameT(fin, op, payload, mask)
}

// TestWSControlWaitsForFrameBoundary: a write stops in the middle of a
// large frame (the client does not read); a PING then arrives. Its PONG
// must not be written into the half-written frame: it waits, and goes
// out right after that frame, by whoever writes next, before the frames
// that follow. A writer is woken for it.
func TestWSControlWaitsForFrameBoundary(t *testing.T) {
	s, c := socketPair(t)
	w := newWS(s, nil, "test")
	woken := make(chan struct{}, 10)
	w.SetWake(func() { woken <- struct{}{} })
	big := protocol.Encode(&protocol.Msg{Room: "r", Seq: 1, Text: strings.Repeat("x", 60_000)})
	small := protocol.Encode(&protocol.Msg{Room: "r", Seq: 2, Text: "after"})
	n, err := w.TryWrite([][]byte{big, small})
	if err != nil {
		t.Fatal(err)
	}
	if n >= len(big) {
		t.Fatalf("the socket took %d bytes: the test needs a write cut inside the first frame", n)
	}
	// The client's PING arrives; the reader answers it.
	if _, err := c.Write(clientFrame(true, opPing, []byte("are you there"), [4]byte{1, 2, 3, 4})); err != nil {
		t.Fatal(err)
	}
	wsWaitReadable(t, w)
	if _, err := w.TryReadFrame(protocol.MaxFrame); !errors.Is(err, session.ErrWouldBlock) {
		t.Fatalf("after the PING: %v, want ErrWouldBlock", err)
	}
	select {
	case <-woken:
	case <-time.After(5 * time.Second):
		t.Fatal("the writer was not woken for the PONG")
	}
	if !w.Pending() {
		t.Fatal("the PONG is not pending")
	}
	frames := make(chan serverFrame, 10)
	errc := make(chan error, 1)
	go func() {
		r := bufio.NewReader(c)
		for {
			f, err := readServerFrame(r)
			if err != nil {
				errc <- err
				return
			}
			frames <- f
		}
	}()
	// The session's writer: the rest of the cut frame, then the next.
	if err := w.WriteFrames([][]byte{big[n:], small}); err != nil {
		t.Fatal(err)
	}
	want := []serverFrame{{true, opBinary, big}, {true, opPong, []byte("are you there")}, {true, opBinary, small}}
	for i, wf := range want {
		select {
		case f := <-frames:
			if f.fin != wf.fin || f.op != wf.op || string(f.payload) != string(wf.payload) {
				t.Fatalf("frame %d: op %#x, %d bytes; want op %#x, %d bytes", i, f.op, len(f.payload), wf.op, len(wf.payload))
			}
		case err := <-errc:
			t.Fatalf("frame %d: %v", i, err)
		case <-time.After(10 * time.Second):
			t.Fatalf("frame %d never came", i)
		}
	}
	if w.Pending() {
		t.Error("still pending after the write")
	}
	// At a frame boundary with nobody writing, a PONG goes out at once,
	// from the reader, without waking a writer.
	if _, err := c.Write(clientFrame(true, opPing, []byte("again"), [4]byte{9, 8, 7, 6})); err != nil {
		t.Fatal(err)
	}
	wsWaitReadable(t, w)
	if _, err := w.TryReadFrame(protocol.MaxFrame); !errors.Is(err, session.ErrWouldBlock) {
		t.Fatalf("after the PING: %v, want ErrWouldBlock", err)
	}
	select {
	case f := <-frames:
		if f.op != opPong || string(f.payload) != "again" {
			t.Fatalf("got op %#x %q, want the PONG", f.op, f.payload)
		}
	case err := <-errc:
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		t.Fatal("the PONG never came")
	}
	select {
	case <-woken:
		t.Error("a writer was woken for a PONG written at once")
	default:
	}
}

// waitReadable parks w in a Poller until its socket has input.
func wsWaitReadable(t *testing.T, w *WS) {
	t.Helper()
	p, err := testPoller()
	if err != nil {
		t.Fatal(err)
	}
	id := testPollerIDs.Add(1) + 1<<40
	ready := make(chan struct{})
	if err := p.Arm(w.SyscallConn(), id, func() { close(ready) }); err != nil {
		t.Fatal(err)
	}
	defer p.Forget(w.SyscallConn(), id)
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("the socket never became readable")
	}
}

// wsPair is a WS on the server side of a socket pair and the client's end.
func wsPair(t *testing.T) (*WS, *net.TCPConn) {
	s, c := socketPair(t)
	w := newWS(s, nil, "test")
	w.SetWake(func() {})
	return w, c
}

// TestWSParkedReaderWakesOnInput: an idle WebSocket's reader gives its
// goroutine up (TryReadFrame: ErrWouldBlock, nothing buffered), and the
// Poller wakes it when a message arrives. The message comes in two
// fragments, in pieces with pauses: once it has begun, the reader waits
// for the rest, as over TCP; it parks between messages only.
func TestWSParkedReaderWakesOnInput(t *testing.T) {
	w, c := wsPair(t)
	for i := range 5 {
		if _, err := w.TryReadFrame(protocol.MaxFrame); !errors.Is(err, session.ErrWouldBlock) {
			t.Fatalf("idle: %v, want ErrWouldBlock", err)
		}
		hello := protocol.Encode(&protocol.Send{Room: "r", ID: fmt.Sprint(i), Text: "hi"})
		msg := append(clientFrame(false, opBinary, hello[:3], [4]byte{1, 1, 1, 1}), clientFrame(true, opContinuation, hello[3:], [4]byte{2, 2, 2, 2})...)
		go func() {
			// The pause is the behaviour under test: the reader is parked
			// when the message comes, and its second half comes later.
			time.Sleep(10 * time.Millisecond)
			_, _ = c.Write(msg[:5])
			time.Sleep(10 * time.Millisecond)
			_, _ = c.Write(msg[5:])
		}()
		wsWaitReadable(t, w)
		body, err := w.TryReadFrame(protocol.MaxFrame)
		if err != nil {
			t.Fatal(err)
		}
		m, err := protocol.Decode(body)
		if err != nil || m.(*protocol.Send).ID != fmt.Sprint(i) {
			t.Fatalf("got %v %v", m, err)
		}
	}
}

// TestWSFragmentsWithControlFramesBetween: a message in many fragments
// with PINGs and a PONG between them is one frame; each PING is answered,
// in order.
func TestWSFragmentsWithControlFramesBetween(t *testing.T) {
	w, c := wsPair(t)
	body := protocol.Encode(&protocol.Send{Room: "room", ID: "x", Text: strings.Repeat("é", 300)})
	var in []byte
	var pings []string
	for i, k := 0, 0; k < len(body); i++ {
		end := min(len(body), k+1+i*7)
		op := byte(opContinuation)
		if k == 0 {
			op = opBinary
		}
		in = append(in, clientFrame(end == len(body), op, body[k:end], [4]byte{byte(i), 3, byte(k), 5})...)
		if i%2 == 0 {
			pings = append(pings, fmt.Sprintf("p%d", i))
			in = append(in, clientFrame(true, opPing, fmt.Appendf(nil, "p%d", i), [4]byte{7, 7, 7, byte(i)})...)
		} else {
			in = append(in, clientFrame(true, opPong, nil, [4]byte{})...)
		}
		k = end
	}
	go func() { _, _ = c.Write(in) }()
	got, err := w.ReadFrame(protocol.MaxFrame)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(body[protocol.LengthSize:]) {
		t.Fatal("the reassembled frame differs")
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	for _, want := range pings {
		f, err := readServerFrame(r)
		if err != nil {
			t.Fatal(err)
		}
		if f.op != opPong || string(f.payload) != want {
			t.Fatalf("got op %#x %q, want PONG %s", f.op, f.payload, want)
		}
	}
}

// TestWSProtocolViolations: reserved bits, unknown opcodes, unmasked and
// broken control frames are the client's malformed input, and our CLOSE
// then carries 1002.
func TestWSProtocolViolations(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
	}{
		{"reserved bit", func() []byte {
			b := clientFrame(true, opBinary, []byte{0, 0, 0, 1, 1}, [4]byte{})
			b[0] |= 0x40
			return b
		}()},
		{"unknown opcode", clientFrame(true, 0x3, []byte{1}, [4]byte{})},
		{"unmasked", []byte{0x82, 0x01, 0x00}},
		{"fragmented ping", clientFrame(false, opPing, nil, [4]byte{})},
		{"long ping", clientFrame(true, opPing, make([]byte, 126), [4]byte{})},
		{"continuation first", clientFrame(true, opContinuation, []byte{1}, [4]byte{})},
		{"new message inside one", append(clientFrame(false, opBinary, []byte{0, 0}, [4]byte{}), clientFrame(true, opBinary, []byte{0, 0}, [4]byte{})...)},
		{"one-byte close", clientFrame(true, opClose, []byte{3}, [4]byte{})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w, c := wsPair(t)
			go func() { _, _ = c.Write(tc.in) }()
			_, err := w.ReadFrame(protocol.MaxFrame)
			var de *protocol.DecodeError
			if !errors.As(err, &de) || de.Code != protocol.CodeMalformed {
				t.Fatalf("got %v, want malformed", err)
			}
			if err := w.CloseWrite(time.Now().Add(time.Second)); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			f, err := readServerFrame(c)
			if err != nil {
				t.Fatal(err)
			}
			if f.op != opClose || len(f.payload) < 2 || binary.BigEndian.Uint16(f.payload) != closeProtocolError {
				t.Fatalf("got op %#x % x, want CLOSE 1002", f.op, f.payload)
			}
			if _, err := c.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("after the CLOSE: %v, want the end of the stream", err)
			}
		})
	}
}

// TestWSCloseHandshake: the client's close is answered with its code and
// ends the session cleanly; the server's close (after an ERROR) reaches
// the client as a normal closure.
func TestWSCloseHandshake(t *testing.T) {
	url, members, _ := wsManagerServer(t, 0)
	t.Run("client first", func(t *testing.T) {
		c := dialSmall(t, url, 1<<16)
		<-members
		go func() { _, _, _ = c.Read(context.Background()) }() // Close needs a reader for the answer
		if err := c.Close(websocket.StatusGoingAway, "bye"); err != nil {
			t.Fatalf("the close handshake failed: %v", err)
		}
	})
	t.Run("server first", func(t *testing.T) {
		c := dialSmall(t, url, 1<<16)
		m := <-members
		m.Fail(protocol.NewError(protocol.CodeTimeout, "", "go away"))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if e, err := protocol.Decode(b[protocol.LengthSize:]); err != nil || e.(*protocol.Error).Code != protocol.CodeTimeout {
			t.Fatalf("got %v %v, want the ERROR", e, err)
		}
		if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
			t.Fatalf("after the ERROR: %v, want a normal closure", err)
		}
	})
}

// benchmarkTryWrite writes batches of 32 frames of 100 bytes (a burst of
// a busy room's fan-out to one connection) with try, to a client that
// drains the socket.
func benchmarkTryWrite(b *testing.B, prefixed bool, try func(s *net.TCPConn) func([][]byte) (int, error)) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, c)
	}()
	s, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	write := try(s.(*net.TCPConn))
	frame := protocol.Encode(&protocol.Msg{Room: "r", Seq: 1, Sender: "s", Text: strings.Repeat("x", 70)})
	if prefixed {
		var h [maxHeader]byte
		frame = append(h[:putHeader(h[:], opBinary, len(frame))], frame...)
	}
	batch := make([][]byte, 32)
	for i := range batch {
		batch[i] = frame
	}
	b.SetBytes(int64(len(frame) * len(batch)))
	b.ResetTimer()
	for range b.N {
		rest := batch
		for len(rest) > 0 {
			n, err := write(rest)
			if err != nil {
				b.Fatal(err)
			}
			for len(rest) > 0 && n >= len(rest[0]) {
				n -= len(rest[0])
				rest = rest[1:]
			}
			if len(rest) > 0 {
				rest = append([][]byte{rest[0][n:]}, rest[1:]...)
			}
		}
	}
}

// BenchmarkTryWrite compares a WebSocket's write (two iovecs a frame)
// with TCP's (one) for the same frames, and with the WebSocket frames
// built whole beforehand (a header prefixed once per broadcast).
func BenchmarkTryWrite(b *testing.B) {
	b.Run("tcp", func(b *testing.B) {
		benchmarkTryWrite(b, false, func(s *net.TCPConn) func([][]byte) (int, error) { return NewTCP(s).TryWrite })
	})
	// The header prefixed once per broadcast: one iovec a frame.
	b.Run("ws-prefixed", func(b *testing.B) {
		benchmarkTryWrite(b, true, func(s *net.TCPConn) func([][]byte) (int, error) { return NewTCP(s).TryWrite })
	})
	b.Run("ws", func(b *testing.B) {
		benchmarkTryWrite(b, false, func(s *net.TCPConn) func([][]byte) (int, error) {
			w := newWS(s, nil, "bench")
			w.SetWake(func() {})
			return w.TryWrite
		})
	})
}
