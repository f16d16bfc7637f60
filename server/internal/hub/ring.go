package hub

import "chat/protocol"

// ring keeps the encoded MESSAGE frames of a room's most recent messages,
// so joins and short resumes replay history from memory with frames that
// were encoded once, when they were first broadcast.
type ring struct {
	frames [][]byte
	start  int    // index of the oldest frame
	n      int    // frames held
	bytes  int    // their total length
	first  uint64 // sequence number of the oldest frame
}

func newRing(size int) *ring { return &ring{frames: make([][]byte, size)} }

// push adds the frame of message seq, which must follow the newest one.
func (r *ring) push(seq uint64, frame []byte) {
	if r.n > 0 && seq != r.first+uint64(r.n) {
		r.n, r.bytes = 0, 0 // a gap: what we hold no longer leads up to seq
	}
	if r.n == 0 {
		r.start, r.first = 0, seq
	}
	r.bytes += len(frame)
	if r.n < len(r.frames) {
		r.frames[(r.start+r.n)%len(r.frames)] = frame
		r.n++
		return
	}
	r.bytes -= len(r.frames[r.start])
	r.frames[r.start] = frame
	r.start = (r.start + 1) % len(r.frames)
	r.first++
}

// covers reports whether the ring holds every message after seq after,
// up to the newest.
func (r *ring) covers(after uint64) bool { return r.n == 0 || after+1 >= r.first }

// since returns the frames of the messages after seq after, oldest first.
func (r *ring) since(after uint64) [][]byte {
	skip := 0
	if after >= r.first {
		skip = int(min(after-r.first+1, uint64(r.n)))
	}
	out := make([][]byte, 0, r.n-skip)
	for i := skip; i < r.n; i++ {
		out = append(out, r.frames[(r.start+i)%len(r.frames)])
	}
	return out
}

// redact replaces the frame of message seq, if held, by the same message
// without its text: an operator deleted it.
func (r *ring) redact(seq uint64) {
	if r.n == 0 || seq < r.first || seq >= r.first+uint64(r.n) {
		return
	}
	i := (r.start + int(seq-r.first)) % len(r.frames)
	m, err := protocol.Decode(r.frames[i][protocol.LengthSize:])
	if msg, ok := m.(*protocol.Msg); err == nil && ok {
		msg.Text = ""
		r.frames[i] = protocol.Encode(msg)
	}
}
