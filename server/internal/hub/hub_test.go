package hub

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"chat/protocol"
	"chat/server/internal/broker"
	"chat/server/internal/history"
)

// fakeMember records what the hub gives a connection.
type fakeMember struct {
	mu     sync.Mutex
	cond   sync.Cond
	frames [][]byte
	failed *protocol.Error
	// gate, if set, holds Replay until it is closed, to widen the window
	// in which live messages must wait in the backlog.
	gate chan struct{}
}

func newMember() *fakeMember {
	m := &fakeMember{}
	m.cond.L = &m.mu
	return m
}

func (m *fakeMember) Deliver(f []byte) {
	m.mu.Lock()
	m.frames = append(m.frames, f)
	m.mu.Unlock()
	m.cond.Broadcast()
}

func (m *fakeMember) Replay(ctx context.Context, fs [][]byte) error {
	if m.gate != nil {
		<-m.gate
	}
	m.mu.Lock()
	defer m.cond.Broadcast()
	defer m.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	m.frames = append(m.frames, fs...)
	return nil
}

func (m *fakeMember) Fail(e *protocol.Error) {
	m.mu.Lock()
	m.failed = e
	m.mu.Unlock()
	m.cond.Broadcast()
}

// decoded returns the frames received so far, decoded.
func (m *fakeMember) decoded(t *testing.T) []protocol.Message {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]protocol.Message, len(m.frames))
	for i, f := range m.frames {
		msg, err := protocol.Decode(f[protocol.LengthSize:])
		if err != nil {
			t.Fatal(err)
		}
		out[i] = msg
	}
	return out
}

// waitFor waits until cond holds for the decoded frames.
func (m *fakeMember) waitFor(t *testing.T, what string, cond func([]protocol.Message) bool) []protocol.Message {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	timer := time.AfterFunc(10*time.Second, m.cond.Broadcast) // wakes the wait below at the deadline
	defer timer.Stop()
	for {
		got := m.decoded(t)
		if cond(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 10s; frames: %+v", what, got)
		}
		// Sleep until the next frame (Deliver and Replay broadcast).
		m.mu.Lock()
		for len(m.frames) == len(got) && time.Now().Before(deadline) {
			m.cond.Wait()
		}
		m.mu.Unlock()
	}
}

func msgs(ms []protocol.Message) []*protocol.Msg {
	var out []*protocol.Msg
	for _, m := range ms {
		if msg, ok := m.(*protocol.Msg); ok {
			out = append(out, msg)
		}
	}
	return out
}

func count[T protocol.Message](ms []protocol.Message) int {
	n := 0
	for _, m := range ms {
		if _, ok := m.(T); ok {
			n++
		}
	}
	return n
}

func newHub(t testing.TB, cfg Config) (*Hub, *history.Memory) {
	t.Helper()
	var mem *history.Memory
	store := newStore(t, func(sink history.Sink) (history.Log, error) {
		mem = history.NewMemory(sink)
		return mem, nil
	}, broker.LocalOptions{})
	return newNode(t, cfg, store), mem
}

