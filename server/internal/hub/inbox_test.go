package hub

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"chat/protocol"
	"chat/server/internal/broker"
	"chat/server/internal/history"
	"chat/server/internal/inbox"
)

// openOwners lets every secret use every name, and says every name is
// claimed once claimedGate (if set) is closed.
type openOwners struct {
	claimedGate chan struct{}
	started     chan struct{} // gets a value when a Claimed begins, if there is room
}

func (openOwners) Claim(context.Context, string, string) (bool, error) { return true, nil }

func (o openOwners) Claimed(_ context.Context, keys []string) ([]string, error) {
	select {
	case o.started <- struct{}{}:
	default: // nobody is waiting for this one
	}
	if o.claimedGate != nil {
		<-o.claimedGate
	}
	return keys, nil
}

func notices(ms []protocol.Message) []*protocol.Notice {
	var out []*protocol.Notice
	for _, m := range ms {
		if n, ok := m.(*protocol.Notice); ok {
			out = append(out, n)
		}
	}
	return out
}

// TestNoticesAndMarkersReachOtherNodes: two hubs on one store play two
// nodes. A DM stored through one node reaches the receiver identified on
// the other; a READ on one node reaches the reader's device in the room
// on the other, and nobody else.
func TestNoticesAndMarkersReachOtherNodes(t *testing.T) {
	store := newStore(t, func(sink history.Sink) (history.Log, error) { return history.NewMemory(sink), nil }, broker.LocalOptions{})
	marks := inbox.NewMemory(nil, 0)
	cfg := Config{Inbox: marks, Owners: openOwners{}}
	a, b := newNode(t, cfg, store), newNode(t, cfg, store)

	bob := newMember()
	bc := b.Connect(bob)
	if e := bc.Identify(&protocol.Identify{Name: "Bob", Secret: "k"}); e != nil {
		t.Fatal(e)
	}
	bob.waitFor(t, "IDENTIFIED", func(ms []protocol.Message) bool { return len(ms) == 1 })

	alice := newMember()
	ac := a.Connect(alice)
	mustJoin(t, ac, &protocol.Join{Room: "@bob@ALICE", Name: "alice", Secret: "k"})
	aliceElsewhere := newMember()
	aec := b.Connect(aliceElsewhere)
	mustJoin(t, aec, &protocol.Join{Room: "@alice@bob", Name: "Alice", Secret: "k"})
	if e := aec.Read("@alice@bob", 0); e != nil { // an inbox request: MARKERs may come (spec §9)
		t.Fatal(e)
	}
	if err := ac.Send("@alice@bob", "1", "hello bob"); err != nil {
		t.Fatal(err)
	}
	got := bob.waitFor(t, "the DM's notice", func(ms []protocol.Message) bool { return len(notices(ms)) == 1 })
	if n := notices(got)[0]; n.Kind != protocol.NoticeDirect || n.Msg.Room != "@alice@bob" || n.Msg.Text != "hello bob" {
		t.Fatalf("bob's notice %+v", n)
	}
	aliceElsewhere.waitFor(t, "the DM", func(ms []protocol.Message) bool { return len(msgs(ms)) == 1 })
	// Her own copy too: READ is capped at what her node has delivered.
	alice.waitFor(t, "her own copy", func(ms []protocol.Message) bool { return len(msgs(ms)) == 1 })

	if e := ac.Read("@ALICE@bob", 1); e != nil {
		t.Fatal(e)
	}
	for who, m := range map[string]*fakeMember{"alice": alice, "alice on the other node": aliceElsewhere} {
		got := m.waitFor(t, who+"'s MARKER", func(ms []protocol.Message) bool { return count[*protocol.Marker](ms) == 1 })
		for _, f := range got {
			if mk, ok := f.(*protocol.Marker); ok && (mk.Room != "@alice@bob" || mk.Seq != 1) {
				t.Fatalf("%s got %+v", who, mk)
			}
		}
	}
	// Bob is identified, but the marker is alice's. The next notice he
	// gets is the next DM: the marker would have come before it.
	if err := ac.Send("@alice@bob", "2", "again"); err != nil {
		t.Fatal(err)
	}
	got = bob.waitFor(t, "the second notice", func(ms []protocol.Message) bool { return len(notices(ms)) == 2 })
	if n := count[*protocol.Marker](got); n != 0 {
		t.Fatalf("bob got %d of alice's markers", n)
	}
	if read, _, _ := marks.State(context.Background(), "alice", "@alice@bob"); read != 1 {
		t.Fatalf("stored marker %d", read)
	}
}

