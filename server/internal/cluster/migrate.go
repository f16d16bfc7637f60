package cluster

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"reflect"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"chat/protocol"

	_ "modernc.org/sqlite" // registers the "sqlite" driver, as package sqlite does
)

// sourcePage is how many messages Migrate reads from SQLite at once.
const sourcePage = 1000

// roomHead returns the last message of room in the stream (nil: none),
// read from the stream's leader.
func (c *Conn) roomHead(ctx context.Context, room string) (*protocol.Msg, error) {
	sm, err := c.getMsg(ctx, getReq{LastBySubj: MsgSubject + Token(room)})
	if errors.Is(err, errNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: last message of %q: %w", room, err)
	}
	m, err := sm.decode()
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// Import appends msgs to the history of their rooms as they are: same
// sequence numbers, times, senders, ids and texts. Within each room they
// must be in order, the first one head+1 of the room in the stream and
// each next one the next number; rooms may be interleaved. Each run of
// one room's messages goes through appendRoom (atomic batches, each a
// compare-and-set on the room's head: a message stored meanwhile fails
// it), with markers only for messages younger than the deduplication
// window. The indexes are written before Import returns.
//
// Import is for migrations and restores, not for live traffic.
func (c *Conn) Import(ctx context.Context, msgs []protocol.Msg) error {
	return c.importAbove(ctx, msgs, 0)
}

// importAbove is Import, except that the first message of a room new to
// the stream may be floor+1 rather than 1: a source whose retention
// removed the room's messages up to floor.
func (c *Conn) importAbove(ctx context.Context, msgs []protocol.Msg, floor uint64) error {
	for i := 0; i < len(msgs); {
		room := msgs[i].Room
		if room == "" {
			return errors.New("cluster: import: a message without a room")
		}
		j := i + 1
		for j < len(msgs) && msgs[j].Room == room {
			j++
		}
		if err := c.appendRoom(ctx, msgs[i:j], true, floor); err != nil {
			return fmt.Errorf("cluster: import: %w", err)
		}
		i = j
	}
	return c.index.flush(ctx)
}

// Stats counts what Migrate copied.
type Stats struct {
	Rooms        int // rooms whose messages were copied (all or the rest)
	RoomsSkipped int // rooms the cluster held already, up to the source's head
	Messages     int // messages copied
	Names        int // name claims copied (ones the cluster had are not counted)
	Markers      int // read markers that moved forward
	Mentions     int // names whose unread mentions were copied
	// ModeratedRooms is how many rooms' moderation states were copied
	// (operators, bans, mutes, topic, invites), AuditEntries how many
	// audit log entries.
	ModeratedRooms, AuditEntries int
	// RoomsRecorded is how many rooms were recorded as existing in
	// chat-roomset (the room creation record): every room the source
	// knows, with messages or not, but direct-message rooms.
	RoomsRecorded int
}

// sourceRoom is a room of the source database and what to do with it.
type sourceRoom struct {
	room string
	head uint64 // the source's last seq
	from uint64 // the cluster's head: copy the messages after it
}

// Migrate copies the database of a single chat server (package sqlite's
// file, schema version 5 to 8) into the cluster: every room's history with its
// sequence numbers, times, senders and ids, so clients' positions stay
// valid; name owners; read markers; unread mentions; the room
// indexes; and (version 6) the rooms' moderation and the audit log. Run it with the server stopped (it reads one consistent
// snapshot, but messages stored after it would not be copied).
//
// Nothing is written if a room of the source is in the cluster with
// other messages than the source's, or a name is claimed there by
// another secret: the error lists them. A room whose messages the
// cluster has up to the source's head is skipped, one it has a prefix of
// is completed, so an interrupted migration can be run again; markers
// only move forward and mentions are merged, so a re-run changes nothing.
func Migrate(ctx context.Context, fromDB string, c *Conn, log *slog.Logger) (Stats, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var st Stats
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: fromDB}).EscapedPath()+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return st, fmt.Errorf("cluster: migrate: opening %s: %w", fromDB, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	// One read transaction: a consistent snapshot of the source.
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return st, fmt.Errorf("cluster: migrate: %s: %w", fromDB, err)
	}
	defer tx.Rollback()
	var version int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return st, fmt.Errorf("cluster: migrate: %s: %w", fromDB, err)
	}
	// Version 6 added the moderation tables (migrate_moderation.go),
	// version 7 replies, edits, change entries and reactions.
	if version < 5 || version > 8 {
		return st, fmt.Errorf("cluster: migrate: %s has schema version %d; this migration reads versions 5 to 8 (a server of this version upgrades an older file when it opens it)", fromDB, version)
	}

	rooms, err := planRooms(ctx, tx, c)
	if err != nil {
		return st, err
	}
	names, err := planNames(ctx, tx, c)
	if err != nil {
		return st, err
	}
	log.Info("migrating", "from", fromDB, "rooms", len(rooms), "names", len(names))

	for _, r := range rooms {
		if r.from == r.head {
			st.RoomsSkipped++
			// Its index may be missing if a run was interrupted before
			// writing it; the index only moves forward, so this is safe.
			m, err := sourceMessages(ctx, tx, r.room, r.head-1, 1)
			if err != nil {
				return st, err
			}
			for i := range m {
				c.index.stored(&m[i])
			}
			continue
		}
		for after := r.from; after < r.head; {
			page, err := sourceMessages(ctx, tx, r.room, after, sourcePage)
			if err != nil {
				return st, err
			}
			if len(page) == 0 {
				break
			}
			// A room the source's retention trimmed starts above 1.
			floor := uint64(0)
			if after == 0 {
				floor = page[0].Seq - 1
			}
			if err := c.importAbove(ctx, page, floor); err != nil {
				return st, fmt.Errorf("cluster: migrate: %w", err)
			}
			st.Messages += len(page)
			after = page[len(page)-1].Seq
		}
		st.Rooms++
		log.Info("room copied", "room", r.room, "head", r.head, "from", r.from)
	}

	for key, hash := range names {
		if _, err := c.names.Create(ctx, Token(key), hash); err != nil {
			if !errors.Is(err, jetstream.ErrKeyExists) {
				return st, fmt.Errorf("cluster: migrate: name %q: %w", key, err)
			}
			// Checked before anything was written; claimed since by a
			// running node? Then it is that node's to settle.
			if cur, err := c.Names().owner(ctx, Token(key)); err != nil || !bytes.Equal(cur, hash) {
				return st, errors.Join(err, fmt.Errorf("cluster: migrate: name %q was claimed in the cluster during the migration", key))
			}
			continue
		}
		st.Names++
	}

	if st.RoomsRecorded, err = copyRoomSet(ctx, tx, c); err != nil {
		return st, err
	}
	if st.Markers, err = copyMarkers(ctx, tx, c); err != nil {
		return st, err
	}
	if st.Mentions, err = copyMentions(ctx, tx, c); err != nil {
		return st, err
	}
	if version >= 6 {
		if err := copyModeration(ctx, tx, c, &st, log); err != nil {
			return st, err
		}
	}
	if err := c.index.flush(ctx); err != nil {
		return st, fmt.Errorf("cluster: migrate: writing the indexes: %w", err)
	}
	log.Info("migrated", "rooms", st.Rooms, "skipped", st.RoomsSkipped, "messages", st.Messages,
		"names", st.Names, "markers", st.Markers, "mentions", st.Mentions,
		"moderated_rooms", st.ModeratedRooms, "audit_entries", st.AuditEntries, "recorded", st.RoomsRecorded)
	return st, nil
}

