package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"chat/protocol"
	"chat/server/internal/broker"
	"chat/server/internal/broker/brokertest"
	"chat/server/internal/cluster/natstest"
	"chat/server/internal/history"

	"github.com/nats-io/nats.go/jetstream"
)

// recorder is a Handler keeping what it is given, for tests to wait on.
type recorder struct {
	mu      sync.Mutex
	changed chan struct{} // closed (and renewed) on every event
	results []broker.Result
	msgs    []protocol.Msg
	changes []presenceEvent
	notes   []*broker.Note
}

type presenceEvent struct {
	room   string
	change protocol.PresenceChange
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{})} }

func (r *recorder) event(f func()) {
	r.mu.Lock()
	f()
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

func (r *recorder) Published(rs []broker.Result) {
	r.event(func() { r.results = append(r.results, rs...) })
}

func (r *recorder) Messages(ms []protocol.Msg) { r.event(func() { r.msgs = append(r.msgs, ms...) }) }

func (r *recorder) PresenceChanged(room string, cs []protocol.PresenceChange) {
	r.event(func() {
		for _, c := range cs {
			r.changes = append(r.changes, presenceEvent{room, c})
		}
	})
}

func (r *recorder) Noted(n *broker.Note) { r.event(func() { r.notes = append(r.notes, n) }) }

// wait waits until cond holds (called under the lock), failing after d.
func (r *recorder) wait(t *testing.T, d time.Duration, what string, cond func(r *recorder) bool) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		ok, ch := cond(r), r.changed
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("%s: not within %v (%d results, %d messages, %d presence changes)", what, d, len(r.results), len(r.msgs), len(r.changes))
		}
	}
}

// urls lists the cluster's server URLs starting with server first, so
// nodes spread over the servers.
func urls(nc *natstest.Cluster, first int) []string {
	var out []string
	for i := range nc.Size() {
		out = append(out, nc.URL((first+i)%nc.Size()))
	}
	return out
}

