package main

// History retention through the real server binary and raw protocol
// connections on 127.0.0.1: old messages are removed, resuming clients
// are told where history now starts, newcomers and scrollback see only
// what is kept.

import (
	"fmt"
	"slices"
	"testing"

	"chat/internal/testserver"
	"chat/protocol"
)

// retentionLog is the server's log line after a retention pass that
// removed messages; "messages" counts them.
const retentionLog = "history retention removed old messages"

// waitRemoved waits until the server's retention passes have removed n
// messages in all, as its log says.
func waitRemoved(t *testing.T, srv *testserver.Server, n int) {
	t.Helper()
	srv.WaitLog(retentionLog, func(map[string]any) bool {
		total := 0
		for _, rec := range srv.LogRecords(retentionLog) {
			v, _ := rec["messages"].(float64)
			total += int(v)
		}
		if total > n {
			t.Fatalf("retention removed %d messages, want %d", total, n)
		}
		return total == n
	})
}

// joinResume joins room as name, resuming after a sequence number of the
// history with epoch.
func joinResume(t *testing.T, addr, room, name string, after, epoch uint64) (*testserver.Raw, *protocol.Joined) {
	t.Helper()
	r, _ := testserver.Handshake(t, addr)
	r.Send(&protocol.Join{Room: room, Name: name, Resume: true, After: after, Epoch: epoch})
	return r, testserver.Expect[*protocol.Joined](r)
}

// msgSeqs returns the sequence numbers of the MESSAGE frames among frames.
func msgSeqs(frames []protocol.Message) []uint64 {
	out := []uint64{}
	for _, m := range frames {
		if m, ok := m.(*protocol.Msg); ok {
			out = append(out, m.Seq)
		}
	}
	return out
}

func seqRange(from, to uint64) []uint64 {
	out := []uint64{}
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// TestRetentionByCountRemovesOldMessagesAndResumingClientsAreTold: a room
// keeps its 5 newest of 15 messages. Alice, who saw the first 3, resumes
// and is told that history now starts after 10 (JOINED after 10, not 3)
// and gets 11..15; a newcomer gets 11..15; scrollback stops at 11 with
// PAGE first; the next message is 16.
func TestRetentionByCountRemovesOldMessagesAndResumingClientsAreTold(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"-retain-messages", "5"}})
	srv.WaitLog("history retention", func(rec map[string]any) bool { return rec["messages_per_room"] == float64(5) })

	alice, joined := joinAs(t, srv.Addr, "r", "alice", "")
	for i := 1; i <= 3; i++ {
		if ack := post(t, alice, "r", fmt.Sprint("a", i), fmt.Sprint("alice ", i)); ack.Seq != uint64(i) {
			t.Fatalf("ack %d has seq %d", i, ack.Seq)
		}
	}
	epoch := joined.Epoch
	alice.Conn.Close()
	fillRoom(t, srv.Addr, "r", "poster", 12) // seqs 4..15
	waitRemoved(t, srv, 10)

	alice, joined = joinResume(t, srv.Addr, "r", "alice", 3, epoch)
	if joined.After != 10 || joined.Head != 15 || joined.Epoch != epoch {
		t.Fatalf("resumed JOINED: after %d, head %d, epoch %d; want after 10 (raised from 3), head 15, epoch %d",
			joined.After, joined.Head, joined.Epoch, epoch)
	}
	if got := msgSeqs(settle(t, alice)); !slices.Equal(got, seqRange(11, 15)) {
		t.Fatalf("resumed history %v, want 11..15", got)
	}

	bob, joined := joinAs(t, srv.Addr, "r", "bob", "")
	if joined.After != 10 || joined.Head != 15 {
		t.Fatalf("newcomer's JOINED: after %d, head %d; want 10, 15", joined.After, joined.Head)
	}
	if got := msgSeqs(settle(t, bob)); !slices.Equal(got, seqRange(11, 15)) {
		t.Fatalf("newcomer's history %v, want 11..15", got)
	}
	for _, c := range []struct {
		before, limit uint64
		want          []uint64
		first         bool
	}{
		{0, 100, seqRange(11, 15), true},
		{14, 2, seqRange(12, 13), false},
		{13, 2, seqRange(11, 12), true}, // reaches the oldest kept message
		{11, 10, nil, true},
	} {
		bob.Send(&protocol.History{Room: "r", Before: c.before, Limit: c.limit})
		p := until[*protocol.Page](t, bob, nil)
		got := []uint64{}
		for _, m := range p.Messages {
			got = append(got, m.Seq)
		}
		if !slices.Equal(got, append([]uint64{}, c.want...)) || p.First != c.first {
			t.Fatalf("HISTORY before %d limit %d: %v first %v; want %v first %v", c.before, c.limit, got, p.First, c.want, c.first)
		}
	}
	if ack := post(t, bob, "r", "b1", "after retention"); ack.Seq != 16 {
		t.Fatalf("next message got seq %d, want 16", ack.Seq)
	}
}

