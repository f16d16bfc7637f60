package transport

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"chat/protocol"
	"chat/server/internal/limit"
	"chat/server/internal/session"
)

// WS is the Transport for a WebSocket connection: each binary message
// carries exactly one frame, length prefix included.
//
// coder/websocket does the opening handshake (origin check, the upgrade);
// then this type takes the connection over and speaks RFC 6455 itself, so
// that a WebSocket costs what TCP does:
//
//   - Writing: server frames are not masked, so a protocol frame goes out
//     as a 2–10 byte WebSocket header followed by the very bytes the hub
//     encoded once for all receivers: two iovecs per frame in the same
//     non-blocking writev as TCP (session.Direct), driven by the session's
//     flushers. Control frames of our own (PONG, CLOSE) wait for a frame
//     boundary: a partial writev leaves the rest of its frame to be written
//     first, whoever writes next.
//
//     Two iovecs a frame, not a header prefixed once per broadcast: the
//     hub's single encoding then serves TCP and WebSocket members alike,
//     with no second copy of every broadcast and no change to the hub; the
//     headers cost a few bytes of a pooled array per write, and writev's
//     price is mostly its call and its bytes (BenchmarkTryWrite compares
//     the two layouts with TCP's).
//
//   - Reading: a small reader of our own (fragments reassembled into one
//     protocol frame, masking, control frames between fragments) whose
//     first read does not block (session.Parker), so an idle WebSocket
//     waits in the Poller with no goroutine and nothing buffered.
//
// permessage-deflate is never negotiated: a compressed frame would differ
// per connection (context takeover) and defeat encode-once.
type WS struct {
	conn   net.Conn        // the hijacked connection
	raw    syscall.RawConn // its socket when a plain TCP one on Linux: then Direct and Parker; else nil
	remote string

	// The reader's state; only the session's reader touches it.
	pre  []byte // bytes the HTTP server read past the handshake, read first
	body *[]byte
	in   wsIn
	hdr  [protocol.LengthSize]byte

	// The writer's state, under wmu. The session runs one writer call
	// (TryWrite, WriteFrames, CloseWrite) at a time; the reader adds
	// control frames.
	wmu       sync.Mutex
	writing   bool   // a writer call is under way
	own       []byte // bytes of ours that must go out first: the rest of a header or control frame a partial write cut
	bodyLeft  int    // payload bytes of the current data frame still to go (after own): the caller's next frame is their rest
	ctrl      []byte // whole control frames waiting for a frame boundary
	closeSent bool   // our CLOSE is queued or written: nothing may follow it
	shut      bool   // our CLOSE is written and the TCP stream ended
	closed    bool
	closeCode uint16 // the status our CLOSE carries
	wake      func() // gets the session's writer to call us, with no frame queued if need be
}

// WebSocket opcodes and close codes (RFC 6455 5.2, 7.4.1).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA

	closeNormal        = 1000
	closeProtocolError = 1002
	closeTooBig        = 1009

	maxControl = 125 // a control frame's payload
	maxHeader  = 10  // a server frame's header: 2 bytes, 8 of extended length, no mask
)

// newWS takes over a connection after the opening handshake; pre holds
// what the HTTP server had read beyond the request.
func newWS(c net.Conn, pre []byte, remote string) *WS {
	_ = c.SetDeadline(time.Time{}) // the HTTP server's header timeout no longer applies
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	return &WS{conn: c, raw: directConn(c), pre: pre, remote: remote, closeCode: closeNormal}
}

func malformed(reason string) error {
	return &protocol.DecodeError{Code: protocol.CodeMalformed, Reason: reason}
}

// SetWake implements session.Waker.
func (w *WS) SetWake(wake func()) {
	w.wmu.Lock()
	w.wake = wake
	w.wmu.Unlock()
}

// --- Reading ---

