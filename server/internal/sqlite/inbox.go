package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"chat/protocol"
	"chat/server/internal/inbox"
)

// Inbox is the inbox.Store of a chat database: read markers and mentions
// in their tables, room lists from the rooms and dms tables that the
// history's commit loop keeps (see Log). Every query is an index read;
// none reads messages.
//
// Markers and mentions are committed like name claims, without waiting
// for the disk (synchronous=NORMAL): they survive a crash or restart of
// the server; a power cut may lose the last ones, which only shows older
// messages as unread.
type Inbox struct {
	write, read *sql.DB
	maxMentions int
	listScan    int
}

var _ inbox.Store = (*Inbox)(nil)

// InboxOptions tune an Inbox.
type InboxOptions struct {
	// MaxMentions is how many unread mentions are kept per name (default
	// 1000); the oldest go first.
	MaxMentions int
	// ListScan is how many of the most recently active rooms a search of
	// the room list looks through (default 10000): a LIST finds a room by
	// its name only among those, so its cost stays bounded however many
	// rooms the server has. Rooms with members are found by the broker,
	// however long ago their last message.
	ListScan int
}

// OpenInbox opens the inbox of the database at path, creating the
// database if needed.
func OpenInbox(path string, opts InboxOptions) (*Inbox, error) {
	write, read, err := openPair(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: inbox in %s: %w", path, err)
	}
	return &Inbox{write: write, read: read, maxMentions: cmp(opts.MaxMentions, 1000), listScan: cmp(opts.ListScan, 10000)}, nil
}

// Close closes the connections.
func (x *Inbox) Close() error { return errors.Join(x.read.Close(), x.write.Close()) }

// State implements inbox.Store.
func (x *Inbox) State(ctx context.Context, name, room string) (read, mentions uint64, err error) {
	var r, n int64
	err = x.read.QueryRowContext(ctx, `SELECT r.seq, (SELECT count(*) FROM mentions m
			WHERE m.name_key = ?1 AND m.room = ?2 AND m.seq > r.seq)
		FROM (SELECT coalesce((SELECT seq FROM markers WHERE name_key = ?1 AND room = ?2), 0) AS seq) r`,
		name, room).Scan(&r, &n)
	return uint64(r), uint64(n), err
}

// Advance implements inbox.Store.
func (x *Inbox) Advance(ctx context.Context, name, room string, seq uint64) (bool, error) {
	if seq == 0 {
		return false, nil
	}
	tx, err := x.write.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `INSERT INTO markers (name_key, room, seq) VALUES (?, ?, ?)
		ON CONFLICT (name_key, room) DO UPDATE SET seq = excluded.seq WHERE excluded.seq > markers.seq`,
		name, room, int64(min(seq, 1<<62)))
	if err != nil {
		return false, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM mentions WHERE name_key = ? AND room = ? AND seq <= ?",
		name, room, int64(min(seq, 1<<62))); err != nil {
		return false, err
	}
	return true, tx.Commit()
}

// Mention implements inbox.Store.
func (x *Inbox) Mention(ctx context.Context, room string, seq uint64, names []string) error {
	if len(names) == 0 {
		return nil
	}
	tx, err := x.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, name := range names {
		res, err := tx.ExecContext(ctx, `INSERT INTO mentions (name_key, room, seq)
			SELECT ?1, ?2, ?3 WHERE ?3 > coalesce((SELECT seq FROM markers WHERE name_key = ?1 AND room = ?2), 0)
			ON CONFLICT DO NOTHING`, name, room, int64(seq))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			continue
		}
		// Keep the newest maxMentions: the one maxMentions places below
		// the newest and everything older go.
		if _, err := tx.ExecContext(ctx, `DELETE FROM mentions WHERE name_key = ?1 AND id <=
			(SELECT id FROM mentions WHERE name_key = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)`,
			name, x.maxMentions); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// Direct implements inbox.Store. The dms_recent index gives name's rooms
// newest first: limit rows are read, however many rooms name has. The
// rows of a name are not capped: each stands for a room with messages,
// whose rows in rooms and messages weigh more.
func (x *Inbox) Direct(ctx context.Context, name string, limit int) ([]protocol.RoomState, error) {
	rows, err := x.read.QueryContext(ctx, directQuery, name, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []protocol.RoomState
	for rows.Next() {
		var s protocol.RoomState
		var head, t, read int64
		if err := rows.Scan(&s.Room, &head, &t, &read); err != nil {
			return nil, err
		}
		s.Head, s.Time, s.Read = uint64(head), uint64(t), uint64(read)
		out = append(out, s)
	}
	return out, rows.Err()
}

// directQuery walks dms_recent (name, time, then room: the primary key
// ends every index of a WITHOUT ROWID table) from name's newest room, so
// no sort is needed and the scan stops at the limit.
const directQuery = `SELECT d.room, r.head, r.time, coalesce(m.seq, 0)
	FROM dms d INDEXED BY dms_recent JOIN rooms r ON r.room = d.room
	LEFT JOIN markers m ON m.name_key = d.name_key AND m.room = d.room
	WHERE d.name_key = ? AND r.head > 0
	ORDER BY d.time DESC, d.room DESC LIMIT ?`

// Active implements inbox.Store. Only the ListScan most recently active
// rooms are searched (see InboxOptions): a query that matches fewer than
// limit of them reads those and stops.
func (x *Inbox) Active(ctx context.Context, match string, limit int) ([]protocol.RoomInfo, error) {
	return x.rooms(ctx, activeQuery, match, x.listScan-1, limit)
}

// activeQuery walks the rooms_listed index (time, then room), which
// holds only rooms with messages that are not direct-message rooms, from
// the newest, so no sort is needed and the scan stops at the limit or at
// the time of the ListScan-th room (the scalar subquery, run once: a
// walk of the index alone), whichever comes first.
const activeQuery = `SELECT room, head, time FROM rooms INDEXED BY rooms_listed
	WHERE ` + listedRooms + ` AND instr(room, ?1) > 0
		AND time >= coalesce((SELECT time FROM rooms INDEXED BY rooms_listed WHERE ` + listedRooms + `
			ORDER BY time DESC LIMIT 1 OFFSET ?2), 0)
	ORDER BY time DESC, room DESC LIMIT ?3`

// Heads implements inbox.Store.
func (x *Inbox) Heads(ctx context.Context, rooms []string) ([]protocol.RoomInfo, error) {
	if len(rooms) == 0 {
		return nil, nil
	}
	args := make([]any, len(rooms))
	for i, r := range rooms {
		args[i] = r
	}
	return x.rooms(ctx, "SELECT room, head, time FROM rooms WHERE head > 0 AND room IN ("+placeholders(len(rooms))+")", args...)
}

func (x *Inbox) rooms(ctx context.Context, q string, args ...any) ([]protocol.RoomInfo, error) {
	rows, err := x.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []protocol.RoomInfo
	for rows.Next() {
		var r protocol.RoomInfo
		var head, t int64
		if err := rows.Scan(&r.Room, &head, &t); err != nil {
			return nil, err
		}
		r.Head, r.Time = uint64(head), uint64(t)
		out = append(out, r)
	}
	return out, rows.Err()
}
