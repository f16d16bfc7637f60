package hub

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"chat/internal/testserver"
	"chat/protocol"
	"chat/server/internal/broker"
	"chat/server/internal/history"
	"chat/server/internal/moderation"
	"chat/server/internal/session"
)

// modDial connects to a hub's listener from the loopback address local
// and says HELLO.
func modDial(t *testing.T, addr, local string) *testserver.Raw {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	r := testserver.Wrap(t, c)
	r.Send(&protocol.Hello{Version: protocol.Version, Client: "raw-test"})
	testserver.Expect[*protocol.Welcome](r)
	return r
}

// modAwait reads until a frame of type T for which ok holds, skipping
// the others; a closing ERROR or the end of the connection fails.
func modAwait[T protocol.Message](t *testing.T, r *testserver.Raw, what string, ok func(T) bool) T {
	t.Helper()
	for {
		m, err := r.Read()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if v, is := m.(T); is && (ok == nil || ok(v)) {
			return v
		}
		if e, is := m.(*protocol.Error); is && e.Closing() {
			t.Fatalf("waiting for %s: %v", what, e)
		}
	}
}

func modJoin(t *testing.T, r *testserver.Raw, room, name, secret string) *protocol.Joined {
	t.Helper()
	r.Send(&protocol.Join{Room: room, Name: name, Secret: secret})
	return modAwait[*protocol.Joined](t, r, name+"'s JOINED", nil)
}

func modRefused(t *testing.T, r *testserver.Raw, what string, code protocol.ErrorCode) {
	t.Helper()
	if e := modAwait[*protocol.Error](t, r, what, nil); e.Code != code {
		t.Fatalf("%s: %v, want %v", what, e, code)
	}
}

