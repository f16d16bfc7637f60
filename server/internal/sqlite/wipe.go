package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// walWiper truncates the write-ahead log soon after a commit removed
// text (a delete, or an edit's old text). secure_delete zeroes the text
// in the page's new image, but chat.db-wal still holds the page's
// earlier images, the text included, until the log is overwritten,
// which on a quiet server may be never: a TRUNCATE checkpoint copies the
// new images into chat.db and empties the log. At most one checkpoint a
// second, so a burst of deletions costs one; one that readers hold up
// is tried again a second later.
type walWiper struct {
	db     *sql.DB
	logger *slog.Logger
	every  time.Duration
	kick   chan struct{} // buffered 1: a wipe is wanted
	// wiped is told (without waiting) after each checkpoint that
	// emptied the log: tests wait on it.
	wiped  chan struct{}
	stop   chan struct{}
	done   chan struct{}
	closed sync.Once
}

func startWiper(db *sql.DB, logger *slog.Logger) *walWiper {
	w := &walWiper{db: db, logger: logger, every: time.Second,
		kick: make(chan struct{}, 1), wiped: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

// removed asks for a wipe; it never blocks the commit loop.
func (w *walWiper) removed() {
	select {
	case w.kick <- struct{}{}:
	default: // one is pending already
	}
}

func (w *walWiper) run() {
	defer close(w.done)
	rest := time.NewTimer(0)
	<-rest.C
	for {
		select {
		case <-w.stop:
			return
		case <-w.kick:
		}
		busy, err := w.checkpoint()
		switch {
		case err != nil:
			w.logger.Warn("sqlite: emptying the write-ahead log after a deletion failed; it is tried again at the next one", "err", err)
		case busy:
			w.removed() // readers held it up: again after the rest
		default:
			select {
			case w.wiped <- struct{}{}:
			default:
			}
		}
		rest.Reset(w.every)
		select {
		case <-w.stop:
			rest.Stop()
			return
		case <-rest.C:
		}
	}
}

// checkpoint empties the log, waiting at most wipeWait for the readers
// using it: it holds the one write connection meanwhile, which the
// commit loop and retention need (with the connection's own busy timeout,
// readers polling without a pause could hold both up for seconds). busy
// is true when readers held it up.
func (w *walWiper) checkpoint() (busy bool, err error) {
	ctx := context.Background()
	conn, err := w.db.Conn(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", wipeWait.Milliseconds())); err != nil {
		return false, err
	}
	var blocked, frames, copied int
	err = conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&blocked, &frames, &copied)
	if _, rerr := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", busyTimeout.Milliseconds())); rerr != nil && err == nil {
		err = rerr
	}
	return blocked != 0, err
}

// wipeWait is how long a wipe waits for readers before it tries again a
// second later; busyTimeout is the write connection's usual wait (Open's
// busy_timeout).
const (
	wipeWait    = 100 * time.Millisecond
	busyTimeout = 10 * time.Second
)

// close stops the wiper; the Log's own close checkpoints last.
func (w *walWiper) close() {
	if w == nil {
		return // Open failed before it started
	}
	w.closed.Do(func() { close(w.stop) }) // the Log may be closed twice
	<-w.done
}
