package wire

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"chat/protocol"
)

// serverFrame is a server's (unmasked) WebSocket frame.
func serverFrame(fin bool, op byte, payload []byte) []byte {
	b := []byte{op}
	if fin {
		b[0] |= 0x80
	}
	switch n := len(payload); {
	case n <= 125:
		b = append(b, byte(n))
	case n <= 0xffff:
		b = append(b, 126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...)
}

// unit is what Deframer.Next should find.
type unit struct {
	kind Kind
	body []byte
}

// TestDeframerWebSocket splits a stream with every kind of server frame,
// and every prefix of each unit is Incomplete with a need that leads to
// the whole unit: 7-bit, 16-bit and 64-bit lengths, a fragmented message
// with a control frame between its fragments, pings, pongs and a close.
func TestDeframerWebSocket(t *testing.T) {
	small := protocol.Encode(&protocol.Ping{Nonce: 7})
	mid := protocol.Encode(&protocol.Msg{Room: "r", Seq: 1, Sender: "s", ID: "i", Text: strings.Repeat("y", 500)})
	big := protocol.Encode(&protocol.Msg{Room: "r", Seq: 2, Sender: "s", ID: "i", Text: strings.Repeat("z", 70_000)})
	frag := protocol.Encode(&protocol.Left{Room: "fragmented"})
	units := [][]byte{
		serverFrame(true, 0x2, small),
		serverFrame(true, 0x9, []byte("are you there")),
		serverFrame(true, 0x2, mid),
		serverFrame(false, 0x2, frag[:3]),
		serverFrame(true, 0xa, nil),
		serverFrame(false, 0x0, frag[3:7]),
		serverFrame(true, 0x0, frag[7:]),
		serverFrame(true, 0x2, big),
		serverFrame(true, 0x8, []byte{0x03, 0xe8}),
	}
	want := []unit{
		{Frame, small[protocol.LengthSize:]},
		{WSPing, []byte("are you there")},
		{Frame, mid[protocol.LengthSize:]},
		{Skipped, nil},
		{Skipped, nil},
		{Skipped, nil},
		{Frame, frag[protocol.LengthSize:]},
		{Frame, big[protocol.LengthSize:]},
		{WSClose, []byte{0x03, 0xe8}},
	}
	d := Deframer{WS: true}
	for i, u := range units {
		for cut := range len(u) {
			k, _, used, need, err := d.Next(u[:cut])
			if err != nil || k != Incomplete || used != 0 || need <= cut || need > len(u) {
				t.Fatalf("unit %d cut at %d of %d: %v used %d need %d (%v), want Incomplete with a need in (%d, %d]",
					i, cut, len(u), k, used, need, err, cut, len(u))
			}
		}
		k, body, used, _, err := d.Next(append(u, 0xff)) // a byte of the next unit is not taken
		if err != nil || k != want[i].kind || used != len(u) || !bytes.Equal(body, want[i].body) {
			t.Fatalf("unit %d: %v %d bytes used of %d (%v), body %.40x; want %v %.40x", i, k, used, len(u), err, body, want[i].kind, want[i].body)
		}
	}
}

// TestDeframerAfterAFragmentedMessage: a large message after a large
// fragmented one is not counted with the earlier one's fragments; a
// fragmented message over a frame's limit is refused.
func TestDeframerAfterAFragmentedMessage(t *testing.T) {
	big := protocol.Encode(&protocol.Msg{Room: "r", Seq: 1, Sender: "s", ID: "i", Text: strings.Repeat("f", 600_000)})
	d := Deframer{WS: true}
	half := len(big) / 2
	for _, u := range [][]byte{serverFrame(false, 0x2, big[:half]), serverFrame(true, 0x0, big[half:]), serverFrame(true, 0x2, big)} {
		if _, _, used, _, err := d.Next(u); err != nil || used != len(u) {
			t.Fatalf("used %d of %d: %v", used, len(u), err)
		}
	}
	over := make([]byte, maxWSPayload/2+1)
	d.Next(serverFrame(false, 0x2, over))
	if _, _, _, _, err := d.Next(serverFrame(true, 0x0, over)); !errors.Is(err, ErrFrame) {
		t.Fatalf("a fragmented message over the limit: %v", err)
	}
}

// TestDeframerRefuses: what a server must not send is an error, not a
// guess.
func TestDeframerRefuses(t *testing.T) {
	ping := protocol.Encode(&protocol.Ping{Nonce: 1})
	masked := serverFrame(true, 0x2, ping)
	masked[1] |= 0x80
	for name, stream := range map[string][]byte{
		"masked":                 masked,
		"text":                   serverFrame(true, 0x1, ping),
		"reserved bits":          append([]byte{0xc2}, serverFrame(true, 0x2, ping)[1:]...),
		"continuation alone":     serverFrame(true, 0x0, ping),
		"two frames in one":      serverFrame(true, 0x2, append(append([]byte(nil), ping...), ping...)),
		"shorter than a prefix":  serverFrame(true, 0x2, ping[:3]),
		"shorter than its frame": serverFrame(true, 0x2, ping[:len(ping)-1]),
		"longer than a frame":    {0x82, 127, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff},
		"fragmented control":     serverFrame(false, 0x9, nil),
		"unknown opcode":         serverFrame(true, 0x3, nil),
		"message in a message":   append(serverFrame(false, 0x2, ping[:2]), serverFrame(true, 0x2, ping)...),
	} {
		d := Deframer{WS: true}
		var err error
		for b := stream; err == nil; {
			var used int
			var k Kind
			if k, _, used, _, err = d.Next(b); k == Incomplete && err == nil {
				t.Errorf("%s: no error, stuck Incomplete", name)
				break
			}
			b = b[used:]
		}
		if !errors.Is(err, ErrFrame) {
			t.Errorf("%s: %v, want a malformed frame", name, err)
		}
	}
}

// TestWrapMasks: a client's frames are masked, one binary message per
// protocol frame, and unmask to the frames.
func TestWrapMasks(t *testing.T) {
	frames := protocol.AppendFrame(nil, &protocol.Pong{Nonce: 9})
	frames = protocol.AppendFrame(frames, &protocol.Msg{Room: "r", Text: strings.Repeat("x", 300)})
	d := Deframer{WS: true}
	wire, err := d.Wrap(nil, frames)
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	for b := wire; len(b) > 0; {
		if b[0] != 0x82 || b[1]&0x80 == 0 {
			t.Fatalf("frame header %x: want FIN binary, masked", b[:2])
		}
		hdr, n := 2, int(b[1]&0x7f)
		if n == 126 {
			hdr, n = 4, int(binary.BigEndian.Uint16(b[2:]))
		}
		mask := b[hdr : hdr+4]
		for i, c := range b[hdr+4 : hdr+4+n] {
			got = append(got, c^mask[i&3])
		}
		b = b[hdr+4+n:]
	}
	if !bytes.Equal(got, frames) {
		t.Fatalf("unmasked %x, want %x", got, frames)
	}
	if _, err := d.Wrap(nil, frames[:len(frames)-1]); !errors.Is(err, ErrFrame) {
		t.Errorf("a partial frame: %v", err)
	}
}

// TestWebSocketAgainstALibraryServer: the generator's WebSocket client
// against coder/websocket as the server on 127.0.0.1: the upgrade, frames
// both ways (the library checks the client's masking), a ping answered
// from inside ReadFrame, and the close, answered.
func TestWebSocketAgainstALibraryServer(t *testing.T) {
	msg := protocol.Encode(&protocol.Msg{Room: "r", Seq: 1, Sender: "s", ID: "i", Text: strings.Repeat("w", 3000)})
	got := make(chan []byte, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		_ = c.Write(ctx, websocket.MessageBinary, msg)
		// Ping waits for the pong, which needs a reader: CloseRead's
		// would drop data, so read the client's frame concurrently.
		read := make(chan []byte, 1)
		go func() {
			_, b, _ := c.Read(ctx)
			read <- b
			for { // then control frames: the pong, the close's answer
				if _, _, err := c.Read(ctx); err != nil {
					return
				}
			}
		}()
		if err := c.Ping(ctx); err != nil {
			t.Errorf("ping: %v", err)
		}
		got <- <-read
		if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
			t.Errorf("close: %v (the client answers a close)", err)
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", 256)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body, err := c.ReadFrame()
	if err != nil || !bytes.Equal(body, msg[protocol.LengthSize:]) {
		t.Fatalf("read %d bytes (%v), want the %d of the message", len(body), err, len(msg)-protocol.LengthSize)
	}
	pong := protocol.AppendFrame(nil, &protocol.Pong{Nonce: 3})
	if err := c.Write(pong, time.Now().Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	// The server's ping is answered while ReadFrame waits; then the close.
	if _, err := c.ReadFrame(); !errors.Is(err, io.EOF) {
		t.Errorf("after the close: %v, want EOF", err)
	}
	if b := <-got; !bytes.Equal(b, pong) {
		t.Errorf("the server read %x, want %x", b, pong)
	}
}

// TestDialWebSocketRefusals: a server that does not upgrade is an error
// that says what it answered.
func TestDialWebSocketRefusals(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "slow down", http.StatusTooManyRequests)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", 256)
	if err == nil || !strings.Contains(err.Error(), "429") {
		t.Errorf("dial: %v, want the 429", err)
	}

	// A server that accepts and never answers: the context's deadline ends it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			defer c.Close()
			_, _ = io.Copy(io.Discard, c)
		}
	}()
	short, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	if _, err := Dial(short, "ws://"+l.Addr().String()+"/ws", 256); err == nil {
		t.Error("dial to a silent server succeeded")
	}
}
