package history

import (
	"context"
	"sync"
	"time"

	"chat/protocol"
)

// Memory is a Log kept in memory. It has the exact semantics of the durable
// logs, without the durability; tests and fuzzers use it.
type Memory struct {
	*Batcher
	mu     sync.Mutex
	rooms  map[string][]protocol.Msg
	seen   map[DedupKey]uint64
	epochs map[string]uint64
	now    func() time.Time
}

// NewMemory returns an empty in-memory log delivering results to sink.
func NewMemory(sink Sink) *Memory {
	m := &Memory{
		rooms:  map[string][]protocol.Msg{},
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
		msgs := m.rooms[r.Room]
		if seq, ok := m.seen[key]; ok {
			results[i].Msg, results[i].Duplicate = msgs[seq-1], true
			continue
		}
		msg := protocol.Msg{Room: r.Room, Seq: uint64(len(msgs)) + 1, Time: protocol.Millis(m.now()),
			Sender: r.Sender, ID: r.ID, Text: r.Text}
		m.rooms[r.Room] = append(msgs, msg)
		m.seen[key] = msg.Seq
		results[i].Msg = msg
	}
	return results
}

// Since implements Log.
func (m *Memory) Since(_ context.Context, room string, after uint64, limit int) ([]protocol.Msg, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	msgs := m.rooms[room]
	if after >= uint64(len(msgs)) {
		return nil, nil
	}
	msgs = msgs[after:]
	return append([]protocol.Msg(nil), msgs[:min(limit, len(msgs))]...), nil
}

// Last implements Log.
func (m *Memory) Last(_ context.Context, room string, n int) ([]protocol.Msg, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	msgs := m.rooms[room]
	return append([]protocol.Msg(nil), msgs[max(0, len(msgs)-n):]...), nil
}

// Before implements Log.
func (m *Memory) Before(_ context.Context, room string, before uint64, limit int) ([]protocol.Msg, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	msgs := m.rooms[room]
	end := min(uint64(len(msgs)), before-min(before, 1))
	return append([]protocol.Msg(nil), msgs[end-min(end, uint64(max(limit, 0))):end]...), nil
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
	for _, msgs := range m.rooms {
		if len(msgs) > 0 {
			out = append(out, msgs[len(msgs)-1])
		}
	}
	return out
}
