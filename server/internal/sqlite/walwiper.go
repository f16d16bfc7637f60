package sqlite

import (
	"database/sql"
	"log/slog"
)

// WALWiper empties the write-ahead log of another SQLite database in
// WAL mode with secure_delete (the cluster's node-local search index)
// soon after a commit removed text, as the Log does for chat.db: a
// TRUNCATE checkpoint at most once a second.
type WALWiper struct{ w *walWiper }

// StartWALWiper starts a wiper of db's log; Close stops it.
func StartWALWiper(db *sql.DB, logger *slog.Logger) *WALWiper {
	return &WALWiper{w: startWiper(db, logger)}
}

// Removed asks for a wipe after a commit that removed text; it never
// blocks.
func (w *WALWiper) Removed() { w.w.removed() }

// Wiped is told (without waiting) after each checkpoint that emptied the
// log.
func (w *WALWiper) Wiped() <-chan struct{} { return w.w.wiped }

// Close stops the wiper (it may be called twice).
func (w *WALWiper) Close() { w.w.close() }
