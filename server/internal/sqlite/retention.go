package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"chat/protocol"
	"chat/server/internal/history"
)

// retainer removes messages that Retention no longer keeps, in the
// background: each room's oldest messages go in batches of at most
// retainBatch, one short transaction each, so the commit loop waits for
// no more than one batch. Rooms written to are trimmed soon after (a
// count limit is then kept closely); every room is checked every
// RetentionEvery (ages pass without writes). The rooms table keeps each
// room's head, so sequence numbers go on from it however many messages
// are gone, and the epoch stays.
type retainer struct {
	l      *Log
	rule   history.Retention
	every  time.Duration
	log    *slog.Logger
	vacuum bool // the database frees pages incrementally (auto_vacuum=INCREMENTAL)

	mu      sync.Mutex
	dirty   map[string]bool // rooms written since the last trim
	overrun bool            // dirty overflowed: check every room instead
	wake    chan struct{}   // capacity 1

	cancel context.CancelFunc
	done   chan struct{}
}

const (
	// retainBatch bounds the messages one DELETE removes.
	retainBatch = 500
	// maxDirty bounds the rooms remembered for a trim; past it the next
	// pass checks every room.
	maxDirty = 1 << 14
	// vacuumStep is how many free pages one incremental_vacuum returns
	// to the file system (4 MiB with the default page size).
	vacuumStep = 1024
)

func startRetainer(l *Log, opts Options) *retainer {
	every := opts.RetentionEvery
	if every <= 0 {
		every = 10 * time.Minute
		if opts.Retention.Age > 0 {
			every = min(max(opts.Retention.Age/10, time.Second), time.Minute)
		}
	}
	lg := opts.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &retainer{l: l, rule: opts.Retention, every: every, log: lg,
		dirty: map[string]bool{}, wake: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	var mode int
	if err := l.write.QueryRowContext(ctx, "PRAGMA auto_vacuum").Scan(&mode); err == nil {
		r.vacuum = mode == 2
	}
	if !r.vacuum {
		lg.Info("history retention: the database file does not shrink (made before auto_vacuum); freed pages are reused for new messages")
	}
	go r.run(ctx)
	return r
}

// written notes that room got messages; called by the commit loop. A nil
// retainer (no retention) does nothing.
func (r *retainer) written(room string) {
	if r == nil || r.rule.Messages == 0 {
		return // ages pass by the clock, not by writes
	}
	r.mu.Lock()
	if !r.overrun {
		if len(r.dirty) >= maxDirty {
			r.overrun, r.dirty = true, map[string]bool{}
		} else {
			r.dirty[room] = true
		}
	}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *retainer) stop() {
	if r == nil {
		return
	}
	r.cancel()
	<-r.done
}

func (r *retainer) run(ctx context.Context) {
	defer close(r.done)
	t := time.NewTicker(r.every)
	defer t.Stop()
	all := true // once at start: the limits may be new to this database
	for {
		var rooms []string
		r.mu.Lock()
		if r.overrun {
			all, r.overrun = true, false
		}
		if !all {
			for room := range r.dirty {
				rooms = append(rooms, room)
			}
		}
		clear(r.dirty)
		r.mu.Unlock()
		var removed, touched int
		var err error
		if all {
			removed, touched, err = r.pass(ctx)
		} else {
			for _, room := range rooms {
				var n int
				if n, err = r.trim(ctx, room); err != nil {
					break
				}
				removed += n
				if n > 0 {
					touched++
				}
			}
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			r.log.Error("history retention", "err", err)
		}
		if removed > 0 {
			r.log.Info("history retention removed old messages", "messages", removed, "rooms", touched)
			r.shrink(ctx)
		}
		all = false
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			all = true
		case <-r.wake:
		}
	}
}

