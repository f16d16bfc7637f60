package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"

	"chat/protocol"
	"chat/server/internal/history"
)

// Writer builds a chat database from records handed to it one by one:
// how a cluster's state becomes a backup file of the single server's
// format. Everything goes into one transaction, committed by Close, so
// a failed export leaves no half-filled database that looks whole.
type Writer struct {
	db    *sql.DB
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
	heads map[string]roomHead // every room written, for the rooms and dms tables
}

type roomHead struct{ seq, time uint64 }

const (
	writeMessage = `INSERT INTO messages (room, seq, time, sender, sender_key, cid, text, reply, edited, kind, target, emoji, ` + fileColumns + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	writeReaction = `INSERT INTO reactions (room, seq, emoji, name_key, name, at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
	// The messages written are indexed for search by the first server
	// that opens the database, oldest first (Log.indexBacklog).
	writeSearchTodo = `INSERT INTO search_todo (room, seq) SELECT room, seq FROM messages
		WHERE kind = 0 AND ` + searchable + ` AND rid IS NULL ORDER BY time, room, seq`
	writeName = `INSERT INTO names (name_key, name, secret_hash, claimed) VALUES (?, ?, ?, ?)
		ON CONFLICT (name_key) DO UPDATE SET secret_hash = excluded.secret_hash`
	writeMarker = `INSERT INTO markers (name_key, room, seq) VALUES (?, ?, ?)
		ON CONFLICT (name_key, room) DO UPDATE SET seq = max(seq, excluded.seq)`
	writeMention = `INSERT INTO mentions (name_key, room, seq) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`
	// A backup's moderation states start over at revision 1, as the
	// server's own first Save; the audit log keeps the order it is handed.
	writeModeration = `INSERT INTO moderation (room, state, rev) VALUES (?, ?, 1)
		ON CONFLICT (room) DO UPDATE SET state = excluded.state`
	writeAudit = `INSERT INTO audit (room, entry) VALUES (?, ?)`
	writeBlob  = `INSERT INTO blobs (id, size, type, created) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`
)

// Create makes a new chat database with this server's schema at path
// (which must not exist, or be an empty file) and returns a Writer for it.
func Create(ctx context.Context, path string) (*Writer, error) {
	// Incremental auto-vacuum, as a server gives a new database, so that
	// retention can shrink a restored one.
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?_pragma=busy_timeout(10000)&_pragma=auto_vacuum(incremental)")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	w := &Writer{db: db, stmts: map[string]*sql.Stmt{}, heads: map[string]roomHead{}}
	fail := func(err error) (*Writer, error) {
		db.Close()
		return nil, fmt.Errorf("sqlite: creating %s: %w", path, err)
	}
	var tables int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&tables); err != nil {
		return fail(err)
	}
	if tables > 0 {
		return fail(errors.New("the file holds a database already"))
	}
	if err := migrate(ctx, db); err != nil {
		return fail(err)
	}
	if w.tx, err = db.BeginTx(ctx, nil); err != nil {
		return fail(err)
	}
	for _, q := range []string{writeMessage, writeReaction, writeSearchTodo, writeName, writeMarker, writeMention, writeModeration, writeAudit, writeBlob, upsertRoom, upsertDM} {
		if w.stmts[q], err = w.tx.PrepareContext(ctx, q); err != nil {
			w.tx.Rollback()
			return fail(err)
		}
	}
	return w, nil
}

// Message adds a message, or a change entry (m.Change, whose State is
// not stored: the changed message holds it), with its reply, edit time
// and reactions (as many names as m lists: a Reaction's Count beyond its
// Names is not kept). A room's messages must come in sequence order.
func (w *Writer) Message(m protocol.Msg) error {
	if h, ok := w.heads[m.Room]; ok && m.Seq <= h.seq {
		return fmt.Errorf("sqlite: message %d of %q after %d", m.Seq, m.Room, h.seq)
	}
	var kind, target int64
	var emoji string
	if c := m.Change; c != nil {
		kind, target, emoji = int64(c.Kind), int64(min(c.Target, 1<<62)), c.Emoji
	}
	if _, err := w.stmts[writeMessage].Exec(append([]any{m.Room, int64(m.Seq), int64(m.Time), m.Sender, protocol.Key(m.Sender), []byte(m.ID), []byte(m.Text),
		int64(min(m.Reply, 1<<62)), int64(min(m.Edited, 1<<62)), kind, target, emoji}, fileArgs(m.File)...)...); err != nil {
		return fmt.Errorf("sqlite: message %d of %q: %w", m.Seq, m.Room, err)
	}
	at := 0
	for _, x := range m.Reactions {
		for _, name := range x.Names {
			at++ // the order of the names: oldest first
			if _, err := w.stmts[writeReaction].Exec(m.Room, int64(m.Seq), x.Emoji, protocol.Key(name), name, at); err != nil {
				return fmt.Errorf("sqlite: reactions of message %d of %q: %w", m.Seq, m.Room, err)
			}
		}
	}
	w.heads[m.Room] = roomHead{seq: m.Seq, time: m.Time}
	return nil
}

// Name adds the claim of a name (its protocol.Key) with the hash of its
// owner's secret.
func (w *Writer) Name(key string, secretHash []byte) error {
	_, err := w.stmts[writeName].Exec(key, key, secretHash, 0)
	return err
}

// Marker adds name's read marker in room.
func (w *Writer) Marker(name, room string, seq uint64) error {
	_, err := w.stmts[writeMarker].Exec(name, room, int64(min(seq, 1<<62)))
	return err
}

// Mention adds an unread mention of name; a name's mentions must come
// oldest first.
func (w *Writer) Mention(name, room string, seq uint64) error {
	_, err := w.stmts[writeMention].Exec(name, room, int64(min(seq, 1<<62)))
	return err
}

// Moderation adds room's moderation state (moderation.Marshal of a
// moderation.State).
func (w *Writer) Moderation(room string, state []byte) error {
	if _, err := w.stmts[writeModeration].Exec(room, state); err != nil {
		return fmt.Errorf("sqlite: the moderation state of %q: %w", room, err)
	}
	return nil
}

// Audit adds an entry (JSON of moderation.Entry) of room ("" for none)
// to the audit log; entries must come oldest first.
func (w *Writer) Audit(room string, entry []byte) error {
	if _, err := w.stmts[writeAudit].Exec(room, entry); err != nil {
		return fmt.Errorf("sqlite: an audit entry: %w", err)
	}
	return nil
}

// Blob adds stored content (a file or a preview that messages carry,
// protocol.File's ID or Thumb) of size bytes and MIME type typ: the
// content itself goes under the data directory's files/ beside the
// database (Files), copied by whoever makes the backup. Messages refer
// to their files by id; a file no message carries is collected by the
// first server that opens the database.
func (w *Writer) Blob(id string, size int64, typ string) error {
	if !isHash(id) {
		return fmt.Errorf("sqlite: %q is not a file id", id)
	}
	if _, err := w.stmts[writeBlob].Exec(id, size, typ, 0); err != nil {
		return fmt.Errorf("sqlite: file %s: %w", id, err)
	}
	return nil
}

// Close writes the room indexes, each room with a new history epoch, and
// commits. It returns the first error of the writes or the commit.
func (w *Writer) Close() error {
	err := func() error {
		for room, h := range w.heads {
			if _, err := w.stmts[upsertRoom].Exec(room, int64(history.NewEpoch()), int64(h.seq), int64(h.time)); err != nil {
				return err
			}
			for _, name := range dmNames(room) {
				if _, err := w.stmts[upsertDM].Exec(name, room, int64(h.time)); err != nil {
					return err
				}
			}
		}
		if _, err := w.stmts[writeSearchTodo].Exec(); err != nil {
			return err
		}
		return w.tx.Commit()
	}()
	if err != nil {
		_ = w.tx.Rollback()
	}
	for _, s := range w.stmts {
		s.Close()
	}
	return errors.Join(err, w.db.Close())
}

// Abort drops everything written and closes the database.
func (w *Writer) Abort() {
	_ = w.tx.Rollback()
	for _, s := range w.stmts {
		s.Close()
	}
	_ = w.db.Close()
}