// copyRoomSet records the source's rooms (its rooms table: every room
// joined, with messages or not) as existing in the cluster, so that a
// room creation policy does not refuse rooms the single server had. It
// returns how many it recorded that the cluster did not know.
func copyRoomSet(ctx context.Context, tx *sql.Tx, c *Conn) (int, error) {
	rows, err := tx.QueryContext(ctx, "SELECT room FROM rooms WHERE substr(room, 1, 1) <> ?", protocol.DMPrefix)
	if err != nil {
		return 0, fmt.Errorf("cluster: migrate: rooms: %w", err)
	}
	var rooms []string
	for rows.Next() {
		var room string
		if err := rows.Scan(&room); err != nil {
			rows.Close()
			return 0, fmt.Errorf("cluster: migrate: rooms: %w", err)
		}
		rooms = append(rooms, room)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("cluster: migrate: rooms: %w", err)
	}
	n := 0
	for _, room := range rooms {
		if room == "" {
			continue
		}
		_, err := c.roomSet.Create(ctx, Token(room), now())
		switch {
		case err == nil:
			n++
		case !errors.Is(err, jetstream.ErrKeyExists):
			return n, fmt.Errorf("cluster: migrate: recording room %q: %w", room, err)
		}
	}
	return n, nil
}

// planRooms lists the source's rooms with messages and compares each
// with the cluster (one read each). The list is held in memory: a name
// and two numbers per room. It fails, listing them, if the cluster holds other
// messages in any.
func planRooms(ctx context.Context, tx *sql.Tx, c *Conn) ([]sourceRoom, error) {
	var rooms []sourceRoom
	var refused []string
	// Skip along the primary key (room, seq): one index seek per room,
	// not a read of every message.
	for room := ""; ; {
		var head int64
		err := tx.QueryRowContext(ctx, "SELECT room FROM messages WHERE room > ? ORDER BY room LIMIT 1", room).Scan(&room)
		if errors.Is(err, sql.ErrNoRows) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("cluster: migrate: listing rooms: %w", err)
		}
		if err := tx.QueryRowContext(ctx, "SELECT max(seq) FROM messages WHERE room = ?", room).Scan(&head); err != nil {
			return nil, fmt.Errorf("cluster: migrate: room %q: %w", room, err)
		}
		r := sourceRoom{room: room, head: uint64(head)}
		cm, err := c.roomHead(ctx, room)
		if err != nil {
			return nil, err
		}
		if cm != nil {
			if cm.Seq > r.head {
				refused = append(refused, fmt.Sprintf("%q (cluster head %d, source head %d)", room, cm.Seq, r.head))
				continue
			}
			// The cluster's last message must be the source's message of
			// that number: then the cluster holds a prefix (an earlier,
			// interrupted run), else another history.
			sm, err := sourceMessages(ctx, tx, room, cm.Seq-1, 1)
			if err != nil {
				return nil, err
			}
			if len(sm) != 1 || !reflect.DeepEqual(sm[0], *cm) {
				refused = append(refused, fmt.Sprintf("%q (the cluster's message %d differs from the source's)", room, cm.Seq))
				continue
			}
			r.from = cm.Seq
		}
		rooms = append(rooms, r)
	}
	if len(refused) > 0 {
		return nil, fmt.Errorf("cluster: migrate: %d rooms hold other messages in the cluster already; nothing was copied: %s",
			len(refused), listSome(refused))
	}
	return rooms, nil
}

