package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"chat/client"
	"chat/internal/clienttest"
	"chat/internal/testserver"
	"chat/protocol"
)

// wsRaw is a bare WebSocket connection speaking protocol frames.
type wsRaw struct {
	t *testing.T
	c *websocket.Conn
}

func dialWS(t *testing.T, url string, header http.Header) (*wsRaw, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: header})
	if err != nil {
		return nil, resp, err
	}
	c.SetReadLimit(protocol.MaxFrame + protocol.LengthSize)
	t.Cleanup(func() { c.CloseNow() })
	return &wsRaw{t: t, c: c}, resp, nil
}

func (w *wsRaw) write(typ websocket.MessageType, b []byte) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.c.Write(ctx, typ, b); err != nil {
		w.t.Fatal(err)
	}
}

func (w *wsRaw) send(m protocol.Message) { w.write(websocket.MessageBinary, protocol.Encode(m)) }

// read returns the next message, or the error that ended the connection.
func (w *wsRaw) read() (protocol.Message, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	typ, b, err := w.c.Read(ctx)
	if err != nil {
		return nil, err
	}
	if typ != websocket.MessageBinary || len(b) < protocol.LengthSize ||
		int(binary.BigEndian.Uint32(b)) != len(b)-protocol.LengthSize {
		w.t.Fatalf("the server sent a message that is not exactly one frame: %v %x", typ, b)
	}
	return protocol.Decode(b[protocol.LengthSize:])
}

func expectWS[T protocol.Message](w *wsRaw) T {
	w.t.Helper()
	for {
		m, err := w.read()
		if err != nil {
			var zero T
			w.t.Fatalf("waiting for %T: %v", zero, err)
		}
		switch m.(type) {
		case *protocol.Ping, *protocol.Presence:
			continue
		}
		v, ok := m.(T)
		if !ok {
			var zero T
			w.t.Fatalf("got %T %+v, want %T", m, m, zero)
		}
		return v
	}
}

func wsURL(srv *testserver.Server) string { return "ws://" + srv.HTTPAddr + "/ws" }

// TestTCPAndWebSocketClientsShareRooms: one room, members on both
// transports, the same messages, presence and history.
func TestTCPAndWebSocketClientsShareRooms(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	tcp := join(t, srv, "tcp-user")
	ws := clienttest.New(t, client.Config{Addr: wsURL(srv), Name: "ws-user"})
	ws.C.Join("general")
	j := ws.WaitJoined(t, "general")
	if j.Count != 2 {
		t.Fatalf("the WebSocket member sees %d members", j.Count)
	}
	tcp.Wait(t, "ws-user joined", func(ev client.Event) bool {
		p, ok := ev.(client.Presence)
		return ok && len(p.Changes) == 1 && p.Changes[0].Name == "ws-user"
	})
	tcp.C.Send("general", "over TCP ~ 🎉")
	ws.WaitText(t, "over TCP ~ 🎉") // two senders have no order between them: make one
	ws.C.Send("general", "over WebSocket\nwith a newline")
	for _, r := range []*clienttest.Recorder{tcp, ws} {
		got := r.WaitMessages(t, 2)
		if got[0].Text != "over TCP ~ 🎉" || got[1].Text != "over WebSocket\nwith a newline" {
			t.Errorf("%s saw %q, %q", r.C.Name(), got[0].Text, got[1].Text)
		}
	}
	// A WebSocket late joiner gets the history written over both.
	late := clienttest.New(t, client.Config{Addr: wsURL(srv), Name: "late"})
	late.C.Join("general")
	if got := late.WaitMessages(t, 2); got[1].Sender != "ws-user" || !got[1].History {
		t.Errorf("late joiner's history: %+v", got)
	}
}

