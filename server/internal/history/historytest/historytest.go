// Package historytest is the conformance suite for history.Log
// implementations: every implementation must pass Run.
package historytest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"chat/protocol"
	"chat/server/internal/history"
)

// Opener creates a fresh, empty log that delivers results to sink.
type Opener func(t *testing.T, sink history.Sink) history.Log

// collector gathers results from the sink and lets tests wait for them.
type collector struct {
	mu      sync.Mutex
	cond    *sync.Cond
	results []history.Result
}

func newCollector() *collector {
	c := &collector{}
	c.cond = sync.NewCond(&c.mu)
	return c
}

func (c *collector) sink(rs []history.Result) {
	c.mu.Lock()
	c.results = append(c.results, rs...)
	c.mu.Unlock()
	c.cond.Broadcast()
}

// wait returns the first n results, failing the test after 10 seconds.
func (c *collector) wait(t *testing.T, n int) []history.Result {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	timer := time.AfterFunc(10*time.Second, c.cond.Broadcast)
	defer timer.Stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.results) < n {
		if time.Now().After(deadline) {
			t.Fatalf("got %d results, want %d", len(c.results), n)
		}
		c.cond.Wait()
	}
	return append([]history.Result(nil), c.results[:n]...)
}

func appendAll(t *testing.T, log history.Log, reqs ...*history.Request) {
	t.Helper()
	for _, r := range reqs {
		if err := log.Append(r); err != nil {
			t.Fatal(err)
		}
	}
}

func req(room, sender, id, text string) *history.Request {
	return &history.Request{Room: room, Sender: sender, ID: id, Text: text, Tag: id}
}

