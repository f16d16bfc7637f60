package transport

import (
	"bufio"
	"bytes"
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
	"testing"
	"time"

	"chat/protocol"
	"chat/server/internal/session"
)

// wsFrameServer serves WebSockets whose first ReadFrame result goes to
// the returned channel.
func wsFrameServer(t *testing.T) (addr string, results <-chan error) {
	t.Helper()
	errs := make(chan error, 1)
	h := WebSocketHandler(func(tr session.Transport, onEnd func()) {
		go func() {
			defer onEnd()
			defer tr.Close()
			_, err := tr.ReadFrame(protocol.DefaultMaxClientFrame)
			errs <- err
		}()
	}, nil, nil, func(string, string, string) {}, slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(h) // 127.0.0.1
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), errs
}

// rawWebSocket opens a WebSocket by hand, so a test can send what no
// library would: half a frame.
func rawWebSocket(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET / HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %s", resp.Status)
	}
	return c
}

// maskedFrame is a client WebSocket frame header (binary opcode, fin as
// given) announcing n payload bytes, with an all-zero mask (so the
// payload goes as it is), followed by payload.
func maskedFrame(fin bool, n int, payload []byte) []byte {
	b0 := byte(0x02)
	if fin {
		b0 |= 0x80
	}
	return append([]byte{b0, 0x80 | byte(n), 0, 0, 0, 0}, payload...)
}

func firstResult(t *testing.T, results <-chan error) error {
	t.Helper()
	select {
	case err := <-results:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("the server never finished reading the frame")
		return nil
	}
}

// TestWebSocketDroppedInsideAMessage (issue 17): a connection that ends in
// the middle of a WebSocket message is a read error, reported like TCP's
// "connection ended inside a frame", not the client's malformed input.
func TestWebSocketDroppedInsideAMessage(t *testing.T) {
	cases := []struct {
		name string
		sent []byte
	}{
		// A WebSocket frame announcing 100 bytes that brings 2.
		{"inside a WebSocket frame", maskedFrame(true, 100, []byte{0, 0})},
		// A first fragment holding a length prefix of 100 and 2 bytes of
		// the frame, then nothing: the end comes at a WebSocket frame
		// boundary, which the library reports as the message's end.
		{"between fragments", maskedFrame(false, 6, []byte{0, 0, 0, 100, byte(protocol.TypeHello), 1})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr, results := wsFrameServer(t)
			c := rawWebSocket(t, addr)
			if _, err := c.Write(tc.sent); err != nil {
				t.Fatal(err)
			}
			c.Close()
			err := firstResult(t, results)
			var de *protocol.DecodeError
			if errors.As(err, &de) {
				t.Fatalf("a dropped connection was blamed on the client: %v", err)
			}
			if !errors.Is(err, protocol.ErrTruncated) {
				t.Fatalf("got %v, want the connection ended inside a frame", err)
			}
		})
	}
}

// TestWebSocketShortMessageIsMalformed: a message that really ends before
// its frame, on a connection that stays open, is the client's error.
func TestWebSocketShortMessageIsMalformed(t *testing.T) {
	addr, results := wsFrameServer(t)
	c := rawWebSocket(t, addr)
	if _, err := c.Write(maskedFrame(true, 2, []byte{0, 0})); err != nil {
		t.Fatal(err)
	}
	err := firstResult(t, results)
	var de *protocol.DecodeError
	if !errors.As(err, &de) || de.Code != protocol.CodeMalformed {
		t.Fatalf("got %v, want malformed", err)
	}
}

