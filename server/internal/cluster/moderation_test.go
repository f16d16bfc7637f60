package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"chat/protocol"
	"chat/server/internal/broker"
	"chat/server/internal/cluster/natstest"
	"chat/server/internal/history"
	"chat/server/internal/moderation"
	"chat/server/internal/moderation/moderationtest"
	"chat/server/internal/sqlite"
)

// nodeLog is a history.Log on a chat node: messages are published and
// read back through the broker's own paths, so the suite's redactions
// are seen by the reads the hub uses.
type nodeLog struct {
	c *Conn
	n *Node
}

var _ history.Log = nodeLog{}

func (l nodeLog) Append(r *history.Request) error { return l.n.Publish(r) }
func (l nodeLog) Flush(ctx context.Context) error { return l.n.Flush(ctx) }
func (l nodeLog) Since(ctx context.Context, room string, after uint64, limit int) ([]protocol.Msg, error) {
	return l.n.Since(ctx, room, after, limit)
}
func (l nodeLog) Last(ctx context.Context, room string, limit int) ([]protocol.Msg, error) {
	return l.n.Last(ctx, room, limit)
}
func (l nodeLog) Before(ctx context.Context, room string, before uint64, limit int) ([]protocol.Msg, error) {
	return l.n.Before(ctx, room, before, limit)
}
func (l nodeLog) Bounds(ctx context.Context, room string) (uint64, uint64, error) {
	floor, err := l.n.Floor(ctx, room)
	if err != nil {
		return 0, 0, err
	}
	h, err := l.c.readHead(ctx, room)
	return floor, h.seq, err
}
func (l nodeLog) Epoch(context.Context, string) (uint64, error) { return l.c.Epoch(), nil }
func (l nodeLog) Close() error                                  { return nil }

