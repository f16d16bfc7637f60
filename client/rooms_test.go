package client_test

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"chat/client"
	"chat/internal/clienttest"
	"chat/internal/testserver"
	"chat/protocol"
)

// holdLeft returns an onRead hook that holds every LEFT back until the
// returned release is called, so a test can act while a LEAVE is
// certainly in flight.
func holdLeft() (hook func(protocol.Message) error, held <-chan struct{}, release func()) {
	gate := make(chan struct{})
	seen := make(chan struct{}, 1)
	var once atomic.Bool
	hook = func(m protocol.Message) error {
		if _, ok := m.(*protocol.Left); ok {
			select {
			case seen <- struct{}{}:
			default:
			}
			<-gate
		}
		return nil
	}
	return hook, seen, func() {
		if once.CompareAndSwap(false, true) {
			close(gate)
		}
	}
}

// TestJoinWhileLeavingJoinsAgain: Join called while a Leave is on its way
// must not be lost. The old client sent no JOIN (the room looked joined),
// ignored the LEFT, and the next SEND was "unexpected": the server closed
// the connection and the client stopped for good.
func TestJoinWhileLeavingJoinsAgain(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	hook, held, release := holdLeft()
	defer release()
	tp := &tap{onRead: hook}
	alice := joined(t, client.Config{Addr: srv.Addr, Name: "alice", Dial: tp.dial})
	bob := joined(t, client.Config{Addr: srv.Addr, Name: "bob"})

	if err := alice.C.Leave("general"); err != nil {
		t.Fatal(err)
	}
	<-held // the LEFT is here, not yet seen by the client: the leave is in flight
	if err := alice.C.Join("general"); err != nil {
		t.Fatal(err)
	}
	id, err := alice.C.Send("general", "back again")
	if err != nil {
		t.Fatalf("send after re-joining a room being left: %v", err)
	}
	release()

	alice.Wait(t, "the ack", func(ev client.Event) bool { a, ok := ev.(client.Acked); return ok && a.ID == id })
	bob.WaitText(t, "back again")
	alice.WaitText(t, "back again")
	var joins int
	for _, ev := range alice.Events() {
		switch e := ev.(type) {
		case client.Joined:
			joins++
			if joins == 2 && !e.Resumed {
				t.Error("the second join did not resume")
			}
		case client.Left:
			t.Error("Left emitted, though the room was joined again")
		case client.StateChanged:
			if e.State != client.Connected && e.State != client.Connecting {
				t.Errorf("state %v (%v): the connection should have stayed", e.State, e.Err)
			}
		}
	}
	if joins != 2 {
		t.Errorf("%d Joined events, want 2", joins)
	}
	if got := alice.C.State(); got != client.Connected {
		t.Errorf("state %v", got)
	}
}

// TestLeaveCancelledByRejoinThenLeaveAgain: Leave, Join, Leave while the
// first LEAVE is in flight ends up left, with one Left.
func TestLeaveCancelledByRejoinThenLeaveAgain(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	hook, held, release := holdLeft()
	defer release()
	tp := &tap{onRead: hook}
	alice := joined(t, client.Config{Addr: srv.Addr, Name: "alice", Dial: tp.dial})
	alice.C.Leave("general")
	<-held
	alice.C.Join("general")
	if err := alice.C.Leave("general"); err != nil {
		t.Fatal(err)
	}
	release()
	alice.Wait(t, "left", func(ev client.Event) bool { _, ok := ev.(client.Left); return ok })
	if _, err := alice.C.Send("general", "x"); !errors.Is(err, client.ErrNotInRoom) {
		t.Errorf("send after leaving: %v", err)
	}
	// And the room can be joined again, from scratch: Left forgot it.
	alice.C.Join("general")
	var left bool
	alice.Wait(t, "joined again", func(ev client.Event) bool {
		_, isLeft := ev.(client.Left)
		left = left || isLeft
		_, isJoined := ev.(client.Joined)
		return left && isJoined
	})
}

