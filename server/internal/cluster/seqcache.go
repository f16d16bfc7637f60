package cluster

import "sync"

// Bounds of the room seq → stream seq cache.
const (
	// seqCacheRooms is the most rooms whose recent positions are kept.
	seqCacheRooms = 1024
	// seqCachePerRoom is how many of a room's latest messages are kept.
	seqCachePerRoom = 256
)

// seqCache remembers where recent messages of recently active rooms are
// in the stream (fed by the consumer and by this node's own stores), so
// reads of recent history, the common case (a join replays the last
// messages), skip the binary search.
type seqCache struct {
	mu    sync.Mutex
	rooms map[string]*seqRun
}

// seqRun is a room's latest messages: room seqs first..first+len(stream)-1
// at these stream seqs (a ring once full).
type seqRun struct {
	first  uint64
	stream []uint64
	start  int // index of first in stream, once the ring is full
}

func newSeqCache() *seqCache { return &seqCache{rooms: map[string]*seqRun{}} }

// add records that room seq seq is at stream seq stream. Seqs not
// following the last one recorded start the room afresh.
func (c *seqCache) add(room string, seq, stream uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.rooms[room]
	if r != nil {
		last := r.first + uint64(len(r.stream)) - 1
		switch {
		case seq <= last && seq >= r.first:
			return // known
		case seq == last+1:
			if len(r.stream) < seqCachePerRoom {
				r.stream = append(r.stream, stream)
				return
			}
			r.stream[r.start] = stream
			r.start = (r.start + 1) % len(r.stream)
			r.first++
			return
		}
	}
	if r == nil && len(c.rooms) >= seqCacheRooms {
		for k := range c.rooms { // evict an arbitrary room
			delete(c.rooms, k)
			break
		}
	}
	c.rooms[room] = &seqRun{first: seq, stream: []uint64{stream}}
}

// bounds returns the stream seq of room seq seq if known (exact), or
// else bounds that narrow the search: seq is at a stream seq of at least
// lo and at most hi (0: no bound known).
func (c *seqCache) bounds(room string, seq uint64) (exact, lo, hi uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.rooms[room]
	if r == nil {
		return 0, 0, 0
	}
	at := func(s uint64) uint64 {
		return r.stream[(r.start+int(s-r.first))%len(r.stream)]
	}
	last := r.first + uint64(len(r.stream)) - 1
	switch {
	case seq < r.first:
		// Each room message is one stream message.
		return 0, 0, at(r.first) - (r.first - seq)
	case seq > last:
		return 0, at(last) + (seq - last), 0
	default:
		return at(seq), 0, 0
	}
}
