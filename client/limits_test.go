package client_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"chat/client"
	"chat/internal/clienttest"
	"chat/internal/testserver"
	"chat/protocol"
)

func isTooLong(room string) func(client.Event) bool {
	return func(ev client.Event) bool {
		e, ok := ev.(client.RoomError)
		return ok && e.Room == room && e.Err != nil && e.Err.Code == protocol.CodeTooLong && !e.Err.Closing()
	}
}

// TestOverLongRoomIsRefusedLocally: a room name longer than WELCOME.MaxRoom
// used to go to the server, which answers too-long and closes the
// connection without a reconnect flag: the client stopped for good. It is
// refused locally now, with a RoomError, and the client stays connected.
// The second name is short as typed but its canonical form (NFKC) is not.
func TestOverLongRoomIsRefusedLocally(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"-max-room", "16"}})
	alice := joined(t, client.Config{Addr: srv.Addr, Name: "alice"})
	long := strings.Repeat("r", 17)
	if err := alice.C.Join(long); err != nil {
		t.Fatal(err)
	}
	alice.Wait(t, "too-long", isTooLong(long))
	nfkc := strings.Repeat("\u337b", 5) // 15 bytes typed; each becomes 平成, 6 bytes
	if protocol.CheckName(nfkc) != nil || len(protocol.Key(nfkc)) <= 16 {
		t.Fatalf("test name: %v, key %d bytes", protocol.CheckName(nfkc), len(protocol.Key(nfkc)))
	}
	if err := alice.C.Join(nfkc); err != nil {
		t.Fatal(err)
	}
	alice.Wait(t, "too-long (NFKC)", isTooLong(protocol.Key(nfkc)))
	if _, err := alice.C.Send(long, "x"); err == nil {
		t.Error("send to the refused room accepted")
	}
	if _, err := alice.C.Send("general", "still here"); err != nil {
		t.Fatal(err)
	}
	alice.WaitText(t, "still here")
	for _, ev := range alice.Events() {
		if sc, ok := ev.(client.StateChanged); ok && sc.State != client.Connected && sc.State != client.Connecting {
			t.Errorf("state %v (%v): the connection should have stayed", sc.State, sc.Err)
		}
	}
}

// TestOverLongRoomWantedOfflineIsRefusedOnConnect: a room joined before
// the first WELCOME is checked when the limits arrive, and the others are
// joined.
func TestOverLongRoomWantedOfflineIsRefusedOnConnect(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"-max-room", "16"}})
	tp := &tap{}
	tp.holdDials()
	r := clienttest.New(t, fast(client.Config{Addr: srv.Addr, Name: "alice", Dial: tp.dial}))
	c := r.C
	long := strings.Repeat("r", 17)
	c.Join(long)
	c.Join("general")
	tp.releaseDials()
	r.Wait(t, "too-long", isTooLong(long))
	r.WaitJoined(t, "general")
	if got := c.State(); got != client.Connected {
		t.Errorf("state %v", got)
	}
}

// TestOverLongNameIsRefusedLocally: a Config.Name longer than
// WELCOME.MaxName makes every JOIN fail with too-long, closing; the client
// refuses the joins itself instead, and stays up.
func TestOverLongNameIsRefusedLocally(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"-max-name", "8"}})
	r := clienttest.New(t, fast(client.Config{Addr: srv.Addr, Name: "alice-the-long"}))
	r.WaitState(t, client.Connected)
	r.C.Join("general")
	r.Wait(t, "too-long", isTooLong("general"))
	if got := r.C.State(); got != client.Connected {
		t.Errorf("state %v", got)
	}
}

