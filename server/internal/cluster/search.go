package cluster

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	_ "modernc.org/sqlite" // the database/sql driver "sqlite"

	"chat/protocol"
	"chat/server/internal/history"
	"chat/server/internal/sqlite"
)

// searchIndex is a node's full-text index of every room's messages
// (DESIGN.md, "Search"): a SQLite FTS5 table in a file of its own, fed by
// an ordered consumer over the messages stream, which applies change
// entries (an edit replaces the text with its record's, a delete removes
// it). It stores the stream position it reached, so a node that starts
// again catches up from there.
type searchIndex struct {
	c   *Conn
	db  *sql.DB
	dir string // removed at close if temp
	tmp bool

	in       chan jetstream.Msg // from the consumer to the indexing goroutine
	prunedAt time.Time          // the last removal by age (indexing goroutine)
	// sweptAt is when each room's records were last swept for retention
	// (indexing goroutine; rooms swept longer ago than the interval are
	// forgotten when it grows beyond maxSweptRooms).
	sweptAt map[string]time.Time
	cons    jetstream.ConsumeContext
	done    chan struct{}
	// wiper empties search.db-wal soon after a batch removed text: the
	// log keeps the pages' earlier images, deleted words included.
	wiper *sqlite.WALWiper
	// filesGone gets a token (capacity 1, never blocking) after a batch
	// that removed file references (deletes, retention): the file
	// store's collector runs soon after.
	filesGone chan struct{}

	mu      sync.Mutex
	pos     uint64        // stream seq applied last
	moved   chan struct{} // closed (and replaced) when pos moves
	failed  error         // the last batch's error, until one passes
	closing chan struct{}
}

// searchFile is the index's file in its directory.
const searchFile = "search.db"

// searchVersion is the index file's layout (PRAGMA user_version).
const searchVersion = 5

// searchQueue bounds the stream messages waiting for the indexer; the
// consumer waits while it is full.
const searchQueue = 1024

// searchBatch bounds the messages indexed in one transaction.
const searchBatch = 512

// openSearch opens (or creates) the index in dir ("" : a temporary
// directory, removed at close) and starts feeding it.
func (c *Conn) openSearch(ctx context.Context, dir string) (*searchIndex, error) {
	x := &searchIndex{c: c, dir: dir, in: make(chan jetstream.Msg, searchQueue),
		done: make(chan struct{}), moved: make(chan struct{}), closing: make(chan struct{}),
		filesGone: make(chan struct{}, 1)}
	if dir == "" {
		d, err := os.MkdirTemp("", "chat-search-")
		if err != nil {
			return nil, fmt.Errorf("cluster: search index: %w", err)
		}
		x.dir, x.tmp = d, true
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cluster: search index: %w", err)
	}
	path := filepath.Join(x.dir, searchFile)
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() +
		"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=secure_delete(ON)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		x.removeTemp()
		return nil, fmt.Errorf("cluster: search index: %w", err)
	}
	x.db = db
	if err := x.init(ctx); err != nil {
		x.closeDB()
		return nil, err
	}
	return x, nil
}