// logRecords is a log handler that keeps the messages of its records.
type logRecords struct {
	mu   sync.Mutex
	msgs []string
}

func (h *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecords) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.msgs = append(h.msgs, r.Message)
	h.mu.Unlock()
	return nil
}
func (h *logRecords) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecords) WithGroup(string) slog.Handler      { return h }

func (h *logRecords) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.msgs {
		if m == msg {
			n++
		}
	}
	return n
}

// TestStuckMentionLookupsNeverDelayMessages: while the name store hangs
// (the mention worker waits in it), messages that mention people are
// still stored and fanned out at once; mentions beyond the worker's queue
// are dropped and logged, the others noticed once the store answers.
func TestStuckMentionLookupsNeverDelayMessages(t *testing.T) {
	owners := openOwners{claimedGate: make(chan struct{}), started: make(chan struct{}, 1)}
	logs := &logRecords{}
	h, _ := newHub(t, Config{Owners: owners, MentionQueue: 2, Logger: slog.New(logs)})
	carol := newMember()
	if e := h.Connect(carol).Identify(&protocol.Identify{Name: "carol", Secret: "k"}); e != nil {
		t.Fatal(e)
	}
	m := newMember()
	c := h.Connect(m)
	mustJoin(t, c, &protocol.Join{Room: "r", Name: "bob"})
	if err := c.Send("r", "0", "@carol first"); err != nil {
		t.Fatal(err)
	}
	<-owners.started // the worker is stuck in the store
	const n = 10
	for i := 1; i <= n; i++ {
		if err := c.Send("r", fmt.Sprint(i), fmt.Sprint("@carol ", i)); err != nil {
			t.Fatal(err)
		}
	}
	m.waitFor(t, "every message", func(ms []protocol.Message) bool { return len(msgs(ms)) == n+1 })
	// The first is in the worker, two wait in its queue: the rest were
	// dropped, each logged.
	if dropped := logs.count("mentions waiting to be stored are over the limit: a message's mentions dropped"); dropped != n-2 {
		t.Fatalf("%d dropped, want %d", dropped, n-2)
	}
	close(owners.claimedGate)
	got := carol.waitFor(t, "three notices", func(ms []protocol.Message) bool { return len(notices(ms)) == 3 })
	for i, x := range notices(got) {
		if x.Kind != protocol.NoticeMention || x.Msg.Seq != uint64(i+1) {
			t.Fatalf("notice %d: %+v", i, x)
		}
	}
}

// TestIdentifiedComesBeforeNotices: notices for a name that arrive while
// its IDENTIFY reads the direct-message rooms wait for IDENTIFIED.
func TestIdentifiedComesBeforeNotices(t *testing.T) {
	gate := &gatedInbox{Store: inbox.NewMemory(nil, 0), release: make(chan struct{})}
	h, _ := newHub(t, Config{Inbox: gate, Owners: openOwners{}})
	// Another device of bob, identified already.
	phone := newMember()
	if e := h.Connect(phone).Identify(&protocol.Identify{Name: "bob", Secret: "k"}); e != nil {
		t.Fatal(e)
	}
	gate.entered = make(chan struct{})
	bob := newMember()
	bc := h.Connect(bob)
	done := make(chan *protocol.Error)
	go func() { done <- bc.Identify(&protocol.Identify{Name: "bob", Secret: "k"}) }()
	<-gate.entered
	alice := h.Connect(newMember())
	mustJoin(t, alice, &protocol.Join{Room: "@alice@bob", Name: "alice", Secret: "k"})
	for i, text := range []string{"early", "later"} {
		if err := alice.Send("@alice@bob", fmt.Sprint(i), text); err != nil {
			t.Fatal(err)
		}
	}
	// Notes are delivered one after the other: once the phone has the
	// second, the first has been given to every device.
	phone.waitFor(t, "both notices", func(ms []protocol.Message) bool { return len(notices(ms)) == 2 })
	close(gate.release)
	if e := <-done; e != nil {
		t.Fatal(e)
	}
	got := bob.waitFor(t, "IDENTIFIED and the notices", func(ms []protocol.Message) bool { return len(ms) == 3 })
	if _, ok := got[0].(*protocol.Identified); !ok {
		t.Fatalf("first frame %T", got[0])
	}
	if n := notices(got); len(n) != 2 || n[0].Msg.Text != "early" || n[1].Msg.Text != "later" {
		t.Fatalf("then %+v", got[1:])
	}
}

