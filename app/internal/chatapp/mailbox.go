package chatapp

import "sync"

// mailbox passes values between goroutines without ever blocking the
// sender: the window may not draw for a long time (minimised, or paused on
// Android), and the loop must keep reading the client's events meanwhile;
// the window must never wait for the network either.
type mailbox[T any] struct {
	mu     sync.Mutex
	items  []T
	signal chan struct{} // holds a token while items is non-empty
}

func newMailbox[T any]() *mailbox[T] {
	return &mailbox[T]{signal: make(chan struct{}, 1)}
}

func (m *mailbox[T]) put(v T) {
	m.mu.Lock()
	m.items = append(m.items, v)
	m.mu.Unlock()
	select {
	case m.signal <- struct{}{}:
	default:
	}
}

// take returns everything put so far, oldest first.
func (m *mailbox[T]) take() []T {
	m.mu.Lock()
	defer m.mu.Unlock()
	items := m.items
	m.items = nil
	return items
}