// planNames reads the source's claims and fails, listing them, if any
// name is claimed in the cluster by another secret.
func planNames(ctx context.Context, tx *sql.Tx, c *Conn) (map[string][]byte, error) {
	rows, err := tx.QueryContext(ctx, "SELECT name_key, secret_hash FROM names")
	if err != nil {
		return nil, fmt.Errorf("cluster: migrate: names: %w", err)
	}
	defer rows.Close()
	names := map[string][]byte{}
	for rows.Next() {
		var key string
		var hash []byte
		if err := rows.Scan(&key, &hash); err != nil {
			return nil, fmt.Errorf("cluster: migrate: names: %w", err)
		}
		names[key] = hash
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cluster: migrate: names: %w", err)
	}
	var refused []string
	n := c.Names()
	for key, hash := range names {
		cur, err := n.owner(ctx, Token(key))
		if err != nil {
			return nil, err
		}
		if cur != nil && !bytes.Equal(cur, hash) {
			refused = append(refused, strconv.Quote(key))
		}
	}
	if len(refused) > 0 {
		return nil, fmt.Errorf("cluster: migrate: %d names are claimed in the cluster by other secrets; nothing was copied: %s",
			len(refused), listSome(refused))
	}
	return names, nil
}

// listSome joins the first ten of items, and says how many more.
func listSome(items []string) string {
	if len(items) <= 10 {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:10], ", ") + fmt.Sprintf(" and %d more", len(items)-10)
}

