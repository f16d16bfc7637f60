package client

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"chat/protocol"
)

type closeWatch struct {
	Conn
	once   sync.Once
	closed chan struct{}
}

func (c *closeWatch) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// TestHandshakeDoneAfterTheLoopStoppedIsClosed: a handshake that completes
// when the loop has stopped (during Close) must close its connection.
// With a buffered dialed channel the dialer could hand it to the buffer,
// where nobody would ever read it: an open connection parked for good.
// The dialer's select picked either way at random; 20 rounds catch it.
func TestHandshakeDoneAfterTheLoopStoppedIsClosed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				w := protocol.Encode(&protocol.Welcome{Version: protocol.Version, MaxFrame: 16384, MaxText: 4096,
					MaxName: 32, MaxRoom: 64, MaxRooms: 16, PingMs: 30000})
				if _, err := protocol.ReadFrame(c, protocol.MaxFrame, nil); err == nil { // HELLO
					c.Write(w)
				}
				var b [1]byte
				c.Read(b[:]) // until the client closes
			}()
		}
	}()
	for range 20 {
		closed := make(chan struct{})
		c := &Client{done: make(chan struct{}), events: newEventQueue(), cfg: Config{Addr: ln.Addr().String(),
			HandshakeTimeout: 10 * time.Second, Software: "test",
			Dial: func(ctx context.Context, addr string) (Conn, error) {
				sc, err := DialTCP(ctx, addr)
				if err != nil {
					return nil, err
				}
				return &closeWatch{Conn: sc, closed: closed}, nil
			}}}
		l := newLoop(c)
		close(c.done) // the loop has stopped
		l.dial()
		select {
		case <-closed:
		case <-time.After(10 * time.Second): // must happen; bounded so a failure ends
			t.Fatal("a connection whose handshake completed after the loop stopped is still open")
		}
	}
}
