package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"chat/client"
	"chat/internal/clienttest"
	"chat/internal/testserver"
	"chat/protocol"
)

// allHistory reads every message of room with a raw resume from 0: all
// the room has delivered (an ACK comes before its message goes out; see
// delivered). The changes among them (UPDATE, with seqs of their own)
// are read and left out.
func allHistory(t *testing.T, addr, room string) []*protocol.Msg {
	t.Helper()
	r, _ := testserver.Handshake(t, addr)
	r.Send(&protocol.Join{Room: room, Name: "auditor", Resume: true, After: 0})
	j := testserver.Expect[*protocol.Joined](r)
	var msgs []*protocol.Msg
	for seq := j.After; seq < j.Head; {
		m, err := r.Read()
		if err != nil {
			t.Fatalf("after %d of %d history entries: %v", seq, j.Head, err)
		}
		switch m := m.(type) {
		case *protocol.Msg:
			msgs, seq = append(msgs, m), m.Seq
		case *protocol.Update:
			seq = m.Seq
		case *protocol.Error:
			t.Fatalf("after %d of %d history entries: %v", seq, j.Head, m)
		}
	}
	r.Send(&protocol.Bye{})
	return msgs
}

// delivered waits until r has its own copy of its message id: then the
// room has delivered it, and a JOIN's head reaches it.
func delivered(t *testing.T, r *clienttest.Recorder, id string) {
	t.Helper()
	r.Wait(t, "the copy of "+id, func(ev client.Event) bool {
		m, ok := ev.(client.Message)
		return ok && m.Own && m.ID == id
	})
}

// checkStoredOnce checks that history holds each of ids exactly once, in
// the order given, and nothing else from sender.
func checkStoredOnce(t *testing.T, history []*protocol.Msg, sender string, ids []string) {
	t.Helper()
	var stored []string
	for i, m := range history {
		if m.Seq != uint64(i+1) {
			t.Fatalf("history has a gap or disorder at %d: seq %d", i, m.Seq)
		}
		if m.Sender == sender {
			stored = append(stored, m.ID)
		}
	}
	if len(stored) != len(ids) {
		t.Fatalf("%d messages from %s stored, want %d", len(stored), sender, len(ids))
	}
	for i := range ids {
		if stored[i] != ids[i] {
			t.Fatalf("stored message %d is not the %dth sent (order or duplicate)", i, i)
		}
	}
}

