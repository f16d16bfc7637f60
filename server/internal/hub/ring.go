package hub

import (
	"sync/atomic"

	"chat/protocol"
)

// ring keeps the encoded frames of a room's most recent history entries,
// so joins and short resumes replay history from memory with frames that
// were encoded once, when they were first broadcast: a message's MESSAGE
// frame, and a change entry's UPDATE frames (with and without the
// target's state, see since).
//
// A change also rewrites the frame of its target when the ring holds it
// (apply): a replay sends every message in its final state.
//
// It is bounded twice: by entries (its size) and by bytes (maxBytes), and
// it adds what it holds to used, the hub's total over every ring, which
// the hub keeps within its own budget by trimming rings (Hub.trimCaches).
// A trimmed ring simply covers less: older history is read from the
// broker.
type ring struct {
	frames [][]byte
	// changes[i] is set when frames[i] is a change entry's UPDATE.
	changes []*ringChange
	start   int    // index of the oldest frame
	n       int    // frames held
	first   uint64 // sequence number of the oldest frame (with n = 0: of the next)

	bytes    int           // bytes of the frames held
	maxBytes int           // the most bytes held (0: no bound)
	used     *atomic.Int64 // the hub's total; nil: not counted
}

// ringChange is what the ring knows of a change entry besides its live
// UPDATE frame (which carries the target's state after the change).
type ringChange struct {
	target uint64
	// bare is the UPDATE without the target's state, for a replay in
	// which the target or a later change of it carries the state.
	bare []byte
}

func newRing(size, maxBytes int, used *atomic.Int64) *ring {
	return &ring{frames: make([][]byte, size), changes: make([]*ringChange, size), maxBytes: maxBytes, used: used}
}

// push adds the frame of message seq, which must follow the newest one.
func (r *ring) push(seq uint64, frame []byte) { r.add(seq, frame, nil) }

// pushChange adds change entry seq of target: frame is its UPDATE with the
// target's state (the live frame), bare the same without it.
func (r *ring) pushChange(seq uint64, frame, bare []byte, target uint64) {
	r.add(seq, frame, &ringChange{target: target, bare: bare})
}

func (r *ring) add(seq uint64, frame []byte, ch *ringChange) {
	if r.n > 0 && seq != r.first+uint64(r.n) {
		r.trim(-1) // a gap: what we hold no longer leads up to seq
	}
	if r.n == 0 {
		r.start, r.first = 0, seq
	}
	if r.n == len(r.frames) {
		r.dropOldest()
	}
	i := (r.start + r.n) % len(r.frames)
	r.frames[i], r.changes[i] = frame, ch
	r.n++
	r.account(entrySize(frame, ch))
	if r.maxBytes > 0 {
		r.trim(r.maxBytes)
	}
}

func entrySize(frame []byte, ch *ringChange) int {
	n := len(frame)
	if ch != nil && len(ch.bare) > 0 && &ch.bare[0] != &frame[0] {
		n += len(ch.bare)
	}
	return n
}

func (r *ring) account(delta int) {
	r.bytes += delta
	if r.used != nil {
		r.used.Add(int64(delta))
	}
}

// dropOldest forgets the oldest frame.
func (r *ring) dropOldest() {
	f, ch := r.frames[r.start], r.changes[r.start]
	r.frames[r.start], r.changes[r.start] = nil, nil
	r.start = (r.start + 1) % len(r.frames)
	r.n--
	r.first++
	r.account(-entrySize(f, ch))
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

// restartAfter forgets every frame and starts the ring again after seq:
// replays from seq on are read from the broker. For a change whose
// target's state did not come with it: the ring cannot bring its copy of
// the target, nor a replay of the change, to the final state.
func (r *ring) restartAfter(seq uint64) {
	r.trim(-1)
	r.start, r.first = 0, seq+1
}

// covers reports whether the ring holds every message after seq after,
// up to the newest. An empty ring that was never filled covers
// everything (the room has no messages); one emptied by trimming covers
// only what follows its newest message.
func (r *ring) covers(after uint64) bool { return after+1 >= r.first }

// index returns the slot of seq, if the ring holds it.
func (r *ring) index(seq uint64) (int, bool) {
	if r.n == 0 || seq < r.first || seq >= r.first+uint64(r.n) {
		return 0, false
	}
	return (r.start + int(seq-r.first)) % len(r.frames), true
}

// isChange reports whether the ring holds seq as a change entry.
func (r *ring) isChange(seq uint64) bool {
	i, ok := r.index(seq)
	return ok && r.changes[i] != nil
}

// since returns the frames of the entries after seq after, oldest first:
// the replay of (after, newest]. A change entry goes as UPDATE with the
// target's state only when it is the last change of a target older than
// the replay (a replayed MESSAGE already has its final state, and so has
// the last change's UPDATE), so a resumer gets each final state once, not
// every step.
func (r *ring) since(after uint64) [][]byte {
	skip := 0
	if after >= r.first {
		skip = int(min(after-r.first+1, uint64(r.n)))
	}
	out := make([][]byte, r.n-skip)
	var stated map[uint64]bool
	for k := r.n - 1; k >= skip; k-- {
		i := (r.start + k) % len(r.frames)
		f, ch := r.frames[i], r.changes[i]
		if ch != nil {
			if ch.target <= after && !stated[ch.target] {
				if stated == nil {
					stated = map[uint64]bool{}
				}
				stated[ch.target] = true
			} else {
				f = ch.bare
			}
		}
		out[k-skip] = f
	}
	return out
}

// redact replaces the frame of message seq, if held, by the same message
// without its text: an operator deleted it, and the delete's UPDATE (which
// carries the full state) may reach this node after the MODEVENT.
func (r *ring) redact(seq uint64) {
	i, ok := r.index(seq)
	if !ok || r.changes[i] != nil {
		return
	}
	m, err := protocol.Decode(r.frames[i][protocol.LengthSize:])
	if msg, ok := m.(*protocol.Msg); err == nil && ok && msg.Text != "" {
		msg.Text, msg.Reactions = "", nil
		f := protocol.Encode(msg)
		r.account(len(f) - len(r.frames[i]))
		r.frames[i] = f
	}
}

// apply replaces the frame of message target, if held, by its state after
// a change (an edit, a deletion, a reaction): a later join replays the
// message as it is now. state is not modified.
func (r *ring) apply(room string, target uint64, state *protocol.Msg) {
	i, ok := r.index(target)
	if !ok || r.changes[i] != nil {
		return
	}
	m := *state
	m.Room, m.Change = room, nil
	f := protocol.Encode(&m)
	r.account(len(f) - len(r.frames[i]))
	r.frames[i] = f
}