// TestModerationReachesOtherNodes: two hubs on one store play two nodes
// sharing one moderation store. A kick, a ban by name and a ban by
// address made on node a cut the members connected to node b (the
// address's other names on node a too), a ban holds on b, and a deleted
// message's text leaves b's memory of recent messages.
func TestModerationReachesOtherNodes(t *testing.T) {
	store := newStore(t, func(sink history.Sink) (history.Log, error) { return history.NewMemory(sink), nil }, broker.LocalOptions{})
	// A delete is a change of the history (no Redact of the moderation
	// store): node b's cache takes it from the UPDATE.
	mod := moderation.NewMemory(nil, 0)
	cfg := Config{Owners: openOwners{}, Moderation: mod}
	a, b := newNode(t, cfg, store), newNode(t, cfg, store)
	scfg := session.Config{PingInterval: 10 * time.Second}
	addrA, _ := serve(t, a, scfg)
	addrB, _ := serve(t, b, scfg)

	alice := modDial(t, addrA, "127.0.0.1")
	if j := modJoin(t, alice, "general", "alice", "alice-key"); j.Modes != protocol.ModeOperator {
		t.Fatalf("alice's modes %b", j.Modes)
	}
	bob := modDial(t, addrB, "127.0.0.1")
	modJoin(t, bob, "general", "bob", "")
	watcher := modDial(t, addrB, "127.0.0.3")
	modJoin(t, watcher, "general", "watcher", "")

	// Kick across nodes; bob may come back.
	alice.Send(&protocol.Moderate{Room: "general", Action: protocol.ModKick, Target: "bob", Text: "out"})
	modAwait[*protocol.Moderated](t, alice, "MODERATED kick", nil)
	modAwait(t, watcher, "the kick's event on b", func(ev *protocol.ModEvent) bool { return ev.Action == protocol.ModKick && ev.Target == "bob" })
	modRefused(t, bob, "bob kicked on b", protocol.CodeKicked)
	modJoin(t, bob, "general", "bob", "")

	// Ban by name: cut on b, and b refuses the name afterwards.
	alice.Send(&protocol.Moderate{Room: "general", Action: protocol.ModBan, Target: "bob"})
	modAwait[*protocol.Moderated](t, alice, "MODERATED ban", nil)
	modRefused(t, bob, "bob banned on b", protocol.CodeBanned)
	bob.Send(&protocol.Join{Room: "general", Name: "bob"})
	modRefused(t, bob, "bob's join on b after the ban", protocol.CodeBanned)

	// Ban by address: the target is on b, from 127.0.0.2; another name
	// from that address is on a. Only b knows the address.
	troll := modDial(t, addrB, "127.0.0.2")
	modJoin(t, troll, "general", "troll", "")
	sock := modDial(t, addrA, "127.0.0.2")
	modJoin(t, sock, "general", "sock", "")
	alice.Send(&protocol.Moderate{Room: "general", Action: protocol.ModBanAddress, Target: "troll"})
	modAwait[*protocol.Moderated](t, alice, "MODERATED ban-address", nil)
	modRefused(t, troll, "the target on b", protocol.CodeBanned)
	modRefused(t, sock, "the address's other name on a", protocol.CodeBanned)
	again := modDial(t, addrA, "127.0.0.2")
	again.Send(&protocol.Join{Room: "general", Name: "fresh"})
	modRefused(t, again, "a join from the address on a", protocol.CodeBanned)

	// Delete: b's recent messages lose the text.
	alice.Send(&protocol.Send{Room: "general", ID: "1", Text: "oops, a secret"})
	modAwait[*protocol.Ack](t, alice, "ACK", nil)
	modAwait(t, watcher, "the message on b", func(m *protocol.Msg) bool { return m.Seq == 1 })
	alice.Send(&protocol.Moderate{Room: "general", Action: protocol.ModDelete, Seq: 1})
	modAwait[*protocol.Moderated](t, alice, "MODERATED delete", nil)
	modAwait(t, watcher, "the delete's event on b", func(ev *protocol.ModEvent) bool { return ev.Action == protocol.ModDelete && ev.Seq == 1 })
	late := modDial(t, addrB, "127.0.0.1")
	modJoin(t, late, "general", "late", "")
	if m := modAwait[*protocol.Msg](t, late, "the replay on b", nil); m.Seq != 1 || m.Text != "" || m.Sender != "alice" || m.Edited == 0 {
		t.Fatalf("b replays %+v, want message 1 without its text", m)
	}
	if u := modAwait[*protocol.Update](t, late, "the delete in b's replay", nil); u.Seq != 2 || u.Target != 1 || u.Actor != "alice" || u.State != nil {
		t.Fatalf("b replays the delete as %+v", u)
	}

	// Mute made on a holds on b.
	alice.Send(&protocol.Moderate{Room: "general", Action: protocol.ModMute, Target: "watcher"})
	modAwait[*protocol.Moderated](t, alice, "MODERATED mute", nil)
	modAwait(t, watcher, "the mute's event on b", func(ev *protocol.ModEvent) bool { return ev.Action == protocol.ModMute })
	watcher.Send(&protocol.Send{Room: "general", ID: "w", Text: "hello?"})
	modRefused(t, watcher, "a muted SEND on b", protocol.CodeMuted)

	entries, _ := mod.AuditLog(context.Background(), "general", 100)
	if len(entries) != 5 {
		t.Fatalf("%d audit entries, want 5 (kick, ban, ban-address, delete, mute): %+v", len(entries), entries)
	}
}

