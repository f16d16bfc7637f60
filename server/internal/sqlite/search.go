package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"time"

	"chat/protocol"
	"chat/server/internal/history"
)

// searchQuery finds the messages of some rooms whose words match, newest
// first. The full-text index is walked from its newest row (rowid DESC:
// rids grow with time) and each match looked up in messages by its rid,
// until the limit is reached among the rooms searched; ?2 lets the index
// skip what is newer than the page asked for. The rooms are a JSON
// array, which SQLite turns into a lookup table once per query.
const searchQuery = `SELECT m.room, m.seq, m.time, m.sender, m.text
	FROM words w CROSS JOIN messages m INDEXED BY messages_rid ON m.rid = w.rowid
	WHERE words MATCH ?1 AND w.rowid < ?2 AND m.time < ?3 AND m.room IN (SELECT value FROM json_each(?4))
	ORDER BY w.rowid DESC LIMIT ?5`

// indexMessages adds the messages with a rid in (?1, ?2] to the search
// index, as their text is now.
const indexMessages = `INSERT INTO words (rowid, text) SELECT rid, CAST(text AS TEXT) FROM messages INDEXED BY messages_rid
	WHERE rid > ?1 AND rid <= ?2 AND length(text) > 0`

// unindex takes a message out of the search index: the 'delete' command
// of a table without content needs the text it was indexed with.
const unindex = `INSERT INTO words (words, rowid, text) VALUES ('delete', ?, CAST(? AS TEXT))`

// FTSQuery makes an FTS5 query of the folded words (history.QueryWords):
// each a string (so that no user input is FTS5 syntax), all of them
// required, the last one also as a prefix (history.IsPrefix).
func FTSQuery(words []string) string {
	var b strings.Builder
	for i, w := range words {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteByte('"')
		b.WriteString(strings.ReplaceAll(w, `"`, `""`))
		b.WriteByte('"')
	}
	if history.IsPrefix(words) {
		b.WriteByte('*')
	}
	return b.String()
}

// Search implements history.Searcher with the FTS5 index words.
func (l *Log) Search(ctx context.Context, q history.Query) ([]protocol.Hit, bool, error) {
	words := history.QueryWords(q.Text)
	if len(words) == 0 {
		return nil, false, history.ErrBadQuery
	}
	if len(q.Rooms) == 0 {
		return nil, false, nil
	}
	limit := history.SearchLimit(q)
	rooms, err := json.Marshal(q.Rooms)
	if err != nil {
		return nil, false, err
	}
	before, ridBefore := int64(1<<62), int64(1<<62)
	if q.Before != 0 && q.Before < 1<<(62-ridShift) {
		before, ridBefore = int64(q.Before), int64(q.Before)<<ridShift
	}
	rows, err := l.read.QueryContext(ctx, searchQuery, FTSQuery(words), ridBefore, before, string(rooms), limit+1)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	var hits []protocol.Hit
	for rows.Next() {
		var h protocol.Hit
		var seq, t int64
		var text []byte
		if err := rows.Scan(&h.Room, &seq, &t, &h.Sender, &text); err != nil {
			return nil, false, err
		}
		h.Seq, h.Time, h.Text = uint64(seq), uint64(t), string(text)
		_, h.Matches = history.Match(h.Text, words)
		hits = append(hits, h)
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	if len(hits) > limit {
		return hits[:limit], true, nil
	}
	return hits, false, nil
}

// backlogBatch is how many messages one transaction of indexBacklog
// indexes.
const backlogBatch = 5000

// indexBacklog indexes the messages listed in search_todo (those of a
// database made before the index, or by a Writer), oldest first, a batch
// per transaction, and logs its progress. A server stopped meanwhile
// goes on where it stopped.
func (l *Log) indexBacklog(ctx context.Context) error {
	var total int64
	if err := l.write.QueryRowContext(ctx, "SELECT count(*) FROM search_todo").Scan(&total); err != nil || total == 0 {
		return err
	}
	l.logger.Info("search: indexing the messages stored before the search index", "messages", total)
	start, done := time.Now(), int64(0)
	for {
		n, err := l.indexBatch(ctx)
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
		done += n
		if done/backlogBatch%20 == 0 {
			l.logger.Info("search: indexing", "done", done, "of", total)
		}
	}
	l.logger.Info("search: every message is indexed", "messages", done, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

func (l *Log) indexBatch(ctx context.Context) (int64, error) {
	tx, err := l.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	var last sql.NullInt64
	if err := tx.QueryRowContext(ctx, "SELECT max(id) FROM (SELECT id FROM search_todo ORDER BY id LIMIT ?)", backlogBatch).Scan(&last); err != nil {
		return 0, err
	}
	if !last.Valid {
		return 0, nil
	}
	// The todo's id becomes the rid: the older, the lower, and below every
	// rid the commit loop gives (times shifted by ridShift). A message
	// deleted or indexed meanwhile is skipped.
	_, err = tx.ExecContext(ctx, `UPDATE messages SET rid = t.id FROM search_todo t
		WHERE t.id <= ?1 AND messages.room = t.room AND messages.seq = t.seq
		AND messages.rid IS NULL AND messages.kind = 0 AND length(messages.text) > 0`, last.Int64)
	if err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO words (rowid, text) SELECT m.rid, CAST(m.text AS TEXT)
		FROM search_todo t JOIN messages m ON m.room = t.room AND m.seq = t.seq AND m.rid = t.id WHERE t.id <= ?1`, last.Int64); err != nil {
		return 0, err
	}
	res, err := tx.ExecContext(ctx, "DELETE FROM search_todo WHERE id <= ?", last.Int64)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return n, tx.Commit()
}