func (x *searchIndex) init(ctx context.Context) error {
	// An index of another layout is dropped and built again from the
	// stream.
	var version int
	if err := x.db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return fmt.Errorf("cluster: search index: %w", err)
	}
	if version != searchVersion {
		for _, stmt := range []string{`DROP TABLE IF EXISTS fts`, `DROP TABLE IF EXISTS msgs`, `DROP TABLE IF EXISTS meta`,
			fmt.Sprintf(`PRAGMA user_version = %d`, searchVersion)} {
			if _, err := x.db.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("cluster: search index: %w", err)
			}
		}
	}
	for _, stmt := range []string{
		`CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS msgs (id INTEGER PRIMARY KEY, room TEXT NOT NULL, seq INTEGER NOT NULL,
			time INTEGER NOT NULL, sender TEXT NOT NULL, text TEXT NOT NULL,
			words TEXT NOT NULL, -- what the FTS table indexed (history.SearchText: the text and the file's name)
			UNIQUE (room, seq))`,
		`CREATE INDEX IF NOT EXISTS msgs_time ON msgs (time)`,
		// The files the room's live messages carry (DESIGN.md, "Files"):
		// the file store's Open and Collect read them. A message deleted
		// or removed by retention loses its row.
		`CREATE TABLE IF NOT EXISTS files (room TEXT NOT NULL, seq INTEGER NOT NULL, time INTEGER NOT NULL,
			owner TEXT NOT NULL, id TEXT NOT NULL, thumb TEXT NOT NULL, size INTEGER NOT NULL, PRIMARY KEY (room, seq))`,
		`CREATE INDEX IF NOT EXISTS files_id ON files (id)`,
		`CREATE INDEX IF NOT EXISTS files_thumb ON files (thumb) WHERE thumb != ''`,
		`CREATE INDEX IF NOT EXISTS files_owner ON files (owner, id)`,
		// The files each name sent (the last time): a hold used by a
		// message no longer keeps the content nor counts (the messages
		// do), even after they are deleted. Rows older than any hold are
		// pruned by the file store's Collect.
		`CREATE TABLE IF NOT EXISTS used (owner TEXT NOT NULL, id TEXT NOT NULL, time INTEGER NOT NULL, PRIMARY KEY (owner, id))`,
		// The same tokenizer as the single server's: words as
		// history.QueryWords cuts them, folded. Contentless (msgs has the
		// text) but without contentless_delete, whose tombstones keep a
		// deleted message's words in the file: a row is removed with the
		// 'delete' command and its text, which secure-delete then
		// overwrites.
		// The room column holds the room's token (sqlite.RoomToken), so
		// that a search's MATCH narrows to the searcher's rooms.
		`CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5 (text, room, content='',
			tokenize='unicode61 remove_diacritics 2', prefix='2 3 4 5')`,
		`INSERT INTO fts (fts, rank) VALUES ('secure-delete', 1)`,
	} {
		if _, err := x.db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("cluster: search index: %w", err)
		}
	}
	// A stream made anew (another epoch) numbers from scratch: the index
	// of the old one is dropped.
	var epoch, pos uint64
	_ = x.db.QueryRowContext(ctx, `SELECT v FROM meta WHERE k = 'epoch'`).Scan(&epoch)
	_ = x.db.QueryRowContext(ctx, `SELECT v FROM meta WHERE k = 'pos'`).Scan(&pos)
	if epoch != x.c.Epoch() {
		for _, stmt := range []string{`DELETE FROM msgs`, `DELETE FROM fts`, `DELETE FROM meta`, `DELETE FROM files`, `DELETE FROM used`} {
			if _, err := x.db.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("cluster: search index: %w", err)
			}
		}
		if _, err := x.db.ExecContext(ctx, `INSERT INTO meta (k, v) VALUES ('epoch', ?)`, int64(x.c.Epoch())); err != nil {
			return fmt.Errorf("cluster: search index: %w", err)
		}
		pos = 0
	}
	x.pos = pos
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{MsgSubject + ">"}}
	if pos > 0 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = pos + 1
	}
	cons, err := x.c.stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("cluster: search index consumer: %w", err)
	}
	x.wiper = sqlite.StartWALWiper(x.db, x.c.opts.Logger)
	go x.run()
	x.cons, err = cons.Consume(func(m jetstream.Msg) {
		select {
		case x.in <- m:
		case <-x.closing:
		}
	})
	if err != nil {
		close(x.closing)
		<-x.done
		x.wiper.Close()
		return fmt.Errorf("cluster: search index consumer: %w", err)
	}
	return nil
}

// run indexes what the consumer brings, a batch per transaction.
func (x *searchIndex) run() {
	defer close(x.done)
	for {
		var batch []jetstream.Msg
		select {
		case m := <-x.in:
			batch = append(batch, m)
		case <-x.closing:
			return
		}
	more:
		for len(batch) < searchBatch {
			select {
			case m := <-x.in:
				batch = append(batch, m)
			default:
				break more
			}
		}
		// A batch that fails (NATS unreachable for a record, the disk
		// full) is tried again until it passes: the index waits, the
		// consumer with it.
		for attempt := 0; ; attempt++ {
			err := x.apply(batch)
			if err == nil {
				break
			}
			x.mu.Lock()
			x.failed = err
			x.mu.Unlock()
			x.c.opts.Logger.Warn("cluster: search index: indexing failed; trying again", "err", err, "attempt", attempt+1)
			t := time.NewTimer(min(time.Duration(attempt+1)*200*time.Millisecond, 5*time.Second))
			select {
			case <-t.C:
			case <-x.closing:
				t.Stop()
				return
			}
		}
	}
}

// indexed is one stream message as the index takes it.
type indexed struct {
	seq  uint64 // stream seq
	room string
	msg  protocol.Msg
	cp   bool // a copy without text of a changed message: skipped
}

