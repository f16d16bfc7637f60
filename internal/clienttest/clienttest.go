// Package clienttest records the events of a client.Client so tests can
// wait for what they expect to happen.
package clienttest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"chat/client"
)

// Timeout bounds every wait.
const Timeout = 20 * time.Second

// Recorder keeps every event a client emits.
type Recorder struct {
	C *client.Client

	mu     sync.Mutex
	cond   sync.Cond
	events []client.Event
	closed bool
}

// New starts a client with cfg, records its events and closes it when the
// test ends.
func New(t testing.TB, cfg client.Config) *Recorder {
	t.Helper()
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := Record(c)
	t.Cleanup(func() { c.Close() })
	return r
}

// Record records the events of c.
func Record(c *client.Client) *Recorder {
	r := &Recorder{C: c}
	r.cond.L = &r.mu
	go func() {
		for ev := range c.Events() {
			r.mu.Lock()
			r.events = append(r.events, ev)
			r.mu.Unlock()
			r.cond.Broadcast()
		}
		r.mu.Lock()
		r.closed = true
		r.mu.Unlock()
		r.cond.Broadcast()
	}()
	return r
}

// Events returns a copy of the events so far.
func (r *Recorder) Events() []client.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]client.Event(nil), r.events...)
}

// Wait returns the first recorded event for which match is true, waiting
// for it up to Timeout.
func (r *Recorder) Wait(t testing.TB, what string, match func(client.Event) bool) client.Event {
	t.Helper()
	ev, ok := r.WaitFor(Timeout, match)
	if !ok {
		t.Fatalf("%s: not seen within %v; events:\n%s", what, Timeout, r.Dump())
	}
	return ev
}

// WaitFor is Wait without a test: it reports whether a match came in time.
func (r *Recorder) WaitFor(d time.Duration, match func(client.Event) bool) (client.Event, bool) {
	timer := time.AfterFunc(d, r.cond.Broadcast)
	defer timer.Stop()
	deadline := time.Now().Add(d)
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := 0; ; {
		for ; i < len(r.events); i++ {
			if match(r.events[i]) {
				return r.events[i], true
			}
		}
		if r.closed || time.Now().After(deadline) {
			return nil, false
		}
		r.cond.Wait()
	}
}

// WaitState waits for a StateChanged to s.
func (r *Recorder) WaitState(t testing.TB, s client.State) client.StateChanged {
	t.Helper()
	return r.Wait(t, "state "+s.String(), func(ev client.Event) bool {
		sc, ok := ev.(client.StateChanged)
		return ok && sc.State == s
	}).(client.StateChanged)
}

// WaitJoined waits for the Joined event of room.
func (r *Recorder) WaitJoined(t testing.TB, room string) client.Joined {
	t.Helper()
	return r.Wait(t, "joined "+room, func(ev client.Event) bool {
		j, ok := ev.(client.Joined)
		return ok && j.Room == room
	}).(client.Joined)
}

// Messages returns the Message events so far.
func (r *Recorder) Messages() []client.Message {
	var out []client.Message
	for _, ev := range r.Events() {
		if m, ok := ev.(client.Message); ok {
			out = append(out, m)
		}
	}
	return out
}

// WaitMessages waits until at least n messages have arrived and returns them all.
func (r *Recorder) WaitMessages(t testing.TB, n int) []client.Message {
	t.Helper()
	count := 0
	r.Wait(t, fmt.Sprintf("%d messages", n), func(ev client.Event) bool {
		if _, ok := ev.(client.Message); ok {
			count++
		}
		return count >= n
	})
	return r.Messages()
}

// WaitText waits for a message with this text and returns it.
func (r *Recorder) WaitText(t testing.TB, text string) client.Message {
	t.Helper()
	return r.Wait(t, fmt.Sprintf("message %q", text), func(ev client.Event) bool {
		m, ok := ev.(client.Message)
		return ok && m.Text == text
	}).(client.Message)
}

// Dump formats the recorded events for failure messages.
func (r *Recorder) Dump() string {
	var b strings.Builder
	events := r.Events()
	const keep = 30 // the first and last events say what happened
	for i, ev := range events {
		if i == keep && len(events) > 2*keep {
			fmt.Fprintf(&b, "  … %d events …\n", len(events)-2*keep)
		}
		if i >= keep && i < len(events)-keep {
			continue
		}
		line := fmt.Sprintf("%T %+q", ev, ev)
		if len(line) > 160 {
			line = line[:160] + "…"
		}
		fmt.Fprintf(&b, "  %4d %s\n", i, line)
	}
	return b.String()
}