// wsIn is the reader's position in the client's stream.
type wsIn struct {
	left   uint64 // payload bytes of the current WebSocket frame not yet read
	mask   [4]byte
	pos    uint64 // payload bytes of the current frame read so far (the mask's phase)
	fin    bool   // the current frame ends its message
	op     byte   // the current frame's opcode
	data   bool   // the current frame is a data frame (its payload is the message's)
	inMsg  bool   // a data message has begun and not ended
	broken bool   // the client broke the WebSocket protocol: nothing more is parsed
}

// ReadFrame implements session.Transport.
func (w *WS) ReadFrame(max int) ([]byte, error) { return w.read(max, false) }

// read is readFrame; a message that failed gives its buffer back here,
// in the reader: only the reader touches w.body (Close, from any
// goroutine, must not put it in the pool while it is being filled).
func (w *WS) read(max int, try bool) ([]byte, error) {
	body, err := w.readFrame(max, try)
	if err != nil {
		w.release()
	}
	return body, err
}

// TryReadFrame implements session.Parker: like ReadFrame, but when no
// byte of a next WebSocket frame has arrived it returns
// session.ErrWouldBlock at once. Once a frame has begun, the rest of its
// message is waited for (keepalive ends a client that stalls there), as
// over TCP.
func (w *WS) TryReadFrame(max int) ([]byte, error) {
	if w.raw == nil {
		return nil, errNotDirect
	}
	return w.read(max, true)
}

// CanPark reports whether the reader can give its goroutine up.
func (w *WS) CanPark() bool { return w.raw != nil }

// SyscallConn gives the Poller the socket.
func (w *WS) SyscallConn() syscall.RawConn { return w.raw }

// release gives the last message's buffer back to the pool; the
// reader's only.
func (w *WS) release() {
	if w.body != nil {
		putBody(w.body)
		w.body = nil
	}
}

// protocolError marks the stream broken (the client is answered with a
// CLOSE 1002 after the protocol ERROR) and returns the session's error.
func (w *WS) protocolError(reason string) error {
	w.in.broken = true
	w.wmu.Lock()
	if !w.closeSent {
		w.closeCode = closeProtocolError
	}
	w.wmu.Unlock()
	return malformed("WebSocket protocol error: " + reason)
}

// readFrame reads the next message, one protocol frame. try: return
// session.ErrWouldBlock when nothing has arrived between messages.
func (w *WS) readFrame(max int, try bool) ([]byte, error) {
	w.release()
	if w.in.broken {
		return nil, malformed("WebSocket protocol error")
	}
	got := 0 // bytes of the message's payload so far: the length prefix, then the body
	n := -1  // the body's length, once the prefix is complete
	var body []byte
	for {
		if w.in.left == 0 {
			if w.in.data && w.in.fin {
				// The last frame of the message is read.
				w.in.data = false
				return complete(got, n, body)
			}
			w.in.data = false
			if err := w.readHeader(try && !w.in.inMsg); err != nil {
				return nil, err
			}
			if !w.in.data {
				if err := w.control(); err != nil {
					return nil, err
				}
			}
			continue
		}
		// Payload of a data frame.
		var dst []byte
		switch {
		case got < protocol.LengthSize:
			dst = w.hdr[got:]
		case got-protocol.LengthSize < n:
			dst = body[got-protocol.LengthSize:]
		default:
			return nil, malformed("a WebSocket message holding more than one frame")
		}
		if uint64(len(dst)) > w.in.left {
			dst = dst[:w.in.left]
		}
		if err := w.payload(dst); err != nil {
			return nil, err
		}
		got += len(dst)
		if got == protocol.LengthSize && n < 0 {
			var err error
			if n, err = protocol.BodyLength(w.hdr, max); err != nil {
				return nil, err
			}
			w.body = getBody(n)
			body = (*w.body)[:n]
		}
	}
}

// complete checks that the message that ended held exactly one frame.
func complete(got, n int, body []byte) ([]byte, error) {
	switch {
	case got < protocol.LengthSize:
		return nil, malformed("a WebSocket message shorter than a frame's length prefix")
	case got-protocol.LengthSize < n:
		return nil, malformed("a WebSocket message that ends before the frame it starts")
	}
	return body, nil
}

