package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"chat/protocol"
	"chat/server/internal/broker"
	"chat/server/internal/cluster/natstest"
	"chat/server/internal/history"
)

// A changed message lives in its record, beyond the stream's limits:
// when retention drops it, reads no longer return it, its change entry
// carries no state, the floor is above it, and the search index's sweep
// removes its record (its text) from chat-states.
func TestRetentionRemovesChangedMessages(t *testing.T) {
	nc := natstest.Start(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := dial(t, nc, 0, Options{Name: "node-a", Retention: &history.Retention{Messages: 4}})
	c.recordSweep = time.Nanosecond // every batch sweeps its rooms
	rec := newRecorder()
	n := node(t, c, rec, NodeOptions{ID: "node-a"})
	secret := fmt.Sprint("Mnbvcxy", time.Now().UnixNano())
	publish := func(id, text string) {
		t.Helper()
		if err := n.Publish(&broker.Publication{Room: "r", Sender: "alice", ID: id, Text: text}); err != nil {
			t.Fatal(err)
		}
		if err := n.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 4; i++ {
		text := fmt.Sprint("message ", i)
		if i == 1 {
			text = "my secret " + secret
		}
		publish(fmt.Sprint("m", i), text)
	}
	// Reactions to 1, 2 and 4 (entries 5, 6, 7) erase them from the
	// stream: it holds 3, 5, 6, 7, then 8 drops 3.
	for _, target := range []uint64{1, 2, 4} {
		if r := change(t, ctx, n, rec, "r", "bob", fmt.Sprint("x", target), protocol.ChangeReact, target, protocol.Reactions[0]); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	publish("m8", "message 8")
	if err := n.SearchSynced(ctx); err != nil {
		t.Fatal(err)
	}
	msgs, err := n.Since(ctx, "r", 0, 20)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, m := range msgs {
		seqs = append(seqs, m.Seq)
		if m.Seq <= 4 {
			t.Fatalf("Since returns message %d, which retention removed: %+v", m.Seq, m)
		}
		if m.Change != nil && m.Change.State != nil {
			t.Fatalf("entry %d carries the removed target's state: %+v", m.Seq, m.Change.State)
		}
	}
	if len(seqs) != 4 || seqs[0] != 5 || seqs[3] != 8 {
		t.Fatalf("Since = seqs %v, want 5..8", seqs)
	}
	if f, err := n.Floor(ctx, "r"); err != nil || f != 4 {
		t.Fatalf("Floor = %d, %v; want 4", f, err)
	}
	if r := change(t, ctx, n, rec, "r", "bob", "y1", protocol.ChangeReact, 1, protocol.Reactions[1]); !errors.Is(r.Err, history.ErrNoMessage) {
		t.Fatalf("a reaction to a removed message: %v", r.Err)
	}
	for _, target := range []uint64{1, 2, 4} {
		if _, err := c.states.Get(ctx, redactionKey("r", target)); !errors.Is(err, jetstream.ErrKeyNotFound) {
			t.Fatalf("record %d after the sweep: %v", target, err)
		}
	}
	info, err := c.statesStream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		sm, err := c.getMsgFrom(ctx, "KV_"+BucketStates, getReq{Seq: seq})
		if err == errNotFound {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(sm.Data, []byte(secret)) {
			t.Fatalf("chat-states message %d still holds the removed text", seq)
		}
	}
}

// The floor walks the records that exist, not a run it assumes: records
// at 1, 2 and 4 with 3 gone and the stream starting at 5 put the floor
// at 3, not 0.
func TestFloorWithScatteredRecords(t *testing.T) {
	nc := natstest.Start(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := storesDial(t, nc, "node-a")
	for _, s := range []uint64{1, 2, 4} {
		m := protocol.Msg{Room: "r", Seq: s, Time: uint64(time.Now().UnixMilli()), Sender: "alice", ID: fmt.Sprint("m", s), Text: "kept"}
		data, err := json.Marshal(record{Msg: stateFrame(m)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.states.Create(ctx, redactionKey("r", s), data); err != nil {
			t.Fatal(err)
		}
	}
	if f, err := c.recordFloor(ctx, "r", 4, 10); err != nil || f != 3 {
		t.Fatalf("recordFloor = %d, %v; want 3", f, err)
	}
	if f, err := c.recordFloor(ctx, "r", 2, 10); err != nil || f != 0 {
		t.Fatalf("recordFloor below a run from 1 = %d, %v; want 0", f, err)
	}
}