// Run runs the conformance suite against logs made by open.
func Run(t *testing.T, open Opener) {
	ctx := context.Background()

	t.Run("SequencesPerRoomWithoutGaps", func(t *testing.T) {
		c := newCollector()
		log := open(t, c.sink)
		for i := range 50 {
			room := []string{"a", "b"}[i%2]
			appendAll(t, log, req(room, "alice", fmt.Sprint("id", i), fmt.Sprint("text ", i)))
		}
		next := map[string]uint64{"a": 1, "b": 1}
		for i, r := range c.wait(t, 50) {
			if r.Err != nil || r.Duplicate {
				t.Fatalf("result %d: %+v", i, r)
			}
			if r.Request.Tag != fmt.Sprint("id", i) {
				t.Fatalf("result %d is for %v: results out of order", i, r.Request.Tag)
			}
			if r.Msg.Seq != next[r.Msg.Room] {
				t.Fatalf("room %s: seq %d, want %d", r.Msg.Room, r.Msg.Seq, next[r.Msg.Room])
			}
			next[r.Msg.Room]++
			if r.Msg.Time == 0 || r.Msg.Text != fmt.Sprint("text ", i) || r.Msg.Sender != "alice" {
				t.Fatalf("result %d: %+v", i, r.Msg)
			}
		}
	})

	t.Run("DeduplicatesBySenderAndID", func(t *testing.T) {
		c := newCollector()
		log := open(t, c.sink)
		appendAll(t, log, req("r", "alice", "x", "first"))
		first := c.wait(t, 1)[0]
		appendAll(t, log,
			req("r", "Alice", "x", "again, other case"), // the same sender: names compare by key
			req("r", "bob", "x", "bob's own x"),         // another sender's id space
			req("s", "alice", "x", "another room"),
			req("r", "alice", "y", "new"),
			req("r", "alice", "y", "dup in the same batch"),
		)
		rs := c.wait(t, 6)
		want := []struct {
			dup bool
			seq uint64
		}{{false, 1}, {true, 1}, {false, 2}, {false, 1}, {false, 3}, {true, 3}}
		for i, w := range want {
			if rs[i].Duplicate != w.dup || rs[i].Msg.Seq != w.seq {
				t.Errorf("result %d: duplicate=%v seq=%d, want %v %d", i, rs[i].Duplicate, rs[i].Msg.Seq, w.dup, w.seq)
			}
		}
		if dup := rs[1].Msg; dup.Text != "first" || dup.Time != first.Msg.Time {
			t.Errorf("duplicate reports %+v, want the original %+v", dup, first.Msg)
		}
		msgs, err := log.Since(ctx, "r", 0, 100)
		if err != nil || len(msgs) != 3 {
			t.Fatalf("room r holds %d messages (%v), want 3", len(msgs), err)
		}
	})

	t.Run("ReadsRanges", func(t *testing.T) {
		c := newCollector()
		log := open(t, c.sink)
		for i := range 20 {
			appendAll(t, log, req("r", "alice", fmt.Sprint(i), fmt.Sprint(i+1)))
		}
		c.wait(t, 20)
		check := func(name string, msgs []protocol.Msg, err error, from, to uint64) {
			t.Helper()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if uint64(len(msgs)) != to-from+1 {
				t.Fatalf("%s: %d messages, want seq %d..%d", name, len(msgs), from, to)
			}
			for i, m := range msgs {
				if m.Seq != from+uint64(i) || m.Text != fmt.Sprint(m.Seq) || m.Room != "r" {
					t.Fatalf("%s: message %d is %+v", name, i, m)
				}
			}
		}
		msgs, err := log.Since(ctx, "r", 5, 10)
		check("Since(5, 10)", msgs, err, 6, 15)
		msgs, err = log.Since(ctx, "r", 15, 100)
		check("Since(15, 100)", msgs, err, 16, 20)
		msgs, err = log.Last(ctx, "r", 3)
		check("Last(3)", msgs, err, 18, 20)
		msgs, err = log.Last(ctx, "r", 100)
		check("Last(100)", msgs, err, 1, 20)
		if msgs, err := log.Since(ctx, "r", 20, 10); err != nil || len(msgs) != 0 {
			t.Fatalf("Since(head) = %v, %v", msgs, err)
		}
		if msgs, err := log.Last(ctx, "empty", 10); err != nil || len(msgs) != 0 {
			t.Fatalf("Last(empty room) = %v, %v", msgs, err)
		}
		// Older pages: the newest messages below a sequence number.
		msgs, err = log.Before(ctx, "r", 11, 4)
		check("Before(11, 4)", msgs, err, 7, 10)
		msgs, err = log.Before(ctx, "r", 3, 100)
		check("Before(3, 100)", msgs, err, 1, 2)
		msgs, err = log.Before(ctx, "r", 1000, 2)
		check("Before(past the head, 2)", msgs, err, 19, 20)
		for _, before := range []uint64{0, 1} {
			if msgs, err := log.Before(ctx, "r", before, 10); err != nil || len(msgs) != 0 {
				t.Fatalf("Before(%d) = %v, %v", before, msgs, err)
			}
		}
	})

	t.Run("EpochIsStablePerRoom", func(t *testing.T) {
		log := open(t, newCollector().sink)
		a, err := log.Epoch(ctx, "a")
		if err != nil || a == 0 {
			t.Fatalf("Epoch(a) = %d, %v", a, err)
		}
		if again, err := log.Epoch(ctx, "a"); err != nil || again != a {
			t.Fatalf("Epoch(a) again = %d, %v; was %d", again, err, a)
		}
		if b, err := log.Epoch(ctx, "b"); err != nil || b == 0 || b == a {
			t.Fatalf("Epoch(b) = %d, %v (a's is %d): rooms need epochs of their own", b, err, a)
		}
		// A new, empty store is another history: another epoch.
		if other, err := open(t, newCollector().sink).Epoch(ctx, "a"); err != nil || other == a {
			t.Fatalf("a fresh store's epoch %d, %v: the same as the old one's", other, err)
		}
	})

	t.Run("StoresTextByteForByte", func(t *testing.T) {
		c := newCollector()
		log := open(t, c.sink)
		texts := []string{"a~b~c", "line\nline\r\n", "nul\x00byte", "🎉👩‍💻", "שלום עולם", "مرحبا"}
		for i, s := range texts {
			appendAll(t, log, req("r", "Zoë", fmt.Sprint(i), s))
		}
		c.wait(t, len(texts))
		msgs, err := log.Since(ctx, "r", 0, 100)
		if err != nil || len(msgs) != len(texts) {
			t.Fatalf("%d messages, %v", len(msgs), err)
		}
		for i, m := range msgs {
			if m.Text != texts[i] || m.Sender != "Zoë" || m.ID != fmt.Sprint(i) {
				t.Errorf("message %d: %+v", i, m)
			}
		}
	})

	t.Run("ConcurrentAppendsStayContiguous", func(t *testing.T) {
		c := newCollector()
		log := open(t, c.sink)
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := range 100 {
					_ = log.Append(req("r", fmt.Sprint("user", w), fmt.Sprint(i), "x"))
				}
			})
		}
		wg.Wait()
		rs := c.wait(t, 800)
		perSender := map[string]uint64{}
		for i, r := range rs {
			if r.Msg.Seq != uint64(i+1) {
				t.Fatalf("result %d has seq %d", i, r.Msg.Seq)
			}
			if last := perSender[r.Msg.Sender]; r.Msg.Seq <= last {
				t.Fatalf("%s's messages out of order", r.Msg.Sender)
			}
			perSender[r.Msg.Sender] = r.Msg.Seq
		}
	})

	t.Run("FlushAndClose", func(t *testing.T) {
		c := newCollector()
		log := open(t, c.sink)
		for i := range 100 {
			appendAll(t, log, req("r", "alice", fmt.Sprint(i), "x"))
		}
		if err := log.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		c.mu.Lock()
		n := len(c.results)
		c.mu.Unlock()
		if n != 100 {
			t.Fatalf("Flush returned with %d of 100 results delivered", n)
		}
		if err := log.Close(); err != nil {
			t.Fatal(err)
		}
		if err := log.Append(req("r", "alice", "late", "x")); err != history.ErrClosed {
			t.Fatalf("Append after Close = %v, want ErrClosed", err)
		}
	})

	runChanges(t, open)
	runSearch(t, open)
	runFiles(t, open)
}