// readHeader reads the next WebSocket frame's header. try: the first
// byte is only taken if it is there (else session.ErrWouldBlock).
func (w *WS) readHeader(try bool) error {
	var b [14]byte
	k := 0
	if try && len(w.pre) == 0 {
		var err error
		k, err = readNow(w.conn, w.raw, b[:2])
		switch {
		case err == errWouldBlock:
			return session.ErrWouldBlock
		case err != nil:
			return err
		}
	}
	if err := w.full(b[k:2], k > 0 || w.in.inMsg); err != nil {
		return err
	}
	if b[0]&0x70 != 0 {
		return w.protocolError("reserved bits set (no extension was negotiated)")
	}
	op, fin := b[0]&0x0F, b[0]&0x80 != 0
	if b[1]&0x80 == 0 {
		return w.protocolError("an unmasked client frame")
	}
	size := uint64(b[1] & 0x7F)
	ext := 0
	switch size {
	case 126:
		ext = 2
	case 127:
		ext = 8
	}
	if err := w.full(b[2:2+ext+4], true); err != nil {
		return err
	}
	switch ext {
	case 2:
		size = uint64(binary.BigEndian.Uint16(b[2:]))
	case 8:
		size = binary.BigEndian.Uint64(b[2:])
		if size>>63 != 0 {
			return w.protocolError("a frame length with its most significant bit set")
		}
	}
	copy(w.in.mask[:], b[2+ext:])
	w.in.left, w.in.pos, w.in.fin, w.in.op = size, 0, fin, op
	switch op {
	case opContinuation, opText, opBinary:
		if op == opContinuation && !w.in.inMsg {
			return w.protocolError("a continuation frame outside a message")
		}
		if op != opContinuation && w.in.inMsg {
			return w.protocolError("a new message inside a fragmented one")
		}
		w.in.data = true
		w.in.inMsg = !fin
		if op == opText {
			// Its payload is skipped by Discard.
			return malformed("a text WebSocket message: the chat protocol is carried in binary messages")
		}
	case opClose, opPing, opPong:
		if !fin {
			return w.protocolError("a fragmented control frame")
		}
		if size > maxControl {
			return w.protocolError("a control frame longer than 125 bytes")
		}
	default:
		return w.protocolError(fmt.Sprintf("unknown opcode %#x", op))
	}
	return nil
}

// full reads exactly len(p) bytes, waiting. begun: p is inside a message
// or frame already started, so the connection ending is a truncation.
func (w *WS) full(p []byte, begun bool) error {
	k := copy(p, w.pre)
	w.pre = w.pre[k:]
	if len(w.pre) == 0 {
		w.pre = nil
	}
	if k == len(p) {
		return nil
	}
	m, err := io.ReadFull(w.conn, p[k:])
	if err == nil {
		return nil
	}
	if (begun || k+m > 0) && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
		return protocol.ErrTruncated
	}
	if begun || k+m > 0 {
		return fmt.Errorf("%w (%v)", protocol.ErrTruncated, err)
	}
	return err
}

// payload reads len(dst) ≤ in.left bytes of the current frame's payload
// and unmasks them.
func (w *WS) payload(dst []byte) error {
	if err := w.full(dst, true); err != nil {
		return err
	}
	unmask(dst, w.in.mask, w.in.pos)
	w.in.pos += uint64(len(dst))
	w.in.left -= uint64(len(dst))
	return nil
}

// unmask XORs p with the mask, starting at phase pos of the payload.
func unmask(p []byte, mask [4]byte, pos uint64) {
	i := 0
	for ; i < len(p) && (pos+uint64(i))%4 != 0; i++ {
		p[i] ^= mask[(pos+uint64(i))%4]
	}
	if len(p)-i >= 8 {
		m := uint64(binary.LittleEndian.Uint32(mask[:]))
		m |= m << 32
		for ; len(p)-i >= 8; i += 8 {
			binary.LittleEndian.PutUint64(p[i:], binary.LittleEndian.Uint64(p[i:])^m)
		}
	}
	for ; i < len(p); i++ {
		p[i] ^= mask[(pos+uint64(i))%4]
	}
}