// sourceMessages reads up to limit messages of room after seq from the
// source. From schema version 7 on they carry their replies, edits and
// reactions, and the change entries their changes (the source applied
// them in place, as the cluster keeps them: the messages go over in
// their current state).
func sourceMessages(ctx context.Context, tx *sql.Tx, room string, after uint64, limit int) ([]protocol.Msg, error) {
	v7, err := hasColumn(ctx, tx, "messages", "kind")
	if err != nil {
		return nil, err
	}
	v8, err := hasColumn(ctx, tx, "messages", "file")
	if err != nil {
		return nil, err
	}
	cols := "seq, time, sender, cid, text"
	if v7 {
		cols += ", reply, edited, kind, target, emoji"
	}
	if v8 {
		// Schema 8: the file a message carries (its content is copied
		// by ImportFiles from the data directory's files/).
		cols += ", file, coalesce(thumb, ''), file_name, file_type, file_size, width, height, thumb_width, thumb_height"
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+cols+` FROM messages
		WHERE room = ? AND seq > ? ORDER BY seq LIMIT ?`, room, int64(after), limit)
	if err != nil {
		return nil, fmt.Errorf("cluster: migrate: messages of %q: %w", room, err)
	}
	defer rows.Close()
	var msgs []protocol.Msg
	for rows.Next() {
		var seq, t, reply, edited, kind, target int64
		var sender, emoji string
		var id, text []byte
		dest := []any{&seq, &t, &sender, &id, &text}
		if v7 {
			dest = append(dest, &reply, &edited, &kind, &target, &emoji)
		}
		var file sql.NullString
		var f protocol.File
		if v8 {
			dest = append(dest, &file, &f.Thumb, &f.Name, &f.Type, &f.Size, &f.Width, &f.Height, &f.ThumbWidth, &f.ThumbHeight)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("cluster: migrate: messages of %q: %w", room, err)
		}
		m := protocol.Msg{Room: room, Seq: uint64(seq), Time: uint64(t), Sender: sender, ID: string(id), Text: string(text),
			Reply: uint64(reply), Edited: uint64(edited)}
		if file.Valid && file.String != "" {
			f.ID = file.String
			m.File = &f
		}
		if kind != 0 {
			m.Change = &protocol.ChangeEntry{Kind: protocol.ChangeKind(kind), Target: uint64(target), Emoji: emoji}
			m.Text, m.Reply, m.Edited, m.File = "", 0, 0, nil
		}
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cluster: migrate: messages of %q: %w", room, err)
	}
	if v7 && len(msgs) > 0 {
		if err := sourceReactions(ctx, tx, room, msgs); err != nil {
			return nil, err
		}
	}
	return msgs, nil
}

