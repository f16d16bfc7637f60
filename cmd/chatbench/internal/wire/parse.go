package wire

import (
	"encoding/binary"
	"fmt"

	"chat/protocol"
)

// Message is what the generator reads from a MESSAGE frame. The byte
// slices point into the frame body.
type Message struct {
	Room   []byte
	Seq    uint64
	Time   uint64
	Sender []byte
	ID     []byte
	Text   []byte
}

// Ack is what the generator reads from an ACK frame; slices point into the
// frame body.
type Ack struct {
	Room []byte
	ID   []byte
	Seq  uint64
	Time uint64
}

// fields walks a payload without allocating; the first failure sticks.
type fields struct {
	b   []byte
	bad bool
}

func (f *fields) uint() uint64 {
	if f.bad {
		return 0
	}
	v, n := binary.Uvarint(f.b)
	if n <= 0 {
		f.bad = true
		return 0
	}
	f.b = f.b[n:]
	return v
}

func (f *fields) bytes() []byte {
	n := f.uint()
	if f.bad || n > uint64(len(f.b)) {
		f.bad = true
		return nil
	}
	v := f.b[:n:n]
	f.b = f.b[n:]
	return v
}

// ParseMessage reads a MESSAGE frame body (type byte included) into m.
func ParseMessage(body []byte, m *Message) error {
	f := fields{b: body[1:]}
	m.Room = f.bytes()
	m.Seq = f.uint()
	m.Time = f.uint()
	m.Sender = f.bytes()
	m.ID = f.bytes()
	m.Text = f.bytes()
	if f.bad {
		return fmt.Errorf("%w: MESSAGE", ErrFrame)
	}
	return nil
}

// ParseAck reads an ACK frame body (type byte included) into a.
func ParseAck(body []byte, a *Ack) error {
	f := fields{b: body[1:]}
	a.Room = f.bytes()
	a.ID = f.bytes()
	a.Seq = f.uint()
	a.Time = f.uint()
	if f.bad {
		return fmt.Errorf("%w: ACK", ErrFrame)
	}
	return nil
}

// A message text made by AppendText starts with its send time, so a
// receiver on the same machine measures delivery latency from the text
// alone:
//
//	1764020000123456789 m s0003 000000000042 xxxxxxxx…
//
// nineteen decimal digits of Unix nanoseconds, a space, 'w' for a warm-up
// message or 'm' for a measured one, the sender and its message number for
// humans reading a capture, then padding to the requested size.
const (
	stampDigits = 19
	// MinTextSize is the shortest text AppendText makes.
	MinTextSize = stampDigits + 2
)

// AppendText appends a text of exactly size bytes (at least MinTextSize)
// carrying the send time sent (Unix nanoseconds) and the warm-up flag.
func AppendText(dst []byte, sent int64, warm bool, sender string, k uint64, size int) []byte {
	size = max(size, MinTextSize)
	start := len(dst)
	var digits [stampDigits]byte
	v := uint64(sent)
	for i := stampDigits - 1; i >= 0; i-- {
		digits[i] = byte('0' + v%10)
		v /= 10
	}
	dst = append(dst, digits[:]...)
	flag := byte('m')
	if warm {
		flag = 'w'
	}
	dst = append(dst, ' ', flag)
	rest := fmt.Appendf(nil, " %s %012d ", sender, k)
	for _, c := range rest {
		if len(dst)-start >= size {
			break
		}
		dst = append(dst, c)
	}
	for len(dst)-start < size {
		dst = append(dst, 'x')
	}
	return dst
}

// ParseText returns the send time and warm-up flag of a text made by
// AppendText; ok is false for any other text.
func ParseText(text []byte) (sent int64, warm bool, ok bool) {
	if len(text) < MinTextSize || text[stampDigits] != ' ' {
		return 0, false, false
	}
	var v uint64
	for _, c := range text[:stampDigits] {
		if c < '0' || c > '9' {
			return 0, false, false
		}
		v = v*10 + uint64(c-'0')
	}
	switch text[stampDigits+1] {
	case 'w':
		warm = true
	case 'm':
	default:
		return 0, false, false
	}
	return int64(v), warm, true
}

// AppendSend appends a complete SEND frame to dst without allocating.
func AppendSend(dst []byte, room string, id, text []byte) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, byte(protocol.TypeSend))
	dst = binary.AppendUvarint(dst, uint64(len(room)))
	dst = append(dst, room...)
	dst = binary.AppendUvarint(dst, uint64(len(id)))
	dst = append(dst, id...)
	dst = binary.AppendUvarint(dst, uint64(len(text)))
	dst = append(dst, text...)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-protocol.LengthSize))
	return dst
}
