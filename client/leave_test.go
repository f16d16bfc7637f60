package client_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"chat/client"
	"chat/internal/testserver"
	"chat/protocol"
)

func waitLeft(t *testing.T, r interface {
	Wait(testing.TB, string, func(client.Event) bool) client.Event
}, room string) client.Left {
	t.Helper()
	return r.Wait(t, "left "+room, func(ev client.Event) bool { l, ok := ev.(client.Left); return ok && l.Room == room }).(client.Left)
}

// TestSendWhileJoiningThenLeaveIsSent: a message sent while the room's
// JOIN is in flight, then Leave, used to be dropped silently: on JOINED
// the client sent LEAVE only. It sends the message first now, and the
// server acknowledges it before LEFT.
func TestSendWhileJoiningThenLeaveIsSent(t *testing.T) {
	srv := testserverStart(t)
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
	id, err := alice.C.Send("other", "said on the way out")
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.C.Leave("other"); err != nil {
		t.Fatal(err)
	}
	close(gate)
	left := waitLeft(t, alice, "other")
	if len(left.Unsent) != 0 {
		t.Errorf("Left.Unsent = %q", left.Unsent)
	}
	var acked bool
	for _, ev := range alice.Events() {
		if a, ok := ev.(client.Acked); ok && a.ID == id {
			acked = true
		}
		if _, ok := ev.(client.Left); ok && !acked {
			t.Fatal("Left before the message's Acked")
		}
	}
	if len(alice.C.Pending()) != 0 {
		t.Errorf("pending after the leave: %q", alice.C.Pending())
	}
}

// TestLeaveWithUnackedSendWhenTheConnectionDrops: Send, Leave, and the
// connection drops before the ACK: the room is gone with the connection,
// and so is the message. Left says so in Unsent; it used to drop it
// without a word.
func TestLeaveWithUnackedSendWhenTheConnectionDrops(t *testing.T) {
	srv := testserverStart(t)
	gate := make(chan struct{})
	var once atomic.Bool
	tp := &tap{onRead: func(m protocol.Message) error {
		if _, ok := m.(*protocol.Ack); ok && once.CompareAndSwap(false, true) {
			<-gate
			return errors.New("test: the connection drops before the ACK")
		}
		return nil
	}}
	alice := joined(t, client.Config{Addr: srv.Addr, Name: "alice", Dial: tp.dial})
	id, err := alice.C.Send("general", "lost")
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.C.Leave("general"); err != nil {
		t.Fatal(err)
	}
	close(gate) // the ACK is held until Leave has been made
	left := waitLeft(t, alice, "general")
	if !slices.Equal(left.Unsent, []string{id}) {
		t.Errorf("Left.Unsent = %q, want the message's id", left.Unsent)
	}
}

// TestLeaveWhileOfflineReportsUnsent: Send then Leave while offline: the
// message will never go; Left lists it.
func TestLeaveWhileOfflineReportsUnsent(t *testing.T) {
	srv := testserverStart(t)
	tp := &tap{}
	alice := joined(t, client.Config{Addr: srv.Addr, Name: "alice", Dial: tp.dial})
	tp.holdDials()
	defer tp.releaseDials()
	tp.last().Conn.Close()
	alice.WaitState(t, client.Reconnecting)
	id, err := alice.C.Send("general", "never")
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.C.Leave("general"); err != nil {
		t.Fatal(err)
	}
	left := waitLeft(t, alice, "general")
	if !slices.Equal(left.Unsent, []string{id}) {
		t.Errorf("Left.Unsent = %q, want the message's id", left.Unsent)
	}
	if len(alice.C.Pending()) != 0 {
		t.Errorf("pending after the leave: %q", alice.C.Pending())
	}
}

func testserverStart(t *testing.T) *testserver.Server {
	return testserver.Start(t, testserver.Options{})
}

// TestBigOfflineOutboxDrainsAgainstASmallServerQueue: 3000 messages of
// 2000 bytes queued offline, for a server that announces no rate and cuts
// off a client when 512 frames are queued for it. The old client pushed
// the whole outbox at once and blocked its loop on the writer, reading
// nothing meanwhile: the server's queue of ACKs and echoes overflowed,
// it was cut off as a slow consumer, and the same happened on every
// reconnect. With at most maxInflight SENDs unacknowledged it drains.
func TestBigOfflineOutboxDrainsAgainstASmallServerQueue(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"-send-queue", "512"}})
	tp := &tap{}
	alice := joined(t, client.Config{Addr: srv.Addr, Name: "alice", Dial: tp.dial})
	tp.holdDials()
	tp.last().Conn.Close()
	alice.WaitState(t, client.Reconnecting)
	text := strings.Repeat("x", 2000)
	for i := range 3000 {
		if _, err := alice.C.Send("general", fmt.Sprint(i, text)[:2000]); err != nil {
			t.Fatal(err)
		}
	}
	tp.releaseDials()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := alice.C.Drain(ctx); err != nil {
		t.Fatalf("drain: %v; %d dials", err, tp.dials.Load())
	}
	for _, ev := range alice.Events() {
		if sc, ok := ev.(client.StateChanged); ok && sc.Err != nil {
			var perr *protocol.Error
			if errors.As(sc.Err, &perr) && perr.Code == protocol.CodeSlowConsumer {
				t.Errorf("cut off as a slow consumer: %v", sc.Err)
			}
		}
	}
}
