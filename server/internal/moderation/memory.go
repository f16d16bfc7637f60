package moderation

import (
	"context"
	"sync"
)

// Memory is a Store in memory, for tests and for a hub without storage.
// Redactions go to redact, which edits the history the Memory sits
// beside (nil: every Redact reports no such message).
type Memory struct {
	redact   func(room string, seq uint64) bool
	maxAudit int

	mu     sync.Mutex
	states map[string]memState
	audit  []Entry
}

type memState struct {
	data []byte // Marshal'd, so that callers never share a State
	rev  uint64
}

// NewMemory returns an empty store keeping at most maxAudit audit
// entries (0: 100 000).
func NewMemory(redact func(room string, seq uint64) bool, maxAudit int) *Memory {
	if maxAudit <= 0 {
		maxAudit = DefaultMaxAudit
	}
	return &Memory{redact: redact, maxAudit: maxAudit, states: map[string]memState{}}
}

// DefaultMaxAudit is how many audit entries a store keeps by default.
const DefaultMaxAudit = 100000

// Load implements Store.
func (m *Memory) Load(_ context.Context, room string) (*State, uint64, error) {
	m.mu.Lock()
	s := m.states[room]
	m.mu.Unlock()
	st, err := Unmarshal(s.data)
	return st, s.rev, err
}

// Save implements Store.
func (m *Memory) Save(_ context.Context, room string, st *State, rev uint64) (uint64, error) {
	data, err := Marshal(st)
	if err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.states[room].rev != rev {
		return 0, ErrConflict
	}
	m.states[room] = memState{data: data, rev: rev + 1}
	return rev + 1, nil
}

// Redact implements Store.
func (m *Memory) Redact(_ context.Context, room string, seq uint64) (bool, error) {
	if m.redact == nil {
		return false, nil
	}
	return m.redact(room, seq), nil
}

// Audit implements Store.
func (m *Memory) Audit(_ context.Context, e Entry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.audit = append(m.audit, e)
	if over := len(m.audit) - m.maxAudit; over > 0 {
		m.audit = append([]Entry(nil), m.audit[over:]...)
	}
	return nil
}

// AuditLog implements Store.
func (m *Memory) AuditLog(_ context.Context, room string, n int) ([]Entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Entry
	for i := len(m.audit) - 1; i >= 0 && len(out) < n; i-- {
		if room == "" || m.audit[i].Room == room {
			out = append(out, m.audit[i])
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}
