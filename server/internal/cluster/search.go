package cluster

import (
	"context"
	"database/sql"
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
	cons     jetstream.ConsumeContext
	done     chan struct{}

	mu      sync.Mutex
	pos     uint64        // stream seq applied last
	moved   chan struct{} // closed (and replaced) when pos moves
	failed  error         // the indexing goroutine's fatal error
	closing chan struct{}
}

// searchFile is the index's file in its directory.
const searchFile = "search.db"

// searchQueue bounds the stream messages waiting for the indexer; the
// consumer waits while it is full.
const searchQueue = 1024

// searchBatch bounds the messages indexed in one transaction.
const searchBatch = 512

// openSearch opens (or creates) the index in dir ("" : a temporary
// directory, removed at close) and starts feeding it.
func (c *Conn) openSearch(ctx context.Context, dir string) (*searchIndex, error) {
	x := &searchIndex{c: c, dir: dir, in: make(chan jetstream.Msg, searchQueue),
		done: make(chan struct{}), moved: make(chan struct{}), closing: make(chan struct{})}
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
	for _, stmt := range []string{
		`CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS msgs (id INTEGER PRIMARY KEY, room TEXT NOT NULL, seq INTEGER NOT NULL,
			time INTEGER NOT NULL, sender TEXT NOT NULL, text TEXT NOT NULL, UNIQUE (room, seq))`,
		`CREATE INDEX IF NOT EXISTS msgs_time ON msgs (time)`,
		// The same tokenizer as the single server's: words as
		// history.QueryWords cuts them, folded.
		`CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5 (text, content='', contentless_delete=1,
			tokenize='unicode61 remove_diacritics 2')`,
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
		for _, stmt := range []string{`DELETE FROM msgs`, `DELETE FROM fts`, `DELETE FROM meta`} {
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
		if err := x.apply(batch); err != nil {
			x.mu.Lock()
			x.failed = err
			x.mu.Unlock()
			x.c.opts.Logger.Error("cluster: search index stopped", "err", err)
			return
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
	for _, it := range items {
		last = it.seq
		if it.room == "" || it.cp {
			continue
		}
		m := it.msg
		if ch := m.Change; ch != nil {
			if ch.Kind == protocol.ChangeDelete {
				err = unindex(ctx, tx, it.room, ch.Target)
			} else if st, ok := states[it.room+"\x00"+strconv.FormatUint(ch.Target, 10)]; ok {
				err = unindex(ctx, tx, it.room, ch.Target)
				if err == nil && st != nil && st.Text != "" {
					err = index(ctx, tx, it.room, st)
				}
			}
		} else if m.Text != "" {
			err = index(ctx, tx, it.room, &m)
		}
		if err == nil && keep.Messages > 0 && m.Seq > uint64(keep.Messages) {
			// The stream keeps a room's last Messages stream messages:
			// older ones are gone from the history, so from the index.
			err = prune(ctx, tx, `room = ? AND seq <= ?`, it.room, int64(m.Seq-uint64(keep.Messages)))
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
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO meta (k, v) VALUES ('pos', ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v`, int64(last)); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	x.mu.Lock()
	x.pos = last
	close(x.moved)
	x.moved = make(chan struct{})
	x.mu.Unlock()
	return nil
}

// index adds (or replaces) a message.
func index(ctx context.Context, tx *sql.Tx, room string, m *protocol.Msg) error {
	if err := unindex(ctx, tx, room, m.Seq); err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO msgs (room, seq, time, sender, text) VALUES (?, ?, ?, ?, ?)`,
		room, int64(m.Seq), int64(m.Time), m.Sender, m.Text)
	if err != nil {
		return err
	}
	id, err := res.LastInsertId()
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO fts (rowid, text) VALUES (?, ?)`, id, m.Text)
	return err
}

// prune removes the messages of msgs where cond holds (history
// retention removed them from the stream).
func prune(ctx context.Context, tx *sql.Tx, cond string, args ...any) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM fts WHERE rowid IN (SELECT id FROM msgs WHERE `+cond+`)`, args...); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM msgs WHERE `+cond, args...)
	return err
}

// unindex removes a message (its words overwritten: secure-delete).
func unindex(ctx context.Context, tx *sql.Tx, room string, seq uint64) error {
	var id int64
	err := tx.QueryRowContext(ctx, `SELECT id FROM msgs WHERE room = ? AND seq = ?`, room, int64(seq)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM fts WHERE rowid = ?`, id); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `DELETE FROM msgs WHERE id = ?`, id)
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
		if failed != nil {
			return fmt.Errorf("cluster: the search index stopped: %w", failed)
		}
		select {
		case <-moved:
		case <-x.done:
			x.mu.Lock()
			failed := x.failed
			x.mu.Unlock()
			if failed == nil {
				return errors.New("cluster: the search index is closed")
			}
		case <-ctx.Done():
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
	var sb strings.Builder
	args := []any{ftsQuery(words)}
	sb.WriteString(`SELECT m.room, m.seq, m.time, m.sender, m.text FROM fts JOIN msgs m ON m.id = fts.rowid
		WHERE fts MATCH ? AND m.time < ? AND m.room IN (`)
	args = append(args, int64(before))
	for i, r := range q.Rooms {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteByte('?')
		args = append(args, r)
	}
	sb.WriteString(`) ORDER BY m.time DESC, m.id DESC LIMIT ?`)
	args = append(args, limit+1)
	rows, err := x.db.QueryContext(ctx, sb.String(), args...)
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

// ftsQuery is the FTS5 query of folded words: each a phrase of its own
// (quoted: no operator), the last also a prefix.
func ftsQuery(words []string) string {
	var sb strings.Builder
	for i, w := range words {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(`"` + strings.ReplaceAll(w, `"`, `""`) + `"`)
		if i == len(words)-1 {
			sb.WriteByte('*')
		}
	}
	return sb.String()
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