// TestRetentionByAgeEmptiesARoomAndKeepsItsNumbers: every message of a
// room expires (-retain-age 1s). A client resuming from the first is
// told history starts after 3 and gets nothing; a newcomer gets nothing;
// HISTORY says first with nothing; after a restart the next message is 4.
func TestRetentionByAgeEmptiesARoomAndKeepsItsNumbers(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"-retain-age", "1s"}})
	alice, joined := joinAs(t, srv.Addr, "old", "alice", "")
	for i := 1; i <= 3; i++ {
		post(t, alice, "old", fmt.Sprint("a", i), fmt.Sprint("alice ", i))
	}
	epoch := joined.Epoch
	alice.Conn.Close()
	waitRemoved(t, srv, 3)

	alice, joined = joinResume(t, srv.Addr, "old", "alice", 1, epoch)
	if joined.After != 3 || joined.Head != 3 || joined.Epoch != epoch {
		t.Fatalf("resumed JOINED: after %d, head %d, epoch %d; want 3, 3, %d", joined.After, joined.Head, joined.Epoch, epoch)
	}
	if got := msgSeqs(settle(t, alice)); len(got) != 0 {
		t.Fatalf("resumed history %v, want none", got)
	}
	alice.Conn.Close()

	srv.Restart() // the room's head outlives its messages on disk too
	bob, joined := joinAs(t, srv.Addr, "old", "bob", "")
	if joined.After != 3 || joined.Head != 3 || joined.Epoch != epoch {
		t.Fatalf("newcomer's JOINED: after %d, head %d, epoch %d; want 3, 3, %d", joined.After, joined.Head, joined.Epoch, epoch)
	}
	bob.Send(&protocol.History{Room: "old"})
	if p := until[*protocol.Page](t, bob, nil); !p.First || len(p.Messages) != 0 {
		t.Fatalf("HISTORY of an expired room: first %v, %d messages; want first, none", p.First, len(p.Messages))
	}
	if ack := post(t, bob, "old", "b1", "new"); ack.Seq != 4 {
		t.Fatalf("next message got seq %d, want 4 (numbers are not reused)", ack.Seq)
	}
}

// TestClusterRetentionByCount: the same through two chat servers on NATS
// with -retain-messages 5 (the stream's limit per room, which JetStream
// applies as it stores): alice posts on one node and resumes on it after
// 12 more messages came through the other; she is told history starts
// after 10; a newcomer on the other node and its scrollback see 11..15.
func TestClusterRetentionByCount(t *testing.T) {
	c := startCluster(t, 1, 2, "-retain-messages", "5")
	alice, joined := joinAs(t, c.nodes[0].Addr, "r", "alice", "")
	for i := 1; i <= 3; i++ {
		post(t, alice, "r", fmt.Sprint("a", i), fmt.Sprint("alice ", i))
	}
	epoch := joined.Epoch
	alice.Conn.Close()
	fillRoom(t, c.nodes[1].Addr, "r", "poster", 12) // seqs 4..15

	alice, joined = joinResume(t, c.nodes[0].Addr, "r", "alice", 3, epoch)
	if joined.After != 10 || joined.Head != 15 || joined.Epoch != epoch {
		t.Fatalf("resumed JOINED: after %d, head %d, epoch %d; want after 10 (raised from 3), head 15, epoch %d",
			joined.After, joined.Head, joined.Epoch, epoch)
	}
	if got := msgSeqs(settle(t, alice)); !slices.Equal(got, seqRange(11, 15)) {
		t.Fatalf("resumed history %v, want 11..15", got)
	}
	bob, joined := joinAs(t, c.nodes[1].Addr, "r", "bob", "")
	if joined.After != 10 || joined.Head != 15 {
		t.Fatalf("newcomer's JOINED: after %d, head %d; want 10, 15", joined.After, joined.Head)
	}
	if got := msgSeqs(settle(t, bob)); !slices.Equal(got, seqRange(11, 15)) {
		t.Fatalf("newcomer's history %v, want 11..15", got)
	}
	bob.Send(&protocol.History{Room: "r", Before: 13, Limit: 2})
	if p := until[*protocol.Page](t, bob, nil); !p.First || len(p.Messages) != 2 || p.Messages[0].Seq != 11 {
		t.Fatalf("HISTORY before 13: first %v, %d messages; want first, 11 and 12", p.First, len(p.Messages))
	}
	if ack := post(t, bob, "r", "b1", "after retention"); ack.Seq != 16 {
		t.Fatalf("next message got seq %d, want 16", ack.Seq)
	}
}
