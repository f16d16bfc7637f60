package transport

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
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