// control reads and acts on the control frame whose header was read.
func (w *WS) control() error {
	var buf [maxControl]byte // on the stack: an idle connection holds none
	p := buf[:w.in.left]
	if err := w.payload(p); err != nil {
		return err
	}
	switch w.in.op {
	case opPing:
		w.queueControl(opPong, p)
	case opClose:
		if len(p) == 1 {
			return w.protocolError("a close frame with a one-byte body")
		}
		var code []byte
		if len(p) >= 2 {
			code = p[:2]
			if !closeCodeValid(binary.BigEndian.Uint16(p)) || !utf8.Valid(p[2:]) {
				// Not echoed: a code that must not be sent, or a reason
				// that is not UTF-8, is the client's protocol error.
				code = binary.BigEndian.AppendUint16(nil, closeProtocolError)
			}
		}
		w.wmu.Lock()
		already := w.closeSent
		w.wmu.Unlock()
		if !already {
			w.queueControl(opClose, code)
		}
		return io.EOF // the peer closed the WebSocket
	}
	return nil
}

// closeCodeValid reports whether a CLOSE may carry code (RFC 6455 7.4):
// not below 1000, not 1004-1006 or 1015 (never sent), not 1016-2999
// (unassigned), not 5000 or more.
func closeCodeValid(code uint16) bool {
	switch {
	case code < 1000 || code >= 5000:
		return false
	case code == 1004 || code == 1005 || code == 1006 || code == 1015:
		return false
	case code >= 1016 && code < 3000:
		return false
	}
	return true
}

// --- Writing ---

// putHeader writes the header of a final, unmasked frame of n payload
// bytes into b and returns its length.
func putHeader(b []byte, op byte, n int) int {
	b[0] = 0x80 | op
	switch {
	case n < 126:
		b[1] = byte(n)
		return 2
	case n <= 0xFFFF:
		b[1] = 126
		binary.BigEndian.PutUint16(b[2:], uint16(n))
		return 4
	default:
		b[1] = 127
		binary.BigEndian.PutUint64(b[2:], uint64(n))
		return 10
	}
}

// queueControl sends a control frame at the next frame boundary: now,
// from the reader, when no writer is busy and no frame is half-written;
// else the session's writer is woken to write it.
func (w *WS) queueControl(op byte, payload []byte) {
	var b [maxHeader + maxControl]byte
	h := putHeader(b[:], op, len(payload))
	frame := append(b[:h:h], payload...)
	w.wmu.Lock()
	if w.closeSent || w.closed {
		w.wmu.Unlock()
		return
	}
	if op == opClose {
		w.closeSent = true
	}
	if op == opPong && isPong(w.ctrl) {
		// A PONG still waits: only the latest PING is answered (RFC 6455
		// 5.5.3), so a PING flood while the client does not read keeps
		// one PONG waiting, not one per PING. The CLOSE, if any, follows.
		w.ctrl = append(frame, w.ctrl[pongLen(w.ctrl):]...)
	} else {
		w.ctrl = append(w.ctrl, frame...)
	}
	wake := w.wake
	if !w.writing && len(w.own) == 0 && w.bodyLeft == 0 && w.raw != nil {
		// A frame boundary with nobody writing: write it now, without
		// waiting for a socket that is full.
		k, err := writevNow(w.raw, [][]byte{w.ctrl})
		if err == nil {
			w.own = w.ctrl[k:]
			if len(w.own) == 0 {
				w.own = nil
			}
			w.ctrl = nil
		}
		if err != nil || len(w.own) == 0 {
			wake = nil
		}
		w.shutLocked()
	}
	w.wmu.Unlock()
	if wake != nil {
		wake()
	}
}

// isPong reports whether control frames ctrl begin with a PONG. Our
// control frames have 2-byte headers; nothing is queued after a CLOSE,
// so a waiting PONG is always first.
func isPong(ctrl []byte) bool { return len(ctrl) >= 2 && ctrl[0] == 0x80|opPong }

