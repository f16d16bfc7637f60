package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"chat/protocol"
	"chat/server/internal/history"
	"chat/server/internal/rooms"
)

// Rooms is the single server's record of which rooms exist (a
// rooms.Registry): a room exists when it has a row in the rooms table,
// where the history keeps its epoch. Every room joined before this record
// was kept has one, so those exist without being created again.
type Rooms struct {
	write *sql.DB
	read  *sql.DB
}

// OpenRooms opens the room record of the database at path, creating the
// database if needed.
func OpenRooms(path string) (*Rooms, error) {
	write, read, err := openPair(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: rooms in %s: %w", path, err)
	}
	return &Rooms{write: write, read: read}, nil
}

// Exists implements rooms.Registry.
func (r *Rooms) Exists(ctx context.Context, room string) (bool, error) {
	var one int
	err := r.read.QueryRowContext(ctx, "SELECT 1 FROM rooms WHERE room = ?", room).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// countRooms counts the rooms that are not direct-message rooms.
const countRooms = "SELECT count(*) FROM rooms WHERE substr(room, 1, 1) <> '" + protocol.DMPrefix + "'"

// Create implements rooms.Registry. The count and the insert are one
// transaction on the single writer connection (BEGIN IMMEDIATE), so the
// cap is exact. Counting walks the table: creations are rare (and
// limited per address), joins of existing rooms do not count.
func (r *Rooms) Create(ctx context.Context, room string, max int) (bool, error) {
	tx, err := r.write.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	var one int
	switch err := tx.QueryRowContext(ctx, "SELECT 1 FROM rooms WHERE room = ?", room).Scan(&one); {
	case err == nil:
		return false, nil
	case !errors.Is(err, sql.ErrNoRows):
		return false, err
	}
	if max > 0 {
		var n int
		if err := tx.QueryRowContext(ctx, countRooms).Scan(&n); err != nil {
			return false, err
		}
		if n >= max {
			return false, rooms.ErrFull
		}
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO rooms (room, epoch) VALUES (?, ?)", room, int64(history.NewEpoch())); err != nil {
		return false, err
	}
	return true, tx.Commit()
}

// Count implements rooms.Registry.
func (r *Rooms) Count(ctx context.Context) (int, error) {
	var n int
	err := r.read.QueryRowContext(ctx, countRooms).Scan(&n)
	return n, err
}

// Close closes the connections.
func (r *Rooms) Close() error { return errors.Join(r.read.Close(), r.write.Close()) }