// newStore opens a broker store that is closed when the test ends, after
// the hubs on it.
func newStore(t testing.TB, open func(history.Sink) (history.Log, error), opts broker.LocalOptions) *broker.Local {
	t.Helper()
	store, err := broker.NewLocal(open, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// newNode starts a hub on store: several hubs on one store are a cluster.
func newNode(t testing.TB, cfg Config, store *broker.Local) *Hub {
	t.Helper()
	h, err := New(cfg, func(hd broker.Handler) (broker.Broker, error) { return store.Node(hd), nil })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func mustJoin(t *testing.T, c *Conn, j *protocol.Join) {
	t.Helper()
	if e := c.Join(j); e != nil {
		t.Fatalf("join %+v: %v", j, e)
	}
}

// TestBroadcastEncodesOnce: every member's queue gets the very same bytes.
func TestBroadcastEncodesOnce(t *testing.T) {
	h, _ := newHub(t, Config{})
	members := make([]*fakeMember, 50)
	var sender *Conn
	for i := range members {
		members[i] = newMember()
		c := h.Connect(members[i])
		mustJoin(t, c, &protocol.Join{Room: "general", Name: fmt.Sprint("m", i)})
		sender = c
	}
	if err := sender.Send("general", "id1", "hello everyone"); err != nil {
		t.Fatal(err)
	}
	var first *byte
	for i, m := range members {
		got := m.waitFor(t, "the message", func(ms []protocol.Message) bool { return len(msgs(ms)) == 1 })
		if i == len(members)-1 { // the sender: its ACK comes before its copy
			if _, ok := got[len(got)-2].(*protocol.Ack); !ok {
				t.Error("the sender did not get its ACK before its copy")
			}
		}
		m.mu.Lock()
		frame := m.frames[len(m.frames)-1]
		m.mu.Unlock()
		if first == nil {
			first = &frame[0]
		} else if &frame[0] != first {
			t.Fatalf("member %d got a separately encoded frame", i)
		}
	}
}

// TestFarResumeReplaysFromTheLogThenLive: a resume older than the ring is
// read from the log; messages posted meanwhile wait and follow in order.
func TestFarResumeReplaysFromTheLogThenLive(t *testing.T) {
	h, _ := newHub(t, Config{History: 4, RingSize: 8})
	poster := newMember()
	pc := h.Connect(poster)
	mustJoin(t, pc, &protocol.Join{Room: "r", Name: "poster"})
	for i := 1; i <= 40; i++ {
		pc.Send("r", fmt.Sprint(i), fmt.Sprint("m", i))
	}
	poster.waitFor(t, "40 messages", func(ms []protocol.Message) bool { return len(msgs(ms)) == 40 })

	late := newMember()
	late.gate = make(chan struct{})
	lc := h.Connect(late)
	mustJoin(t, lc, &protocol.Join{Room: "r", Name: "late", Resume: true, After: 2})
	// While the replay is held up, more messages arrive.
	for i := 41; i <= 45; i++ {
		pc.Send("r", fmt.Sprint(i), fmt.Sprint("m", i))
	}
	poster.waitFor(t, "45 messages", func(ms []protocol.Message) bool { return len(msgs(ms)) == 45 })
	close(late.gate)
	got := late.waitFor(t, "the resume", func(ms []protocol.Message) bool { return len(msgs(ms)) == 43 })
	if j, ok := got[0].(*protocol.Joined); !ok || j.After != 2 || j.Head != 40 {
		t.Fatalf("first frame %+v, want JOINED after 2 head 40", got[0])
	}
	for i, m := range msgs(got) {
		if m.Seq != uint64(i+3) {
			t.Fatalf("message %d has seq %d: the replay and live messages are out of order", i, m.Seq)
		}
	}
}

func TestPresenceIsBatchedInBigRooms(t *testing.T) {
	h, _ := newHub(t, Config{PresenceBatchAbove: 3, PresenceDelay: 50 * time.Millisecond, MaxListed: 5})
	first := newMember()
	mustJoin(t, h.Connect(first), &protocol.Join{Room: "big", Name: "first"})
	const n = 30
	for i := range n {
		mustJoin(t, h.Connect(newMember()), &protocol.Join{Room: "big", Name: fmt.Sprint("user", i)})
	}
	got := first.waitFor(t, "all joins", func(ms []protocol.Message) bool {
		joined := 0
		for _, m := range ms {
			if p, ok := m.(*protocol.Presence); ok {
				joined += len(p.Changes)
			}
		}
		return joined == n+1 // the others and itself
	})
	frames := count[*protocol.Presence](got)
	last := got[len(got)-1].(*protocol.Presence)
	t.Logf("%d joins reached the first member in %d presence frames", n, frames)
	if frames > n/2 {
		t.Errorf("%d presence frames for %d joins: not batched", frames, n)
	}
	if last.Count != n+1 {
		t.Errorf("final count %d, want %d", last.Count, n+1)
	}
	// A late joiner's member list is capped, its count is not.
	late := newMember()
	mustJoin(t, h.Connect(late), &protocol.Join{Room: "big", Name: "late"})
	j := late.decoded(t)[0].(*protocol.Joined)
	if len(j.Members) != 5 || j.Count != n+2 {
		t.Errorf("JOINED lists %d names of %d, want 5 of %d", len(j.Members), j.Count, n+2)
	}
}

// TestPresenceFlushesBeforeMessages: in a big room, a join followed at
// once by a message arrives in that order.
func TestPresenceFlushesBeforeMessages(t *testing.T) {
	h, _ := newHub(t, Config{PresenceBatchAbove: 1, PresenceDelay: time.Hour})
	watcher := newMember()
	mustJoin(t, h.Connect(watcher), &protocol.Join{Room: "r", Name: "watcher"})
	mustJoin(t, h.Connect(newMember()), &protocol.Join{Room: "r", Name: "other"})
	talker := h.Connect(newMember())
	mustJoin(t, talker, &protocol.Join{Room: "r", Name: "talker"})
	talker.Send("r", "1", "hi, I just joined")
	got := watcher.waitFor(t, "the message", func(ms []protocol.Message) bool { return len(msgs(ms)) == 1 })
	var order []string
	for _, m := range got[1:] {
		switch m := m.(type) {
		case *protocol.Presence:
			for _, c := range m.Changes {
				order = append(order, c.Name)
			}
		case *protocol.Msg:
			order = append(order, "message")
		}
	}
	// Its own join went out at once (the room was small); the two later
	// joins waited for the batch, which the message flushed ahead of itself.
	if fmt.Sprint(order) != "[watcher other talker message]" {
		t.Fatalf("watcher saw %v", order)
	}
}

// TestEmptyRoomIsDroppedAndReloaded: a room nobody is in is forgotten;
// joining it again brings its history back from the log.
func TestEmptyRoomIsDroppedAndReloaded(t *testing.T) {
	h, _ := newHub(t, Config{History: 3})
	a := newMember()
	ac := h.Connect(a)
	mustJoin(t, ac, &protocol.Join{Room: "r", Name: "a"})
	for i := 1; i <= 5; i++ {
		ac.Send("r", fmt.Sprint(i), fmt.Sprint("m", i))
	}
	a.waitFor(t, "5 messages", func(ms []protocol.Message) bool { return len(msgs(ms)) == 5 })
	ac.Close()
	h.mu.Lock()
	n := len(h.rooms)
	h.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d rooms kept with nobody in them", n)
	}
	b := newMember()
	mustJoin(t, h.Connect(b), &protocol.Join{Room: "R", Name: "b"})
	got := b.decoded(t)
	j := got[0].(*protocol.Joined)
	if j.Room != "r" || j.Head != 5 || j.After != 2 {
		t.Fatalf("JOINED %+v", j)
	}
	if m := msgs(got); len(m) != 3 || m[0].Seq != 3 || m[2].Text != "m5" {
		t.Fatalf("history after reload: %+v", m)
	}
}

func TestJoinLimitsAndLeave(t *testing.T) {
	h, _ := newHub(t, Config{MaxRooms: 2})
	m := newMember()
	c := h.Connect(m)
	mustJoin(t, c, &protocol.Join{Room: "a", Name: "x"})
	mustJoin(t, c, &protocol.Join{Room: "b", Name: "x"})
	if e := c.Join(&protocol.Join{Room: "c", Name: "x"}); e == nil || e.Code != protocol.CodeTooManyRooms || e.Closing() {
		t.Fatalf("third room: %v", e)
	}
	if e := c.Join(&protocol.Join{Room: "A", Name: "x"}); e == nil || e.Code != protocol.CodeUnexpected {
		t.Fatalf("joining a room twice: %v", e)
	}
	if e := c.Leave("b"); e != nil {
		t.Fatal(e)
	}
	if e := c.Leave("b"); e == nil || e.Code != protocol.CodeUnexpected {
		t.Fatalf("leaving twice: %v", e)
	}
	got := m.decoded(t)
	if _, ok := got[len(got)-1].(*protocol.Left); !ok {
		t.Fatalf("last frame %+v, want LEFT", got[len(got)-1])
	}
	mustJoin(t, c, &protocol.Join{Room: "c", Name: "x"}) // room for one more now
	if err := c.Send("b", "1", "x"); err == nil {
		t.Fatal("sent to a room after leaving it")
	}
}

func TestSendAfterShutdownIsRefused(t *testing.T) {
	h, mem := newHub(t, Config{})
	m := newMember()
	c := h.Connect(m)
	mustJoin(t, c, &protocol.Join{Room: "r", Name: "x"})
	c.Send("r", "before", "stored")
	if err := h.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Everything accepted before Shutdown was stored and acknowledged.
	if count[*protocol.Ack](m.decoded(t)) != 1 {
		t.Fatal("the message sent before shutdown was not acknowledged by the time Shutdown returned")
	}
	if err := c.Send("r", "after", "refused"); !errors.Is(err, ErrShuttingDown) {
		t.Fatalf("Send after Shutdown: %v", err)
	}
	if all, _ := mem.Since(context.Background(), "r", 0, 10); len(all) != 1 {
		t.Fatalf("%d messages stored", len(all))
	}
}

// failingLog fails every commit, like a full disk.
type failingLog struct{ *history.Batcher }

func (failingLog) Since(context.Context, string, uint64, int) ([]protocol.Msg, error) {
	return nil, nil
}
func (failingLog) Last(context.Context, string, int) ([]protocol.Msg, error) { return nil, nil }
func (failingLog) Before(context.Context, string, uint64, int) ([]protocol.Msg, error) {
	return nil, nil
}
func (failingLog) Bounds(context.Context, string) (uint64, uint64, error) { return 0, 0, nil }
func (failingLog) Epoch(context.Context, string) (uint64, error)          { return 1, nil }
func (l failingLog) Close() error                                         { l.Batcher.Close(); return nil }

func TestStorageFailureEndsTheSendersConnection(t *testing.T) {
	store := newStore(t, func(sink history.Sink) (history.Log, error) {
		return failingLog{history.NewBatcher(16, 16, func(b []*history.Request) []history.Result {
			rs := make([]history.Result, len(b))
			for i, r := range b {
				rs[i] = history.Result{Request: r, Err: errors.New("disk full")}
			}
			return rs
		}, sink)}, nil
	}, broker.LocalOptions{})
	h := newNode(t, Config{}, store)
	m := newMember()
	c := h.Connect(m)
	mustJoin(t, c, &protocol.Join{Room: "r", Name: "x"})
	c.Send("r", "1", "lost?")
	deadline := time.Now().Add(5 * time.Second)
	for {
		m.mu.Lock()
		failed := m.failed
		m.mu.Unlock()
		if failed != nil {
			if failed.Code != protocol.CodeUnavailable || !failed.Reconnect() {
				t.Fatalf("failure: %+v", failed)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the sender was not told")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if count[*protocol.Ack](m.decoded(t)) != 0 {
		t.Fatal("an unstored message was acknowledged")
	}
}
