package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"chat/protocol"
	"chat/server/internal/history"
)

// TestFTS5IsCompiledIn: the SQLite of modernc.org/sqlite has FTS5 with
// what the search index needs (tables without content, the 'delete'
// command, secure-delete, prefix indexes, the unicode61 tokenizer
// folding diacritics).
func TestFTS5IsCompiledIn(t *testing.T) {
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, q := range []string{
		"CREATE VIRTUAL TABLE w USING fts5(text, content='', tokenize='unicode61 remove_diacritics 2', prefix='2 3')",
		"INSERT INTO w (w, rank) VALUES ('secure-delete', 1)",
		"INSERT INTO w (rowid, text) VALUES (1, 'Crème brûlée'), (2, 'creme brulee')",
		"INSERT INTO w (w, rowid, text) VALUES ('delete', 2, 'creme brulee')",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var rowid int64
	if err := db.QueryRow(`SELECT rowid FROM w WHERE w MATCH '"creme" "brul"*'`).Scan(&rowid); err != nil || rowid != 1 {
		t.Fatalf("match: %d, %v", rowid, err)
	}
}

// words lists the rowids the search index holds for an FTS5 query,
// whether or not a message has them.
func indexed(t *testing.T, l *Log, query string) []int64 {
	t.Helper()
	rows, err := l.read.Query("SELECT rowid FROM words WHERE words MATCH ? ORDER BY rowid", query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var r int64
		if err := rows.Scan(&r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func open(t *testing.T, path string, opts Options) (*Log, *results) {
	t.Helper()
	var res results
	l, err := Open(path, res.sink, opts)
	if err != nil {
		t.Fatal(err)
	}
	return l, &res
}

func do(t *testing.T, l *Log, res *results, reqs ...*history.Request) []history.Result {
	t.Helper()
	res.mu.Lock()
	n := len(res.all)
	res.mu.Unlock()
	for _, r := range reqs {
		if err := l.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	res.mu.Lock()
	defer res.mu.Unlock()
	return slices.Clone(res.all[n:])
}

// fileHolds reports whether the database's files (the main file and any
// WAL) hold b anywhere.
func fileHolds(t *testing.T, path string, b []byte) bool {
	t.Helper()
	for _, p := range []string{path, path + "-wal"} {
		data, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if bytes.Contains(data, b) {
			return true
		}
	}
	return false
}

// TestDeletedTextLeavesTheFile: a deleted message's text is gone from
// the database file, the message's row and the search index alike, not
// only hidden: the bytes are not in the file once the server closed it.
func TestDeletedTextLeavesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chat.db")
	secret := "Zyxwvutsrq" + fmt.Sprint(time.Now().UnixNano()) // one word
	l, res := open(t, path, Options{})
	var reqs []*history.Request
	for i := range 200 { // enough for the index to have more than one page
		reqs = append(reqs, &history.Request{Room: "r", Sender: "bob", ID: fmt.Sprint("b", i), Text: fmt.Sprint("filler message number ", i, " with words")})
	}
	reqs = append(reqs, &history.Request{Room: "r", Sender: "alice", ID: "a1", Text: "my password is " + secret})
	do(t, l, res, reqs...)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Both the text and its folded word (the index's) are in the file.
	folded := []byte(strings.ToLower(secret))
	if !fileHolds(t, path, []byte(secret)) || !fileHolds(t, path, folded) {
		t.Fatal("the message is not in the file: this test would prove nothing")
	}
	l, res = open(t, path, Options{})
	rs := do(t, l, res, &history.Request{Room: "r", Sender: "alice", ID: "d1", Change: &history.Change{Kind: protocol.ChangeDelete, Target: 201}})
	if rs[0].Err != nil || rs[0].Msg.Change.State.Text != "" {
		t.Fatalf("delete: %+v", rs[0])
	}
	if got := indexed(t, l, `"`+string(folded)+`"`); len(got) != 0 {
		t.Fatalf("the index still lists the deleted message: %v", got)
	}
	if hits, _, err := l.Search(context.Background(), history.Query{Rooms: []string{"r"}, Text: secret}); err != nil || len(hits) != 0 {
		t.Fatalf("search: %+v, %v", hits, err)
	}
	// While the store runs (Close checkpoints anyway): the write-ahead
	// log, which held the page's earlier image, is emptied after the
	// delete, and neither file holds the text any more.
	select {
	case <-l.wiper.wiped:
	case <-time.After(10 * time.Second):
		t.Fatal("the write-ahead log was not emptied within 10 s of the delete")
	}
	if fileHolds(t, path, []byte(secret)) || fileHolds(t, path, folded) {
		t.Error("the deleted text is in chat.db or chat.db-wal of the running store")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if fileHolds(t, path, []byte(secret)) {
		t.Error("the deleted text is still in the file")
	}
	if fileHolds(t, path, folded) {
		t.Error("the deleted text's word is still in the file (search index)")
	}
}

// TestSearchIndexFollowsEveryWriter: edits, deletions, moderation's
// redaction and retention keep the index to the messages' text now, in
// their own transactions.
func TestSearchIndexFollowsEveryWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chat.db")
	l, res := open(t, path, Options{Retention: history.Retention{Messages: 4}, RetentionEvery: time.Hour})
	defer l.Close()
	do(t, l, res,
		&history.Request{Room: "r", Sender: "alice", ID: "1", Text: "apple one"},
		&history.Request{Room: "r", Sender: "alice", ID: "2", Text: "apple two"},
		&history.Request{Room: "r", Sender: "alice", ID: "3", Text: "apple three"},
		// Edited and deleted in the batch that stores them.
		&history.Request{Room: "s", Sender: "alice", ID: "4", Text: "banana"},
		&history.Request{Room: "s", Sender: "alice", ID: "e4", Change: &history.Change{Kind: protocol.ChangeEdit, Target: 1, Text: "cherry"}},
		&history.Request{Room: "s", Sender: "alice", ID: "5", Text: "damson"},
		&history.Request{Room: "s", Sender: "alice", ID: "d5", Change: &history.Change{Kind: protocol.ChangeDelete, Target: 3}},
	)
	for q, want := range map[string]int{`"apple"`: 3, `"banana"`: 0, `"cherry"`: 1, `"damson"`: 0} {
		if got := indexed(t, l, q); len(got) != want {
			t.Errorf("%s: %d rows in the index, want %d", q, len(got), want)
		}
	}
	mod, err := OpenModeration(path, ModerationOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer mod.Close()
	if ok, err := mod.Redact(context.Background(), "r", 2); !ok || err != nil {
		t.Fatalf("Redact: %v, %v", ok, err)
	}
	if got := indexed(t, l, `"two"`); len(got) != 0 {
		t.Fatalf("a redacted message in the index: %v", got)
	}
	// Retention keeps 4 entries of r: 1 goes once r has 5.
	do(t, l, res,
		&history.Request{Room: "r", Sender: "bob", ID: "x", Change: &history.Change{Kind: protocol.ChangeReact, Target: 1, Text: protocol.Reactions[0]}},
		&history.Request{Room: "r", Sender: "alice", ID: "6", Text: "elderberry"},
	)
	waitBounds(t, l, "r", func(floor, _ uint64) bool { return floor == 1 })
	if got := indexed(t, l, `"one"`); len(got) != 0 {
		t.Fatalf("a message removed by retention is in the index: %v", got)
	}
	var n int
	if err := l.read.QueryRow("SELECT count(*) FROM reactions").Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d reactions of removed messages, %v", n, err)
	}
	if got := indexed(t, l, `"apple"`); len(got) != 1 {
		t.Fatalf("apple: %v, want message 3 only", got)
	}
}

// schemaV6File is the schema version 6 servers created.
const schemaV6File = schemaV3 + schemaV4 + schemaV5 + schemaV6 + "PRAGMA user_version = 6;"

// TestMigrationIndexesExistingMessages: a version 6 database's messages
// are indexed when the log first opens it, oldest first, in batches;
// what comes later is newer in the index too.
func TestMigrationIndexesExistingMessages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chat.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(schemaV6File); err != nil {
		t.Fatal(err)
	}
	n := backlogBatch*2 + 17
	tx, _ := db.Begin()
	for i := range n {
		room := fmt.Sprint("room", i%7)
		text := fmt.Sprint("old message ", i)
		if i == 3 {
			text = "" // redacted under version 6
		}
		if _, err := tx.Exec("INSERT INTO messages VALUES (?, ?, ?, 'alice', 'alice', ?, ?)",
			room, i/7+1, 1000+i, []byte(fmt.Sprint("id", i)), []byte(text)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	db.Close()
	var logged bytes.Buffer
	l, res := open(t, path, Options{Logger: slogTo(&logged)})
	defer l.Close()
	if !strings.Contains(logged.String(), "every message is indexed") || !strings.Contains(logged.String(), fmt.Sprint("messages=", n-1)) {
		t.Errorf("log: %s", logged.String())
	}
	var todo int
	if err := l.read.QueryRow("SELECT count(*) FROM search_todo").Scan(&todo); err != nil || todo != 0 {
		t.Fatalf("%d messages left to index, %v", todo, err)
	}
	all := make([]string, 7)
	for i := range all {
		all[i] = fmt.Sprint("room", i)
	}
	hits, more, err := l.Search(context.Background(), history.Query{Rooms: all, Text: "old message"})
	if err != nil || !more || len(hits) != history.DefaultSearchLimit || hits[0].Text != fmt.Sprint("old message ", n-1) ||
		hits[1].Text != fmt.Sprint("old message ", n-2) {
		t.Fatalf("search: %d hits (%+v), more %v, %v; want the newest first", len(hits), hits[:min(2, len(hits))], more, err)
	}
	// Every message but the redacted one, under the rid of its place
	// in time.
	if got := indexed(t, l, `"old"`); len(got) != n-1 || !slices.IsSorted(got) || got[len(got)-1] > int64(n) {
		t.Fatalf("%d messages indexed, want %d", len(got), n-1)
	}
	do(t, l, res, &history.Request{Room: "room0", Sender: "bob", ID: "new", Text: "new message"})
	hits, _, err = l.Search(context.Background(), history.Query{Rooms: all, Text: "message", Limit: 2})
	if err != nil || len(hits) != 2 || hits[0].Text != "new message" || hits[1].Text != fmt.Sprint("old message ", n-1) {
		t.Fatalf("after a new message: %+v, %v", hits, err)
	}
}

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// TestSearchWalksTheIndexNewestFirst: the search's plan reads the index
// in rowid order and looks each match up by rid, sorting nothing.
func TestSearchWalksTheIndexNewestFirst(t *testing.T) {
	l, _ := open(t, filepath.Join(t.TempDir(), "chat.db"), Options{})
	defer l.Close()
	rows, err := l.read.Query("EXPLAIN QUERY PLAN "+searchQuery, `"x"*`, 1<<62, 1<<62, `["a"]`, 21)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	p := strings.Join(plan, "; ")
	if !strings.Contains(p, "SCAN w VIRTUAL TABLE") || !strings.Contains(p, "SEARCH m USING INDEX messages_rid") ||
		strings.Contains(p, "TEMP B-TREE") {
		t.Fatalf("plan: %s", p)
	}
}

// TestWriterDatabaseIsSearchable: a database made by a Writer (a
// cluster's backup) keeps changes, replies and reactions, and its
// messages are indexed when a server opens it.
func TestWriterDatabaseIsSearchable(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "chat.db")
	w, err := Create(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	thumbs := protocol.Reactions[0]
	for _, m := range []protocol.Msg{
		{Room: "r", Seq: 1, Time: 1000, Sender: "alice", ID: "1", Text: "kiwi question", Edited: 1500,
			Reactions: []protocol.Reaction{{Emoji: thumbs, Count: 2, Names: []string{"bob", "carol"}}}},
		{Room: "r", Seq: 2, Time: 1100, Sender: "bob", ID: "2", Text: "kiwi answer", Reply: 1},
		{Room: "r", Seq: 3, Time: 1500, Sender: "alice", ID: "3", Change: &protocol.ChangeEntry{Kind: protocol.ChangeEdit, Target: 1}},
		{Room: "r", Seq: 4, Time: 1600, Sender: "bob", ID: "4", Edited: 1700},
		{Room: "r", Seq: 5, Time: 1700, Sender: "bob", ID: "5", Change: &protocol.ChangeEntry{Kind: protocol.ChangeDelete, Target: 4}},
	} {
		if err := w.Message(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	l, _ := open(t, path, Options{})
	defer l.Close()
	msgs, err := l.Since(ctx, "r", 0, 10)
	if err != nil || len(msgs) != 5 {
		t.Fatalf("%+v, %v", msgs, err)
	}
	if m := msgs[0]; m.Edited != 1500 || len(m.Reactions) != 1 || m.Reactions[0].Count != 2 || !slices.Equal(m.Reactions[0].Names, []string{"bob", "carol"}) {
		t.Fatalf("message 1: %+v", m)
	}
	if m := msgs[2]; m.Change == nil || m.Change.Kind != protocol.ChangeEdit || m.Change.State == nil || m.Change.State.Text != "kiwi question" {
		t.Fatalf("entry 3: %+v", m)
	}
	if msgs[1].Reply != 1 || msgs[4].Change.State.Text != "" {
		t.Fatalf("reply %+v, delete %+v", msgs[1], msgs[4])
	}
	hits, _, err := l.Search(ctx, history.Query{Rooms: []string{"r"}, Text: "kiwi"})
	if err != nil || len(hits) != 2 || hits[0].Seq != 2 || hits[1].Seq != 1 {
		t.Fatalf("search: %+v, %v", hits, err)
	}
}
