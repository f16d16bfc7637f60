package wire

import (
	"encoding/binary"
	"fmt"

	"chat/protocol"
)

// Kind is what Deframer.Next found at the start of a buffer.
type Kind uint8

const (
	// Incomplete: the buffer does not hold the next unit yet; Next's need
	// is how many bytes it takes in all.
	Incomplete Kind = iota
	// Frame: body is a protocol frame's body (type byte and payload).
	Frame
	// WSPing: the server sent a WebSocket ping; body is its payload, to
	// be echoed in a pong (AppendWSPong).
	WSPing
	// WSClose: the server sent a WebSocket close frame.
	WSClose
	// Skipped: a unit with nothing to do (a pong, a message fragment that
	// is not the last).
	Skipped
)

// Deframer splits the bytes a server sends into protocol frames: length
// prefixed frames back to back over TCP and TLS, WebSocket frames over
// WebSocket (server frames are unmasked; a message may come in
// fragments). It never copies a frame that arrived whole; a fragmented
// message is reassembled in its own buffer.
type Deframer struct {
	WS bool

	frag    []byte // the fragments of a WebSocket message so far
	inFrags bool
}

// maxWSPayload bounds a WebSocket frame's payload: one protocol frame.
const maxWSPayload = protocol.LengthSize + protocol.MaxFrame

// Next looks at the start of b. It returns the kind of unit found, its
// body (valid until b changes or the next call) and the bytes it took; for
// Incomplete, need is the length of the whole unit (at least one byte more
// than len(b)). An error means the stream is not the protocol.
func (d *Deframer) Next(b []byte) (k Kind, body []byte, used, need int, err error) {
	if !d.WS {
		if len(b) < protocol.LengthSize {
			return Incomplete, nil, 0, protocol.LengthSize, nil
		}
		n, err := protocol.BodyLength([protocol.LengthSize]byte(b), protocol.MaxFrame)
		if err != nil {
			return 0, nil, 0, 0, err
		}
		if end := protocol.LengthSize + n; len(b) < end {
			return Incomplete, nil, 0, end, nil
		}
		return Frame, b[protocol.LengthSize : protocol.LengthSize+n], protocol.LengthSize + n, 0, nil
	}

	if len(b) < 2 {
		return Incomplete, nil, 0, 2, nil
	}
	fin, rsv, op := b[0]&0x80 != 0, b[0]&0x70, b[0]&0x0f
	if rsv != 0 {
		return 0, nil, 0, 0, fmt.Errorf("%w: WebSocket frame with reserved bits (no extension was agreed)", ErrFrame)
	}
	if b[1]&0x80 != 0 {
		return 0, nil, 0, 0, fmt.Errorf("%w: masked WebSocket frame from the server", ErrFrame)
	}
	hdr, n := 2, uint64(b[1]&0x7f)
	switch n {
	case 126:
		hdr = 4
	case 127:
		hdr = 10
	}
	if len(b) < hdr {
		return Incomplete, nil, 0, hdr, nil
	}
	switch hdr {
	case 4:
		n = uint64(binary.BigEndian.Uint16(b[2:]))
	case 10:
		n = binary.BigEndian.Uint64(b[2:])
	}
	if n > maxWSPayload || (op == 0x0 && d.inFrags && uint64(len(d.frag))+n > maxWSPayload) {
		return 0, nil, 0, 0, fmt.Errorf("%w: WebSocket message longer than a frame", ErrFrame)
	}
	end := hdr + int(n)
	if len(b) < end {
		return Incomplete, nil, 0, end, nil
	}
	payload := b[hdr:end]
	if op >= 0x8 && (!fin || n > 125) {
		return 0, nil, 0, 0, fmt.Errorf("%w: fragmented or long WebSocket control frame", ErrFrame)
	}
	switch op {
	case 0x0: // continuation
		if !d.inFrags {
			return 0, nil, 0, 0, fmt.Errorf("%w: WebSocket continuation outside a message", ErrFrame)
		}
		d.frag = append(d.frag, payload...)
		if !fin {
			return Skipped, nil, end, 0, nil
		}
		d.inFrags = false
		body, err := oneFrame(d.frag)
		return Frame, body, end, 0, err
	case 0x2: // binary
		if d.inFrags {
			return 0, nil, 0, 0, fmt.Errorf("%w: WebSocket message inside another's fragments", ErrFrame)
		}
		if !fin {
			d.inFrags, d.frag = true, append(d.frag[:0], payload...)
			return Skipped, nil, end, 0, nil
		}
		body, err := oneFrame(payload)
		return Frame, body, end, 0, err
	case 0x1:
		return 0, nil, 0, 0, fmt.Errorf("%w: a text WebSocket message", ErrFrame)
	case 0x8:
		return WSClose, payload, end, 0, nil
	case 0x9:
		return WSPing, payload, end, 0, nil
	case 0xa:
		return Skipped, nil, end, 0, nil
	}
	return 0, nil, 0, 0, fmt.Errorf("%w: WebSocket opcode %#x", ErrFrame, op)
}

// oneFrame checks that a WebSocket message is exactly one protocol frame
// and returns its body.
func oneFrame(m []byte) ([]byte, error) {
	if len(m) < protocol.LengthSize {
		return nil, fmt.Errorf("%w: WebSocket message shorter than a length prefix", ErrFrame)
	}
	n, err := protocol.BodyLength([protocol.LengthSize]byte(m), protocol.MaxFrame)
	if err != nil {
		return nil, err
	}
	if protocol.LengthSize+n != len(m) {
		return nil, fmt.Errorf("%w: WebSocket message of %d bytes holding a frame of %d", ErrFrame, len(m), protocol.LengthSize+n)
	}
	return m[protocol.LengthSize:], nil
}

// Wrap appends what the client sends for frames, one or more complete
// protocol frames back to back (length prefixes included): the frames as
// they are over TCP, a masked binary WebSocket message per frame over
// WebSocket.
func (d *Deframer) Wrap(dst, frames []byte) ([]byte, error) {
	if !d.WS {
		return append(dst, frames...), nil
	}
	for len(frames) > 0 {
		if len(frames) < protocol.LengthSize {
			return dst, fmt.Errorf("%w: partial frame to write", ErrFrame)
		}
		n := protocol.LengthSize + int(binary.BigEndian.Uint32(frames))
		if n > len(frames) {
			return dst, fmt.Errorf("%w: partial frame to write", ErrFrame)
		}
		dst = appendClientFrame(dst, 0x2, frames[:n])
		frames = frames[n:]
	}
	return dst, nil
}

// AppendWSPong appends the client's answer to a WebSocket ping.
func AppendWSPong(dst, ping []byte) []byte { return appendClientFrame(dst, 0xa, ping) }

// AppendWSClose appends the client's answer to the server's close frame
// (whose payload was close): the same status code.
func AppendWSClose(dst, close []byte) []byte {
	return appendClientFrame(dst, 0x8, close[:min(len(close), 2)])
}