// gatedInbox holds Direct, once entered is set, until release is closed.
type gatedInbox struct {
	inbox.Store
	entered, release chan struct{}
}

func (g *gatedInbox) Direct(ctx context.Context, name string, limit int) ([]protocol.RoomState, error) {
	if g.entered != nil {
		close(g.entered)
		<-g.release
	}
	return g.Store.Direct(ctx, name, limit)
}

// TestCloseDuringIdentifyLeavesNoIdentity: a connection that ends while
// its IDENTIFY registers it (a write failed, the server shuts down) is
// not left in the hub's table of identified connections, where notes
// would look it up forever.
func TestCloseDuringIdentifyLeavesNoIdentity(t *testing.T) {
	h, _ := newHub(t, Config{Owners: openOwners{}})
	testHookIdentifying = func(c *Conn) { c.Close() }
	defer func() { testHookIdentifying = nil }()
	c := h.Connect(newMember())
	if e := c.Identify(&protocol.Identify{Name: "bob", Secret: "k"}); e != nil {
		t.Fatal(e)
	}
	h.idMu.Lock()
	defer h.idMu.Unlock()
	if len(h.identified) != 0 {
		t.Fatalf("identified connections left after Close: %v", h.identified)
	}
}

// afterAdvance runs after, if set, once a marker is stored.
type afterAdvance struct {
	inbox.Store
	after func()
}

func (x *afterAdvance) Advance(ctx context.Context, name, room string, seq uint64) (bool, error) {
	moved, err := x.Store.Advance(ctx, name, room, seq)
	if x.after != nil {
		x.after()
	}
	return moved, err
}

// TestMarkerStoredByAClosingConnectionStillReachesTheDevices: a READ
// whose connection ends right after the marker is stored still tells the
// name's other devices, or they would show the room unread against the
// stored marker.
func TestMarkerStoredByAClosingConnectionStillReachesTheDevices(t *testing.T) {
	store := &afterAdvance{Store: inbox.NewMemory(nil, 0)}
	h, _ := newHub(t, Config{Inbox: store, Owners: openOwners{}})
	phone := newMember()
	if e := h.Connect(phone).Identify(&protocol.Identify{Name: "bob", Secret: "k"}); e != nil {
		t.Fatal(e)
	}
	laptop := newMember()
	lc := h.Connect(laptop)
	mustJoin(t, lc, &protocol.Join{Room: "r", Name: "bob", Secret: "k"})
	if err := lc.Send("r", "1", "hello"); err != nil {
		t.Fatal(err)
	}
	laptop.waitFor(t, "the message", func(ms []protocol.Message) bool { return len(msgs(ms)) == 1 })
	store.after = lc.Close
	if e := lc.Read("r", 1); e != nil {
		t.Fatal(e)
	}
	if read, _, _ := store.State(context.Background(), "bob", "r"); read != 1 {
		t.Fatalf("stored marker %d", read)
	}
	got := phone.waitFor(t, "the MARKER", func(ms []protocol.Message) bool { return count[*protocol.Marker](ms) == 1 })
	for _, m := range got {
		if mk, ok := m.(*protocol.Marker); ok && (mk.Room != "r" || mk.Seq != 1) {
			t.Fatalf("phone got %+v", mk)
		}
	}
}

// TestWithoutNameOwnershipNobodyIsADeviceOfAName: a hub that keeps no
// name owners cannot tell a name's devices from anyone using the name,
// so it refuses IDENTIFY and JOINs of direct-message rooms: otherwise
// anyone with any secret would get a name's direct messages.
func TestWithoutNameOwnershipNobodyIsADeviceOfAName(t *testing.T) {
	h, _ := newHub(t, Config{})
	alice := h.Connect(newMember())
	if e := alice.Identify(&protocol.Identify{Name: "alice", Secret: "anything"}); e == nil || e.Code != protocol.CodeForbidden {
		t.Fatalf("IDENTIFY without owners: %v", e)
	}
	if alice.Identified() {
		t.Fatal("identified")
	}
	if e := alice.Join(&protocol.Join{Room: "@alice@bob", Name: "alice", Secret: "anything"}); e == nil || e.Code != protocol.CodeForbidden || e.Room != "@alice@bob" {
		t.Fatalf("DM JOIN without owners: %v", e)
	}
	mustJoin(t, alice, &protocol.Join{Room: "general", Name: "alice", Secret: "anything"})
}
