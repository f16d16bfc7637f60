package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strconv"
	"strings"

	"chat/protocol"
	"chat/server/internal/history"
)

// queryer is what reads need of a transaction or a database.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// commit stores a batch in one transaction. The unique index on
// (room, sender_key, cid) is what makes re-sends idempotent, also across a
// crash between commit and acknowledgement; it covers change entries too,
// so a re-sent change is found before it is applied again.
func (l *Log) commit(batch []*history.Request) []history.Result {
	results := make([]history.Result, len(batch))
	for i, r := range batch {
		results[i].Request = r
	}
	fail := func(err error) []history.Result {
		for i := range results {
			results[i] = history.Result{Request: batch[i], Err: err}
		}
		return results
	}
	ctx := context.Background()
	tx, err := l.write.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	ins, look := tx.Stmt(l.insert), tx.Stmt(l.lookup)
	advanced := map[string]uint64{} // heads before this batch, to undo on failure
	lastRID := l.lastRID            // the messages of this batch get greater rids
	undo := func(err error) []history.Result {
		l.lastRID = lastRID
		return l.rollback(tx, advanced, fail(err))
	}
	now := protocol.Millis(l.now())
	removed := false   // a text left: the WAL is emptied after the commit
	filesGone := false // a delete took a message's file: the file store collects
	for i, r := range batch {
		head, err := l.head(tx, r.Room)
		if err != nil {
			return undo(err)
		}
		key := protocol.Key(r.Sender)
		msg := protocol.Msg{Room: r.Room, Seq: head + 1, Time: now, Sender: r.Sender, ID: r.ID, Text: r.Text, Reply: r.Reply, File: copyFile(r.File)}
		var kind, target int64
		var emoji string
		var rid any // NULL: not in the search index
		if c := r.Change; c != nil {
			// A change is looked up before it is applied: a re-send must
			// not apply it twice.
			var seq int64
			switch err := look.QueryRow(r.Room, key, []byte(r.ID)).Scan(&seq); {
			case err == nil:
				if results[i].Msg, err = readOne(ctx, tx, r.Room, uint64(seq)); err != nil {
					return undo(err)
				}
				results[i].Duplicate = true
				continue
			case !errors.Is(err, sql.ErrNoRows):
				return undo(err)
			}
			hadFile, err := l.apply(ctx, tx, r, msg.Seq, now, lastRID)
			switch {
			case errors.Is(err, history.ErrNoMessage), errors.Is(err, history.ErrNotSender):
				results[i].Err = err
				continue
			case err != nil:
				return undo(err)
			}
			removed = removed || c.Kind == protocol.ChangeDelete || c.Kind == protocol.ChangeEdit
			filesGone = filesGone || c.Kind == protocol.ChangeDelete && hadFile
			msg.Text, msg.Reply, msg.File = "", 0, nil
			kind, target = int64(c.Kind), int64(c.Target)
			if c.Kind == protocol.ChangeReact || c.Kind == protocol.ChangeUnreact {
				emoji = c.Text
			}
			msg.Change = &protocol.ChangeEntry{Kind: c.Kind, Target: c.Target, Emoji: emoji}
		} else if history.SearchText(msg.Text, msg.File) != "" {
			rid = l.nextRID(now)
		}
		res, err := ins.Exec(append([]any{msg.Room, int64(msg.Seq), int64(msg.Time), msg.Sender, key, []byte(msg.ID), []byte(msg.Text),
			int64(min(msg.Reply, 1<<62)), kind, target, emoji, rid}, fileArgs(msg.File)...)...)
		if err != nil {
			return undo(err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			// A re-sent message (changes were looked up above).
			var seq int64
			if err := look.QueryRow(r.Room, key, []byte(r.ID)).Scan(&seq); err != nil {
				return undo(err)
			}
			if results[i].Msg, err = readOne(ctx, tx, r.Room, uint64(seq)); err != nil {
				return undo(err)
			}
			results[i].Duplicate = true
			continue
		}
		if msg.File != nil {
			if _, err := tx.Exec("UPDATE holds SET used = max(used, ?) WHERE file = ? AND owner = ?", int64(msg.Time), msg.File.ID, key); err != nil {
				return undo(err)
			}
		}
		if _, ok := advanced[r.Room]; !ok {
			advanced[r.Room] = head
		}
		l.heads[r.Room] = msg.Seq
		if msg.Change != nil {
			state, err := readOne(ctx, tx, r.Room, msg.Change.Target)
			if err != nil {
				return undo(err)
			}
			msg.Change.State = &state
		}
		results[i].Msg = msg
	}
	// Each room's head and last activity, and the direct-message rooms of
	// each name: in the same transaction, so the lists never disagree
	// with the messages.
	upsert, dm := tx.Stmt(l.room), tx.Stmt(l.dm)
	for room := range advanced {
		if _, err := upsert.Exec(room, int64(history.NewEpoch()), int64(l.heads[room]), int64(now)); err != nil {
			return undo(err)
		}
		for _, name := range dmNames(room) {
			if _, err := dm.Exec(name, room, int64(now)); err != nil {
				return undo(err)
			}
		}
	}
	// The batch's new messages go into the search index last, in one
	// statement, with the text they have now (edited or deleted in the
	// same batch): FTS5 writes a segment at each statement after it.
	if l.lastRID > lastRID {
		if _, err := tx.Stmt(l.index).Exec(lastRID, l.lastRID); err != nil {
			return undo(err)
		}
	}
	if err := tx.Commit(); err != nil {
		return undo(err)
	}
	for room := range advanced {
		l.retain.written(room) // committed: the trim reads the new head
	}
	if removed {
		l.wiper.removed()
	}
	if filesGone && l.removed != nil {
		l.removed()
	}
	return results
}

// ridShift makes room for this many messages in one millisecond below
// the next millisecond's rids.
const ridShift = 12

// nextRID gives a new message its row in the search index: its time
// shifted left by ridShift, or one more than the last if that is not
// greater (more than 4096 messages in a millisecond, or a clock turned
// back). So rids grow with time, and the index's rowid order is the
// messages' newest-first order.
func (l *Log) nextRID(now uint64) int64 {
	l.lastRID = max(l.lastRID+1, int64(now)<<ridShift)
	return l.lastRID
}

// apply applies r's change to its target inside tx, or returns
// history.ErrNoMessage or history.ErrNotSender (nothing written). seq is
// the change entry's place, which orders reactions; a target with a rid
// above pending is not in the index yet (commit adds it at the end).
// hadFile reports that the target carried a file.
func (l *Log) apply(ctx context.Context, tx *sql.Tx, r *history.Request, seq, now uint64, pending int64) (hadFile bool, err error) {
	c := r.Change
	if c.Target == 0 || c.Target >= 1<<62 {
		return false, history.ErrNoMessage
	}
	target := int64(c.Target)
	var senderKey, text, fileName string // text: as indexed (searchText)
	var kind int64
	var rid sql.NullInt64
	var file sql.NullString
	err = tx.QueryRowContext(ctx, "SELECT sender_key, kind, "+searchText+", rid, file, file_name FROM messages WHERE room = ? AND seq = ?",
		r.Room, target).Scan(&senderKey, &kind, &text, &rid, &file, &fileName)
	if errors.Is(err, sql.ErrNoRows) || err == nil && (kind != 0 || text == "" && !file.Valid) {
		return false, history.ErrNoMessage // gone, a change entry, or deleted
	}
	if err != nil {
		return false, err
	}
	hadFile = file.Valid
	key := protocol.Key(r.Sender)
	own := key == senderKey
	indexed := rid.Valid && rid.Int64 <= pending
	switch c.Kind {
	case protocol.ChangeEdit:
		if !own {
			return hadFile, history.ErrNotSender
		}
		if _, err = tx.ExecContext(ctx, "UPDATE messages SET text = ?, edited = ? WHERE room = ? AND seq = ?",
			[]byte(c.Text), int64(now), r.Room, target); err == nil && indexed {
			if _, err = tx.ExecContext(ctx, unindex, rid.Int64, text, RoomToken(r.Room)); err == nil {
				_, err = tx.ExecContext(ctx, "INSERT INTO words (rowid, text, room) VALUES (?, ?, ?)", rid.Int64,
					history.SearchText(c.Text, &protocol.File{Name: fileName}), RoomToken(r.Room))
			}
		}
	case protocol.ChangeDelete:
		if !own && !c.Moderator {
			return hadFile, history.ErrNotSender
		}
		// The text is overwritten (secure_delete zeroes the space it
		// took), the file goes with it, and its words leave the index
		// (FTS5 secure-delete).
		_, err = tx.ExecContext(ctx, "UPDATE messages SET text = x'', "+clearFile+", edited = ? WHERE room = ? AND seq = ?",
			int64(now), r.Room, target)
		if err == nil {
			_, err = tx.ExecContext(ctx, "DELETE FROM reactions WHERE room = ? AND seq = ?", r.Room, target)
		}
		if err == nil && indexed {
			_, err = tx.ExecContext(ctx, unindex, rid.Int64, text, RoomToken(r.Room))
		}
	case protocol.ChangeReact:
		if !protocol.IsReaction(c.Text) {
			return hadFile, nil // the hub refuses other emoji; stored, it changes nothing
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO reactions (room, seq, emoji, name_key, name, at) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT DO NOTHING`, r.Room, target, c.Text, key, r.Sender, int64(seq))
	case protocol.ChangeUnreact:
		_, err = tx.ExecContext(ctx, "DELETE FROM reactions WHERE room = ? AND seq = ? AND emoji = ? AND name_key = ?",
			r.Room, target, c.Text, key)
	}
	return hadFile, err
}

// messageColumns are the columns scanMessage reads.
const messageColumns = "seq, time, sender, cid, text, reply, edited, kind, target, emoji, " + fileColumns

// fileColumns are a message's file, as fileArgs gives them.
const fileColumns = "file, thumb, file_name, file_type, file_size, width, height, thumb_width, thumb_height"

// clearFile is the SET clause that removes a message's file.
const clearFile = "file = NULL, thumb = NULL, file_name = '', file_type = '', file_size = 0, width = 0, height = 0, thumb_width = 0, thumb_height = 0"

// fileArgs are the values of fileColumns for f (nil: no file).
func fileArgs(f *protocol.File) []any {
	if f == nil {
		return []any{nil, nil, "", "", 0, 0, 0, 0, 0}
	}
	var thumb any
	if f.Thumb != "" {
		thumb = f.Thumb
	}
	n := func(v uint64) int64 { return int64(min(v, 1<<62)) }
	return []any{f.ID, thumb, f.Name, f.Type, n(f.Size), n(f.Width), n(f.Height), n(f.ThumbWidth), n(f.ThumbHeight)}
}

// copyFile returns a copy of f, so that a result does not share its
// request's.
func copyFile(f *protocol.File) *protocol.File {
	if f == nil {
		return nil
	}
	c := *f
	return &c
}

func scanMessage(rows interface{ Scan(...any) error }, room string) (protocol.Msg, error) {
	var seq, t, reply, edited, kind, target int64
	var sender, emoji string
	var id, text []byte
	var file, thumb sql.NullString
	var f protocol.File
	var size, width, height, tw, th int64
	if err := rows.Scan(&seq, &t, &sender, &id, &text, &reply, &edited, &kind, &target, &emoji,
		&file, &thumb, &f.Name, &f.Type, &size, &width, &height, &tw, &th); err != nil {
		return protocol.Msg{}, err
	}
	m := protocol.Msg{Room: room, Seq: uint64(seq), Time: uint64(t), Sender: sender, ID: string(id), Text: string(text),
		Reply: uint64(reply), Edited: uint64(edited)}
	if file.Valid {
		f.ID, f.Thumb = file.String, thumb.String
		f.Size, f.Width, f.Height, f.ThumbWidth, f.ThumbHeight = uint64(size), uint64(width), uint64(height), uint64(tw), uint64(th)
		m.File = &f
	}
	if kind != 0 {
		m.Change = &protocol.ChangeEntry{Kind: protocol.ChangeKind(kind), Target: uint64(target), Emoji: emoji}
	}
	return m, nil
}

// readOne reads the entry seq of room as reads give it.
func readOne(ctx context.Context, q queryer, room string, seq uint64) (protocol.Msg, error) {
	msgs, err := readMessages(ctx, q, room, "SELECT "+messageColumns+" FROM messages WHERE room = ? AND seq = ?", room, int64(seq))
	if err == nil && len(msgs) == 0 {
		err = sql.ErrNoRows
	}
	if err != nil {
		return protocol.Msg{}, err
	}
	return msgs[0], nil
}

// readMessages runs a query of messageColumns of room and completes what
// it read: the messages' reactions, the change entries' targets.
func readMessages(ctx context.Context, q queryer, room, query string, args ...any) ([]protocol.Msg, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	var msgs []protocol.Msg
	for rows.Next() {
		m, err := scanMessage(rows, room)
		if err != nil {
			rows.Close()
			return nil, err
		}
		msgs = append(msgs, m)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, err
	}
	if len(msgs) == 0 {
		return nil, nil
	}
	// The targets that are not among msgs: read them too.
	bySeq := map[uint64]*protocol.Msg{}
	for i := range msgs {
		bySeq[msgs[i].Seq] = &msgs[i]
	}
	var missing []any
	for _, m := range msgs {
		if m.Change != nil && bySeq[m.Change.Target] == nil && !slices.Contains(missing, any(int64(m.Change.Target))) {
			missing = append(missing, int64(min(m.Change.Target, 1<<62)))
		}
	}
	var targets []protocol.Msg
	if len(missing) > 0 {
		rows, err := q.QueryContext(ctx, "SELECT "+messageColumns+" FROM messages WHERE room = ? AND seq IN (?"+
			strings.Repeat(", ?", len(missing)-1)+")", append([]any{room}, missing...)...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			m, err := scanMessage(rows, room)
			if err != nil {
				rows.Close()
				return nil, err
			}
			targets = append(targets, m)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return nil, err
		}
		for i := range targets {
			bySeq[targets[i].Seq] = &targets[i]
		}
	}
	if err := addReactions(ctx, q, room, msgs, targets); err != nil {
		return nil, err
	}
	for i := range msgs {
		if c := msgs[i].Change; c != nil {
			if t := bySeq[c.Target]; t != nil && t.Change == nil {
				state := *t
				c.State = &state
			}
		}
	}
	return msgs, nil
}

// reactionsQuery lists the reactions of room's messages from ?2 to ?3:
// per message and emoji the first MaxReactionNames names in the order
// they reacted, with the count of all. It walks reactions_order, whose
// order is the window's, so nothing is sorted.
var reactionsQuery = `SELECT seq, emoji, name, n FROM (
	SELECT seq, emoji, name, row_number() OVER w AS i, count(*) OVER (PARTITION BY seq, emoji) AS n
	FROM reactions INDEXED BY reactions_order WHERE room = ?1 AND seq BETWEEN ?2 AND ?3
	WINDOW w AS (PARTITION BY seq, emoji ORDER BY at))
WHERE i <= ` + strconv.Itoa(protocol.MaxReactionNames)

// addReactions fills in the reactions of the messages in bySeq: those of
// the run of messages read, then those of each target outside it.
func addReactions(ctx context.Context, q queryer, room string, msgs []protocol.Msg, targets []protocol.Msg) error {
	bySeq := map[uint64]*protocol.Msg{}
	for _, list := range [][]protocol.Msg{msgs, targets} {
		for i := range list {
			if m := &list[i]; m.Change == nil && !history.Deleted(m) { // a deleted message has none
				bySeq[m.Seq] = m
			}
		}
	}
	ranges := [][2]uint64{{msgs[0].Seq, msgs[len(msgs)-1].Seq}}
	for _, t := range targets {
		ranges = append(ranges, [2]uint64{t.Seq, t.Seq})
	}
	for _, r := range ranges {
		if err := readReactions(ctx, q, room, r[0], r[1], bySeq); err != nil {
			return err
		}
	}
	// In the order of protocol.Reactions, not of the emoji's bytes.
	for _, m := range bySeq {
		slices.SortStableFunc(m.Reactions, func(a, b protocol.Reaction) int {
			return slices.Index(protocol.Reactions[:], a.Emoji) - slices.Index(protocol.Reactions[:], b.Emoji)
		})
	}
	return nil
}

func readReactions(ctx context.Context, q queryer, room string, lo, hi uint64, bySeq map[uint64]*protocol.Msg) error {
	rows, err := q.QueryContext(ctx, reactionsQuery, room, int64(min(lo, hi, 1<<62)), int64(min(max(lo, hi), 1<<62)))
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var seq, n int64
		var emoji, name string
		if err := rows.Scan(&seq, &emoji, &name, &n); err != nil {
			return err
		}
		m := bySeq[uint64(seq)]
		if m == nil {
			continue
		}
		if k := len(m.Reactions); k == 0 || m.Reactions[k-1].Emoji != emoji {
			m.Reactions = append(m.Reactions, protocol.Reaction{Emoji: emoji, Count: uint64(n)})
		}
		x := &m.Reactions[len(m.Reactions)-1]
		x.Names = append(x.Names, name)
	}
	return rows.Err()
}

// readRange reads in one snapshot: the entries and their targets agree.
func (l *Log) readRange(ctx context.Context, room, query string, args ...any) ([]protocol.Msg, error) {
	tx, err := l.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	return readMessages(ctx, tx, room, query, args...)
}

// Since implements history.Log.
func (l *Log) Since(ctx context.Context, room string, after uint64, limit int) ([]protocol.Msg, error) {
	return l.readRange(ctx, room, "SELECT "+messageColumns+` FROM messages
		WHERE room = ? AND seq > ? ORDER BY seq LIMIT ?`, room, int64(min(after, 1<<62)), limit)
}

// Last implements history.Log.
func (l *Log) Last(ctx context.Context, room string, n int) ([]protocol.Msg, error) {
	msgs, err := l.readRange(ctx, room, "SELECT "+messageColumns+` FROM messages
		WHERE room = ? ORDER BY seq DESC LIMIT ?`, room, n)
	slices.Reverse(msgs)
	return msgs, err
}

// Before implements history.Log. The primary key (room, seq) makes it an
// index range read, however long the room.
func (l *Log) Before(ctx context.Context, room string, before uint64, limit int) ([]protocol.Msg, error) {
	msgs, err := l.readRange(ctx, room, "SELECT "+messageColumns+` FROM messages
		WHERE room = ? AND seq < ? ORDER BY seq DESC LIMIT ?`, room, int64(min(before, 1<<62)), limit)
	slices.Reverse(msgs)
	return msgs, err
}

func (l *Log) rollback(tx *sql.Tx, advanced map[string]uint64, results []history.Result) []history.Result {
	_ = tx.Rollback()
	for room, head := range advanced {
		l.heads[room] = head
	}
	return results
}