// TestIdleTimeoutParksAndJoinReconnects: the server closes a connection
// that has been in no room for its idle timeout, with a closing timeout
// and no reconnect flag. The client used to take that as a terminal
// refusal and stop for good; it parks now, and Join dials again.
//
// The server in this tree keeps identified connections, which wait for
// notices, whatever their rooms; the Go client always identifies, so only
// a server without identities closes it for idleness: the fake plays one.
func TestIdleTimeoutParksAndJoinReconnects(t *testing.T) {
	f := startFake(t, func(f *fake) { f.welcome.Flags = 0 })
	f.setHandle(func(c *fakeConn, m protocol.Message) bool {
		switch m := m.(type) {
		case *protocol.Leave:
			c.write(&protocol.Left{Room: m.Room},
				&protocol.Error{Code: protocol.CodeTimeout, Flags: protocol.ErrorClosing, Text: "in no room for 200ms"})
			c.Close()
			return true
		case *protocol.Send:
			c.write(&protocol.Ack{Room: m.Room, ID: m.ID, Seq: 1, Time: 1},
				&protocol.Msg{Room: m.Room, Seq: 1, Time: 1, Sender: "alice", ID: m.ID, Text: m.Text})
			return true
		}
		return false
	})
	alice := joined(t, client.Config{Addr: f.addr(), Name: "alice"})
	if err := alice.C.Leave("general"); err != nil {
		t.Fatal(err)
	}
	var left bool
	ev := alice.Wait(t, "the idle connection closed", func(ev client.Event) bool {
		_, isLeft := ev.(client.Left)
		left = left || isLeft
		_, ok := ev.(client.StateChanged)
		return left && ok
	}).(client.StateChanged)
	var perr *protocol.Error
	if ev.State != client.Reconnecting || ev.RetryIn != 0 || !errors.As(ev.Err, &perr) || perr.Code != protocol.CodeTimeout {
		t.Fatalf("after the idle timeout: %+v", ev)
	}
	if err := alice.C.Join("general"); err != nil {
		t.Fatal(err)
	}
	joins := 0
	alice.Wait(t, "joined again", func(ev client.Event) bool {
		if _, ok := ev.(client.Joined); ok {
			joins++
		}
		return joins == 2
	})
	if _, err := alice.C.Send("general", "back"); err != nil {
		t.Fatal(err)
	}
	alice.WaitText(t, "back")
	if got := alice.C.State(); got != client.Connected {
		t.Errorf("state %v", got)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.conns) != 2 {
		t.Errorf("%d connections, want 2", len(f.conns))
	}
}

// TestBackoffGrowsWhenEveryJoinFails: a server that accepts the handshake
// but answers every JOIN with a closing error that asks for a reconnect
// (unavailable) used to be redialled at the minimum backoff forever, since
// every WELCOME reset it. The backoff resets only once the connection
// proves healthy now, so the waits grow.
func TestBackoffGrowsWhenEveryJoinFails(t *testing.T) {
	s := startScripted(t, func(n int, j *protocol.Join) []protocol.Message {
		return []protocol.Message{&protocol.Error{Code: protocol.CodeUnavailable,
			Flags: protocol.ErrorClosing | protocol.ErrorReconnect, Text: "storage failed"}}
	})
	cfg := client.Config{Addr: s.ln.Addr().String(), Name: "alice", MinBackoff: 10 * time.Millisecond, MaxBackoff: 80 * time.Millisecond}
	r := clienttest.New(t, cfg)
	r.C.Join("general")
	var waits []time.Duration
	r.Wait(t, "6 retries", func(ev client.Event) bool {
		if sc, ok := ev.(client.StateChanged); ok && sc.State == client.Reconnecting {
			waits = append(waits, sc.RetryIn)
		}
		return len(waits) == 6
	})
	for i, w := range waits {
		d := min(cfg.MaxBackoff, cfg.MinBackoff<<i)
		if w < d/2 || w > d {
			t.Errorf("wait %d is %v, want within [%v, %v] (all waits %v)", i, w, d/2, d, waits)
		}
	}
}

// TestIdleTimeoutCrossingAJoinReconnects: the idle timeout can cross a
// JOIN on the wire. The client wants a room then: it reconnects (with
// backoff) and joins, rather than parking or stopping.
func TestIdleTimeoutCrossingAJoinReconnects(t *testing.T) {
	s := startScripted(t, func(n int, j *protocol.Join) []protocol.Message {
		if n == 0 {
			return []protocol.Message{&protocol.Error{Code: protocol.CodeTimeout, Flags: protocol.ErrorClosing, Text: "in no room"}}
		}
		return []protocol.Message{&protocol.Joined{Room: "general", Name: "alice", Count: 1, Members: []string{"alice"}}}
	})
	alice := joined(t, client.Config{Addr: s.ln.Addr().String(), Name: "alice"})
	for _, ev := range alice.Events() {
		if sc, ok := ev.(client.StateChanged); ok && sc.State == client.Reconnecting && sc.RetryIn == 0 {
			t.Errorf("parked with a room wanted: %+v", sc)
		}
	}
}