// TestRoomBeingLeftIsForgottenWhenTheConnectionDrops: the connection drops
// before LEFT arrives. The server forgot the room with the connection, so
// the client must too, and say so with Left; the old client kept the room
// in its table forever, never emitting Left.
func TestRoomBeingLeftIsForgottenWhenTheConnectionDrops(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	var cut atomic.Bool
	tp := &tap{onRead: func(m protocol.Message) error {
		if _, ok := m.(*protocol.Left); ok && cut.CompareAndSwap(false, true) {
			return errors.New("test: the connection drops before LEFT")
		}
		return nil
	}}
	alice := joined(t, client.Config{Addr: srv.Addr, Name: "alice", Dial: tp.dial})
	alice.C.Join("other")
	alice.WaitJoined(t, "other")

	alice.C.Leave("general")
	alice.Wait(t, "left", func(ev client.Event) bool { l, ok := ev.(client.Left); return ok && l.Room == "general" })
	// Back on a new connection: "other" is re-joined, "general" is not.
	alice.Wait(t, "other re-joined", func(ev client.Event) bool { j, ok := ev.(client.Joined); return ok && j.Room == "other" && j.Resumed })
	if _, err := alice.C.Send("general", "x"); !errors.Is(err, client.ErrNotInRoom) {
		t.Errorf("send to the room left: %v", err)
	}
	for _, ev := range alice.Events() {
		if j, ok := ev.(client.Joined); ok && j.Room == "general" && j.Resumed {
			t.Error("the room being left was joined again after the reconnect")
		}
	}
	if err := alice.C.Leave("general"); !errors.Is(err, client.ErrNotInRoom) {
		t.Errorf("leave again: %v", err)
	}
}

// TestWebPortFailsAtOnce: pointed at the server's web port, the client
// used to wait out its 10 s handshake timeout and blame the server. The
// HTTP answer is recognised now, and the client stops with a sentence that
// says which port to use.
func TestWebPortFailsAtOnce(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	start := time.Now()
	r := clienttest.New(t, fast(client.Config{Addr: srv.HTTPAddr, Name: "alice"}))
	sc := r.WaitState(t, client.Closed)
	took := time.Since(start)
	if !errors.Is(sc.Err, client.ErrWebPort) || !strings.Contains(sc.Err.Error(), "web port") ||
		!strings.Contains(sc.Err.Error(), "7878") || !strings.Contains(sc.Err.Error(), "ws://"+srv.HTTPAddr+"/ws") {
		t.Fatalf("closed with %v", sc.Err)
	}
	if took > 3*time.Second {
		t.Errorf("took %v to notice; the handshake timeout is 10s", took)
	}
	t.Logf("after %v: %v", took.Round(time.Millisecond), sc.Err)
}

// TestLeaveWhileJoiningLeavesAfterJoined: Leave while the JOIN is on its
// way must leave the room on the server too. The old client forgot the
// room at once and ignored the JOINED, so the server kept it in the room;
// joining it again then sent a second JOIN, which is "unexpected", and
// the client stopped for good.
func TestLeaveWhileJoiningLeavesAfterJoined(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	gate, held := make(chan struct{}), make(chan struct{}, 1)
	var once atomic.Bool
	tp := &tap{onRead: func(m protocol.Message) error {
		if j, ok := m.(*protocol.Joined); ok && j.Room == "other" && once.CompareAndSwap(false, true) {
			held <- struct{}{}
			<-gate
		}
		return nil
	}}
	alice := joined(t, client.Config{Addr: srv.Addr, Name: "alice", Dial: tp.dial})
	alice.C.Join("other")
	<-held // JOINED is here, not yet seen: the join is in flight
	if err := alice.C.Leave("other"); err != nil {
		t.Fatal(err)
	}
	close(gate)
	alice.Wait(t, "left", func(ev client.Event) bool { l, ok := ev.(client.Left); return ok && l.Room == "other" })

	alice.C.Join("other")
	alice.WaitJoined(t, "other")
	if _, err := alice.C.Send("other", "still here"); err != nil {
		t.Fatal(err)
	}
	alice.WaitText(t, "still here")
	n := 0
	for _, ev := range alice.Events() {
		switch e := ev.(type) {
		case client.Joined:
			if e.Room == "other" {
				n++
			}
		case client.StateChanged:
			if e.State != client.Connected && e.State != client.Connecting {
				t.Errorf("state %v (%v): the connection should have stayed", e.State, e.Err)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d Joined events for the room, want 1 (the join that was left is not reported)", n)
	}
}
