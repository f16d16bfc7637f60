package hub

import (
	"sync/atomic"

	"chat/protocol"
)

// ring keeps the encoded MESSAGE frames of a room's most recent messages,
// so joins and short resumes replay history from memory with frames that
// were encoded once, when they were first broadcast.
//
// It is bounded twice: by frames (its size) and by bytes (maxBytes), and
// it adds what it holds to used, the hub's total over every ring, which
// the hub keeps within its own budget by trimming rings (Hub.trimCaches).
// A trimmed ring simply covers less: older history is read from the
// broker.
type ring struct {
	frames [][]byte
	start  int    // index of the oldest frame
	n      int    // frames held
	first  uint64 // sequence number of the oldest frame (with n = 0: of the next)

	bytes    int           // bytes of the frames held
	maxBytes int           // the most bytes held (0: no bound)
	used     *atomic.Int64 // the hub's total; nil: not counted
}

func newRing(size, maxBytes int, used *atomic.Int64) *ring {
	return &ring{frames: make([][]byte, size), maxBytes: maxBytes, used: used}
}

// push adds the frame of message seq, which must follow the newest one.
func (r *ring) push(seq uint64, frame []byte) {
	if r.n > 0 && seq != r.first+uint64(r.n) {
		r.trim(-1) // a gap: what we hold no longer leads up to seq
	}
	if r.n == 0 {
		r.start, r.first = 0, seq
	}
	if r.n == len(r.frames) {
		r.dropOldest()
	}
	r.frames[(r.start+r.n)%len(r.frames)] = frame
	r.n++
	r.account(len(frame))
	if r.maxBytes > 0 {
		r.trim(r.maxBytes)
	}
}

func (r *ring) account(delta int) {
	r.bytes += delta
	if r.used != nil {
		r.used.Add(int64(delta))
	}
}

// dropOldest forgets the oldest frame.
func (r *ring) dropOldest() {
	f := r.frames[r.start]
	r.frames[r.start] = nil
	r.start = (r.start + 1) % len(r.frames)
	r.n--
	r.first++
	r.account(-len(f))
}

// trim forgets the oldest frames until the ring holds at most max bytes
// (max < 0: all of them).
func (r *ring) trim(max int) {
	for r.n > 0 && r.bytes > max {
		r.dropOldest()
	}
}

// release forgets every frame and takes them off the hub's total: the
// room is dropped.
func (r *ring) release() { r.trim(-1) }

// covers reports whether the ring holds every message after seq after,
// up to the newest. An empty ring that was never filled covers
// everything (the room has no messages); one emptied by trimming covers
// only what follows its newest message.
func (r *ring) covers(after uint64) bool { return after+1 >= r.first }

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
		f := protocol.Encode(msg)
		r.account(len(f) - len(r.frames[i]))
		r.frames[i] = f
	}
}
