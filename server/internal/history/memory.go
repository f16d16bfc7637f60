package history

import (
	"context"
	"slices"
	"sync"
	"time"

	"chat/protocol"
)

// Memory is a Log kept in memory. It has the exact semantics of the durable
// logs, without the durability; tests and fuzzers use it. It is also a
// Searcher, by reading every message of the rooms searched.
type Memory struct {
	*Batcher
	mu     sync.Mutex
	rooms  map[string][]*entry
	seen   map[DedupKey]uint64
	epochs map[string]uint64
	now    func() time.Time
}

var _ Searcher = (*Memory)(nil)

// entry is a stored message or change entry with its reactions.
type entry struct {
	msg protocol.Msg // Reactions and Change.State unset: see render
	// reactions holds, for each of protocol.Reactions, the names that
	// reacted with it, oldest first.
	reactions [len(protocol.Reactions)][]reactor
}

type reactor struct{ key, name string }

// NewMemory returns an empty in-memory log delivering results to sink.
func NewMemory(sink Sink) *Memory {
	m := &Memory{
		rooms:  map[string][]*entry{},
		seen:   map[DedupKey]uint64{},
		epochs: map[string]uint64{},
		now:    time.Now,
	}
	m.Batcher = NewBatcher(1024, 256, m.commit, sink)
	return m
}

func (m *Memory) commit(batch []*Request) []Result {
	m.mu.Lock()
	defer m.mu.Unlock()
	results := make([]Result, len(batch))
	for i, r := range batch {
		results[i].Request = r
		key := KeyOf(r)
		entries := m.rooms[r.Room]
		if seq, ok := m.seen[key]; ok {
			results[i].Msg, results[i].Duplicate = m.renderLocked(r.Room, entries[seq-1]), true
			continue
		}
		now := protocol.Millis(m.now())
		e := &entry{msg: protocol.Msg{Room: r.Room, Seq: uint64(len(entries)) + 1, Time: now,
			Sender: r.Sender, ID: r.ID, Text: r.Text, Reply: r.Reply, File: copyFile(r.File)}}
		if c := r.Change; c != nil {
			if err := m.applyLocked(r, now); err != nil {
				results[i].Err = err
				continue
			}
			e.msg.Text, e.msg.Reply, e.msg.File = "", 0, nil
			e.msg.Change = &protocol.ChangeEntry{Kind: c.Kind, Target: c.Target}
			if c.Kind == protocol.ChangeReact || c.Kind == protocol.ChangeUnreact {
				e.msg.Change.Emoji = c.Text
			}
		}
		m.rooms[r.Room] = append(entries, e)
		m.seen[key] = e.msg.Seq
		results[i].Msg = m.renderLocked(r.Room, e)
	}
	return results
}

// applyLocked applies r's change to its target, or says why it cannot.
func (m *Memory) applyLocked(r *Request, now uint64) error {
	c := r.Change
	entries := m.rooms[r.Room]
	if c.Target == 0 || c.Target > uint64(len(entries)) {
		return ErrNoMessage
	}
	t := entries[c.Target-1]
	if t.msg.Change != nil || Deleted(&t.msg) {
		return ErrNoMessage // a change entry, or deleted
	}
	own := protocol.Key(r.Sender) == protocol.Key(t.msg.Sender)
	switch c.Kind {
	case protocol.ChangeEdit:
		if !own {
			return ErrNotSender
		}
		t.msg.Text, t.msg.Edited = c.Text, now
	case protocol.ChangeDelete:
		if !own && !c.Moderator {
			return ErrNotSender
		}
		t.msg.Text, t.msg.File, t.msg.Edited = "", nil, now
		t.reactions = [len(protocol.Reactions)][]reactor{}
	case protocol.ChangeReact, protocol.ChangeUnreact:
		i := slices.Index(protocol.Reactions[:], c.Text)
		if i < 0 {
			return nil // the hub refuses other emoji; stored, it changes nothing
		}
		key := protocol.Key(r.Sender)
		names := slices.DeleteFunc(t.reactions[i], func(x reactor) bool { return x.key == key && c.Kind == protocol.ChangeUnreact })
		if c.Kind == protocol.ChangeReact && !slices.ContainsFunc(names, func(x reactor) bool { return x.key == key }) {
			names = append(names, reactor{key: key, name: r.Sender})
		}
		t.reactions[i] = names
	}
	return nil
}