func TestResumeOverWebSocket(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	alice := join(t, srv, "alice")
	w, _, err := dialWS(t, wsURL(srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	w.send(&protocol.Hello{Version: protocol.Version, Client: "ws-raw"})
	expectWS[*protocol.Welcome](w)
	w.send(&protocol.Join{Room: "general", Name: "bob"})
	expectWS[*protocol.Joined](w)
	alice.C.Send("general", "one")
	seen := expectWS[*protocol.Msg](w)
	w.c.CloseNow()

	for _, s := range []string{"two", "three", "four"} {
		alice.C.Send("general", s)
	}
	alice.WaitText(t, "four")
	w2, _, err := dialWS(t, wsURL(srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	w2.send(&protocol.Hello{Version: protocol.Version, Client: "ws-raw"})
	expectWS[*protocol.Welcome](w2)
	w2.send(&protocol.Join{Room: "general", Name: "bob", Resume: true, After: seen.Seq})
	expectWS[*protocol.Joined](w2)
	for _, want := range []string{"two", "three", "four"} {
		if m := expectWS[*protocol.Msg](w2); m.Text != want {
			t.Fatalf("resumed %q, want %q", m.Text, want)
		}
	}
}

// TestMalformedWebSocketInput: each kind of bad WebSocket input gets its
// ERROR and a close, like on TCP.
func TestMalformedWebSocketInput(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	bystander := join(t, srv, "bystander")
	hello := protocol.Encode(&protocol.Hello{Version: protocol.Version, Client: "ws-bad"})
	twoFrames := append(append([]byte{}, hello...), hello...)
	cases := []struct {
		name string
		typ  websocket.MessageType
		msg  []byte
		code protocol.ErrorCode
	}{
		{"text message", websocket.MessageText, []byte(`{"type":"hello"}`), protocol.CodeMalformed},
		{"oversized frame", websocket.MessageBinary, append([]byte{0, 1, 0, 0, byte(protocol.TypeHello)}, make([]byte, 65535)...), protocol.CodeFrameTooLarge},
		{"shorter than a length prefix", websocket.MessageBinary, []byte{0, 0}, protocol.CodeMalformed},
		{"length prefix beyond the message", websocket.MessageBinary, hello[:len(hello)-2], protocol.CodeMalformed},
		{"two frames in one message", websocket.MessageBinary, twoFrames, protocol.CodeMalformed},
		{"garbage", websocket.MessageBinary, []byte("\x00\x00\x00\x03\x01\xff\xff"), protocol.CodeMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w, _, err := dialWS(t, wsURL(srv), nil)
			if err != nil {
				t.Fatal(err)
			}
			w.write(tc.typ, tc.msg)
			e := expectWS[*protocol.Error](w)
			if e.Code != tc.code || !e.Closing() {
				t.Fatalf("got %v, want a closing %v", e, tc.code)
			}
			if _, err := w.read(); websocket.CloseStatus(err) == -1 {
				t.Fatalf("after the error: %v, want a WebSocket close", err)
			}
		})
	}
	bystander.C.Send("general", "unaffected")
	bystander.WaitText(t, "unaffected")
}

// TestFragmentedWebSocketMessageIsOneFrame (spec: transports): a binary
// message sent in several WebSocket fragments is reassembled; what counts
// is the message, which carries exactly one frame.
func TestFragmentedWebSocketMessageIsOneFrame(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	w, _, err := dialWS(t, wsURL(srv), nil) // no Origin header: not a browser, let in
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	mw, err := w.c.Writer(ctx, websocket.MessageBinary)
	if err != nil {
		t.Fatal(err)
	}
	hello := protocol.Encode(&protocol.Hello{Version: protocol.Version, Client: "ws-fragments"})
	// Each Write is one WebSocket frame without FIN; Close sends the last.
	// The first piece ends inside the length prefix.
	for _, piece := range [][]byte{hello[:2], hello[2:7], hello[7:]} {
		if _, err := mw.Write(piece); err != nil {
			t.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	expectWS[*protocol.Welcome](w)
}

func TestWebSocketOriginCheck(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"-allowed-origins", "app.example.com, *.friends.example"}})
	tests := []struct {
		origin string
		ok     bool
	}{
		{"", true}, // not a browser
		{"http://" + srv.HTTPAddr, true},
		{"https://app.example.com", true},
		{"https://chat.friends.example", true},
		{"https://evil.example", false},
		{"null", false},
	}
	for _, tc := range tests {
		h := http.Header{}
		if tc.origin != "" {
			h.Set("Origin", tc.origin)
		}
		_, resp, err := dialWS(t, wsURL(srv), h)
		switch {
		case tc.ok && err != nil:
			t.Errorf("origin %q refused: %v", tc.origin, err)
		case !tc.ok && (err == nil || resp == nil || resp.StatusCode != http.StatusForbidden):
			t.Errorf("origin %q: err %v, want 403", tc.origin, err)
		}
	}
	rec := srv.WaitLog("websocket refused", func(rec map[string]any) bool { return rec["origin"] == "https://evil.example" })
	if !strings.Contains(rec["err"].(string), "not authorized") {
		t.Errorf("refusal logged as %v", rec)
	}
}

// TestWebSocketDropInsideAMessageIsAReadError (issue 17): a WebSocket
// that announces a 100-byte message, sends 2 bytes and closes is logged
// as a connection that ended inside a frame, as on TCP: not as the
// client's protocol error, and no ERROR is tried on the dead connection.
func TestWebSocketDropInsideAMessageIsAReadError(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	c, err := net.DialTimeout("tcp", srv.HTTPAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET /ws HTTP/1.1\r\nHost: " + srv.HTTPAddr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	remote := c.LocalAddr().String()
	// A final binary frame, masked (with a zero key), announcing 100
	// bytes; 2 of them come.
	if _, err := c.Write([]byte{0x82, 0x80 | 100, 0, 0, 0, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	rec := srv.WaitLog("connection closed", func(rec map[string]any) bool { return rec["remote"] == remote })
	if rec["reason"] != "connection ended inside a frame" {
		t.Errorf("the connection ended with %q, want %q", rec["reason"], "connection ended inside a frame")
	}
	for _, e := range srv.LogRecords("protocol error") {
		if e["remote"] == remote {
			t.Errorf("a network drop was logged as the client's protocol error: %v", e)
		}
	}
}

// rawWS opens a WebSocket to the server by hand, for what no library
// sends: control frames between fragments, reserved bits.
func rawWS(t *testing.T, srv *testserver.Server) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", srv.HTTPAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET /ws HTTP/1.1\r\nHost: " + srv.HTTPAddr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		t.Fatalf("the server negotiated %q: permessage-deflate must stay off (encode-once)", ext)
	}
	return c, br
}

// wsClientFrame is a masked client frame (payload under 126 bytes).
func wsClientFrame(fin bool, op byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	mask := [4]byte{0x12, 0x34, 0x56, 0x78}
	b := []byte{b0, 0x80 | byte(len(payload)), mask[0], mask[1], mask[2], mask[3]}
	for i, c := range payload {
		b = append(b, c^mask[i%4])
	}
	return b
}

// wsServerFrame reads one server frame: opcode and payload.
func wsServerFrame(t *testing.T, r *bufio.Reader) (byte, []byte) {
	t.Helper()
	var h [10]byte
	if _, err := io.ReadFull(r, h[:2]); err != nil {
		t.Fatal(err)
	}
	if h[0]&0x80 == 0 || h[0]&0x70 != 0 || h[1]&0x80 != 0 {
		t.Fatalf("a server frame not final, with reserved bits or masked: % x", h[:2])
	}
	n := int(h[1] & 0x7F)
	switch n {
	case 126:
		io.ReadFull(r, h[2:4])
		n = int(binary.BigEndian.Uint16(h[2:]))
	case 127:
		io.ReadFull(r, h[2:10])
		n = int(binary.BigEndian.Uint64(h[2:]))
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		t.Fatal(err)
	}
	return h[0] & 0x0F, p
}

// TestWebSocketPingBetweenFragments (issue 17): a HELLO in three
// fragments with a PING between each is one frame; the PINGs are
// answered with their payload, at frame boundaries, and WELCOME follows.
// The server offers no permessage-deflate to a client that asks for it.
func TestWebSocketPingBetweenFragments(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	c, r := rawWS(t, srv)
	hello := protocol.Encode(&protocol.Hello{Version: protocol.Version, Client: "ws-raw"})
	var out []byte
	out = append(out, wsClientFrame(false, 0x2, hello[:3])...)
	out = append(out, wsClientFrame(true, 0x9, []byte("one"))...)
	out = append(out, wsClientFrame(false, 0x0, hello[3:9])...)
	out = append(out, wsClientFrame(true, 0x9, []byte("two"))...)
	out = append(out, wsClientFrame(true, 0x0, hello[9:])...)
	if _, err := c.Write(out); err != nil {
		t.Fatal(err)
	}
	var pongs []string
	for {
		op, p := wsServerFrame(t, r)
		if op == 0xA {
			pongs = append(pongs, string(p))
			continue
		}
		if op != 0x2 {
			t.Fatalf("opcode %#x", op)
		}
		m, err := protocol.Decode(p[protocol.LengthSize:])
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := m.(*protocol.Welcome); !ok {
			t.Fatalf("got %T, want WELCOME", m)
		}
		break
	}
	for len(pongs) < 2 {
		op, p := wsServerFrame(t, r)
		if op == 0xA {
			pongs = append(pongs, string(p))
		}
	}
	if pongs[0] != "one" || pongs[1] != "two" {
		t.Fatalf("PONGs %q", pongs)
	}
}

// TestWebSocketProtocolErrorCloses1002 (issue 17): a frame with a
// reserved bit set gets a malformed ERROR and a CLOSE with 1002.
func TestWebSocketProtocolErrorCloses1002(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	c, r := rawWS(t, srv)
	f := wsClientFrame(true, 0x2, protocol.Encode(&protocol.Hello{Version: protocol.Version, Client: "ws-raw"}))
	f[0] |= 0x40 // RSV1: compressed, which was never negotiated
	if _, err := c.Write(f); err != nil {
		t.Fatal(err)
	}
	op, p := wsServerFrame(t, r)
	if op != 0x2 {
		t.Fatalf("opcode %#x, want the ERROR", op)
	}
	if m, err := protocol.Decode(p[protocol.LengthSize:]); err != nil || m.(*protocol.Error).Code != protocol.CodeMalformed {
		t.Fatalf("got %v %v, want malformed", m, err)
	}
	op, p = wsServerFrame(t, r)
	if op != 0x8 || len(p) < 2 || binary.BigEndian.Uint16(p) != 1002 {
		t.Fatalf("got opcode %#x % x, want CLOSE 1002", op, p)
	}
}

// TestWebSocketClientCloseHandshake (issue 17): a client that closes
// the WebSocket gets the server's CLOSE back (the library's Close waits
// for it), and the session ends as a clean close.
func TestWebSocketClientCloseHandshake(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	w, _, err := dialWS(t, wsURL(srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	w.send(&protocol.Hello{Version: protocol.Version, Client: "ws-close"})
	expectWS[*protocol.Welcome](w)
	go func() {
		for { // Close needs a reader to see the answer
			if _, _, err := w.c.Read(context.Background()); err != nil {
				return
			}
		}
	}()
	if err := w.c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatalf("the close handshake failed: %v", err)
	}
	rec := srv.WaitLog("connection closed", func(rec map[string]any) bool { return rec["client"] == "ws-close" })
	if rec["reason"] != "read: EOF" {
		t.Errorf("ended with %q", rec["reason"])
	}
}

// TestIdleWebSocketConnectionsHoldNoGoroutine (issue 17): the HTTP
// handler returns after the upgrade and an idle WebSocket's reader parks
// in the Poller, as a TCP one does; a parked one wakes for its next
// message and fan-out reaches all.
func TestIdleWebSocketConnectionsHoldNoGoroutine(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"-pprof", "127.0.0.1:0"}})
	rec := srv.WaitLog("listening", func(rec map[string]any) bool { return rec["transport"] == "pprof" })
	pprofAddr, _ := rec["addr"].(string)
	goroutines := func() int {
		resp, err := http.Get("http://" + pprofAddr + "/debug/pprof/goroutine?debug=1")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var n int
		if _, err := fmt.Fscanf(resp.Body, "goroutine profile: total %d", &n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := goroutines()
	const idle = 40
	var members []*clienttest.Recorder
	for i := range idle {
		c := clienttest.New(t, client.Config{Addr: wsURL(srv), Name: fmt.Sprint("idle", i)})
		c.C.Join("general")
		c.WaitJoined(t, "general")
		members = append(members, c)
	}
	var held int
	for deadline := time.Now().Add(10 * time.Second); ; {
		if held = goroutines() - before; held < idle/2 || time.Now().After(deadline) {
			break
		}
		// Nothing signals "parked"; the count is polled, bounded above.
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%d idle WebSocket connections hold %d goroutines (the server had %d before)", idle, held, before)
	if held >= idle/2 {
		t.Fatalf("%d idle WebSocket connections hold %d more goroutines: their readers do not park", idle, held)
	}
	if _, err := members[7].C.Send("general", "from a parked WebSocket"); err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		m.WaitText(t, "from a parked WebSocket")
	}
}