// apply indexes a batch in one transaction and moves the position past
// it. Change entries get their targets' records first (outside the
// transaction).
func (x *searchIndex) apply(batch []jetstream.Msg) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*x.c.opts.PublishTimeout)
	defer cancel()
	items := make([]indexed, 0, len(batch))
	for _, m := range batch {
		meta, err := m.Metadata()
		if err != nil {
			continue
		}
		it := indexed{seq: meta.Sequence.Stream}
		room, err := FromToken(strings.TrimPrefix(m.Subject(), MsgSubject))
		sm := storedMsg{Subject: m.Subject(), Seq: it.seq, Data: m.Data(), hdr: m.Headers()}
		msg, derr := sm.decode()
		if err != nil || derr != nil {
			items = append(items, it) // not a message: only the position moves
			continue
		}
		it.room, it.msg, it.cp = room, msg, sm.isCopy()
		items = append(items, it)
	}
	// The targets' current states, for the edits (and the reactions to
	// messages the index has not seen: changed before it started).
	states := map[string]*protocol.Msg{}
	for _, it := range items {
		ch := it.msg.Change
		if it.room == "" || ch == nil || ch.Kind == protocol.ChangeDelete {
			continue
		}
		if ch.Kind != protocol.ChangeEdit {
			var one int
			err := x.db.QueryRowContext(ctx, `SELECT 1 FROM msgs WHERE room = ? AND seq = ?`, it.room, int64(ch.Target)).Scan(&one)
			if err == nil {
				continue
			}
		}
		key := it.room + "\x00" + strconv.FormatUint(ch.Target, 10)
		if _, ok := states[key]; ok {
			continue
		}
		_, st, _, err := x.c.loadRecord(ctx, it.room, ch.Target)
		if err != nil {
			return fmt.Errorf("reading the state of %s #%d: %w", it.room, ch.Target, err)
		}
		states[key] = st
	}
	var keep history.Retention
	if x.c.opts.Retention != nil {
		keep = *x.c.opts.Retention
	}
	tx, err := x.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var last uint64
	removed := false   // a text left the index: its log is emptied after
	filesGone := false // a file reference left: the file store collects
	for _, it := range items {
		last = it.seq
		if it.room == "" || it.cp {
			continue
		}
		m := it.msg
		if ch := m.Change; ch != nil {
			removed = removed || ch.Kind == protocol.ChangeDelete || ch.Kind == protocol.ChangeEdit
			if ch.Kind == protocol.ChangeDelete {
				err = unindex(ctx, tx, it.room, ch.Target)
				if err == nil {
					var n int64
					n, err = unindexFile(ctx, tx, it.room, ch.Target)
					filesGone = filesGone || n > 0
				}
			} else if st, ok := states[it.room+"\x00"+strconv.FormatUint(ch.Target, 10)]; ok {
				err = unindex(ctx, tx, it.room, ch.Target)
				if err == nil && st != nil && !history.Deleted(st) {
					err = index(ctx, tx, it.room, st)
				}
				if err == nil && st != nil && st.File != nil {
					// A message changed before this index saw it (its
					// original erased): its file is known from its state.
					err = indexFile(ctx, tx, it.room, st)
				}
			}
		} else {
			if !history.Deleted(&m) {
				err = index(ctx, tx, it.room, &m)
			}
			if err == nil && m.File != nil {
				err = indexFile(ctx, tx, it.room, &m)
			}
		}
		if err == nil && keep.Messages > 0 && m.Seq > uint64(keep.Messages) {
			// The stream keeps a room's last Messages stream messages:
			// older ones are gone from the history, so from the index.
			err = prune(ctx, tx, `room = ? AND seq <= ?`, it.room, int64(m.Seq-uint64(keep.Messages)))
			removed = true
		}
		if err != nil {
			return err
		}
	}
	if keep.Age > 0 && time.Since(x.prunedAt) > time.Minute {
		x.prunedAt = time.Now()
		if err := prune(ctx, tx, `time < ?`, time.Now().Add(-keep.Age).UnixMilli()); err != nil {
			return err
		}
		removed = true
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO meta (k, v) VALUES ('pos', ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v`, int64(last)); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if removed {
		x.wiper.Removed()
	}
	if filesGone || removed {
		select {
		case x.filesGone <- struct{}{}:
		default:
		}
	}
	x.sweep(ctx, items)
	x.mu.Lock()
	x.pos, x.failed = last, nil
	close(x.moved)
	x.moved = make(chan struct{})
	x.mu.Unlock()
	return nil
}

// maxSweptRooms bounds searchIndex.sweptAt.
const maxSweptRooms = 10000

// maxSweepRooms bounds the rooms one batch sweeps.
const maxSweepRooms = 16

// sweep removes the records of messages retention dropped (DESIGN.md,
// "History retention") in the rooms of a batch, each room at most once
// per Conn.recordSweep (a minute), at most maxSweepRooms a batch: the
// stream's limits do not reach chat-states. A failure is logged; the
// next sweep of the room tries again. Every node sweeps (idempotent).
func (x *searchIndex) sweep(ctx context.Context, items []indexed) {
	r := x.c.opts.Retention
	if r == nil || (r.Messages <= 0 && r.Age <= 0) {
		return
	}
	every := x.c.recordSweep
	if every == 0 {
		every = time.Minute
	}
	if x.sweptAt == nil {
		x.sweptAt = map[string]time.Time{}
	}
	heads := map[string]uint64{}
	for _, it := range items {
		if it.room != "" {
			heads[it.room] = max(heads[it.room], it.msg.Seq)
		}
	}
	now := time.Now()
	swept := 0
	for room, head := range heads {
		if swept >= maxSweepRooms {
			break
		}
		if at, ok := x.sweptAt[room]; ok && now.Sub(at) < every {
			continue
		}
		if len(x.sweptAt) >= maxSweptRooms {
			for k, at := range x.sweptAt {
				if now.Sub(at) >= every {
					delete(x.sweptAt, k)
				}
			}
		}
		x.sweptAt[room] = now
		swept++
		if _, err := x.c.sweepRecords(ctx, room, head); err != nil {
			x.c.opts.Logger.Warn("cluster: removing records retention dropped failed; tried again at the room's next sweep", "room", room, "err", err)
		}
	}
}

// ridShift leaves room for this many messages of one millisecond below
// the next millisecond's rows: a message's row id (msgs.id, the FTS
// rowid) is its time shifted left by it, or the next free one, so the
// index walked by rowid from the newest down meets the messages newest
// first and stops at the limit (the single server's layout, package
// sqlite).
const ridShift = 12

// index adds a message, or replaces the text of one indexed (an edit; it
// keeps its row id).
func index(ctx context.Context, tx *sql.Tx, room string, m *protocol.Msg) error {
	words := history.SearchText(m.Text, m.File)
	var id int64
	err := tx.QueryRowContext(ctx, `SELECT id FROM msgs WHERE room = ? AND seq = ?`, room, int64(m.Seq)).Scan(&id)
	switch {
	case err == nil:
		if err := unindexRows(ctx, tx, `id = ?`, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE msgs SET text = ?, words = ? WHERE id = ?`, m.Text, words, id); err != nil {
			return err
		}
	case errors.Is(err, sql.ErrNoRows):
		lo := int64(m.Time) << ridShift
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(id) + 1, ?1) FROM msgs WHERE id >= ?1 AND id < ?2`,
			lo, lo+1<<ridShift).Scan(&id); err != nil {
			return err
		}
		for { // past the millisecond's room (4096 in one ms): the next free one
			var taken int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM msgs WHERE id = ?`, id).Scan(&taken); err != nil {
				return err
			}
			if taken == 0 {
				break
			}
			id++
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO msgs (id, room, seq, time, sender, text, words) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			id, room, int64(m.Seq), int64(m.Time), m.Sender, m.Text, words); err != nil {
			return err
		}
	default:
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO fts (rowid, text, room) VALUES (?, ?, ?)`, id, words, sqlite.RoomToken(room))
	return err
}

// prune removes the messages of msgs where cond holds (history
// retention removed them from the stream).
func prune(ctx context.Context, tx *sql.Tx, cond string, args ...any) error {
	if err := unindexRows(ctx, tx, cond, args...); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM msgs WHERE `+cond, args...); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM files WHERE `+cond, args...)
	return err
}

// indexFile notes the file (and preview) message m of room carries.
func indexFile(ctx context.Context, tx *sql.Tx, room string, m *protocol.Msg) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO files (room, seq, time, owner, id, thumb, size) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (room, seq) DO UPDATE SET id = excluded.id, thumb = excluded.thumb, size = excluded.size`,
		room, int64(m.Seq), int64(m.Time), protocol.Key(m.Sender), m.File.ID, m.File.Thumb, int64(m.File.Size))
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO used (owner, id, time) VALUES (?, ?, ?)
		ON CONFLICT (owner, id) DO UPDATE SET time = max(time, excluded.time)`, protocol.Key(m.Sender), m.File.ID, int64(m.Time))
	return err
}

// unindexFile forgets the file of room's message seq (deleted); n is the
// rows removed.
func unindexFile(ctx context.Context, tx *sql.Tx, room string, seq uint64) (int64, error) {
	r, err := tx.ExecContext(ctx, `DELETE FROM files WHERE room = ? AND seq = ?`, room, int64(seq))
	if err != nil {
		return 0, err
	}
	return r.RowsAffected()
}

// unindexRows takes the words of the messages of msgs where cond holds
// out of the FTS index (the 'delete' command needs the text indexed).
func unindexRows(ctx context.Context, tx *sql.Tx, cond string, args ...any) error {
	// sqlite.RoomToken in SQL: the 'delete' command needs every
	// column's indexed value.
	_, err := tx.ExecContext(ctx, `INSERT INTO fts (fts, rowid, text, room) SELECT 'delete', id, words, 'r' || lower(hex(room)) FROM msgs WHERE `+cond, args...)
	return err
}

// unindex removes a message (its words overwritten: secure-delete).
func unindex(ctx context.Context, tx *sql.Tx, room string, seq uint64) error {
	cond, args := `room = ? AND seq = ?`, []any{room, int64(seq)}
	if err := unindexRows(ctx, tx, cond, args...); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM msgs WHERE `+cond, args...)
	return err
}

