package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"chat/server/internal/moderation"
)

// Moderation is the moderation.Store of a chat database: room states in
// the moderation table, the audit log in audit, and redactions applied
// to the messages table itself (the text is overwritten, not hidden).
// Writes are committed like name claims (synchronous=NORMAL).
type Moderation struct {
	write, read *sql.DB
	maxAudit    int
	removed     func() // ModerationOptions.Removed
}

var _ moderation.Store = (*Moderation)(nil)

// ModerationOptions tune a Moderation.
type ModerationOptions struct {
	// MaxAudit is how many audit entries are kept (default 100 000); the
	// oldest go first.
	MaxAudit int
	// Removed is called after a redaction, which takes the message's
	// file too, so that the file store collects it (Files.Kick).
	Removed func()
}

// OpenModeration opens the moderation tables of the database at path,
// creating the database if needed.
func OpenModeration(path string, opts ModerationOptions) (*Moderation, error) {
	write, read, err := openPair(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: moderation in %s: %w", path, err)
	}
	return &Moderation{write: write, read: read, maxAudit: cmp(opts.MaxAudit, moderation.DefaultMaxAudit), removed: opts.Removed}, nil
}

// Close closes the connections.
func (m *Moderation) Close() error { return errors.Join(m.read.Close(), m.write.Close()) }

// Load implements moderation.Store. It reads through the read pool, so
// that the JOINs' reads do not queue behind writes: a read transaction
// sees every commit made before it began, and Save checks the revision
// anyway.
func (m *Moderation) Load(ctx context.Context, room string) (*moderation.State, uint64, error) {
	var data []byte
	var rev int64
	err := m.read.QueryRowContext(ctx, "SELECT state, rev FROM moderation WHERE room = ?", room).Scan(&data, &rev)
	if errors.Is(err, sql.ErrNoRows) {
		return &moderation.State{}, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	st, err := moderation.Unmarshal(data)
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: the moderation state of %s: %w", room, err)
	}
	return st, uint64(rev), nil
}

// Save implements moderation.Store.
func (m *Moderation) Save(ctx context.Context, room string, st *moderation.State, rev uint64) (uint64, error) {
	data, err := moderation.Marshal(st)
	if err != nil {
		return 0, err
	}
	var res sql.Result
	if rev == 0 {
		res, err = m.write.ExecContext(ctx, "INSERT INTO moderation (room, state, rev) VALUES (?, ?, 1) ON CONFLICT DO NOTHING", room, data)
	} else {
		res, err = m.write.ExecContext(ctx, "UPDATE moderation SET state = ?, rev = rev + 1 WHERE room = ? AND rev = ?", data, room, int64(rev))
	}
	if err != nil {
		return 0, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		if err == nil {
			err = moderation.ErrConflict
		}
		return 0, err
	}
	return rev + 1, nil
}

// Redact implements moderation.Store: the stored text is overwritten with
// nothing (secure_delete zeroes the space it took), its words leave the
// search index and its reactions go. SQLite counts a row matched by an
// UPDATE as changed even when its text was empty already, so a second
// redaction reports true too.
func (m *Moderation) Redact(ctx context.Context, room string, seq uint64) (bool, error) {
	tx, err := m.write.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	s := int64(min(seq, 1<<62))
	if _, err := tx.ExecContext(ctx, `INSERT INTO words (words, rowid, text, room) SELECT 'delete', rid, `+searchText+`, `+roomTokenSQL+`
		FROM messages WHERE room = ? AND seq = ? AND rid IS NOT NULL AND `+searchable, room, s); err != nil {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM reactions WHERE room = ? AND seq = ?", room, s); err != nil {
		return false, err
	}
	res, err := tx.ExecContext(ctx, "UPDATE messages SET text = x'', "+clearFile+" WHERE room = ? AND seq = ?", room, s)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, err
	}
	if n > 0 && m.removed != nil {
		m.removed()
	}
	return n > 0, nil
}

// Audit implements moderation.Store.
func (m *Moderation) Audit(ctx context.Context, e moderation.Entry) error {
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	tx, err := m.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "INSERT INTO audit (room, entry) VALUES (?, ?)", e.Room, data); err != nil {
		return err
	}
	// Keep the newest maxAudit: the entry maxAudit places below the
	// newest and everything older go.
	if _, err := tx.ExecContext(ctx, "DELETE FROM audit WHERE id <= (SELECT id FROM audit ORDER BY id DESC LIMIT 1 OFFSET ?)",
		m.maxAudit); err != nil {
		return err
	}
	return tx.Commit()
}

// AuditLog implements moderation.Store.
func (m *Moderation) AuditLog(ctx context.Context, room string, n int) ([]moderation.Entry, error) {
	q, args := "SELECT entry FROM audit ORDER BY id DESC LIMIT ?", []any{n}
	if room != "" {
		q, args = "SELECT entry FROM audit WHERE room = ? ORDER BY id DESC LIMIT ?", []any{room, n}
	}
	rows, err := m.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []moderation.Entry
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			return nil, err
		}
		var e moderation.Entry
		if err := json.Unmarshal(data, &e); err != nil {
			return nil, fmt.Errorf("sqlite: an audit entry: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}