// pongLen is the length of the PONG ctrl begins with.
func pongLen(ctrl []byte) int { return 2 + int(ctrl[1]&0x7F) }

// wsVec is one writer call's iovecs and what each is.
type wsVec struct {
	iov     [][]byte
	kind    []byte
	hdrs    []byte
	ctrl    []byte // the control frames taken (to put back if not reached)
	ctrlAt  int    // their iovec
	total   int    // the caller's bytes
	dropped int    // the caller's bytes dropped after our CLOSE
}

const (
	vOwn  = iota // w.own
	vCtrl        // the queued control frames
	vHdr         // a header; the next iovec is its frame
	vBody        // the caller's bytes
)

// wsCuts counts writes that stopped inside a WebSocket frame, for tests.
var wsCuts atomic.Int64

var vecPool = sync.Pool{New: func() any { return new(wsVec) }}

// begin starts a writer call: the iovecs for what must go out first (our
// own rest, the rest of the current frame), the control frames waiting
// (at a frame boundary), then each frame with its header.
func (w *WS) begin(frames [][]byte) (*wsVec, error) {
	v := vecPool.Get().(*wsVec)
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if w.closed {
		return v, net.ErrClosed
	}
	w.writing = true
	add := func(b []byte, k byte) {
		v.iov = append(v.iov, b)
		v.kind = append(v.kind, k)
	}
	if len(w.own) > 0 {
		add(w.own, vOwn)
	}
	if w.bodyLeft > 0 {
		if len(frames) == 0 || len(frames[0]) != w.bodyLeft {
			w.writing = false
			return v, errors.New("transport: a WebSocket frame's rest was not written first")
		}
		add(frames[0], vBody)
		v.total += len(frames[0])
		frames = frames[1:]
	}
	if len(w.ctrl) > 0 {
		v.ctrl, w.ctrl = w.ctrl, nil
		v.ctrlAt = len(v.iov)
		add(v.ctrl, vCtrl)
	}
	if w.closeSent {
		// After our CLOSE nothing more is sent: the frames are dropped.
		for _, f := range frames {
			v.total += len(f)
			v.dropped += len(f)
		}
		return v, nil
	}
	if need := len(frames) * maxHeader; cap(v.hdrs) < need {
		v.hdrs = make([]byte, 0, max(need, 64*maxHeader))
	}
	for _, f := range frames {
		at := len(v.hdrs)
		v.hdrs = v.hdrs[:at+maxHeader]
		h := putHeader(v.hdrs[at:], opBinary, len(f))
		v.hdrs = v.hdrs[:at+h]
		add(v.hdrs[at:at+h:at+h], vHdr)
		add(f, vBody)
		v.total += len(f)
	}
	return v, nil
}

// end finishes a writer call that wrote written bytes of v: it keeps
// what a partial write left of ours, and returns how many of the caller's
// bytes went out.
func (w *WS) end(v *wsVec, written int) int {
	w.wmu.Lock()
	n := 0
	own, bodyLeft := []byte(nil), 0
	i := 0
	for ; i < len(v.iov); i++ {
		b := v.iov[i]
		if written >= len(b) {
			written -= len(b)
			if v.kind[i] == vBody {
				n += len(b)
			}
			continue
		}
		// The cut: written bytes of b went out.
		switch v.kind[i] {
		case vOwn:
			if written > 0 {
				wsCuts.Add(1)
			}
			own = append(own, b[written:]...)
			bodyLeft = w.bodyLeft // still before the rest of the frame it began
		case vCtrl:
			if written > 0 {
				own = append(own, b[written:]...)
				v.ctrl = nil
			}
		case vHdr:
			if written > 0 {
				wsCuts.Add(1)
				own = append(own, b[written:]...)
				bodyLeft = len(v.iov[i+1])
			}
		case vBody:
			if written > 0 {
				wsCuts.Add(1)
			}
			n += written
			bodyLeft = len(b) - written
		}
		break
	}
	// Control frames not reached go back, before any queued meanwhile.
	if v.ctrl != nil && i <= v.ctrlAt {
		if isPong(v.ctrl) && isPong(w.ctrl) {
			// A newer PING came meanwhile: only its PONG goes.
			v.ctrl = v.ctrl[pongLen(v.ctrl):]
		}
		w.ctrl = append(v.ctrl, w.ctrl...)
	}
	if i == len(v.iov) {
		own, bodyLeft = nil, 0
		// The frames dropped after our CLOSE count as written only now
		// that all before them went out: counted sooner, the caller would
		// skip bytes of the frame still being written.
		n += v.dropped
	}
	w.own, w.bodyLeft = own, bodyLeft
	w.writing = false
	w.shutLocked()
	w.wmu.Unlock()
	clear(v.iov)
	v.iov, v.kind, v.hdrs = v.iov[:0], v.kind[:0], v.hdrs[:0]
	v.ctrl, v.ctrlAt, v.total, v.dropped = nil, 0, 0, 0
	if cap(v.iov) <= 4096 {
		vecPool.Put(v)
	}
	return n
}