// waitFor returns once the index has applied stream seq seq.
func (x *searchIndex) waitFor(ctx context.Context, seq uint64) error {
	for {
		x.mu.Lock()
		pos, moved, failed := x.pos, x.moved, x.failed
		x.mu.Unlock()
		if pos >= seq {
			return nil
		}
		select {
		case <-moved:
		case <-x.done:
			return errors.New("cluster: the search index is closed")
		case <-ctx.Done():
			if failed != nil {
				return fmt.Errorf("%w (the search index: %v)", ctx.Err(), failed)
			}
			return ctx.Err()
		}
	}
}

// search answers q from the index.
func (x *searchIndex) search(ctx context.Context, q history.Query) ([]protocol.Hit, bool, error) {
	words := history.QueryWords(q.Text)
	if len(words) == 0 {
		return nil, false, history.ErrBadQuery
	}
	if len(q.Rooms) == 0 {
		return nil, false, nil
	}
	limit := history.SearchLimit(q)
	before := q.Before
	if before == 0 {
		before = uint64(time.Now().UnixMilli()) + 1
	}
	rooms, err := json.Marshal(q.Rooms)
	if err != nil {
		return nil, false, err
	}
	// Walked by rowid from the newest (rowids grow with time), each
	// match looked up by its row, until the limit among the rooms.
	const query = `SELECT m.room, m.seq, m.time, m.sender, m.text
		FROM fts w CROSS JOIN msgs m ON m.id = w.rowid
		WHERE fts MATCH ?1 AND w.rowid < ?2 AND m.time < ?3 AND m.room IN (SELECT value FROM json_each(?4))
		ORDER BY w.rowid DESC LIMIT ?5`
	ridBefore := int64(1) << 62
	if before < 1<<(62-ridShift) {
		ridBefore = int64(before) << ridShift
	}
	// FTSQuery narrows the MATCH to the rooms' tokens (it makes them).
	rows, err := x.db.QueryContext(ctx, query, sqlite.FTSQuery(words, q.Rooms...), ridBefore, int64(before), string(rooms), limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("cluster: search: %w", err)
	}
	defer rows.Close()
	var hits []protocol.Hit
	more := false
	for rows.Next() {
		var h protocol.Hit
		var seq, tm int64
		if err := rows.Scan(&h.Room, &seq, &tm, &h.Sender, &h.Text); err != nil {
			return nil, false, fmt.Errorf("cluster: search: %w", err)
		}
		if len(hits) == limit {
			more = true
			break
		}
		h.Seq, h.Time = uint64(seq), uint64(tm)
		_, h.Matches = history.Match(h.Text, words)
		hits = append(hits, h)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("cluster: search: %w", err)
	}
	return hits, more, nil
}

// close stops the feeding and closes the database (a temporary directory
// is removed).
func (x *searchIndex) close() {
	if x.cons != nil {
		x.cons.Stop()
	}
	select {
	case <-x.closing:
	default:
		close(x.closing)
	}
	<-x.done
	if x.wiper != nil {
		x.wiper.Close()
	}
	x.closeDB()
}

func (x *searchIndex) closeDB() {
	if x.db != nil {
		_ = x.db.Close()
	}
	x.removeTemp()
}

func (x *searchIndex) removeTemp() {
	if x.tmp {
		_ = os.RemoveAll(x.dir)
	}
}