// TestOneCreatorBecomesOperator: names with keys joining a new room at
// once, through two nodes, make exactly one of them its operator, and
// JOINED says so to that one only; a name without a key never becomes one.
func TestOneCreatorBecomesOperator(t *testing.T) {
	store := newStore(t, func(sink history.Sink) (history.Log, error) { return history.NewMemory(sink), nil }, broker.LocalOptions{})
	mod := moderation.NewMemory(nil, 0)
	cfg := Config{Owners: openOwners{}, Moderation: mod}
	nodes := []*Hub{newNode(t, cfg, store), newNode(t, cfg, store)}
	anon := newMember()
	mustJoin(t, nodes[0].Connect(anon), &protocol.Join{Room: "new", Name: "anon"})
	if st, _, _ := mod.Load(context.Background(), "new"); len(st.Ops) != 0 {
		t.Fatalf("a name without a key became an operator: %v", st.Ops)
	}
	const n = 8
	members := make([]*fakeMember, n)
	errs := make(chan *protocol.Error, n)
	for i := range n {
		members[i] = newMember()
		c := nodes[i%2].Connect(members[i])
		go func() {
			errs <- c.Join(&protocol.Join{Room: "new", Name: string(rune('a' + i)), Secret: "k"})
		}()
	}
	for range n {
		if e := <-errs; e != nil {
			t.Fatal(e)
		}
	}
	st, _, _ := mod.Load(context.Background(), "new")
	if len(st.Ops) != 1 {
		t.Fatalf("operators after %d simultaneous creators: %v, want one", n, st.Ops)
	}
	ops := 0
	for i, m := range members {
		for _, f := range m.decoded(t) {
			if j, ok := f.(*protocol.Joined); ok && j.Modes&protocol.ModeOperator != 0 {
				ops++
				if j.Name != st.Ops[0] {
					t.Fatalf("member %d (%s) was told it is the operator; the store says %s", i, j.Name, st.Ops[0])
				}
			}
		}
	}
	if ops != 1 {
		t.Fatalf("%d JOINEDs say operator, want 1", ops)
	}
}

// staleLoad is a moderation store whose first Load of a room once armed
// returns what it read only when the test says so: a JOIN's admission
// then holds a state that a ban made meanwhile outdated.
type staleLoad struct {
	moderation.Store
	armed atomic.Bool
	held  chan struct{} // closed when the held Load has read
	hold  chan struct{} // closed by the test to let it return
}

func (s *staleLoad) Load(ctx context.Context, room string) (*moderation.State, uint64, error) {
	st, rev, err := s.Store.Load(ctx, room)
	if s.armed.CompareAndSwap(true, false) {
		close(s.held)
		<-s.hold
	}
	return st, rev, err
}

// TestBanWhileJoiningHolds: a ban stored while a JOIN on another node is
// being admitted (its check read the room's state before the ban, and
// the ban's note went by before the joiner was among the room's members
// there) still removes the joiner once it is in.
func TestBanWhileJoiningHolds(t *testing.T) {
	store := newStore(t, func(sink history.Sink) (history.Log, error) { return history.NewMemory(sink), nil }, broker.LocalOptions{})
	mod := moderation.NewMemory(nil, 0)
	a := newNode(t, Config{Owners: openOwners{}, Moderation: mod}, store)
	stale := &staleLoad{Store: mod, held: make(chan struct{}), hold: make(chan struct{})}
	b := newNode(t, Config{Owners: openOwners{}, Moderation: stale}, store)
	scfg := session.Config{PingInterval: 10 * time.Second}
	addrA, _ := serve(t, a, scfg)
	addrB, _ := serve(t, b, scfg)

	alice := modDial(t, addrA, "127.0.0.1")
	modJoin(t, alice, "general", "alice", "alice-key")
	// A member on b sees the ban's event: then b has walked the room's
	// members, and the held joiner was not among them.
	watcher := modDial(t, addrB, "127.0.0.3")
	modJoin(t, watcher, "general", "watcher", "")
	stale.armed.Store(true)
	mallory := modDial(t, addrB, "127.0.0.2")
	mallory.Send(&protocol.Join{Room: "general", Name: "mallory"})
	<-stale.held // b's admission has read the room: no ban yet
	alice.Send(&protocol.Moderate{Room: "general", Action: protocol.ModBan, Target: "mallory"})
	modAwait[*protocol.Moderated](t, alice, "MODERATED ban", nil)
	modAwait(t, watcher, "the ban's event on b", func(ev *protocol.ModEvent) bool { return ev.Action == protocol.ModBan })
	close(stale.hold)
	modAwait[*protocol.Joined](t, mallory, "mallory's JOINED (admitted before the ban)", nil)
	modRefused(t, mallory, "mallory removed by the ban made while joining", protocol.CodeBanned)
	mallory.Send(&protocol.Join{Room: "general", Name: "mallory"})
	modRefused(t, mallory, "mallory's next join", protocol.CodeBanned)
}