// renderLocked returns e as reads give it: a message with its reactions,
// a change entry with its target's state now.
func (m *Memory) renderLocked(room string, e *entry) protocol.Msg {
	msg := e.msg
	msg.File = copyFile(msg.File)
	if msg.Change != nil {
		c := *msg.Change
		if entries := m.rooms[room]; c.Target >= 1 && c.Target <= uint64(len(entries)) {
			state := m.renderLocked(room, entries[c.Target-1])
			c.State = &state
		}
		msg.Change = &c
		return msg
	}
	for i, names := range e.reactions {
		if len(names) == 0 {
			continue
		}
		x := protocol.Reaction{Emoji: protocol.Reactions[i], Count: uint64(len(names))}
		for _, n := range names[:min(len(names), protocol.MaxReactionNames)] {
			x.Names = append(x.Names, n.name)
		}
		msg.Reactions = append(msg.Reactions, x)
	}
	return msg
}

func (m *Memory) renderAllLocked(room string, es []*entry) []protocol.Msg {
	if len(es) == 0 {
		return nil
	}
	out := make([]protocol.Msg, len(es))
	for i, e := range es {
		out[i] = m.renderLocked(room, e)
	}
	return out
}

// Since implements Log.
func (m *Memory) Since(_ context.Context, room string, after uint64, limit int) ([]protocol.Msg, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	es := m.rooms[room]
	if after >= uint64(len(es)) {
		return nil, nil
	}
	es = es[after:]
	return m.renderAllLocked(room, es[:min(max(limit, 0), len(es))]), nil
}

// Last implements Log.
func (m *Memory) Last(_ context.Context, room string, n int) ([]protocol.Msg, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	es := m.rooms[room]
	return m.renderAllLocked(room, es[max(0, len(es)-max(n, 0)):]), nil
}

// Before implements Log.
func (m *Memory) Before(_ context.Context, room string, before uint64, limit int) ([]protocol.Msg, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	es := m.rooms[room]
	end := min(uint64(len(es)), before-min(before, 1))
	return m.renderAllLocked(room, es[end-min(end, uint64(max(limit, 0))):end]), nil
}

// Search implements Searcher: every message of q.Rooms is read and
// matched, newest first.
func (m *Memory) Search(ctx context.Context, q Query) ([]protocol.Hit, bool, error) {
	words := QueryWords(q.Text)
	if len(words) == 0 {
		return nil, false, ErrBadQuery
	}
	limit := SearchLimit(q)
	m.mu.Lock()
	defer m.mu.Unlock()
	var hits []protocol.Hit
	for _, room := range slices.Compact(slices.Sorted(slices.Values(q.Rooms))) {
		for _, e := range m.rooms[room] {
			msg := &e.msg
			if msg.Change != nil || Deleted(msg) || (q.Before != 0 && msg.Time >= q.Before) {
				continue
			}
			text := SearchText(msg.Text, msg.File)
			if ok, spans := Match(text, words); ok {
				hits = append(hits, protocol.Hit{Room: room, Seq: msg.Seq, Time: msg.Time,
					Sender: msg.Sender, Text: text, Matches: spans})
			}
		}
	}
	SortHits(hits)
	if len(hits) > limit {
		return hits[:limit], true, nil
	}
	return hits, false, ctx.Err()
}

// copyFile returns a copy of f, so that no two messages share one.
func copyFile(f *protocol.File) *protocol.File {
	if f == nil {
		return nil
	}
	c := *f
	return &c
}

// SortHits orders hits newest first: by time, then (within a
// millisecond) by room and sequence number, the later first.
func SortHits(hits []protocol.Hit) {
	slices.SortFunc(hits, func(a, b protocol.Hit) int {
		switch {
		case a.Time != b.Time:
			return cmpDesc(a.Time, b.Time)
		case a.Room != b.Room:
			if a.Room > b.Room {
				return -1
			}
			return 1
		}
		return cmpDesc(a.Seq, b.Seq)
	})
}

func cmpDesc(a, b uint64) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}

// Bounds implements Log: Memory keeps everything.
func (m *Memory) Bounds(_ context.Context, room string) (floor, head uint64, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return 0, uint64(len(m.rooms[room])), nil
}

// Epoch implements Log: each Memory is a history of its own.
func (m *Memory) Epoch(_ context.Context, room string) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.epochs[room]
	if e == 0 {
		e = NewEpoch()
		m.epochs[room] = e
	}
	return e, nil
}

// Close implements Log.
func (m *Memory) Close() error {
	m.Batcher.Close()
	return nil
}

// Heads returns the last message of every room that has one.
func (m *Memory) Heads() []protocol.Msg {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]protocol.Msg, 0, len(m.rooms))
	for room, es := range m.rooms {
		if len(es) > 0 {
			out = append(out, m.renderLocked(room, es[len(es)-1]))
		}
	}
	return out
}