// sourceReactions fills in the reactions of msgs (consecutive messages of
// room) from the source: per emoji in protocol.Reactions order, the
// names oldest first, up to protocol.MaxReactionNames, all counted.
func sourceReactions(ctx context.Context, tx *sql.Tx, room string, msgs []protocol.Msg) error {
	rows, err := tx.QueryContext(ctx, `SELECT seq, emoji, name FROM reactions
		WHERE room = ? AND seq >= ? AND seq <= ? ORDER BY seq, at`, room, int64(msgs[0].Seq), int64(msgs[len(msgs)-1].Seq))
	if err != nil {
		return fmt.Errorf("cluster: migrate: reactions in %q: %w", room, err)
	}
	defer rows.Close()
	bySeq := map[uint64]map[string][]string{}
	for rows.Next() {
		var seq int64
		var emoji, name string
		if err := rows.Scan(&seq, &emoji, &name); err != nil {
			return fmt.Errorf("cluster: migrate: reactions in %q: %w", room, err)
		}
		if bySeq[uint64(seq)] == nil {
			bySeq[uint64(seq)] = map[string][]string{}
		}
		bySeq[uint64(seq)][emoji] = append(bySeq[uint64(seq)][emoji], name)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cluster: migrate: reactions in %q: %w", room, err)
	}
	for i := range msgs {
		names := bySeq[msgs[i].Seq]
		if names == nil || msgs[i].Change != nil {
			continue
		}
		for _, e := range protocol.Reactions {
			if ns := names[e]; len(ns) > 0 {
				msgs[i].Reactions = append(msgs[i].Reactions, protocol.Reaction{Emoji: e, Count: uint64(len(ns)),
					Names: ns[:min(len(ns), protocol.MaxReactionNames)]})
			}
		}
	}
	return nil
}

// hasColumn reports whether the source's table has the column.
func hasColumn(ctx context.Context, tx *sql.Tx, table, column string) (bool, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info(?) WHERE name = ?`, table, column).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("cluster: migrate: the source's %s table: %w", table, err)
	}
	return n > 0, nil
}

// copyMarkers moves each marker of the source forward in the cluster.
func copyMarkers(ctx context.Context, tx *sql.Tx, c *Conn) (int, error) {
	rows, err := tx.QueryContext(ctx, "SELECT name_key, room, seq FROM markers")
	if err != nil {
		return 0, fmt.Errorf("cluster: migrate: markers: %w", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var name, room string
		var seq int64
		if err := rows.Scan(&name, &room, &seq); err != nil {
			return n, fmt.Errorf("cluster: migrate: markers: %w", err)
		}
		if seq <= 0 || name == "" || room == "" {
			continue
		}
		moved, err := c.advanceMarker(ctx, name, room, uint64(seq))
		if err != nil {
			return n, fmt.Errorf("cluster: migrate: marker of %q in %q: %w", name, room, err)
		}
		if moved {
			n++
		}
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("cluster: migrate: markers: %w", err)
	}
	return n, nil
}

// copyMentions merges each name's unread mentions, oldest first, into
// the cluster's list of the name. It returns how many names' lists grew.
func copyMentions(ctx context.Context, tx *sql.Tx, c *Conn) (int, error) {
	rows, err := tx.QueryContext(ctx, "SELECT name_key, room, seq FROM mentions ORDER BY name_key, id")
	if err != nil {
		return 0, fmt.Errorf("cluster: migrate: mentions: %w", err)
	}
	defer rows.Close()
	n := 0
	var name string
	var list []mentionEntry
	flush := func() error {
		if len(list) == 0 || name == "" {
			return nil
		}
		grew, err := c.addMentions(ctx, name, list, DefaultMaxMentions)
		if err != nil {
			return fmt.Errorf("cluster: migrate: mentions of %q: %w", name, err)
		}
		if grew {
			n++
		}
		list = list[:0]
		return nil
	}
	for rows.Next() {
		var key, room string
		var seq int64
		if err := rows.Scan(&key, &room, &seq); err != nil {
			return n, fmt.Errorf("cluster: migrate: mentions: %w", err)
		}
		if key != name {
			if err := flush(); err != nil {
				return n, err
			}
			name = key
		}
		// A name's list is bounded in the source as in the cluster, so
		// this holds at most that many.
		list = append(list, mentionEntry{Room: room, Seq: uint64(seq)})
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("cluster: migrate: mentions: %w", err)
	}
	return n, flush()
}