// TestWSEveryCutPosition: a write that stops at any byte (inside a
// control frame, a header or a frame) leaves the transport able to go on
// where it stopped, and a control frame queued meanwhile goes out at the
// next frame boundary: the stream stays valid WebSocket framing carrying
// every frame once, in order.
func TestWSEveryCutPosition(t *testing.T) {
	frames := [][]byte{[]byte("12345"), bytes.Repeat([]byte("b"), 300), bytes.Repeat([]byte("c"), 70_000), []byte("z")}
	pong := func(s string) []byte {
		var b [maxHeader + maxControl]byte
		h := putHeader(b[:], opPong, len(s))
		return append(b[:h:h], s...)
	}
	first := 0
	for _, f := range frames {
		first += len(f)
	}
	total := len(pong("one")) + first + 2 + 4 + 10 + 2
	for k := 0; k <= total; k++ {
		if k > 300 && k < total-300 && k%991 != 0 {
			continue // the long frame's middle: a sample
		}
		w := &WS{closeCode: closeNormal}
		w.ctrl = pong("one")
		v, err := w.begin(frames)
		if err != nil {
			t.Fatal(err)
		}
		var stream []byte
		for _, b := range v.iov {
			stream = append(stream, b...)
		}
		stream = stream[:k]
		n := w.end(v, k)
		w.ctrl = append(w.ctrl, pong("two")...) // queued while the socket was full
		rest := frames
		for m := n; len(rest) > 0 && m >= len(rest[0]); {
			m -= len(rest[0])
			rest = rest[1:]
			n = m
		}
		if len(rest) > 0 {
			rest = append([][]byte{rest[0][n:]}, rest[1:]...)
		}
		v, err = w.begin(rest)
		if err != nil {
			t.Fatalf("cut at %d: %v", k, err)
		}
		all := 0
		for _, b := range v.iov {
			stream = append(stream, b...)
			all += len(b)
		}
		w.end(v, all)
		if w.Pending() || w.bodyLeft != 0 {
			t.Fatalf("cut at %d: still pending after a whole write", k)
		}
		var got [][]byte
		var pongs []string
		r := bytes.NewReader(stream)
		for r.Len() > 0 {
			f, err := readServerFrame(r)
			if err != nil {
				t.Fatalf("cut at %d: the stream breaks: %v", k, err)
			}
			switch f.op {
			case opPong:
				pongs = append(pongs, string(f.payload))
			case opBinary:
				got = append(got, f.payload)
			default:
				t.Fatalf("cut at %d: opcode %#x", k, f.op)
			}
		}
		if len(got) != len(frames) || len(pongs) != 2 || pongs[0] != "one" || pongs[1] != "two" {
			t.Fatalf("cut at %d: %d frames, pongs %q", k, len(got), pongs)
		}
		for i := range got {
			if !bytes.Equal(got[i], frames[i]) {
				t.Fatalf("cut at %d: frame %d differs", k, i)
			}
		}
	}
}

// memConn is a connection whose input is fixed and whose output is kept.
type memConn struct {
	net.Conn
	in  *bytes.Reader
	out bytes.Buffer
}

func (c *memConn) Read(p []byte) (int, error)       { return c.in.Read(p) }
func (c *memConn) Write(p []byte) (int, error)      { return c.out.Write(p) }
func (c *memConn) Close() error                     { return nil }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }
func (c *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }

// FuzzWSReader reads an arbitrary client stream as the session would:
// frames until an error, then Discard. It must not panic or hang, never
// return a frame over the limit, and what it writes back must be valid
// server framing (PONGs, at most one CLOSE, last). A stream the seeds
// build from real messages must also read back exactly.
func FuzzWSReader(f *testing.F) {
	hello := protocol.Encode(&protocol.Hello{Version: protocol.Version, Client: "fuzz"})
	f.Add(clientFrameT(true, opBinary, hello, [4]byte{1, 2, 3, 4}))
	f.Add(append(append(clientFrameT(false, opBinary, hello[:3], [4]byte{9, 9, 9, 9}),
		clientFrameT(true, opPing, []byte("x"), [4]byte{1, 0, 0, 0})...),
		clientFrameT(true, opContinuation, hello[3:], [4]byte{5, 6, 7, 8})...))
	f.Add(clientFrameT(true, opClose, []byte{3, 232}, [4]byte{}))
	f.Add(clientFrameT(true, opText, []byte("hi"), [4]byte{}))
	f.Add(append(clientFrameT(true, opBinary, []byte{0, 0, 0, 200, 1}, [4]byte{}), 0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0))
	f.Fuzz(func(t *testing.T, in []byte) {
		const max = 512
		c := &memConn{in: bytes.NewReader(in)}
		w := newWS(c, nil, "fuzz")
		for range len(in) + 1 {
			body, err := w.ReadFrame(max)
			if err != nil {
				var de *protocol.DecodeError
				if errors.As(err, &de) {
					_ = w.Discard()
				}
				break
			}
			if len(body) > max || len(body) == 0 {
				t.Fatalf("a frame of %d bytes", len(body))
			}
		}
		r := bytes.NewReader(c.out.Bytes())
		closes := 0
		for r.Len() > 0 {
			f, err := readServerFrame(r)
			if err != nil {
				t.Fatalf("the server's stream breaks: %v", err)
			}
			if !f.fin || (f.op != opPong && f.op != opClose) || closes > 0 {
				t.Fatalf("server frame op %#x fin %v after %d closes", f.op, f.fin, closes)
			}
			if f.op == opClose {
				closes++
			}
		}
	})
}

