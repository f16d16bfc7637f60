package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/coder/websocket"

	"chat/protocol"
)

// DialWebSocket connects to a server's WebSocket endpoint, a ws:// or
// wss:// URL such as wss://chat.example.com/ws, trusting the system's
// certificate authorities. It is how the browser build connects (browsers
// cannot open TCP connections), and works natively too, e.g. through
// proxies that pass only HTTP.
func DialWebSocket(ctx context.Context, url string) (Conn, error) {
	return TLSOptions{}.dialWebSocket(ctx, url)
}

func (o TLSOptions) dialWebSocket(ctx context.Context, url string) (Conn, error) {
	ip, _ := TargetIP(ctx)
	c, _, err := websocket.Dial(ctx, url, o.webSocketOptions(url, ip))
	if err != nil {
		return nil, err
	}
	c.SetReadLimit(protocol.LengthSize + protocol.MaxFrame)
	return &wsConn{c: c}, nil
}

// Dial connects by the address's form — host:port or tcp:// over TCP,
// tls:// over TLS, ws:// and wss:// over WebSocket — trusting the
// system's certificate authorities.
func Dial(ctx context.Context, addr string) (Conn, error) {
	return TLSOptions{}.Dialer()(ctx, addr)
}

// wsConn is a Conn over WebSocket: one binary message per frame, length
// prefix included.
type wsConn struct{ c *websocket.Conn }

func (w *wsConn) ReadFrame() ([]byte, error) {
	typ, msg, err := w.c.Read(context.Background())
	if err != nil {
		return nil, err
	}
	if typ != websocket.MessageBinary {
		return nil, errors.New("the server sent a text WebSocket message; chat frames are binary")
	}
	if len(msg) < protocol.LengthSize {
		return nil, errors.New("a WebSocket message shorter than a frame's length prefix")
	}
	n, err := protocol.BodyLength([protocol.LengthSize]byte(msg), protocol.MaxFrame)
	if err != nil {
		return nil, err
	}
	if n != len(msg)-protocol.LengthSize {
		return nil, fmt.Errorf("a WebSocket message of %d bytes carries a frame of %d", len(msg), n+protocol.LengthSize)
	}
	return msg[protocol.LengthSize:], nil
}

func (w *wsConn) WriteFrames(frames [][]byte, deadline time.Time) error {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	for _, f := range frames {
		if err := w.c.Write(ctx, websocket.MessageBinary, f); err != nil {
			return err
		}
	}
	return nil
}

// Close drops the connection at once: the client's loop must not wait
// for a closing handshake, and BYE has told the server already.
func (w *wsConn) Close() error { return w.c.CloseNow() }
