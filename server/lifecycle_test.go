package main

// Tests of a membership's life and of history epochs, through the real
// server binary and raw protocol connections on 127.0.0.1.

import (
	"fmt"
	"testing"

	"chat/internal/testserver"
	"chat/protocol"
)

// fillRoom posts n messages to room as name and waits until all are
// stored.
func fillRoom(t *testing.T, addr, room, name string, n int) {
	t.Helper()
	poster, _ := testserver.JoinRoom(t, addr, room, name)
	defer poster.Conn.Close()
	var batch []byte
	for i := 1; i <= n; i++ {
		batch = append(batch, protocol.Encode(&protocol.Send{Room: room, ID: fmt.Sprint("id", i), Text: fmt.Sprint("message ", i)})...)
	}
	poster.Write(batch)
	acks := 0
	for acks < n {
		m, err := poster.Read()
		if err != nil {
			t.Fatalf("after %d acks: %v", acks, err)
		}
		switch m := m.(type) {
		case *protocol.Ack:
			acks++
		case *protocol.Error:
			t.Fatalf("posting: %v", m)
		}
	}
}

// TestNothingOfARoomFollowsLeft: a JOIN that resumes from 0 in a room
// with several pages of history, an immediate LEAVE and a quick re-JOIN:
// the first replay stops at LEFT, nothing of the room comes between LEFT
// and the second JOINED, and the second replay is whole and in order.
func TestNothingOfARoomFollowsLeft(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	const n = 3000 // several pages of the store and more than the ring
	fillRoom(t, srv.Addr, "big", "poster", n)

	c, _ := testserver.Handshake(t, srv.Addr)
	defer c.Conn.Close()
	join := protocol.Encode(&protocol.Join{Room: "big", Name: "reader", Resume: true, After: 0})
	var burst []byte
	burst = append(burst, join...)
	burst = append(burst, protocol.Encode(&protocol.Leave{Room: "big"})...)
	burst = append(burst, join...)
	c.Write(burst) // one write: the server reads LEAVE while the replay runs

	type phase int
	const (
		beforeJoin phase = iota
		firstReplay
		afterLeft
		secondReplay
	)
	at := beforeJoin
	var first, second []uint64
	for at != secondReplay || len(second) < n {
		m, err := c.Read()
		if err != nil {
			t.Fatalf("phase %d, %d + %d messages: %v", at, len(first), len(second), err)
		}
		switch m := m.(type) {
		case *protocol.Joined:
			switch at {
			case beforeJoin:
				at = firstReplay
			case afterLeft:
				at = secondReplay
			default:
				t.Fatalf("JOINED in phase %d", at)
			}
		case *protocol.Left:
			if at != firstReplay {
				t.Fatalf("LEFT in phase %d", at)
			}
			at = afterLeft
		case *protocol.Msg:
			switch at {
			case firstReplay:
				first = append(first, m.Seq)
			case secondReplay:
				second = append(second, m.Seq)
			default:
				t.Fatalf("MESSAGE seq %d in phase %d: after LEFT and before the next JOINED", m.Seq, at)
			}
		case *protocol.Error:
			t.Fatalf("error: %v", m)
		}
	}
	for i, seq := range first {
		if seq != uint64(i+1) {
			t.Fatalf("first replay: message %d has seq %d", i, seq)
		}
	}
	for i, seq := range second {
		if seq != uint64(i+1) {
			t.Fatalf("second replay: message %d has seq %d", i, seq)
		}
	}
	t.Logf("the first replay stopped after %d of %d messages", len(first), n)
	if len(first) == n {
		t.Log("the first replay finished before the LEAVE was read; the order checks still hold")
	}
}

// TestEpochChangesWhenHistoryIsReset: a server whose database was reset
// and has since grown past a client's last seen sequence number announces
// another epoch, and a resume from the old epoch gets the room's recent
// history from the start instead of silently skipping the first messages.
func TestEpochChangesWhenHistoryIsReset(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	fillRoom(t, srv.Addr, "r", "poster", 3)
	c, joined := testserver.JoinRoom(t, srv.Addr, "r", "reader")
	old := joined.Epoch
	if old == 0 || joined.Head != 3 {
		t.Fatalf("JOINED %+v: want head 3 and an epoch", joined)
	}
	c.Conn.Close()

	// Resuming in the same epoch skips what was seen.
	c, _ = testserver.Handshake(t, srv.Addr)
	c.Send(&protocol.Join{Room: "r", Name: "reader", Resume: true, After: 2, Epoch: old})
	if j := testserver.Expect[*protocol.Joined](c); j.Epoch != old || j.After != 2 {
		t.Fatalf("resume in the same epoch: %+v", j)
	}
	if m := c.Messages(1); m[0].Seq != 3 {
		t.Fatalf("resume in the same epoch replayed seq %d", m[0].Seq)
	}
	c.Conn.Close()

	srv.Reset()
	fillRoom(t, srv.Addr, "r", "poster", 10)

	c, _ = testserver.Handshake(t, srv.Addr)
	defer c.Conn.Close()
	c.Send(&protocol.Join{Room: "r", Name: "reader", Resume: true, After: 3, Epoch: old})
	j := testserver.Expect[*protocol.Joined](c)
	if j.Epoch == old || j.Epoch == 0 {
		t.Fatalf("epoch %d after the reset, was %d", j.Epoch, old)
	}
	if j.After != 0 || j.Head != 10 {
		t.Fatalf("JOINED after %d head %d: the resume from another epoch was honoured", j.After, j.Head)
	}
	for i, m := range c.Messages(10) {
		if m.Seq != uint64(i+1) {
			t.Fatalf("message %d has seq %d", i, m.Seq)
		}
	}
}