// clientFrameT is clientFrame for every platform's tests.
func clientFrameT(fin bool, op byte, payload []byte, mask [4]byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	var h []byte
	switch n := len(payload); {
	case n < 126:
		h = []byte{b0, 0x80 | byte(n)}
	case n <= 0xFFFF:
		h = []byte{b0, 0x80 | 126, byte(n >> 8), byte(n)}
	default:
		h = binary.BigEndian.AppendUint64([]byte{b0, 0x80 | 127}, uint64(n))
	}
	h = append(h, mask[:]...)
	p := append([]byte(nil), payload...)
	for i := range p {
		p[i] ^= mask[i%4]
	}
	return append(h, p...)
}

// TestWSReaderRoundTrip: frames cut into random fragments with random
// masks and control frames between them read back exactly, over a
// stream that arrives in one piece (the reader's own view).
func TestWSReaderRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var in []byte
	var want [][]byte
	for i := range 300 {
		frame := protocol.Encode(&protocol.Send{Room: "r", ID: fmt.Sprint(i), Text: strings.Repeat("ü", r.IntN(3000))})
		want = append(want, frame[protocol.LengthSize:])
		for k, first := 0, true; k < len(frame); first = false {
			end := min(len(frame), k+1+r.IntN(len(frame)))
			op := byte(opContinuation)
			if first {
				op = opBinary
			}
			in = append(in, clientFrameT(end == len(frame), op, frame[k:end], [4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})...)
			if r.IntN(3) == 0 {
				in = append(in, clientFrameT(true, opPong, []byte("p"), [4]byte{1, 2, 3, 4})...)
			}
			k = end
		}
	}
	w := newWS(&memConn{in: bytes.NewReader(in)}, nil, "test")
	for i, wf := range want {
		got, err := w.ReadFrame(protocol.MaxFrame)
		if err != nil || !bytes.Equal(got, wf) {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
	if _, err := w.ReadFrame(protocol.MaxFrame); err != io.EOF {
		t.Fatalf("at the end: %v, want io.EOF", err)
	}
}

// serverFrame is one frame the server sent.
type serverFrame struct {
	fin     bool
	op      byte
	payload []byte
}

func readServerFrame(r io.Reader) (serverFrame, error) {
	var h [10]byte
	if _, err := io.ReadFull(r, h[:2]); err != nil {
		return serverFrame{}, err
	}
	if h[1]&0x80 != 0 || h[0]&0x70 != 0 {
		return serverFrame{}, fmt.Errorf("a masked server frame or reserved bits: % x", h[:2])
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		if _, err := io.ReadFull(r, h[2:4]); err != nil {
			return serverFrame{}, err
		}
		n = uint64(binary.BigEndian.Uint16(h[2:]))
	case 127:
		if _, err := io.ReadFull(r, h[2:10]); err != nil {
			return serverFrame{}, err
		}
		n = binary.BigEndian.Uint64(h[2:])
	}
	p := make([]byte, n)
	_, err := io.ReadFull(r, p)
	return serverFrame{fin: h[0]&0x80 != 0, op: h[0] & 0x0F, payload: p}, err
}