// openModeration opens the moderation store of c, closed with it.
func openModeration(t *testing.T, c *Conn, maxAudit int) *Moderation {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := c.Moderation(ctx, ModerationOptions{MaxAudit: maxAudit})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// The store on one NATS server; the messages it redacts are published
// and read by a node on another connection.
func TestModerationConformance(t *testing.T) {
	moderationtest.Run(t, func(t *testing.T, maxAudit int) (moderation.Store, history.Log) {
		nc := natstest.Start(t, 1)
		a, b := storesDial(t, nc, "node-a"), storesDial(t, nc, "node-b")
		return openModeration(t, a, maxAudit), nodeLog{c: b, n: node(t, b, newRecorder(), NodeOptions{ID: "node-b"})}
	})
}

// The same on three NATS servers (R3 stream and buckets), the store and
// the node each talking to its own server. One cluster serves every
// subtest: each purges what the previous one wrote.
func TestModerationConformanceOnThreeServers(t *testing.T) {
	if testing.Short() {
		t.Skip("three NATS servers")
	}
	nc := natstest.Start(t, 3)
	moderationtest.Run(t, func(t *testing.T, maxAudit int) (moderation.Store, history.Log) {
		a, b := storesDialURL(t, nc.URL(0), "node-a"), storesDialURL(t, nc.URL(1), "node-b")
		m := openModeration(t, a, maxAudit)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, stream := range []string{StreamName, "KV_" + BucketModeration, "KV_" + BucketRedactions, AuditStream} {
			s, err := a.js.Stream(ctx, stream)
			if err == nil {
				err = s.Purge(ctx)
			}
			if err != nil {
				t.Fatalf("purging %s: %v", stream, err)
			}
		}
		return m, nodeLog{c: b, n: node(t, b, newRecorder(), NodeOptions{ID: "node-b"})}
	})
}

// An operator on one node deletes a message in the middle of a room's
// history and its last message. Every read on another node shows both
// with seq, time, sender and id and no text; the texts are nowhere in
// the stream, nor on the NATS server's disk; the room numbers on; a
// client's re-send of the deleted last message is answered with it, not
// stored again; and a node delivering the room live gets each message
// once.
func TestRedactedMessagesReadEmptyEverywhere(t *testing.T) {
	nc := natstest.Start(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ca, cb, cc := storesDial(t, nc, "node-a"), storesDial(t, nc, "node-b"), storesDial(t, nc, "node-c")
	ra, rc := newRecorder(), newRecorder()
	na := node(t, ca, ra, NodeOptions{ID: "node-a"})
	nodeC := node(t, cc, rc, NodeOptions{ID: "node-c"})
	if _, err := nodeC.Subscribe(ctx, "general"); err != nil {
		t.Fatal(err)
	}
	secret := func(i int) string { return fmt.Sprintf("secret text number %d", i) }
	for i := 1; i <= 5; i++ {
		if err := na.Publish(&broker.Publication{Room: "general", Sender: "Bob", ID: fmt.Sprint("id", i), Text: secret(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := na.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	before, err := nodeC.Since(ctx, "general", 0, 10)
	if err != nil || len(before) != 5 {
		t.Fatalf("Since before = %d messages, %v", len(before), err)
	}

	mod := openModeration(t, cb, 0)
	for _, seq := range []uint64{3, 5} {
		if ok, err := mod.Redact(ctx, "general", seq); err != nil || !ok {
			t.Fatalf("Redact(%d) = %v, %v", seq, ok, err)
		}
	}
	for _, seq := range []uint64{3, 5} { // again: no error, still there
		if ok, err := mod.Redact(ctx, "general", seq); err != nil || !ok {
			t.Fatalf("Redact(%d) again = %v, %v", seq, ok, err)
		}
	}
	if ok, err := mod.Redact(ctx, "general", 6); err != nil || ok {
		t.Fatalf("Redact of a message not yet sent = %v, %v", ok, err)
	}
	want := append([]protocol.Msg(nil), before...)
	want[2].Text, want[4].Text = "", ""
	check := func(what string, got []protocol.Msg, err error, want []protocol.Msg) {
		t.Helper()
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s:\n got %#v, %v\nwant %#v", what, got, err, want)
		}
	}
	got, err := nodeC.Since(ctx, "general", 0, 10)
	check("Since(0)", got, err, want)
	got, err = nodeC.Since(ctx, "general", 2, 2)
	check("Since(2, 2), starting at a redacted one", got, err, want[2:4])
	got, err = nodeC.Before(ctx, "general", 6, 3)
	check("Before(6, 3)", got, err, want[2:])
	got, err = nodeC.Last(ctx, "general", 1)
	check("Last(1), the redacted last message", got, err, want[4:])
	got, err = nodeC.Last(ctx, "general", 5)
	check("Last(5)", got, err, want)

	// The texts are gone from the stream (every message in it read) and
	// from the server's files.
	info, err := ca.stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		sm, err := ca.getMsg(ctx, getReq{Seq: seq})
		if err == errNotFound {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range []int{3, 5} {
			if bytes.Contains(sm.Data, []byte(secret(i))) {
				t.Fatalf("stream message %d still holds %q", seq, secret(i))
			}
		}
	}
	dir := nc.Server(0).JetStreamConfig().StoreDir
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, i := range []int{3, 5} {
			if bytes.Contains(b, []byte(secret(i))) {
				return fmt.Errorf("%s still holds %q", path, secret(i))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// The room numbers on after its redacted last message; a re-send of
	// that message is its duplicate, without text.
	for _, p := range []*broker.Publication{
		{Room: "general", Sender: "Bob", ID: "id6", Text: "six"},
		{Room: "general", Sender: "bob", ID: "id5", Text: secret(5)},
		{Room: "general", Sender: "Bob", ID: "id3", Text: secret(3)},
	} {
		if err := na.Publish(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := na.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ra.mu.Lock()
	results := append([]broker.Result(nil), ra.results[5:]...)
	ra.mu.Unlock()
	if len(results) != 3 {
		t.Fatalf("%d results after the redactions, want 3", len(results))
	}
	if r := results[0]; r.Err != nil || r.Duplicate || r.Msg.Seq != 6 {
		t.Fatalf("the next message: %+v", r)
	}
	for i, seq := range []uint64{5, 3} {
		if r := results[1+i]; r.Err != nil || !r.Duplicate || r.Msg.Seq != seq || r.Msg.Text != "" {
			t.Fatalf("the re-send of redacted message %d: %+v", seq, r)
		}
	}
	got, err = nodeC.Since(ctx, "general", 0, 10)
	if err != nil || len(got) != 6 || got[5].Text != "six" || !reflect.DeepEqual(got[:5], want) {
		t.Fatalf("Since(0) after one more message: %#v, %v", got, err)
	}
	// node-c delivered each message once, whatever the redactions.
	rc.wait(t, 10*time.Second, "node-c delivers message 6", func(r *recorder) bool {
		return len(r.msgs) > 0 && r.msgs[len(r.msgs)-1].Seq == 6
	})
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for i, m := range rc.msgs {
		if m.Seq != uint64(i+1) {
			t.Fatalf("node-c delivered seqs out of order or twice: %d at %d", m.Seq, i)
		}
	}
}

// Entries of no room (an operator's login) are kept and listed with the
// others; the log of one room lists only its own, newest last, even when
// more of it than asked for are there.
func TestAuditLogOfNoRoomAndOfOneRoom(t *testing.T) {
	nc := natstest.Start(t, 1)
	c := storesDial(t, nc, "node-a")
	m := openModeration(t, c, 100)
	ctx := context.Background()
	entries := []moderation.Entry{{Time: 1, Actor: "operator", Action: "oper", Addr: "192.0.2.1:1"}}
	for i := range 30 {
		room := "general"
		if i%3 == 0 {
			room = "random"
		}
		entries = append(entries, moderation.Entry{Time: int64(2 + i), Room: room, Actor: "alice", Action: "kick", Target: fmt.Sprint("troll", i)})
	}
	for _, e := range entries {
		if err := m.Audit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	all, err := m.AuditLog(ctx, "", 1000)
	if err != nil || !reflect.DeepEqual(all, entries) {
		t.Fatalf("AuditLog(all) = %d entries, %v; want the %d written", len(all), err, len(entries))
	}
	gen, err := m.AuditLog(ctx, "general", 4)
	var wantGen []moderation.Entry
	for _, e := range entries {
		if e.Room == "general" {
			wantGen = append(wantGen, e)
		}
	}
	if err != nil || !reflect.DeepEqual(gen, wantGen[len(wantGen)-4:]) {
		t.Fatalf("AuditLog(general, 4) = %#v, %v", gen, err)
	}
	// A second store (another node) with a smaller limit sets it for all.
	m2 := openModeration(t, storesDial(t, nc, "node-b"), 10)
	if err := m2.Audit(ctx, moderation.Entry{Time: 99, Room: "general", Actor: "bob", Action: "topic"}); err != nil {
		t.Fatal(err)
	}
	if all, err := m.AuditLog(ctx, "", 1000); err != nil || len(all) != 10 || all[9].Time != 99 {
		t.Fatalf("after the limit became 10: %d entries, %v", len(all), err)
	}
}

// An operator deletes the room's last message again and again while
// another node publishes into the room: the copies without text never
// take a number, nothing is stored twice or lost, every deleted message
// reads back without text and every other with its own, and a node
// delivering the room live gets each message once, in order. On three
// NATS servers (R3: compare-and-set fails while another write to the
// room is in flight) each node talks to its own server.
func TestRedactingTheLastMessageWhilePublishing(t *testing.T) {
	for _, servers := range []int{1, 3} {
		t.Run(fmt.Sprint(servers, "servers"), func(t *testing.T) {
			if servers > 1 && testing.Short() {
				t.Skip("three NATS servers")
			}
			redactWhilePublishing(t, servers)
		})
	}
}

func redactWhilePublishing(t *testing.T, servers int) {
	nc := natstest.Start(t, servers)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ca, cb, cc := dial(t, nc, 0, Options{Name: "node-a"}), dial(t, nc, 1%servers, Options{Name: "node-b"}), dial(t, nc, 2%servers, Options{Name: "node-c"})
	ra, rc := newRecorder(), newRecorder()
	na := node(t, ca, ra, NodeOptions{ID: "node-a"})
	nodeC := node(t, cc, rc, NodeOptions{ID: "node-c"})
	if _, err := nodeC.Subscribe(ctx, "general"); err != nil {
		t.Fatal(err)
	}
	mod := openModeration(t, cb, 0)
	const total = 80
	done := make(chan struct{})
	redacted := map[uint64]bool{}
	redactErr := make(chan error, 1)
	// Half the messages go before and half after the first redaction,
	// so that some are published while redactions are under way however
	// slow the machine.
	first := make(chan struct{})
	go func() {
		defer close(redactErr)
		for {
			select {
			case <-done:
				return
			default:
			}
			h, err := cb.readHead(ctx, "general")
			if err != nil {
				redactErr <- err
				return
			}
			if h.seq == 0 {
				continue
			}
			ok, err := mod.Redact(ctx, "general", h.seq)
			if err != nil || !ok {
				redactErr <- fmt.Errorf("Redact(%d) = %v, %v", h.seq, ok, err)
				return
			}
			if len(redacted) == 0 {
				close(first)
			}
			redacted[h.seq] = true
		}
	}()
	for i := 1; i <= total; i++ {
		if err := na.Publish(&broker.Publication{Room: "general", Sender: "bob", ID: fmt.Sprint("id", i), Text: fmt.Sprint("text ", i)}); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			if err := na.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if i == total/2 {
			select {
			case <-first:
			case err := <-redactErr:
				t.Fatalf("before the first redaction: %v", err)
			case <-ctx.Done():
				t.Fatal("no redaction within the test's time")
			}
		}
	}
	if err := na.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	close(done)
	if err := <-redactErr; err != nil {
		t.Fatal(err)
	}
	if len(redacted) == 0 {
		t.Fatal("no redaction happened while publishing")
	}
	ra.mu.Lock()
	textOf := map[uint64]string{}
	for _, r := range ra.results {
		if r.Err != nil || r.Duplicate {
			ra.mu.Unlock()
			t.Fatalf("a publication's result: %+v", r)
		}
		if _, twice := textOf[r.Msg.Seq]; twice {
			ra.mu.Unlock()
			t.Fatalf("seq %d acknowledged twice", r.Msg.Seq)
		}
		textOf[r.Msg.Seq] = r.Msg.Text
	}
	ra.mu.Unlock()
	got, err := nodeC.Since(ctx, "general", 0, 2*total)
	if err != nil || len(got) != total {
		t.Fatalf("Since(0) = %d messages, %v; want %d", len(got), err, total)
	}
	for i, m := range got {
		want := textOf[uint64(i+1)]
		if redacted[m.Seq] {
			want = ""
		}
		if m.Seq != uint64(i+1) || m.Text != want {
			t.Fatalf("message %d: seq %d text %q; want seq %d text %q", i, m.Seq, m.Text, i+1, want)
		}
	}
	rc.wait(t, 10*time.Second, "node-c delivers the last message", func(r *recorder) bool {
		return len(r.msgs) > 0 && r.msgs[len(r.msgs)-1].Seq == total
	})
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for i, m := range rc.msgs {
		if m.Seq != uint64(i+1) {
			t.Fatalf("node-c delivered seq %d at %d", m.Seq, i)
		}
	}
	t.Logf("%d of %d messages redacted while publishing", len(redacted), total)
}

// A single server's moderation moves into the cluster with its history:
// the rooms' states, the audit log (an entry of no room too), and a
// deleted message, which stays without text. A second run copies
// nothing twice.
func TestMigrateCopiesModeration(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "chat.db")
	log, err := sqlite.Open(path, func([]history.Result) {}, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if err := log.Append(&history.Request{Room: "general", Sender: "bob", ID: fmt.Sprint("id", i), Text: fmt.Sprint("text ", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := log.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	src, err := sqlite.OpenModeration(path, sqlite.ModerationOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := src.Redact(ctx, "general", 2); err != nil || !ok {
		t.Fatalf("Redact in the source = %v, %v", ok, err)
	}
	states := map[string]*moderation.State{
		"general": {Topic: "hello", Ops: []string{"alice"}, Bans: []moderation.Ban{{Name: "mallory", By: "alice"}}},
		"random":  {InviteOnly: true, Ops: []string{"carol"}, Allowed: []string{"dave"}},
	}
	for room, st := range states {
		if _, err := src.Save(ctx, room, st, 0); err != nil {
			t.Fatal(err)
		}
	}
	entries := []moderation.Entry{
		{Time: 1, Actor: "operator", Action: "oper", Addr: "192.0.2.1:1"},
		{Time: 2, Room: "general", Actor: "alice", Action: "ban", Target: "mallory"},
		{Time: 3, Room: "general", Actor: "alice", Action: "delete", Seq: 2},
	}
	for _, e := range entries {
		if err := src.Audit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := errors.Join(src.Close(), log.Close()); err != nil {
		t.Fatal(err)
	}

	c := storesDial(t, natstest.Start(t, 1), "node-a")
	st, err := Migrate(ctx, path, c, nil)
	if err != nil || st.ModeratedRooms != 2 || st.AuditEntries != 3 || st.Messages != 3 {
		t.Fatalf("Migrate = %+v, %v", st, err)
	}
	again, err := Migrate(ctx, path, c, nil)
	if err != nil || again.ModeratedRooms != 0 || again.AuditEntries != 0 || again.Messages != 0 {
		t.Fatalf("a second Migrate = %+v, %v; want nothing copied", again, err)
	}
	mod := openModeration(t, c, 0)
	for room, want := range states {
		if got, rev, err := mod.Load(ctx, room); err != nil || rev == 0 || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s in the cluster: %#v, rev %d, %v", room, got, rev, err)
		}
	}
	if got, err := mod.AuditLog(ctx, "", 10); err != nil || !reflect.DeepEqual(got, entries) {
		t.Fatalf("the cluster's audit log: %#v, %v", got, err)
	}
	n := node(t, c, newRecorder(), NodeOptions{ID: "node-a"})
	msgs, err := n.Since(ctx, "general", 0, 10)
	if err != nil || len(msgs) != 3 || msgs[1].Text != "" || msgs[0].Text != "text 1" || msgs[1].ID != "id2" {
		t.Fatalf("general in the cluster: %#v, %v", msgs, err)
	}
	if ok, err := mod.Redact(ctx, "general", 2); err != nil || !ok {
		t.Fatalf("Redact of the message deleted before the migration = %v, %v", ok, err)
	}
}

// The record that answers re-sends of a deleted message lives as long as
// re-sends are recognised (the deduplication window, 1 s here); the
// record that keeps the message in history stays.
func TestRedactionRecordForResendsExpiresWithTheWindow(t *testing.T) {
	nc := natstest.Start(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := dial(t, nc, 0, Options{Name: "node-a", DedupWindow: time.Second})
	n := node(t, c, newRecorder(), NodeOptions{ID: "node-a"})
	if err := n.Publish(&broker.Publication{Room: "general", Sender: "bob", ID: "id1", Text: "spam"}); err != nil {
		t.Fatal(err)
	}
	if err := n.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	mod := openModeration(t, c, 0)
	if ok, err := mod.Redact(ctx, "general", 1); err != nil || !ok {
		t.Fatalf("Redact = %v, %v", ok, err)
	}
	dedupKey := redactionDedupKey("general", DedupToken("bob", "id1"))
	if rec, err := c.redaction(ctx, dedupKey); err != nil || rec == nil || rec.Seq != 1 {
		t.Fatalf("the record for re-sends right after the redaction: %+v, %v", rec, err)
	}
	// Time passing is what is tested: poll until the TTL removed it.
	for {
		rec, err := c.redaction(ctx, dedupKey)
		if err != nil {
			t.Fatal(err)
		}
		if rec == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the record for re-sends outlived the deduplication window by far")
		}
		time.Sleep(100 * time.Millisecond)
	}
	msgs, err := n.Since(ctx, "general", 0, 10)
	if err != nil || len(msgs) != 1 || msgs[0].Seq != 1 || msgs[0].Text != "" || msgs[0].ID != "id1" {
		t.Fatalf("history after the window: %#v, %v", msgs, err)
	}
}