// Answering implements session.PeerCloser: our CLOSE (the answer to the
// client's) is queued and not yet written whole.
func (w *WS) Answering() bool {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	return w.closeSent && !w.shut && !w.closed
}

// Pending implements session.Waker: bytes of ours wait to be written
// (after a TryWrite the socket did not take whole).
func (w *WS) Pending() bool {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	return !w.closed && (len(w.own) > 0 || len(w.ctrl) > 0)
}

// Direct implements session.Direct.
func (w *WS) Direct() bool { return w.raw != nil }

// TryWrite implements session.Direct: one non-blocking writev (more for
// very many frames) of each frame behind its header; it returns how many
// of the frames' bytes went out.
func (w *WS) TryWrite(frames [][]byte) (int, error) {
	if w.raw == nil {
		return 0, errNotDirect
	}
	v, err := w.begin(frames)
	if err != nil {
		w.end(v, 0)
		return 0, err
	}
	written, err := writevNow(w.raw, v.iov)
	return w.end(v, written), err
}

// WriteFrames implements session.Transport: like TryWrite, waiting for
// the socket. The session's watchdog closes a stuck connection.
func (w *WS) WriteFrames(frames [][]byte) error {
	v, err := w.begin(frames)
	if err != nil {
		w.end(v, 0)
		return err
	}
	var written int64
	if w.raw == nil {
		// TLS: one record for the lot, not one per header and frame.
		buf := make([]byte, 0, size(v.iov))
		for _, b := range v.iov {
			buf = append(buf, b...)
		}
		var k int
		k, err = w.conn.Write(buf)
		written = int64(k)
	} else {
		bufs := net.Buffers(append([][]byte(nil), v.iov...))
		written, err = bufs.WriteTo(w.conn)
	}
	w.end(v, int(written))
	return err
}

// CloseWrite implements session.Transport: the WebSocket close after the
// last frame, then the end of the TCP stream (the server closes first,
// RFC 6455 7.1.1); reads end by linger. When the socket is full the
// CLOSE waits like a PONG would, for the session's writer.
func (w *WS) CloseWrite(linger time.Time) error {
	w.wmu.Lock()
	code := w.closeCode
	w.wmu.Unlock()
	var p [2]byte
	binary.BigEndian.PutUint16(p[:], code)
	w.queueControl(opClose, p[:])
	return w.conn.SetReadDeadline(linger)
}

// shutLocked ends the TCP stream once our CLOSE is written whole.
func (w *WS) shutLocked() {
	if w.closeSent && !w.shut && !w.closed && len(w.own) == 0 && len(w.ctrl) == 0 && w.bodyLeft == 0 {
		w.shut = true
		if cw, ok := w.conn.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
	}
}

