package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chat/protocol"
	"chat/server/internal/broker"
	"chat/server/internal/cluster/natstest"
	"chat/server/internal/history"
	"chat/server/internal/sqlite"
)

// change publishes a change through n and waits for its result.
func change(t *testing.T, ctx context.Context, n *Node, rec *recorder, room, sender, id string, kind protocol.ChangeKind, target uint64, text string) broker.Result {
	t.Helper()
	return changeTagged(t, ctx, n, rec, room, sender, id, id, kind, target, text)
}

// changeTagged is change with the publication's Tag (its membership: a
// re-send after a failure comes from a new connection).
func changeTagged(t *testing.T, ctx context.Context, n *Node, rec *recorder, room, sender, id string, tag any, kind protocol.ChangeKind, target uint64, text string) broker.Result {
	t.Helper()
	p := &broker.Publication{Room: room, Sender: sender, ID: id, Tag: tag,
		Change: &history.Change{Kind: kind, Target: target, Text: text}}
	if err := n.Publish(p); err != nil {
		t.Fatal(err)
	}
	if err := n.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, r := range rec.results {
		if r.Request == p {
			return r
		}
	}
	t.Fatalf("no result for %s after Flush", id)
	return broker.Result{}
}

// An edited or deleted message's earlier texts are gone from the stream
// and from the NATS server's files (the originals are erased on disk),
// and unreadable through NATS (no record revision holds them); the reads
// give the current state.
func TestChangedTextsAreGone(t *testing.T) {
	nc := natstest.Start(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := storesDial(t, nc, "node-a")
	rec := newRecorder()
	n := node(t, c, rec, NodeOptions{ID: "node-a"})
	secret := func(i int) string { return fmt.Sprintf("secret text number %d", i) }
	for i := 1; i <= 4; i++ {
		if err := n.Publish(&broker.Publication{Room: "general", Sender: "bob", ID: fmt.Sprint("id", i), Text: secret(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	edited := "an edited text"
	for _, ch := range []struct {
		id     string
		kind   protocol.ChangeKind
		target uint64
		text   string
	}{
		{"e2", protocol.ChangeEdit, 2, edited},                 // a message in the middle
		{"d4", protocol.ChangeDelete, 4, ""},                   // the room's last
		{"e3", protocol.ChangeEdit, 3, "intermediate words"},   // edited, then deleted:
		{"d3", protocol.ChangeDelete, 3, ""},                   // neither text stays
		{"r2", protocol.ChangeReact, 2, protocol.Reactions[0]}, // a reaction keeps the edit
	} {
		if r := change(t, ctx, n, rec, "general", "bob", ch.id, ch.kind, ch.target, ch.text); r.Err != nil {
			t.Fatalf("%s: %v", ch.id, r.Err)
		}
	}
	msgs, err := n.Since(ctx, "general", 0, 20)
	if err != nil || len(msgs) != 9 {
		t.Fatalf("Since = %d messages, %v", len(msgs), err)
	}
	if m := msgs[1]; m.Text != edited || m.Edited == 0 || len(m.Reactions) != 1 || m.Reactions[0].Names[0] != "bob" {
		t.Fatalf("message 2: %+v", m)
	}
	for _, i := range []int{2, 3} {
		if m := msgs[i]; m.Text != "" || m.Edited == 0 || m.Change != nil {
			t.Fatalf("message %d: %+v", i+1, m)
		}
	}
	if m := msgs[0]; m.Text != secret(1) {
		t.Fatalf("message 1 (unchanged): %+v", m)
	}
	gone := []string{secret(2), secret(3), secret(4), "intermediate words"}
	for _, s := range []string{StreamName, "KV_" + BucketRedactions, "KV_" + BucketStates} {
		info, err := c.js.Stream(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		st := info.CachedInfo().State
		for seq := st.FirstSeq; seq <= st.LastSeq; seq++ {
			sm, err := c.getMsgFrom(ctx, s, getReq{Seq: seq})
			if err == errNotFound {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range gone {
				if bytes.Contains(sm.Data, []byte(g)) {
					t.Fatalf("%s message %d still holds %q", s, seq, g)
				}
			}
		}
	}
	// On disk: the originals and the replaced record revisions are
	// overwritten (SecureDeleteMsg).
	dir := nc.Server(0).JetStreamConfig().StoreDir
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, g := range gone {
			if bytes.Contains(b, []byte(g)) {
				return fmt.Errorf("%s still holds %q", path, g)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The room numbers on after its changed last message.
	if err := n.Publish(&broker.Publication{Room: "general", Sender: "bob", ID: "id10", Text: "ten"}); err != nil {
		t.Fatal(err)
	}
	if err := n.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if msgs, err := n.Last(ctx, "general", 1); err != nil || len(msgs) != 1 || msgs[0].Seq != 10 {
		t.Fatalf("Last after the changes: %+v, %v", msgs, err)
	}
}

// Edits and reactions from two nodes at once, to one message, converge:
// every reaction counted once, the text one of the edits, every node
// reading the same state.
func TestConcurrentChangesConverge(t *testing.T) {
	nc := natstest.Start(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ca, cb := storesDial(t, nc, "node-a"), storesDial(t, nc, "node-b")
	ra, rb := newRecorder(), newRecorder()
	na := node(t, ca, ra, NodeOptions{ID: "node-a"})
	nb := node(t, cb, rb, NodeOptions{ID: "node-b"})
	if err := na.Publish(&broker.Publication{Room: "r", Sender: "alice", ID: "m1", Text: "first"}); err != nil {
		t.Fatal(err)
	}
	if err := na.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	const each = 10
	var wg sync.WaitGroup
	for k, n := range []*Node{na, nb} {
		wg.Go(func() {
			for i := range each {
				sender := fmt.Sprintf("user%d-%d", k, i)
				_ = n.Publish(&broker.Publication{Room: "r", Sender: sender, ID: "react",
					Change: &history.Change{Kind: protocol.ChangeReact, Target: 1, Text: protocol.Reactions[1]}})
				_ = n.Publish(&broker.Publication{Room: "r", Sender: "alice", ID: fmt.Sprintf("edit%d-%d", k, i),
					Change: &history.Change{Kind: protocol.ChangeEdit, Target: 1, Text: fmt.Sprintf("edit %d-%d", k, i)}})
			}
		})
	}
	wg.Wait()
	for _, n := range []*Node{na, nb} {
		if err := n.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []*recorder{ra, rb} {
		r.mu.Lock()
		for _, res := range r.results {
			if res.Err != nil {
				t.Errorf("%+v: %v", res.Request, res.Err)
			}
		}
		r.mu.Unlock()
	}
	var first protocol.Msg
	for i, n := range []*Node{na, nb} {
		msgs, err := n.Since(ctx, "r", 0, 100)
		if err != nil || len(msgs) != 1+4*each {
			t.Fatalf("node %d read %d entries, %v", i, len(msgs), err)
		}
		m := msgs[0]
		if len(m.Reactions) != 1 || m.Reactions[0].Count != 2*each || len(m.Reactions[0].Names) != 2*each {
			t.Fatalf("node %d: reactions %+v", i, m.Reactions)
		}
		if i == 0 {
			first = m
		} else if m.Text != first.Text || m.Edited != first.Edited {
			t.Fatalf("the nodes read %q and %q", first.Text, m.Text)
		}
		// The last change entry's State is the message as read.
		last := msgs[len(msgs)-1]
		if last.Change == nil || last.Change.State == nil || last.Change.State.Text != m.Text {
			t.Fatalf("node %d: the last entry %+v", i, last.Change)
		}
	}
}

// A change of the room's last message while another node publishes to
// the room: numbering stays gap-free and unique, the change applies.
func TestChangingTheLastMessageWhilePublishing(t *testing.T) {
	nc := natstest.Start(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ca, cb := storesDial(t, nc, "node-a"), storesDial(t, nc, "node-b")
	ra, rb := newRecorder(), newRecorder()
	na := node(t, ca, ra, NodeOptions{ID: "node-a"})
	nb := node(t, cb, rb, NodeOptions{ID: "node-b"})
	if _, err := na.Subscribe(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	const n = 60
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			_ = nb.Publish(&broker.Publication{Room: "r", Sender: "bob", ID: fmt.Sprint("b", i), Text: fmt.Sprint("bob ", i)})
		}
	}()
	// alice edits her own last message again and again while bob's land.
	var mine []uint64
	for i := range 10 {
		if err := na.Publish(&broker.Publication{Room: "r", Sender: "alice", ID: fmt.Sprint("a", i), Text: "typo"}); err != nil {
			t.Fatal(err)
		}
		if err := na.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		ra.mu.Lock()
		seq := ra.results[len(ra.results)-1].Msg.Seq
		ra.mu.Unlock()
		mine = append(mine, seq)
		if r := change(t, ctx, na, ra, "r", "alice", fmt.Sprint("e", i), protocol.ChangeEdit, seq, fmt.Sprint("fixed ", i)); r.Err != nil {
			t.Fatalf("edit of %d: %v", seq, r.Err)
		}
	}
	<-done
	if err := nb.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	msgs, err := nb.Since(ctx, "r", 0, 200)
	if err != nil || len(msgs) != n+20 {
		t.Fatalf("Since = %d, %v", len(msgs), err)
	}
	for i, m := range msgs {
		if m.Seq != uint64(i+1) {
			t.Fatalf("seq %d at %d", m.Seq, i)
		}
	}
	for i, seq := range mine {
		if m := msgs[seq-1]; m.Text != fmt.Sprint("fixed ", i) || m.Sender != "alice" {
			t.Fatalf("alice's message %d: %+v", seq, m)
		}
	}
	// node-a delivered every seq once, in order, the edited ones with
	// their records' state.
	ra.wait(t, 10*time.Second, "node-a delivers everything", func(r *recorder) bool {
		return len(r.msgs) > 0 && r.msgs[len(r.msgs)-1].Seq == n+20
	})
	ra.mu.Lock()
	defer ra.mu.Unlock()
	for i, m := range ra.msgs {
		if m.Seq != uint64(i+1) {
			t.Fatalf("node-a delivered seq %d at %d", m.Seq, i)
		}
	}
}

// A message is found on every node once its index reached it; an edit
// or a delete changes what is found; a node started again keeps its
// index and catches up from its stored position.
func TestSearchFollowsTheStream(t *testing.T) {
	nc := natstest.Start(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ca, cb := storesDial(t, nc, "node-a"), storesDial(t, nc, "node-b")
	ra := newRecorder()
	na := node(t, ca, ra, NodeOptions{ID: "node-a"})
	dir := t.TempDir()
	nb, err := cb.Node(newRecorder(), NodeOptions{ID: "node-b", SearchDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	find := func(n *Node, text string) []uint64 {
		t.Helper()
		if err := n.SearchSynced(ctx); err != nil {
			t.Fatal(err)
		}
		hits, _, err := n.Search(ctx, history.Query{Rooms: []string{"r"}, Text: text})
		if err != nil {
			t.Fatal(err)
		}
		var seqs []uint64
		for _, h := range hits {
			seqs = append(seqs, h.Seq)
		}
		return seqs
	}
	for i, text := range []string{"the quick brown fox", "lazy dogs sleep", "foxes are quick"} {
		if err := na.Publish(&broker.Publication{Room: "r", Sender: "bob", ID: fmt.Sprint("m", i), Text: text}); err != nil {
			t.Fatal(err)
		}
	}
	if err := na.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*Node{na, nb} {
		if got := find(n, "quick"); fmt.Sprint(got) != "[3 1]" {
			t.Fatalf("quick on %s: %v", n.ID(), got)
		}
	}
	change(t, ctx, na, ra, "r", "bob", "e1", protocol.ChangeEdit, 1, "the slow brown bear")
	change(t, ctx, na, ra, "r", "bob", "d3", protocol.ChangeDelete, 3, "")
	for _, n := range []*Node{na, nb} {
		if got := find(n, "quick"); len(got) != 0 {
			t.Fatalf("quick after the changes on %s: %v", n.ID(), got)
		}
		if got := find(n, "bear"); fmt.Sprint(got) != "[1]" {
			t.Fatalf("bear on %s: %v", n.ID(), got)
		}
	}
	// node-b stops; meanwhile a message and an edit; it starts again on
	// its index directory and catches up.
	if err := nb.Close(); err != nil {
		t.Fatal(err)
	}
	if err := na.Publish(&broker.Publication{Room: "r", Sender: "bob", ID: "m9", Text: "a zebra passes"}); err != nil {
		t.Fatal(err)
	}
	change(t, ctx, na, ra, "r", "bob", "e2", protocol.ChangeEdit, 2, "lazy cats sleep")
	nb, err = cb.Node(newRecorder(), NodeOptions{ID: "node-b", SearchDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer nb.Close()
	nb.search.mu.Lock()
	pos := nb.search.pos
	nb.search.mu.Unlock()
	if pos == 0 {
		t.Fatal("the restarted index starts from scratch")
	}
	for q, want := range map[string]string{"zebra": "[6]", "dogs": "[]", "cats": "[2]", "bear": "[1]", "quick": "[]"} {
		if got := find(nb, q); fmt.Sprint(got) != want && !(want == "[]" && len(got) == 0) {
			t.Fatalf("%s on the restarted node: %v, want %s", q, got, want)
		}
	}
}

// Messages history retention removed are not found either: the index
// drops a room's messages beyond the count the stream keeps.
func TestSearchForgetsWhatRetentionRemoved(t *testing.T) {
	nc := natstest.Start(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := dial(t, nc, 0, Options{Name: "node-a", Retention: &history.Retention{Messages: 2}})
	n := node(t, c, newRecorder(), NodeOptions{ID: "node-a"})
	for i := 1; i <= 4; i++ {
		if err := n.Publish(&broker.Publication{Room: "r", Sender: "bob", ID: fmt.Sprint("m", i), Text: fmt.Sprint("word ", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := n.SearchSynced(ctx); err != nil {
		t.Fatal(err)
	}
	hits, more, err := n.Search(ctx, history.Query{Rooms: []string{"r"}, Text: "word"})
	if err != nil || more || len(hits) != 2 || hits[0].Seq != 4 || hits[1].Seq != 3 {
		t.Fatalf("Search = %+v, %v, %v; want 4 and 3", hits, more, err)
	}
}

// A message stored with reactions (an import of a single server's
// history) keeps them when it is reacted to again.
func TestImportedReactionsAreKept(t *testing.T) {
	nc := natstest.Start(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := storesDial(t, nc, "node-a")
	rec := newRecorder()
	n := node(t, c, rec, NodeOptions{ID: "node-a"})
	thumbs := protocol.Reactions[0]
	err := c.Append(ctx, []protocol.Msg{{Room: "r", Seq: 1, Time: 1, Sender: "alice", ID: "m1", Text: "imported",
		Reactions: []protocol.Reaction{{Emoji: thumbs, Count: 1, Names: []string{"Carol"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{"bob", "carol"} { // carol's again: no change
		if r := change(t, ctx, n, rec, "r", who, "react-"+who, protocol.ChangeReact, 1, thumbs); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	msgs, err := n.Since(ctx, "r", 0, 10)
	if err != nil || len(msgs) != 3 {
		t.Fatalf("Since = %+v, %v", msgs, err)
	}
	if rs := msgs[0].Reactions; len(rs) != 1 || rs[0].Count != 2 || fmt.Sprint(rs[0].Names) != "[Carol bob]" {
		t.Fatalf("reactions %+v", rs)
	}
	// Message 1, changed, is erased from the stream but not removed:
	// the floor stays 0 (a JOIN replays it).
	if f, err := n.Floor(ctx, "r"); err != nil || f != 0 {
		t.Fatalf("Floor = %d, %v; want 0", f, err)
	}
}

// A deleted message's text and words leave the node's index file (FTS5
// 'delete' with secure-delete; the table's rows overwritten).
func TestSearchIndexForgetsDeletedText(t *testing.T) {
	nc := natstest.Start(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := storesDial(t, nc, "node-a")
	dir := t.TempDir()
	rec := newRecorder()
	open := func() *Node {
		t.Helper()
		n, err := c.Node(rec, NodeOptions{ID: "node-a", SearchDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	holds := func(b []byte) bool {
		t.Helper()
		found := false
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(path)
			found = found || bytes.Contains(data, b)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return found
	}
	secret := fmt.Sprint("Zyxwvutsrq", time.Now().UnixNano())
	folded := []byte(strings.ToLower(secret))
	n := open()
	for i := range 200 { // more than one page of index
		if err := n.Publish(&broker.Publication{Room: "r", Sender: "bob", ID: fmt.Sprint("b", i), Text: fmt.Sprint("filler message number ", i, " with words")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.Publish(&broker.Publication{Room: "r", Sender: "alice", ID: "a1", Text: "my password is " + secret}); err != nil {
		t.Fatal(err)
	}
	if err := n.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := n.SearchSynced(ctx); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if !holds([]byte(secret)) || !holds(folded) {
		t.Fatal("the message is not in the index file: this test would prove nothing")
	}
	n = open()
	defer n.Close()
	if r := change(t, ctx, n, rec, "r", "alice", "d1", protocol.ChangeDelete, 201, ""); r.Err != nil {
		t.Fatal(r.Err)
	}
	if err := n.SearchSynced(ctx); err != nil {
		t.Fatal(err)
	}
	if hits, _, err := n.Search(ctx, history.Query{Rooms: []string{"r"}, Text: secret}); err != nil || len(hits) != 0 {
		t.Fatalf("search after the delete: %+v, %v", hits, err)
	}
	// While the node runs: search.db-wal held the pages' earlier images
	// until the checkpoint that the delete asked for emptied it.
	select {
	case <-n.search.wiper.Wiped():
	case <-ctx.Done():
		t.Fatal("the index's write-ahead log was not emptied after the delete")
	}
	if holds([]byte(secret)) || holds(folded) {
		t.Fatal("the deleted text or its word is still in the running node's index files")
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if holds([]byte(secret)) || holds(folded) {
		t.Fatal("the deleted text or its word is still in the index file")
	}
}

// A single server's history with replies, edits, reactions and a
// deletion goes over in its current state, change entries included, and
// takes further changes.
func TestMigrateCopiesChanges(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "chat.db")
	log, err := sqlite.Open(path, func([]history.Result) {}, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	thumbs := protocol.Reactions[0]
	for _, r := range []*history.Request{
		{Room: "r", Sender: "alice", ID: "m1", Text: "first draft"},
		{Room: "r", Sender: "bob", ID: "m2", Text: "a reply", Reply: 1},
		{Room: "r", Sender: "bob", ID: "m3", Text: "regrettable"},
		{Room: "r", Sender: "alice", ID: "c1", Change: &history.Change{Kind: protocol.ChangeEdit, Target: 1, Text: "final text"}},
		{Room: "r", Sender: "carol", ID: "c2", Change: &history.Change{Kind: protocol.ChangeReact, Target: 1, Text: thumbs}},
		{Room: "r", Sender: "bob", ID: "c3", Change: &history.Change{Kind: protocol.ChangeDelete, Target: 3}},
	} {
		if err := log.Append(r); err != nil {
			t.Fatal(err)
		}
		if err := log.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}
	c := storesDial(t, natstest.Start(t, 1), "node-a")
	if st, err := Migrate(ctx, path, c, nil); err != nil || st.Messages != 6 {
		t.Fatalf("Migrate = %+v, %v", st, err)
	}
	rec := newRecorder()
	n := node(t, c, rec, NodeOptions{ID: "node-a"})
	msgs, err := n.Since(ctx, "r", 0, 10)
	if err != nil || len(msgs) != 6 {
		t.Fatalf("Since = %+v, %v", msgs, err)
	}
	if m := msgs[0]; m.Text != "final text" || m.Edited == 0 || len(m.Reactions) != 1 || m.Reactions[0].Names[0] != "carol" {
		t.Fatalf("message 1: %+v", m)
	}
	if m := msgs[1]; m.Reply != 1 || m.Text != "a reply" {
		t.Fatalf("message 2: %+v", m)
	}
	if m := msgs[2]; m.Text != "" || m.Edited == 0 {
		t.Fatalf("message 3: %+v", m)
	}
	for i, kind := range []protocol.ChangeKind{protocol.ChangeEdit, protocol.ChangeReact, protocol.ChangeDelete} {
		if m := msgs[3+i]; m.Change == nil || m.Change.Kind != kind || m.Text != "" {
			t.Fatalf("entry %d: %+v", 4+i, m)
		}
	}
	// carol's reaction is known by her name: set again, nothing changes;
	// dave's adds one.
	for _, who := range []string{"carol", "dave"} {
		if r := change(t, ctx, n, rec, "r", who, "again-"+who, protocol.ChangeReact, 1, thumbs); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	if r := change(t, ctx, n, rec, "r", "bob", "e3", protocol.ChangeEdit, 3, "back"); !errors.Is(r.Err, history.ErrNoMessage) {
		t.Fatalf("edit of the deleted message: %+v", r)
	}
	msgs, err = n.Since(ctx, "r", 0, 10)
	if err != nil || len(msgs) != 8 || msgs[0].Reactions[0].Count != 2 {
		t.Fatalf("after more reactions: %+v, %v", msgs, err)
	}
}

// A record keeps at most MaxReactors reactions; beyond, a reaction
// changes nothing, an unreaction still does.
func TestReactionsAreBounded(t *testing.T) {
	thumbs := protocol.Reactions[0]
	rec := &record{Reacts: map[string][]reactor{}}
	for i := range MaxReactors {
		name := fmt.Sprint("user", i)
		rec.Reacts[thumbs] = append(rec.Reacts[thumbs], reactor{Key: protocol.Key(name), Name: name})
	}
	state := protocol.Msg{Seq: 1, Sender: "alice", Text: "popular"}
	if err := apply(&state, rec, "latecomer", &history.Change{Kind: protocol.ChangeReact, Target: 1, Text: thumbs}, 5); err != nil {
		t.Fatal(err)
	}
	if len(state.Reactions) != 1 || state.Reactions[0].Count != MaxReactors || len(state.Reactions[0].Names) != protocol.MaxReactionNames {
		t.Fatalf("beyond the bound: %d reactions, count %d", len(state.Reactions), state.Reactions[0].Count)
	}
	if err := apply(&state, rec, "USER0", &history.Change{Kind: protocol.ChangeUnreact, Target: 1, Text: thumbs}, 6); err != nil {
		t.Fatal(err)
	}
	if state.Reactions[0].Count != MaxReactors-1 || state.Reactions[0].Names[0] != "user1" {
		t.Fatalf("after an unreaction: count %d, first %q", state.Reactions[0].Count, state.Reactions[0].Names[0])
	}
	if data, _ := json.Marshal(rec); len(data) > 1<<20 {
		t.Fatalf("a full record takes %d bytes", len(data))
	}
}

// A backup of a cluster holds the messages in their current state and
// the change entries, as the single server keeps them; migrated into an
// empty cluster it reads the same.
func TestExportCarriesChanges(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := storesDial(t, natstest.Start(t, 1), "node-a")
	rec := newRecorder()
	n := node(t, a, rec, NodeOptions{ID: "node-a"})
	for i, text := range []string{"one", "two", "three"} {
		if err := n.Publish(&broker.Publication{Room: "r", Sender: "alice", ID: fmt.Sprint("m", i), Text: text, Reply: uint64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	thumbs := protocol.Reactions[0]
	for _, ch := range []struct {
		id, who string
		kind    protocol.ChangeKind
		target  uint64
		text    string
	}{
		{"e1", "alice", protocol.ChangeEdit, 1, "one, edited"},
		{"r1", "bob", protocol.ChangeReact, 1, thumbs},
		{"d3", "alice", protocol.ChangeDelete, 3, ""}, // the last message
		{"r2", "carol", protocol.ChangeReact, 2, thumbs},
	} {
		if r := change(t, ctx, n, rec, "r", ch.who, ch.id, ch.kind, ch.target, ch.text); r.Err != nil {
			t.Fatalf("%s: %v", ch.id, r.Err)
		}
	}
	want, err := n.Since(ctx, "r", 0, 20)
	if err != nil || len(want) != 7 {
		t.Fatalf("Since = %d, %v", len(want), err)
	}
	file := filepath.Join(t.TempDir(), "backup.db")
	w, err := sqlite.Create(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Export(ctx, w); err != nil {
		w.Abort()
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	same := func(where string, got []protocol.Msg) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d entries, want %d", where, len(got), len(want))
		}
		for i := range want {
			g, w := got[i], want[i]
			if g.Seq != w.Seq || g.Text != w.Text || g.Reply != w.Reply || (g.Edited == 0) != (w.Edited == 0) ||
				!sameReactionCounts(g.Reactions, w.Reactions) || (g.Change == nil) != (w.Change == nil) {
				t.Fatalf("%s: entry %d is %+v, want %+v", where, w.Seq, g, w)
			}
			if w.Change != nil && (g.Change.Kind != w.Change.Kind || g.Change.Target != w.Change.Target ||
				g.Change.Emoji != w.Change.Emoji || g.Change.State == nil || g.Change.State.Text != w.Change.State.Text) {
				t.Fatalf("%s: change entry %d is %+v, want %+v", where, w.Seq, g.Change, w.Change)
			}
		}
	}
	log, err := sqlite.Open(file, func([]history.Result) {}, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := log.Since(ctx, "r", 0, 20)
	if cerr := log.Close(); err != nil || cerr != nil {
		t.Fatal(err, cerr)
	}
	same("the backup file", got)

	b := storesDial(t, natstest.Start(t, 1), "node-b")
	if _, err := b.RenewEpoch(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := Migrate(ctx, file, b, nil); err != nil {
		t.Fatal(err)
	}
	nb := node(t, b, newRecorder(), NodeOptions{ID: "node-b"})
	got, err = nb.Since(ctx, "r", 0, 20)
	if err != nil {
		t.Fatal(err)
	}
	same("the restored cluster", got)
}

func sameReactionCounts(a, b []protocol.Reaction) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Emoji != b[i].Emoji || a[i].Count != b[i].Count {
			return false
		}
	}
	return true
}

// A change that fails after writing its record (a timeout, a dying node)
// is finished by its re-send: the original's text leaves the stream, the
// entry is stored and the search index drops the text. A different
// change of the message erases a left-over original even when it is
// refused.
func TestAChangeFailedHalfwayIsFinishedByItsResend(t *testing.T) {
	nc := natstest.Start(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := storesDial(t, nc, "node-a")
	rec := newRecorder()
	n := node(t, c, rec, NodeOptions{ID: "node-a"})
	secret := fmt.Sprint("Qwertzuiop", time.Now().UnixNano())
	other := fmt.Sprint("Asdfghjkl", time.Now().UnixNano())
	for i, text := range []string{"first", "my password is " + secret, "third", "and " + other, "fifth"} {
		if err := n.Publish(&broker.Publication{Room: "r", Sender: "alice", ID: fmt.Sprint("m", i), Text: text}); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	inStream := func(s string) bool {
		t.Helper()
		for _, name := range []string{StreamName, "KV_" + BucketStates} {
			info, err := c.js.Stream(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			st := info.CachedInfo().State
			for seq := st.FirstSeq; seq <= st.LastSeq && st.Msgs > 0; seq++ {
				sm, err := c.getMsgFrom(ctx, name, getReq{Seq: seq})
				if err == errNotFound {
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				if bytes.Contains(sm.Data, []byte(s)) {
					return true
				}
			}
		}
		return false
	}
	fault := errors.New("injected fault after the record")
	c.afterRecord = func() error { return fault }
	if r := change(t, ctx, n, rec, "r", "alice", "d2", protocol.ChangeDelete, 2, ""); !errors.Is(r.Err, fault) {
		t.Fatalf("the delete with a fault: %v", r.Err)
	}
	if r := change(t, ctx, n, rec, "r", "alice", "e4", protocol.ChangeEdit, 4, "nothing to see"); !errors.Is(r.Err, fault) {
		t.Fatalf("the edit with a fault: %v", r.Err)
	}
	if !inStream(secret) || !inStream(other) {
		t.Fatal("the originals are gone after the faults: this test would prove nothing")
	}
	// Meanwhile reads give the records, not the originals beside them.
	if msgs, err := n.Since(ctx, "r", 0, 20); err != nil || len(msgs) != 5 || msgs[1].Text != "" || msgs[3].Text != "nothing to see" {
		t.Fatalf("Since between the fault and the re-send: %+v, %v", msgs, err)
	}
	c.afterRecord = nil

	// The delete's re-send finishes it.
	r := changeTagged(t, ctx, n, rec, "r", "alice", "d2", "again", protocol.ChangeDelete, 2, "")
	if r.Err != nil || r.Duplicate || r.Msg.Change == nil || r.Msg.Change.State == nil || r.Msg.Change.State.Text != "" {
		t.Fatalf("the delete's re-send: %+v", r)
	}
	// A reaction (not the failed edit) to the edited message erases its
	// original too.
	if r := change(t, ctx, n, rec, "r", "bob", "x4", protocol.ChangeReact, 4, protocol.Reactions[0]); r.Err != nil {
		t.Fatalf("a reaction after the failed edit: %v", r.Err)
	}
	if inStream(secret) || inStream(other) {
		t.Fatal("an original's text is still in the stream")
	}
	msgs, err := n.Since(ctx, "r", 0, 20)
	if err != nil || len(msgs) != 7 {
		t.Fatalf("Since = %+v, %v", msgs, err)
	}
	if m := msgs[1]; m.Text != "" || m.Edited == 0 {
		t.Fatalf("the deleted message: %+v", m)
	}
	if m := msgs[3]; m.Text != "nothing to see" || len(m.Reactions) != 1 {
		t.Fatalf("the edited message: %+v", m)
	}
	if m := msgs[5]; m.Change == nil || m.Change.Kind != protocol.ChangeDelete || m.Change.Target != 2 || m.Sender != "alice" {
		t.Fatalf("the delete's entry: %+v", m)
	}
	// The edit's re-send is stored too, without a second application.
	if r := changeTagged(t, ctx, n, rec, "r", "alice", "e4", "again", protocol.ChangeEdit, 4, "nothing to see"); r.Err != nil || r.Msg.Seq != 8 || r.Msg.Change.State.Text != "nothing to see" {
		t.Fatalf("the edit's re-send: %+v", r)
	}
	if err := n.SearchSynced(ctx); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{secret, other} {
		if hits, _, err := n.Search(ctx, history.Query{Rooms: []string{"r"}, Text: s}); err != nil || len(hits) != 0 {
			t.Fatalf("search for %s: %+v, %v", s, hits, err)
		}
	}
}

// A delivered change entry gets its target's state even when the first
// reads of the record fail (the consumer tries again within its bound).
func TestDeliveredChangeStateSurvivesAFailedRead(t *testing.T) {
	nc := natstest.Start(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ca, cb := storesDial(t, nc, "node-a"), storesDial(t, nc, "node-b")
	var faults atomic.Int32
	cb.stateReadFault = func() error {
		if faults.Add(1) <= 2 {
			return errors.New("injected: the record read timed out")
		}
		return nil
	}
	ra, rb := newRecorder(), newRecorder()
	a := node(t, ca, ra, NodeOptions{ID: "node-a"})
	b := node(t, cb, rb, NodeOptions{ID: "node-b"})
	if _, err := b.Subscribe(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if err := a.Publish(&broker.Publication{Room: "r", Sender: "alice", ID: "m1", Text: "hello"}); err != nil {
		t.Fatal(err)
	}
	if r := change(t, ctx, a, ra, "r", "bob", "x1", protocol.ChangeReact, 1, protocol.Reactions[0]); r.Err != nil {
		t.Fatal(r.Err)
	}
	var got *protocol.Msg
	rb.wait(t, 30*time.Second, "the change entry at node b", func(rb *recorder) bool {
		for i := range rb.msgs {
			if rb.msgs[i].Change != nil {
				m := rb.msgs[i]
				got = &m
				return true
			}
		}
		return false
	})
	if faults.Load() < 3 {
		t.Fatalf("%d record reads: the faults were not met", faults.Load())
	}
	if got.Change.State == nil || len(got.Change.State.Reactions) != 1 {
		t.Fatalf("delivered entry: %+v (state %+v)", got, got.Change.State)
	}
}