// TestSIGKILLLosesNoAcknowledgedMessage kills the server without warning
// while a client streams messages, restarts it on the same data, and
// checks that every message is stored exactly once, in order, and that
// the clients resume.
func TestSIGKILLLosesNoAcknowledgedMessage(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"-ping", "1s"}})
	sender := clienttest.New(t, client.Config{Addr: srv.Addr, Name: "streamer", MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	sender.C.Join("general")
	sender.WaitJoined(t, "general")
	watcher := clienttest.New(t, client.Config{Addr: srv.Addr, Name: "watcher", MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	watcher.C.Join("general")
	watcher.WaitJoined(t, "general")

	const total = 400
	var ids []string
	acked := func() map[string]bool {
		seen := map[string]bool{}
		for _, ev := range sender.Events() {
			if a, ok := ev.(client.Acked); ok {
				seen[a.ID] = true
			}
		}
		return seen
	}
	send := func(i int) {
		id, err := sender.C.Send("general", fmt.Sprint("msg ", i))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for i := range 150 {
		send(i)
		time.Sleep(time.Millisecond) // a steady stream, not one burst: the behaviour under test
	}
	n := 0
	sender.Wait(t, "some acks", func(ev client.Event) bool {
		if _, ok := ev.(client.Acked); ok {
			n++
		}
		return n >= 100
	})
	// A burst, and the kill right behind it: some of these are stored but
	// not yet acknowledged, some not even read by the server.
	for i := 150; i < 250; i++ {
		send(i)
	}
	srv.Kill()
	ackedBeforeCrash := acked()
	t.Logf("killed with %d of %d messages acknowledged", len(ackedBeforeCrash), len(ids))
	for i := 250; i < 300; i++ { // sent while the server is down
		send(i)
	}
	// The client has noticed the server is gone: the messages above wait
	// in its outbox for the reconnect.
	sender.WaitState(t, client.Reconnecting)
	srv.Restart()
	// Every message acknowledged before the crash survived it.
	stored := map[string]bool{}
	for _, m := range allHistory(t, srv.Addr, "general") {
		stored[m.ID] = true
	}
	for id := range ackedBeforeCrash {
		if !stored[id] {
			t.Fatal("an acknowledged message is missing after the crash")
		}
	}
	for i := 300; i < total; i++ {
		send(i)
		time.Sleep(time.Millisecond) // a steady stream across the reconnect
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sender.C.Drain(ctx); err != nil {
		t.Fatalf("outbox did not drain after the restart: %v\n%s", err, sender.Dump())
	}
	delivered(t, sender, ids[len(ids)-1])
	checkStoredOnce(t, allHistory(t, srv.Addr, "general"), "streamer", ids)

	// The watcher resumed and saw every message exactly once, in order.
	msgs := watcher.WaitMessages(t, total)
	for i, m := range msgs {
		if m.Seq != uint64(i+1) {
			t.Fatalf("watcher: message %d has seq %d", i, m.Seq)
		}
	}
	if len(msgs) != total {
		t.Fatalf("watcher saw %d messages, want %d", len(msgs), total)
	}
	if _, ok := watcher.WaitFor(0, func(ev client.Event) bool {
		sc, ok := ev.(client.StateChanged)
		return ok && sc.State == client.Reconnecting
	}); !ok {
		t.Error("watcher never noticed the crash")
	}
}

// TestGracefulShutdownTellsClientsAndLosesNothing: SIGTERM while a client
// streams; everything acknowledged is stored, the clients are told the
// server is restarting (reconnectable), the server exits 0 promptly, and
// after a restart the outbox drains.
func TestGracefulShutdownTellsClientsAndLosesNothing(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	sender := clienttest.New(t, client.Config{Addr: srv.Addr, Name: "streamer", MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	sender.C.Join("general")
	sender.WaitJoined(t, "general")
	raw, _ := testserver.JoinRoom(t, srv.Addr, "general", "listener")

	var ids []string
	stop := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			id, err := sender.C.Send("general", fmt.Sprint("msg ", i))
			if err != nil {
				return
			}
			ids = append(ids, id)
			time.Sleep(time.Millisecond) // a steady stream, so that shutdown lands inside it
		}
	}()
	// Stop once the stream is well under way: some messages acknowledged.
	acks := 0
	sender.Wait(t, "20 acks", func(ev client.Event) bool {
		if _, ok := ev.(client.Acked); ok {
			acks++
		}
		return acks >= 20
	})
	took, err := srv.Stop()
	close(stop)
	<-sent
	if err != nil {
		t.Fatalf("server exit: %v", err)
	}
	if took > 5*time.Second {
		t.Errorf("shutdown took %v", took)
	}
	// The raw listener got the notice as its last frame.
	var notice *protocol.Error
	for notice == nil {
		m, err := raw.Read()
		if err != nil {
			t.Fatalf("listener: %v before the restart notice", err)
		}
		notice, _ = m.(*protocol.Error)
	}
	if notice.Code != protocol.CodeServerRestarting || !notice.Reconnect() || !notice.Closing() {
		t.Fatalf("notice: %+v", notice)
	}
	sc := sender.Wait(t, "reconnecting after the notice", func(ev client.Event) bool {
		sc, ok := ev.(client.StateChanged)
		var perr *protocol.Error
		return ok && sc.State == client.Reconnecting && errors.As(sc.Err, &perr) && perr.Code == protocol.CodeServerRestarting
	})
	t.Logf("client saw: %v", sc.(client.StateChanged).Err)

	srv.Restart()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := sender.C.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	delivered(t, sender, ids[len(ids)-1])
	checkStoredOnce(t, allHistory(t, srv.Addr, "general"), "streamer", ids)
	if n := len(srv.LogRecords("stopped")); n != 0 {
		t.Errorf("restarted server logged stopped %d times", n)
	}
}

// TestStalledReaderIsCutOffWithoutDelayingOthers: one member stops reading
// while the room is busy. The others keep receiving promptly; the stalled
// one is disconnected with a reconnectable slow-consumer error, and a
// resume afterwards gives it everything it missed.
func TestStalledReaderIsCutOffWithoutDelayingOthers(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"-send-queue", "200"}})
	alice := join(t, srv, "alice")
	bob := join(t, srv, "bob")
	stalled, _ := testserver.JoinRoom(t, srv.Addr, "general", "stalled")

	// Send large messages in rounds until the server gives up on the
	// stalled member: first the kernel's socket buffers fill (megabytes on
	// loopback), then its 200-frame queue.
	text := strings.Repeat("x", protocol.DefaultMaxText-8)
	slowConsumer := func(rec map[string]any) bool {
		reason, _ := rec["reason"].(string)
		return strings.HasPrefix(reason, "slow-consumer")
	}
	leftEvent := func(ev client.Event) bool {
		p, ok := ev.(client.Presence)
		return ok && slices.Contains(p.Changes, protocol.PresenceChange{Kind: protocol.PresenceLeft, Name: "stalled"})
	}
	stalledCut := func() bool {
		_, a := alice.WaitFor(0, leftEvent)
		_, b := bob.WaitFor(0, leftEvent)
		return a || b
	}
	const round = 50 // alice gets two frames a message: far below the queue of 200
	var worst time.Duration
	n := 0
	for !stalledCut() {
		if n >= 10000 {
			t.Fatalf("stalled member still connected after %d messages of 4 KB", n)
		}
		roundStart := time.Now()
		for range round {
			if _, err := alice.C.Send("general", fmt.Sprintf("%06d%s", n, text)); err != nil {
				t.Fatal(err)
			}
			n++
		}
		// Bob, reading normally, gets every message promptly although the
		// stalled member is not reading at all.
		bob.WaitMessages(t, n)
		worst = max(worst, time.Since(roundStart))
		alice.WaitMessages(t, n)
	}
	t.Logf("stalled member cut off after %d messages; slowest round of %d to reach bob: %v (at %v)", n, round, worst, time.Now().Format("15:04:05.000"))
	if worst > 5*time.Second {
		t.Errorf("bob waited %v for a round of messages while another member stalled", worst)
	}
	for _, rec := range srv.LogRecords("connection closed") {
		if slowConsumer(rec) && rec["client"] != "raw-test" {
			t.Errorf("a member that kept reading was cut off too: %v", rec)
		}
	}

	// Now the stalled client reads: what the kernel buffered, then the error.
	var last uint64
	var cut *protocol.Error
	for cut == nil {
		m, err := stalled.Read()
		if err != nil {
			t.Fatalf("stalled client: %v after seq %d, before the slow-consumer error", err, last)
		}
		switch m := m.(type) {
		case *protocol.Msg:
			if m.Seq != last+1 {
				t.Fatalf("stalled client: seq %d after %d", m.Seq, last)
			}
			last = m.Seq
		case *protocol.Error:
			cut = m
		}
	}
	if cut.Code != protocol.CodeSlowConsumer || !cut.Reconnect() || !cut.Closing() {
		t.Fatalf("stalled client got %+v", cut)
	}
	stalled.ExpectClosed()
	if last >= uint64(n) {
		t.Fatalf("the stalled client was not behind (read %d of %d)", last, n)
	}

	// It resumes without loss.
	again, _ := testserver.Handshake(t, srv.Addr)
	again.Send(&protocol.Join{Room: "general", Name: "stalled", Resume: true, After: last})
	testserver.Expect[*protocol.Joined](again)
	rest := again.Messages(n - int(last))
	for i, m := range rest {
		if m.Seq != last+uint64(i)+1 {
			t.Fatalf("resumed seq %d at %d", m.Seq, i)
		}
	}
	// The operator can see it in the log.
	srv.WaitLog("connection closed", func(rec map[string]any) bool { return slowConsumer(rec) && rec["client"] == "raw-test" })
}
