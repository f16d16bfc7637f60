package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"chat/protocol"
	"chat/server/internal/limit"
	"chat/server/internal/session"
)

// WS is the Transport for a WebSocket connection: each binary message
// carries exactly one frame, length prefix included.
type WS struct {
	c      *websocket.Conn
	raw    *endConn // the connection under c; nil when not known
	remote string
	hdr    [protocol.LengthSize]byte
	body   *[]byte
}

// NewWS wraps an accepted WebSocket connection. The library's own
// message limit is only a backstop above protocol.MaxFrame: the session's
// limit is checked here against the length prefix, so an oversized frame
// gets a protocol ERROR rather than a bare close.
func NewWS(c *websocket.Conn, remote string) *WS {
	c.SetReadLimit(protocol.LengthSize + protocol.MaxFrame + 1)
	return &WS{c: c, remote: remote}
}

func malformed(reason string) error {
	return &protocol.DecodeError{Code: protocol.CodeMalformed, Reason: reason}
}

// ReadFrame implements session.Transport.
func (w *WS) ReadFrame(max int) ([]byte, error) {
	if w.body != nil {
		putBody(w.body)
		w.body = nil
	}
	typ, r, err := w.c.Reader(context.Background())
	if err != nil {
		if websocket.CloseStatus(err) != -1 {
			return nil, io.EOF // the peer closed the WebSocket
		}
		return nil, err
	}
	body, err := w.frame(typ, r, max)
	if err != nil && w.dropped(err) {
		// The connection ended inside the message: a read error, as on
		// TCP, not the client's malformed input (nobody is left to tell).
		return nil, fmt.Errorf("%w (%v)", protocol.ErrTruncated, err)
	}
	var de *protocol.DecodeError
	if err != nil && !errors.As(err, &de) {
		return nil, err // the connection failed otherwise
	}
	if err != nil {
		// Consume the rest of the message (at most the library's limit), so
		// the connection stays in step to carry our ERROR and the close.
		_, _ = io.Copy(io.Discard, r)
	}
	return body, err
}

// frame reads the one frame of a message. A message shorter than its
// frame is malformed; ReadFrame asks dropped whether it was the
// connection that ended.
func (w *WS) frame(typ websocket.MessageType, r io.Reader, max int) ([]byte, error) {
	if typ != websocket.MessageBinary {
		return nil, malformed("a text WebSocket message: the chat protocol is carried in binary messages")
	}
	if _, err := io.ReadFull(r, w.hdr[:]); err != nil {
		if !endOfMessage(err) {
			return nil, err
		}
		return nil, malformed("a WebSocket message shorter than a frame's length prefix")
	}
	n, err := protocol.BodyLength(w.hdr, max)
	if err != nil {
		return nil, err
	}
	w.body = getBody(n)
	body := (*w.body)[:n]
	if _, err := io.ReadFull(r, body); err != nil {
		if !endOfMessage(err) {
			return nil, err
		}
		return nil, malformed("a WebSocket message that ends before the frame it starts")
	}
	var extra [1]byte
	if k, _ := r.Read(extra[:]); k > 0 {
		return nil, malformed("a WebSocket message holding more than one frame")
	}
	return body, nil
}

// endOfMessage reports whether a short read ended at the end of the
// WebSocket message (io.ReadFull's plain EOFs), rather than on an error
// of the connection.
func endOfMessage(err error) bool { return err == io.EOF || err == io.ErrUnexpectedEOF }

// dropped reports whether err, from reading a message, came from the
// connection ending. The library reports the end of the connection at a
// frame boundary inside a message as the end of the message, so the
// connection under it is asked too.
func (w *WS) dropped(err error) bool {
	var de *protocol.DecodeError
	if errors.As(err, &de) {
		return de.Code == protocol.CodeMalformed && w.raw != nil && w.raw.err() != nil
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}

// endConn is a connection that remembers the first error its reads got
// (io.EOF when the peer closed), so a message cut short can be told from
// a short message.
type endConn struct {
	net.Conn
	ended atomic.Pointer[error]
}

func (c *endConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		c.ended.CompareAndSwap(nil, &err)
	}
	return n, err
}

// err is the first read error, nil while the connection is readable.
func (c *endConn) err() error {
	if p := c.ended.Load(); p != nil {
		return *p
	}
	return nil
}

// hijacker hands the WebSocket library an endConn instead of the
// connection it hijacks.
type hijacker struct {
	http.ResponseWriter
	conn *endConn
}

func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := h.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("http.ResponseWriter does not implement http.Hijacker")
	}
	c, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	h.conn = &endConn{Conn: c}
	return h.conn, brw, nil
}

// WriteFrames implements session.Transport: one WebSocket message per
// frame. It may block; the session's watchdog closes a stuck connection.
func (w *WS) WriteFrames(frames [][]byte) error {
	for _, f := range frames {
		if err := w.c.Write(context.Background(), websocket.MessageBinary, f); err != nil {
			return err
		}
	}
	return nil
}

// CloseWrite implements session.Transport with the WebSocket closing
// handshake, which waits a few seconds for the peer's answer.
func (w *WS) CloseWrite(time.Time) error {
	return w.c.Close(websocket.StatusNormalClosure, "")
}

// Discard implements session.Transport.
func (w *WS) Discard() error {
	for {
		if _, _, err := w.c.Read(context.Background()); err != nil {
			return err
		}
	}
}

// Close implements session.Transport.
func (w *WS) Close() error { return w.c.CloseNow() }

// RemoteAddr implements session.Transport.
func (w *WS) RemoteAddr() string { return w.remote }

// WebSocketHandler upgrades requests to WebSocket sessions. Browsers must
// come from the server's own origin or one matching allowedOrigins
// (patterns as in websocket.AcceptOptions.OriginPatterns); clients that
// send no Origin header (native apps) are not browsers and are let in.
// Per-address limits apply before the upgrade (HTTP 429).
func WebSocketHandler(serve func(session.Transport), allowedOrigins []string, limits *limit.Addresses,
	refused func(kind, remote, detail string), log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		release := func() {}
		if limits != nil {
			var why limit.Refused
			if release, why = limits.Acquire(r.RemoteAddr); why != "" {
				refused(session.LimitConnections, r.RemoteAddr, string(why))
				w.Header().Set("Retry-After", "60")
				http.Error(w, string(why), http.StatusTooManyRequests)
				return
			}
		}
		defer release()
		hj := &hijacker{ResponseWriter: w}
		c, err := websocket.Accept(hj, r, &websocket.AcceptOptions{OriginPatterns: allowedOrigins})
		if err != nil {
			// Accept has answered already (403 for a foreign origin).
			log.Info("websocket refused", "remote", r.RemoteAddr, "origin", r.Header.Get("Origin"), "err", err)
			return
		}
		ws := NewWS(c, r.RemoteAddr)
		ws.raw = hj.conn
		serve(ws)
	})
}