// pass trims every room with messages, walking the rooms table in pages.
func (r *retainer) pass(ctx context.Context) (removed, touched int, err error) {
	after := ""
	for {
		rows, err := r.l.read.QueryContext(ctx, "SELECT room FROM rooms WHERE room > ? AND head > ? ORDER BY room LIMIT 256",
			after, int64(r.rule.Messages*boolInt(r.rule.Age == 0)))
		if err != nil {
			return removed, touched, err
		}
		var rooms []string
		for rows.Next() {
			var room string
			if err := rows.Scan(&room); err != nil {
				rows.Close()
				return removed, touched, err
			}
			rooms = append(rooms, room)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return removed, touched, err
		}
		for _, room := range rooms {
			n, err := r.trim(ctx, room)
			if err != nil {
				return removed, touched, err
			}
			removed += n
			if n > 0 {
				touched++
			}
		}
		if len(rooms) < 256 {
			return removed, touched, nil
		}
		after = rooms[len(rooms)-1]
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// trim removes room's messages that the rule no longer keeps: always a
// run of its oldest, so what is kept has no gaps.
func (r *retainer) trim(ctx context.Context, room string) (int, error) {
	removed := 0
	for {
		var head int64
		err := r.l.read.QueryRowContext(ctx, "SELECT head FROM rooms WHERE room = ?", room).Scan(&head)
		if errors.Is(err, sql.ErrNoRows) {
			return removed, nil
		}
		if err != nil {
			return removed, err
		}
		cutoff := uint64(0) // messages stored before this time go
		if r.rule.Age > 0 {
			cutoff = protocol.Millis(time.Now().Add(-r.rule.Age))
		}
		rows, err := r.l.read.QueryContext(ctx, "SELECT seq, time FROM messages WHERE room = ? ORDER BY seq LIMIT ?", room, retainBatch)
		if err != nil {
			return removed, err
		}
		var cut int64
		n, stopped := 0, false
		for rows.Next() {
			var seq, t int64
			if err := rows.Scan(&seq, &t); err != nil {
				rows.Close()
				return removed, err
			}
			n++
			byCount := r.rule.Messages > 0 && seq <= head-int64(r.rule.Messages)
			byAge := cutoff > 0 && uint64(t) < cutoff
			if !byCount && !byAge {
				stopped = true
				break
			}
			cut = seq
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return removed, err
		}
		if cut == 0 {
			return removed, nil
		}
		d, err := r.remove(ctx, room, cut)
		if err != nil {
			return removed, err
		}
		removed += int(d)
		if stopped || n < retainBatch {
			return removed, nil
		}
	}
}

// remove deletes room's messages up to seq, with their words in the
// search index and their reactions, in one transaction.
func (r *retainer) remove(ctx context.Context, room string, seq int64) (int64, error) {
	tx, err := r.l.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO words (words, rowid, text, room) SELECT 'delete', rid, `+searchText+`, `+roomTokenSQL+`
		FROM messages WHERE room = ? AND seq <= ? AND rid IS NOT NULL AND `+searchable, room, seq); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM reactions WHERE room = ? AND seq <= ?", room, seq); err != nil {
		return 0, err
	}
	var files bool // some of them carry files: the file store is told
	if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM messages WHERE room = ? AND seq <= ? AND file IS NOT NULL)",
		room, seq).Scan(&files); err != nil {
		return 0, err
	}
	res, err := tx.ExecContext(ctx, "DELETE FROM messages WHERE room = ? AND seq <= ?", room, seq)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	if n > 0 {
		// The texts removed are still in the write-ahead log's older
		// page images until it is emptied, as after a delete.
		r.l.wiper.removed()
		if files && r.l.removed != nil {
			r.l.removed()
		}
	}
	return n, nil
}

// shrink gives the pages retention freed back to the file system, a
// step at a time so that the commit loop is not held up for long.
func (r *retainer) shrink(ctx context.Context) {
	if !r.vacuum {
		return
	}
	for range 1 << 10 { // at most 4 GiB a pass
		var free int64
		if err := r.l.write.QueryRowContext(ctx, "PRAGMA freelist_count").Scan(&free); err != nil || free == 0 {
			return
		}
		if _, err := r.l.write.ExecContext(ctx, fmt.Sprintf("PRAGMA incremental_vacuum(%d)", vacuumStep)); err != nil {
			r.log.Error("history retention: incremental vacuum", "err", err)
			return
		}
	}
}