// dial connects to the test cluster, closing the connection at the end.
func dial(t *testing.T, nc *natstest.Cluster, first int, opts Options) *Conn {
	t.Helper()
	opts.URLs = urls(nc, first)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Dial(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// node starts a node on c, closed at the end.
func node(t *testing.T, c *Conn, h broker.Handler, opts NodeOptions) *Node {
	t.Helper()
	n, err := c.Node(h, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

// reset deletes the stream and the buckets, for a fresh store: the next
// Dial makes them again. (A purge would keep JetStream's Nats-Msg-Id
// window, which would take the tests' re-used ids for re-sends.)
func reset(t *testing.T, c *Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A stream that is never deleted: when an account's last stream is
	// deleted, the NATS server removes the account's empty streams
	// directory in the background, and a stream created meanwhile fails
	// with "error creating store for stream" (mkdir: no such file or
	// directory). Seen under CI load; a keeper keeps the directory.
	if _, err := c.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "TEST_KEEPER", Subjects: []string{"test.keeper"}}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{StreamName, "KV_" + BucketNames, "KV_" + BucketMarks, "KV_" + BucketMentions,
		"KV_" + BucketRooms, "KV_" + BucketDMs, "KV_" + BucketPresence, "KV_" + BucketNodes,
		"KV_" + BucketModeration, "KV_" + BucketRedactions, "KV_" + BucketStates} {
		if err := c.js.DeleteStream(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	// Make them again here, once, before the test's nodes Dial at once.
	if err := c.provision(ctx); err != nil {
		t.Fatal(err)
	}
}

// opener runs each node of a test on its own connection, to its own
// server first.
func opener(nc *natstest.Cluster, admin *Conn) brokertest.Opener {
	return func(t *testing.T, handlers ...broker.Handler) []broker.Broker {
		reset(t, admin)
		var out []broker.Broker
		for i, h := range handlers {
			c := dial(t, nc, i, Options{Name: fmt.Sprint("node-", i)})
			out = append(out, node(t, c, h, NodeOptions{ID: fmt.Sprint("node-", i)}))
		}
		return out
	}
}

func TestConformanceOneServer(t *testing.T) {
	nc := natstest.Start(t, 1)
	brokertest.Run(t, opener(nc, dial(t, nc, 0, Options{})))
}

func TestConformanceThreeServers(t *testing.T) {
	if testing.Short() {
		t.Skip("a NATS cluster")
	}
	nc := natstest.Start(t, 3)
	admin := dial(t, nc, 0, Options{})
	if r := admin.stream.CachedInfo().Config.Replicas; r != 3 {
		t.Fatalf("stream with %d replicas on 3 servers", r)
	}
	brokertest.Run(t, opener(nc, admin))
}

// retentionOpener is opener with every node's Options.Retention set: the
// stream is made without limits (reset) and the nodes' Dial updates it.
func retentionOpener(nc *natstest.Cluster, admin *Conn) brokertest.RetentionOpener {
	return func(t *testing.T, rule history.Retention, handlers ...broker.Handler) []broker.Broker {
		reset(t, admin)
		var out []broker.Broker
		for i, h := range handlers {
			c := dial(t, nc, i, Options{Name: fmt.Sprint("node-", i), Retention: &rule})
			cfg := c.stream.CachedInfo().Config
			if cfg.MaxAge != rule.Age || (rule.Messages > 0 && cfg.MaxMsgsPerSubject != int64(rule.Messages)) {
				t.Fatalf("stream limits after Dial: max age %v, per subject %d; want %+v", cfg.MaxAge, cfg.MaxMsgsPerSubject, rule)
			}
			out = append(out, node(t, c, h, NodeOptions{ID: fmt.Sprint("node-", i)}))
		}
		return out
	}
}

func TestRetentionConformanceOneServer(t *testing.T) {
	nc := natstest.Start(t, 1)
	brokertest.RunRetention(t, retentionOpener(nc, dial(t, nc, 0, Options{})))
}

func TestRetentionConformanceThreeServers(t *testing.T) {
	if testing.Short() {
		t.Skip("a NATS cluster")
	}
	nc := natstest.Start(t, 3)
	brokertest.RunRetention(t, retentionOpener(nc, dial(t, nc, 0, Options{})))
}

// A re-send is recognised by its marker after JetStream's own
// duplicate window has passed, on another node.
func TestDedupAfterStreamWindow(t *testing.T) {
	nc := natstest.Start(t, 1)
	const window = time.Second
	ctx := context.Background()
	recA, recB := newRecorder(), newRecorder()
	a := node(t, dial(t, nc, 0, Options{StreamDuplicates: window}), recA, NodeOptions{})
	b := node(t, dial(t, nc, 0, Options{StreamDuplicates: window}), recB, NodeOptions{})
	if err := a.Publish(&broker.Publication{Room: "r", Sender: "alice", ID: "m1", Text: "original"}); err != nil {
		t.Fatal(err)
	}
	recA.wait(t, 5*time.Second, "a's result", func(r *recorder) bool { return len(r.results) == 1 })
	stored := time.Now()
	orig := recA.results[0]
	if orig.Err != nil || orig.Duplicate || orig.Msg.Seq != 1 {
		t.Fatalf("first publication: %+v", orig)
	}
	// Time passing is the behaviour under test: JetStream forgets the
	// id once its window is over, and nothing signals that.
	time.Sleep(time.Until(stored.Add(window + 250*time.Millisecond)))
	// The re-send must fail on its marker, not on JetStream's window.
	var codes []int
	b.onBatchError = func(code int) { codes = append(codes, code) }
	if err := b.Publish(&broker.Publication{Room: "r", Sender: "ALICE", ID: "m1", Text: "re-sent"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(&broker.Publication{Room: "r", Sender: "alice", ID: "m2", Text: "new"}); err != nil {
		t.Fatal(err)
	}
	recB.wait(t, 5*time.Second, "b's results", func(r *recorder) bool { return len(r.results) == 2 })
	re := recB.results[0]
	if re.Err != nil || !re.Duplicate || !reflect.DeepEqual(re.Msg, orig.Msg) {
		t.Fatalf("re-send: %+v; original %+v", re, orig.Msg)
	}
	if m := recB.results[1]; m.Err != nil || m.Duplicate || m.Msg.Seq != 2 {
		t.Fatalf("next message: %+v", m)
	}
	if slices.Contains(codes, errCodeBatchDuplicate) || !slices.Contains(codes, errCodeWrongLastSeq) {
		t.Fatalf("batch errors %v: want a marker conflict (%d), no Nats-Msg-Id duplicate (%d)", codes, errCodeWrongLastSeq, errCodeBatchDuplicate)
	}
	ms, err := a.Last(ctx, "r", 10)
	if err != nil || len(ms) != 2 || ms[0].Text != "original" || ms[1].Text != "new" {
		t.Fatalf("history: %+v, %v", ms, err)
	}
}

// Two nodes publishing into one room at once: the room's seqs are
// gap-free and both nodes see one order.
func TestConcurrentPublishers(t *testing.T) {
	t.Run("OneServer", func(t *testing.T) { concurrentPublishers(t, natstest.Start(t, 1)) })
	t.Run("ThreeServers", func(t *testing.T) {
		if testing.Short() {
			t.Skip("a NATS cluster")
		}
		concurrentPublishers(t, natstest.Start(t, 3))
	})
}

func concurrentPublishers(t *testing.T, nc *natstest.Cluster) {
	ctx := context.Background()
	const each = 300
	recs := []*recorder{newRecorder(), newRecorder()}
	var nodes []*Node
	for i, rec := range recs {
		n := node(t, dial(t, nc, i, Options{}), rec, NodeOptions{MaxBatch: 32})
		if _, err := n.Subscribe(ctx, "r"); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
	}
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() {
			for k := range each {
				if err := n.Publish(&broker.Publication{Room: "r", Sender: fmt.Sprint("s", i), ID: fmt.Sprint(k), Text: fmt.Sprint(i, "/", k)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, rec := range recs {
		rec.wait(t, 30*time.Second, "every message", func(r *recorder) bool { return len(r.msgs) == 2*each })
	}
	for i, rec := range recs {
		for _, r := range rec.results {
			if r.Err != nil || r.Duplicate {
				t.Fatalf("node %d: %+v", i, r)
			}
		}
		for k, m := range rec.msgs {
			if m.Seq != uint64(k+1) {
				t.Fatalf("node %d: message %d has seq %d", i, k, m.Seq)
			}
			if o := recs[0].msgs[k]; o.Text != m.Text {
				t.Fatalf("seq %d is %q on node 0 but %q on node %d", m.Seq, o.Text, m.Text, i)
			}
		}
	}
	// Each node's messages keep their publication order.
	next := map[string]int{}
	for _, m := range recs[0].msgs {
		if m.ID != fmt.Sprint(next[m.Sender]) {
			t.Fatalf("%s's message %s after %d", m.Sender, m.ID, next[m.Sender])
		}
		next[m.Sender]++
	}
}

// A node that dies without cleaning up has its members leave, for the
// other nodes, within the presence TTL.
func TestCrashedNodePresenceExpires(t *testing.T) {
	nc := natstest.Start(t, 1)
	ctx := context.Background()
	const ttl = 1500 * time.Millisecond
	recA, recB := newRecorder(), newRecorder()
	a := node(t, dial(t, nc, 0, Options{}), recA, NodeOptions{PresenceTTL: ttl})
	b := node(t, dial(t, nc, 0, Options{}), recB, NodeOptions{PresenceTTL: ttl})
	if _, err := a.Subscribe(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if first, err := b.PresenceAdd(ctx, "r", broker.Presence{Name: "bob", Conn: 1}); err != nil || !first {
		t.Fatalf("bob: %v, %v", first, err)
	}
	if first, err := a.PresenceAdd(ctx, "r", broker.Presence{Name: "alice", Conn: 1}); err != nil || !first {
		t.Fatalf("alice: %v, %v", first, err)
	}
	recA.wait(t, 5*time.Second, "bob joined", func(r *recorder) bool {
		return slices.Contains(r.changes, presenceEvent{"r", protocol.PresenceChange{Kind: protocol.PresenceJoined, Name: "bob"}})
	})
	// Live nodes keep their entries across several TTLs of heartbeats.
	recB.wait(t, 5*time.Second, "alice joined", func(r *recorder) bool { return true })
	b.Crash()
	crashed := time.Now()
	recA.wait(t, 3*ttl, "bob left", func(r *recorder) bool {
		return slices.Contains(r.changes, presenceEvent{"r", protocol.PresenceChange{Kind: protocol.PresenceLeft, Name: "bob"}})
	})
	// Within the TTL, plus slack for a loaded machine.
	if d := time.Since(crashed); d > ttl+300*time.Millisecond {
		t.Errorf("bob left %v after the crash, TTL %v", d, ttl)
	}
	names, count, err := a.PresenceList(ctx, "r", 10)
	if err != nil || count != 1 || !slices.Equal(names, []string{"alice"}) {
		t.Fatalf("PresenceList = %v, %d, %v; want alice only", names, count, err)
	}
}

// A node restarted under its id drops the entries of its earlier run,
// which no heartbeat silence would ever reap.
func TestRestartedNodeDropsOldPresence(t *testing.T) {
	nc := natstest.Start(t, 1)
	ctx := context.Background()
	c := dial(t, nc, 0, Options{})
	a := node(t, c, newRecorder(), NodeOptions{ID: "a"})
	if _, err := a.PresenceAdd(ctx, "r", broker.Presence{Name: "alice", Conn: 1}); err != nil {
		t.Fatal(err)
	}
	a.Crash()
	again := node(t, c, newRecorder(), NodeOptions{ID: "a"})
	if _, count, err := again.PresenceList(ctx, "r", 10); err != nil || count != 0 {
		t.Fatalf("PresenceList after the restart: %d names, %v", count, err)
	}
	if first, err := again.PresenceAdd(ctx, "r", broker.Presence{Name: "alice", Conn: 1}); err != nil || !first {
		t.Fatalf("alice again: %v, %v", first, err)
	}
}

// With three NATS servers, one may go; with two gone publications fail
// within the timeout; with them back, publishing resumes and nothing
// acknowledged is lost.
func TestQuorumLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("a NATS cluster")
	}
	nc := natstest.Start(t, 3)
	ctx := context.Background()
	const timeout = 2 * time.Second
	rec := newRecorder()
	c := dial(t, nc, 0, Options{PublishTimeout: timeout})
	n := node(t, c, rec, NodeOptions{})
	if _, err := n.Subscribe(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	id := 0
	publish := func() int {
		id++
		if err := n.Publish(&broker.Publication{Room: "r", Sender: "alice", ID: fmt.Sprint(id), Text: fmt.Sprint(id)}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	// result waits for the result of publication id.
	result := func(id int, d time.Duration) broker.Result {
		t.Helper()
		var res broker.Result
		rec.wait(t, d, fmt.Sprint("result ", id), func(r *recorder) bool {
			for _, x := range r.results {
				if x.Request.ID == fmt.Sprint(id) {
					res = x
					return true
				}
			}
			return false
		})
		return res
	}
	acked := map[string]bool{}
	ok := func(what string) {
		t.Helper()
		for range 3 {
			id := publish()
			if r := result(id, timeout+5*time.Second); r.Err != nil {
				t.Fatalf("%s: %v", what, r.Err)
			} else {
				acked[r.Msg.ID] = true
			}
		}
	}
	ok("all servers up")
	// Stop the stream's followers, one then the other: losing its
	// leader would only add an election (seconds) to the test.
	info, err := c.stream.Info(ctx)
	if err != nil || info.Cluster == nil {
		t.Fatalf("stream info: %+v, %v", info, err)
	}
	var followers []int
	for i := range nc.Size() {
		if fmt.Sprint("nats-", i) != info.Cluster.Leader {
			followers = append(followers, i)
		}
	}
	nc.Stop(followers[0])
	ok("one server down")
	nc.Stop(followers[1])
	start := time.Now()
	if r := result(publish(), timeout+3*time.Second); r.Err == nil {
		t.Fatal("a publication acknowledged without quorum")
	}
	if d := time.Since(start); d > timeout+2*time.Second {
		t.Errorf("failed after %v, timeout %v", d, timeout)
	}
	if err := c.Healthy(ctx); err == nil {
		t.Error("Healthy without quorum")
	}
	// A membership whose message failed cannot have a later one stored
	// before the failed one is sent again: the next publication with its
	// tag fails at once, not after the timeout.
	byID := func(id string) broker.Result {
		t.Helper()
		var res broker.Result
		rec.wait(t, timeout+3*time.Second, "result "+id, func(r *recorder) bool {
			for _, x := range r.results {
				if x.Request.ID == id {
					res = x
					return true
				}
			}
			return false
		})
		return res
	}
	for _, id := range []string{"b1", "b2"} {
		if err := n.Publish(&broker.Publication{Room: "r", Sender: "bob", ID: id, Text: id, Tag: "bob's membership"}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		r := byID(id)
		if id == "b2" && (!errors.Is(r.Err, errAfterFailure) || time.Since(start) > timeout/2) {
			t.Errorf("the publication after a failed one of its membership: %v after %v, want errAfterFailure at once", r.Err, time.Since(start))
		} else if r.Err == nil {
			t.Fatalf("%s acknowledged without quorum", id)
		}
	}
	nc.Restart(followers[0])
	nc.Restart(followers[1])
	nc.WaitReady()
	// Publishing resumes once the stream has a leader again.
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := result(publish(), timeout+5*time.Second)
		if r.Err == nil {
			acked[r.Msg.ID] = true
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("publishing did not resume: %v", r.Err)
		}
	}
	ok("servers back")
	// Every bucket has its quorum back soon after the stream.
	for err := c.Healthy(ctx); err != nil; err = c.Healthy(ctx) {
		if time.Now().After(deadline) {
			t.Fatalf("not healthy again: %v", err)
		}
	}
	ms, err := n.Last(ctx, "r", 1000)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range ms {
		if m.Seq != uint64(i+1) {
			t.Fatalf("message %d has seq %d", i, m.Seq)
		}
		delete(acked, m.ID)
	}
	if len(acked) > 0 {
		t.Fatalf("acknowledged messages lost: %v", acked)
	}
	// The node's consumer came through the outage: it delivered every
	// stored message, in order.
	rec.wait(t, 10*time.Second, "every stored message delivered", func(r *recorder) bool { return len(r.msgs) >= len(ms) })
	for i, m := range rec.msgs {
		if m.Seq != uint64(i+1) {
			t.Fatalf("delivered message %d has seq %d", i, m.Seq)
		}
	}
}

func TestNoteEncoding(t *testing.T) {
	for _, n := range []*broker.Note{
		{Names: []string{"alice", "bob"}, Room: "@alice@bob", Frame: []byte{0, 0, 0, 1, 9}},
		{Names: nil, Room: "", Frame: nil},
	} {
		got, err := decodeNote(encodeNote(n))
		if err != nil || !slices.Equal(got.Names, n.Names) || got.Room != n.Room || string(got.Frame) != string(n.Frame) {
			t.Fatalf("%+v → %+v, %v", n, got, err)
		}
	}
	if _, err := decodeNote([]byte{5, 1}); err == nil {
		t.Fatal("a truncated note decoded")
	}
}

// Append stores messages with their seqs; nodes go on from there and
// recognise re-sends of them.
func TestAppend(t *testing.T) {
	nc := natstest.Start(t, 1)
	ctx := context.Background()
	c := dial(t, nc, 0, Options{})
	rec := newRecorder()
	n := node(t, c, rec, NodeOptions{})
	old := []protocol.Msg{
		{Room: "r", Seq: 1, Time: 1000, Sender: "alice", ID: "a", Text: "one"},
		{Room: "r", Seq: 2, Time: 2000, Sender: "bob", ID: "b", Text: "two"},
	}
	if err := c.Append(ctx, old); err != nil {
		t.Fatal(err)
	}
	if err := c.Append(ctx, []protocol.Msg{{Room: "r", Seq: 2, Sender: "x", ID: "y"}}); err == nil {
		t.Fatal("Append over an existing seq")
	}
	if err := n.Publish(&broker.Publication{Room: "r", Sender: "Bob", ID: "b", Text: "re-sent"}); err != nil {
		t.Fatal(err)
	}
	if err := n.Publish(&broker.Publication{Room: "r", Sender: "carol", ID: "c", Text: "three"}); err != nil {
		t.Fatal(err)
	}
	if err := n.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if r := rec.results[0]; !r.Duplicate || !reflect.DeepEqual(r.Msg, old[1]) {
		t.Fatalf("re-send of a migrated message: %+v", r)
	}
	if r := rec.results[1]; r.Err != nil || r.Msg.Seq != 3 {
		t.Fatalf("next message: %+v", r)
	}
	ms, err := n.Since(ctx, "r", 0, 10)
	if err != nil || len(ms) != 3 || !reflect.DeepEqual(ms[0], old[0]) || !reflect.DeepEqual(ms[1], old[1]) || ms[2].Text != "three" {
		t.Fatalf("history: %+v, %v", ms, err)
	}
}

func TestSeqCache(t *testing.T) {
	c := newSeqCache()
	for s := uint64(1); s <= seqCachePerRoom+10; s++ {
		c.add("r", s, 10*s)
	}
	if exact, _, _ := c.bounds("r", seqCachePerRoom+10); exact != 10*(seqCachePerRoom+10) {
		t.Fatalf("last: %d", exact)
	}
	if exact, _, _ := c.bounds("r", 11); exact != 110 {
		t.Fatalf("oldest kept: %d", exact)
	}
	if exact, lo, hi := c.bounds("r", 5); exact != 0 || lo != 0 || hi != 110-6 {
		t.Fatalf("before the kept run: %d %d %d", exact, lo, hi)
	}
	if _, lo, hi := c.bounds("r", seqCachePerRoom+20); lo != 10*(seqCachePerRoom+10)+10 || hi != 0 {
		t.Fatalf("after the kept run: %d %d", lo, hi)
	}
	c.add("r", 3, 7) // a room started afresh
	if exact, _, _ := c.bounds("r", 3); exact != 7 {
		t.Fatalf("after a restart: %d", exact)
	}
}

// History reads by binary search, on a node whose cache knows nothing:
// rooms interleaved in the stream, every range checked.
func TestHistorySearch(t *testing.T) {
	nc := natstest.Start(t, 1)
	ctx := context.Background()
	c := dial(t, nc, 0, Options{})
	var msgs []protocol.Msg
	for i := 1; i <= 40; i++ {
		room := "r"
		if i%3 == 0 {
			room = "s"
		}
		msgs = append(msgs, protocol.Msg{Room: room, Seq: uint64(i), Sender: "a", ID: fmt.Sprint(i), Text: fmt.Sprint(i)})
	}
	// One message at a time, r and s alternating in the stream.
	seqs := map[string]uint64{}
	for _, m := range msgs {
		seqs[m.Room]++
		m.Seq = seqs[m.Room]
		if err := c.Append(ctx, []protocol.Msg{m}); err != nil {
			t.Fatal(err)
		}
	}
	reader := node(t, dial(t, nc, 0, Options{}), newRecorder(), NodeOptions{})
	head := seqs["r"]
	for from := uint64(0); from <= head; from++ {
		ms, err := reader.Since(ctx, "r", from, 3)
		want := min(3, int(head-from))
		if err != nil || len(ms) != want {
			t.Fatalf("Since(%d, 3): %d messages, %v", from, len(ms), err)
		}
		for i, m := range ms {
			if m.Seq != from+1+uint64(i) || m.Room != "r" {
				t.Fatalf("Since(%d, 3)[%d] = %+v", from, i, m)
			}
		}
		if bs, err := reader.Before(ctx, "r", from+1, 2); err != nil || len(bs) != min(2, int(from)) || (len(bs) > 0 && bs[len(bs)-1].Seq != from) {
			t.Fatalf("Before(%d, 2) = %+v, %v", from+1, bs, err)
		}
	}
	if ms, err := reader.Last(ctx, "s", 100); err != nil || len(ms) != int(seqs["s"]) || ms[0].Seq != 1 {
		t.Fatalf("Last(s) = %d messages, %v", len(ms), err)
	}
}

// BenchmarkPublish measures stored messages per second through one node
// on one NATS server, over 16 rooms.
func BenchmarkPublish(b *testing.B) {
	nc := natstest.Start(b, 1)
	opts := Options{URLs: []string{nc.URL(0)}}
	c, err := Dial(context.Background(), opts)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	n, err := c.Node(newRecorder(), NodeOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	b.ResetTimer()
	for i := range b.N {
		if err := n.Publish(&broker.Publication{Room: fmt.Sprint("room", i%16), Sender: "alice", ID: fmt.Sprint(i), Text: "hello, world"}); err != nil {
			b.Fatal(err)
		}
	}
	if err := n.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// Publish blocks while the node's queue is full: here, with NATS gone,
// until the publication holding the only slot has failed.
func TestPublishBlocksWhenQueueFull(t *testing.T) {
	nc := natstest.Start(t, 1)
	const timeout = time.Second
	rec := newRecorder()
	n := node(t, dial(t, nc, 0, Options{PublishTimeout: timeout}), rec, NodeOptions{PublishQueue: 1})
	nc.Stop(0)
	start := time.Now()
	if err := n.Publish(&broker.Publication{Room: "r", Sender: "a", ID: "1"}); err != nil {
		t.Fatal(err)
	}
	if err := n.Publish(&broker.Publication{Room: "r", Sender: "a", ID: "2"}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < timeout*9/10 {
		t.Fatalf("the second Publish returned after %v, before the first failed (timeout %v)", d, timeout)
	}
	rec.wait(t, 3*timeout, "both failed", func(r *recorder) bool { return len(r.results) == 2 })
	for _, r := range rec.results {
		if r.Err == nil {
			t.Fatalf("stored without NATS: %+v", r)
		}
	}
	nc.Restart(0) // for a quick cleanup
}

// The server hears when NATS goes and comes back, and Healthy says so.
func TestDownAndUp(t *testing.T) {
	nc := natstest.Start(t, 1)
	ctx := context.Background()
	down, up := make(chan error, 10), make(chan struct{}, 10)
	c := dial(t, nc, 0, Options{
		OnDown: func(err error) { down <- err },
		OnUp:   func() { up <- struct{}{} },
	})
	if err := c.Healthy(ctx); err != nil {
		t.Fatal(err)
	}
	wait := func(what string, ch <-chan struct{}) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: not within 10s", what)
		}
	}
	nc.Stop(0)
	downed := make(chan struct{})
	go func() { <-down; close(downed) }()
	wait("OnDown", downed)
	if err := c.Healthy(ctx); err == nil {
		t.Fatal("healthy without NATS")
	}
	nc.Restart(0)
	wait("OnUp", up)
	// JetStream may still be loading its streams.
	deadline := time.Now().Add(10 * time.Second)
	for err := c.Healthy(ctx); err != nil; err = c.Healthy(ctx) {
		if time.Now().After(deadline) {
			t.Fatalf("not healthy again: %v", err)
		}
	}
}

// A node puts back its entries that vanished (reaped while it was cut
// off) and drops entries naming it that it holds no connection for.
func TestPresenceReconciles(t *testing.T) {
	nc := natstest.Start(t, 1)
	ctx := context.Background()
	const ttl = 900 * time.Millisecond
	c := dial(t, nc, 0, Options{})
	recB := newRecorder()
	a := node(t, c, newRecorder(), NodeOptions{ID: "a", PresenceTTL: ttl})
	b := node(t, c, recB, NodeOptions{ID: "b", PresenceTTL: ttl})
	if _, err := b.Subscribe(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.PresenceAdd(ctx, "r", broker.Presence{Name: "alice", Conn: 1}); err != nil {
		t.Fatal(err)
	}
	joined := presenceEvent{"r", protocol.PresenceChange{Kind: protocol.PresenceJoined, Name: "alice"}}
	count := func(r *recorder, e presenceEvent) int {
		n := 0
		for _, x := range r.changes {
			if x == e {
				n++
			}
		}
		return n
	}
	recB.wait(t, 5*time.Second, "alice joined", func(r *recorder) bool { return count(r, joined) == 1 })
	if err := c.presence.Delete(ctx, presenceKey("r", "alice")); err != nil {
		t.Fatal(err)
	}
	recB.wait(t, 5*time.Second, "alice back", func(r *recorder) bool { return count(r, joined) == 2 })

	// An entry naming a that a holds no connection for.
	v, _ := json.Marshal(presenceValue{Name: "ghost", Nodes: []string{"a"}})
	if _, err := c.presence.Create(ctx, presenceKey("r", "ghost"), v); err != nil {
		t.Fatal(err)
	}
	left := presenceEvent{"r", protocol.PresenceChange{Kind: protocol.PresenceLeft, Name: "ghost"}}
	recB.wait(t, 5*time.Second, "the ghost gone", func(r *recorder) bool { return count(r, left) == 1 })
}