// Discard implements session.Transport: it reads and drops messages,
// still answering PINGs and the client's CLOSE, until the end.
func (w *WS) Discard() error {
	w.release()
	for {
		if w.in.broken {
			var buf [512]byte
			for {
				if _, err := w.conn.Read(buf[:]); err != nil {
					return err
				}
			}
		}
		for w.in.left > 0 {
			var buf [512]byte
			k := min(w.in.left, uint64(len(buf)))
			if err := w.payload(buf[:k]); err != nil {
				return err
			}
		}
		if w.in.data && w.in.fin {
			w.in.data = false
		}
		if err := w.readHeader(false); err != nil {
			var de *protocol.DecodeError
			if errors.As(err, &de) {
				continue // a text message is dropped like a binary one; a broken stream drops bytes
			}
			return err
		}
		if !w.in.data {
			if err := w.control(); err != nil {
				var de *protocol.DecodeError
				if errors.As(err, &de) {
					continue
				}
				return err
			}
		}
	}
}

// Close implements session.Transport. Control frames still waiting (the
// answer to the client's CLOSE) are tried once, at a frame boundary.
func (w *WS) Close() error {
	w.wmu.Lock()
	if !w.closed && !w.writing && len(w.own) == 0 && w.bodyLeft == 0 && len(w.ctrl) > 0 {
		if w.raw != nil {
			if k, err := writevNow(w.raw, [][]byte{w.ctrl}); err == nil && k > 0 && k < len(w.ctrl) {
				// Not a truncated CLOSE: its rest, briefly waiting (no
				// writer is busy, so the socket is not stuck behind one).
				_ = w.conn.SetWriteDeadline(time.Now().Add(250 * time.Millisecond))
				_, _ = w.conn.Write(w.ctrl[k:])
			}
		} else {
			// TLS: a blocking write, briefly; no writer is using the deadline.
			_ = w.conn.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = w.conn.Write(w.ctrl)
		}
	}
	w.closed = true
	w.ctrl, w.own = nil, nil
	w.wmu.Unlock()
	// Not w.release(): Close may come from another goroutine (the write
	// watchdog, a failed write) while the reader fills the buffer.
	return w.conn.Close()
}

// RemoteAddr implements session.Transport.
func (w *WS) RemoteAddr() string { return w.remote }

// --- The handshake ---

// hijacker hands the WebSocket library a connection it cannot close (it
// is dropped after the handshake, and would close its connection when
// collected) and keeps what the HTTP server read past the request.
type hijacker struct {
	http.ResponseWriter
	conn net.Conn
	pre  []byte
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
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		h.pre = append([]byte(nil), b...)
		_, _ = brw.Reader.Discard(n)
	}
	h.conn = c
	return noClose{c}, brw, nil
}

// noClose is the connection as the library sees it.
type noClose struct{ net.Conn }

func (noClose) Close() error { return nil }

// WebSocketHandler upgrades requests to WebSocket sessions, started with
// start (session.Manager.Start): the handler returns at once, so an idle
// WebSocket keeps no goroutine. Browsers must come from the server's own
// origin or one matching allowedOrigins (patterns as in
// websocket.AcceptOptions.OriginPatterns); clients that send no Origin
// header (native apps) are not browsers and are let in. Per-address
// limits apply before the upgrade (HTTP 429).
func WebSocketHandler(start func(t session.Transport, onEnd func()), allowedOrigins []string, limits *limit.Addresses,
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
		hj := &hijacker{ResponseWriter: w}
		// CompressionDisabled: permessage-deflate would defeat encode-once.
		c, err := websocket.Accept(hj, r, &websocket.AcceptOptions{OriginPatterns: allowedOrigins,
			CompressionMode: websocket.CompressionDisabled})
		if err != nil {
			// Accept has answered already (403 for a foreign origin).
			log.Info("websocket refused", "remote", r.RemoteAddr, "origin", r.Header.Get("Origin"), "err", err)
			if hj.conn != nil {
				hj.conn.Close()
			}
			release()
			return
		}
		// The library's connection is done with: closed now (its Close of
		// the connection it was given does nothing), it holds no finalizer
		// and lets its buffers go at once.
		_ = c.CloseNow()
		start(newWS(hj.conn, hj.pre, r.RemoteAddr), release)
	})
}
