package transport

import (
	"context"
	"io"
	"log/slog"
	"net/http"
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
	if err != nil {
		// Consume the rest of the message (at most the library's limit), so
		// the connection stays in step to carry our ERROR and the close.
		_, _ = io.Copy(io.Discard, r)
	}
	return body, err
}

func (w *WS) frame(typ websocket.MessageType, r io.Reader, max int) ([]byte, error) {
	if typ != websocket.MessageBinary {
		return nil, malformed("a text WebSocket message: the chat protocol is carried in binary messages")
	}
	if _, err := io.ReadFull(r, w.hdr[:]); err != nil {
		return nil, malformed("a WebSocket message shorter than a frame's length prefix")
	}
	n, err := protocol.BodyLength(w.hdr, max)
	if err != nil {
		return nil, err
	}
	w.body = getBody(n)
	body := (*w.body)[:n]
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, malformed("a WebSocket message that ends before the frame it starts")
	}
	var extra [1]byte
	if k, _ := r.Read(extra[:]); k > 0 {
		return nil, malformed("a WebSocket message holding more than one frame")
	}
	return body, nil
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
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: allowedOrigins})
		if err != nil {
			// Accept has answered already (403 for a foreign origin).
			log.Info("websocket refused", "remote", r.RemoteAddr, "origin", r.Header.Get("Origin"), "err", err)
			return
		}
		serve(NewWS(c, r.RemoteAddr))
	})
}
