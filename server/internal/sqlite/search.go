package sqlite

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"

	"chat/protocol"
	"chat/server/internal/history"
)

// searchQuery finds the messages of some rooms whose words match, newest
// first. The match (FTSQuery) asks for the words in the text column and
// one of the rooms' tokens in the room column, so FTS5 intersects the
// words' lists with the rooms' lists, skipping along them, and a word
// common in other rooms costs little; the index is walked from its
// newest row (rowid DESC: rids grow with time) and each match looked up
// in messages by its rid until the limit is reached. ?2 lets the index
// skip what is newer than the page asked for. The rooms are checked again
// on the messages (a JSON array, which SQLite turns into a lookup table
// once per query).
const searchQuery = `SELECT m.room, m.seq, m.time, m.sender, ` + searchTextM + `
	FROM words w CROSS JOIN messages m INDEXED BY messages_rid ON m.rid = w.rowid
	WHERE words MATCH ?1 AND w.rowid < ?2 AND m.time < ?3 AND m.room IN (SELECT value FROM json_each(?4))
	ORDER BY w.rowid DESC LIMIT ?5`

// roomTokenSQL is RoomToken in SQL, of the column room.
const roomTokenSQL = `'r' || lower(hex(room))`

// indexMessages adds the messages with a rid in (?1, ?2] to the search
// index, as their text is now.
const indexMessages = `INSERT INTO words (rowid, text, room) SELECT rid, ` + searchText + `, ` + roomTokenSQL + `
	FROM messages INDEXED BY messages_rid WHERE rid > ?1 AND rid <= ?2 AND ` + searchable

// searchText is what a message is indexed with, history.SearchText in
// SQL: its text (a file's caption) and its file's name. Every statement
// that adds a message to the index or removes it computes it alike, as
// FTS5's 'delete' needs the very text a row was indexed with.
// searchTextM reads it from the row m, searchable says a message has
// something to index (the text, or a file with a name).
const (
	searchText  = `(CASE WHEN file_name = '' THEN CAST(text AS TEXT) WHEN length(text) = 0 THEN file_name ELSE CAST(text AS TEXT) || ' ' || file_name END)`
	searchTextM = `(CASE WHEN m.file_name = '' THEN CAST(m.text AS TEXT) WHEN length(m.text) = 0 THEN m.file_name ELSE CAST(m.text AS TEXT) || ' ' || m.file_name END)`
	searchable  = `(length(text) > 0 OR file_name <> '')`
)

// unindex takes a message out of the search index: the 'delete' command
// of a table without content needs every value it was indexed with (the
// text and the room token).
const unindex = `INSERT INTO words (words, rowid, text, room) VALUES ('delete', ?, CAST(? AS TEXT), ?)`

// RoomToken is the search index's token of a room (its room column):
// 'r' and the hexadecimal of the room's name, one token to the
// unicode61 tokenizer, the same for the same name and never the same for
// two names.
func RoomToken(room string) string {
	return "r" + hex.EncodeToString([]byte(room))
}

// FTSQuery makes the FTS5 query of a search in an index of two columns,
// text and room (RoomToken), like the Log's: the folded words
// (history.QueryWords) in the text column, each a string (so that no
// user input is FTS5 syntax), all of them required, the last one also as
// a prefix (history.IsPrefix); and one of rooms in the room column. With
// no rooms, only the words are asked for (an index without a room
// column).
func FTSQuery(words []string, rooms ...string) string {
	var b strings.Builder
	b.WriteString("text : (")
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
	b.WriteByte(')')
	if len(rooms) == 0 {
		return b.String()
	}
	b.WriteString(" AND room : (")
	for i, r := range rooms {
		if i > 0 {
			b.WriteString(" OR ")
		}
		b.WriteByte('"')
		b.WriteString(RoomToken(r))
		b.WriteByte('"')
	}
	b.WriteByte(')')
	return b.String()
}

// Search implements history.Searcher with the FTS5 index words. At most
// Options.Searches searches read at once; others wait for a turn or
// their context.
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
	select {
	case l.searches <- struct{}{}:
		defer func() { <-l.searches }()
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
	rows, err := l.read.QueryContext(ctx, searchQuery, FTSQuery(words, q.Rooms...), ridBefore, before, string(rooms), limit+1)
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
		AND messages.rid IS NULL AND messages.kind = 0 AND (length(messages.text) > 0 OR messages.file_name <> '')`, last.Int64)
	if err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO words (rowid, text, room) SELECT m.rid, `+searchTextM+`, 'r' || lower(hex(m.room))
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
