package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"chat/protocol"

	_ "modernc.org/sqlite" // registers the "sqlite" driver, as package sqlite does
)

// Atomic batch headers (JetStream 2.12+; the Go client has no API for
// them yet).
const (
	headerBatchID     = "Nats-Batch-Id"
	headerBatchSeq    = "Nats-Batch-Sequence"
	headerBatchCommit = "Nats-Batch-Commit"
)

// Bounds of one atomic batch of Import: JetStream takes at most 1000
// messages in a batch (a message and its marker are two), and a batch
// is one raft entry in a replicated stream, so it stays small.
const (
	importBatchMsgs  = 200
	importBatchBytes = 512 << 10
)

// sourcePage is how many messages Migrate reads from SQLite at once.
const sourcePage = 1000

// roomHead returns the last message of room in the stream and its stream
// sequence; nil and 0 when the room has none. It asks the stream's
// leader: the head decides the next sequence number.
func (c *Conn) roomHead(ctx context.Context, room string) (*protocol.Msg, uint64, error) {
	raw, err := c.leaderMsg(ctx, StreamName, getReq{LastBySubj: MsgSubject + Token(room)})
	if err != nil {
		return nil, 0, fmt.Errorf("cluster: last message of %q: %w", room, err)
	}
	if raw == nil {
		return nil, 0, nil
	}
	m, err := decodePayload(raw.Data)
	if err != nil {
		return nil, 0, fmt.Errorf("cluster: last message of %q (stream seq %d): %w", room, raw.Seq, err)
	}
	return m, raw.Seq, nil
}

// decodePayload decodes a chat.m message: a MSG frame as protocol.Encode
// makes it, length prefix included.
func decodePayload(data []byte) (*protocol.Msg, error) {
	if len(data) < protocol.LengthSize {
		return nil, errors.New("payload shorter than a frame")
	}
	f, err := protocol.Decode(data[protocol.LengthSize:])
	if err != nil {
		return nil, err
	}
	m, ok := f.(*protocol.Msg)
	if !ok {
		return nil, fmt.Errorf("payload is a %T frame, not MSG", f)
	}
	return m, nil
}

// Import appends msgs to the history of their rooms as they are: same
// sequence numbers, times, senders, ids and texts. Within each room they
// must be in order, the first one head+1 of the room in the stream and
// each next one the next number; rooms may be interleaved. Each message
// gets its deduplication marker if it is younger than the deduplication
// window (for what is left of the window), so a client re-sending it is
// answered with the original. Messages of one room go in atomic batches
// whose first carries Nats-Expected-Last-Subject-Sequence: a message
// stored meanwhile by a node (or a second Import) fails the batch, and
// nothing of it is stored. The indexes are written before Import returns.
//
// Import is for migrations and restores, not for live traffic.
func (c *Conn) Import(ctx context.Context, msgs []protocol.Msg) error {
	type state struct{ head, streamSeq uint64 }
	rooms := map[string]*state{}
	last := map[string]protocol.Msg{}
	for i := 0; i < len(msgs); {
		room := msgs[i].Room
		if room == "" {
			return errors.New("cluster: import: a message without a room")
		}
		st := rooms[room]
		if st == nil {
			m, seq, err := c.roomHead(ctx, room)
			if err != nil {
				return err
			}
			st = &state{streamSeq: seq}
			if m != nil {
				st.head = m.Seq
			}
			rooms[room] = st
		}
		j, size := i, 0
		for ; j < len(msgs) && msgs[j].Room == room && j-i < importBatchMsgs && size < importBatchBytes; j++ {
			if want := st.head + uint64(j-i) + 1; msgs[j].Seq != want {
				return fmt.Errorf("cluster: import into %q: message seq %d where %d comes next", room, msgs[j].Seq, want)
			}
			size += len(msgs[j].Text) + len(msgs[j].Sender) + len(msgs[j].ID) + len(room)
		}
		seq, err := c.importBatch(ctx, msgs[i:j], st.streamSeq)
		if err != nil {
			return fmt.Errorf("cluster: import into %q, seqs %d-%d: %w", room, msgs[i].Seq, msgs[j-1].Seq, err)
		}
		st.head, st.streamSeq = msgs[j-1].Seq, seq
		last[room] = msgs[j-1]
		i = j
	}
	for _, m := range last {
		c.index.stored(&m)
	}
	return c.index.flush(ctx)
}

// importBatch stores msgs, all of one room and in order, in one atomic
// batch after the room's message at stream sequence after (0: none), and
// returns the stream sequence of the last of them.
func (c *Conn) importBatch(ctx context.Context, msgs []protocol.Msg, after uint64) (uint64, error) {
	tok := Token(msgs[0].Room)
	node := c.opts.Name
	if node == "" {
		node = "import"
	}
	now := time.Now()
	var entries []*nats.Msg
	lastMsg := 0 // index in entries of the last message (not marker)
	for i := range msgs {
		m := &msgs[i]
		dd := DedupToken(protocol.Key(m.Sender), m.ID)
		e := nats.NewMsg(MsgSubject + tok)
		e.Data = protocol.Encode(m)
		e.Header.Set(HeaderSeq, strconv.FormatUint(m.Seq, 10))
		e.Header.Set(HeaderNode, node)
		// No Nats-Msg-Id: a message old enough to get no marker must not
		// be recognised by JetStream's window either (a re-send would
		// then be neither found nor stored); the migration is the only
		// writer, and its re-runs compare heads.
		if i == 0 {
			e.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(after, 10))
		}
		lastMsg = len(entries)
		entries = append(entries, e)
		// The marker lives for what is left of the window since the
		// message was first stored; an older message gets none.
		ttl := time.UnixMilli(int64(m.Time)).Add(c.opts.DedupWindow).Sub(now).Truncate(time.Second)
		if ttl >= time.Second {
			d := nats.NewMsg(DedupSubject + tok + "." + dd)
			d.Header.Set(HeaderSeq, strconv.FormatUint(m.Seq, 10))
			d.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
			d.Header.Set(jetstream.MsgTTLHeader, ttl.String())
			entries = append(entries, d)
		}
	}
	ack, err := c.publishAtomic(ctx, entries)
	if err != nil {
		return 0, err
	}
	// The batch's messages are at consecutive stream sequences ending
	// at ack.Sequence.
	return ack.Sequence - uint64(len(entries)-1-lastMsg), nil
}

// batchAck is JetStream's answer to the commit of an atomic batch.
type batchAck struct {
	Stream   string              `json:"stream"`
	Sequence uint64              `json:"seq"`
	Count    int                 `json:"count"`
	Error    *jetstream.APIError `json:"error"`
}

// publishAtomic publishes entries as one atomic batch: JetStream stores
// all of them at consecutive sequences, or none.
func (c *Conn) publishAtomic(ctx context.Context, entries []*nats.Msg) (*batchAck, error) {
	var id [16]byte
	_, _ = rand.Read(id[:]) // crypto/rand never fails; it panics instead
	bid := base64.RawURLEncoding.EncodeToString(id[:])
	for i, e := range entries {
		e.Header.Set(headerBatchID, bid)
		e.Header.Set(headerBatchSeq, strconv.Itoa(i+1))
		if i < len(entries)-1 {
			// The commit's answer covers these: if one went missing or
			// failed its checks the commit fails.
			if err := c.nc.PublishMsg(e); err != nil {
				return nil, err
			}
			continue
		}
		e.Header.Set(headerBatchCommit, "1")
		ctx, cancel := context.WithTimeout(ctx, c.opts.PublishTimeout)
		defer cancel()
		resp, err := c.nc.RequestMsgWithContext(ctx, e)
		if err != nil {
			return nil, err
		}
		var ack batchAck
		if err := json.Unmarshal(resp.Data, &ack); err != nil {
			return nil, fmt.Errorf("batch acknowledgement %q: %w", resp.Data, err)
		}
		if ack.Error != nil {
			return nil, ack.Error
		}
		if ack.Count != 0 && ack.Count != len(entries) {
			return nil, fmt.Errorf("batch of %d stored %d", len(entries), ack.Count)
		}
		return &ack, nil
	}
	return nil, errors.New("empty batch")
}

// Stats counts what Migrate copied.
type Stats struct {
	Rooms        int // rooms whose messages were copied (all or the rest)
	RoomsSkipped int // rooms the cluster held already, up to the source's head
	Messages     int // messages copied
	Names        int // name claims copied (ones the cluster had are not counted)
	Markers      int // read markers that moved forward
	Mentions     int // names whose unread mentions were copied
}

// sourceRoom is a room of the source database and what to do with it.
type sourceRoom struct {
	room string
	head uint64 // the source's last seq
	from uint64 // the cluster's head: copy the messages after it
}

// Migrate copies the database of a single chat server (package sqlite's
// file, schema version 5) into the cluster: every room's history with its
// sequence numbers, times, senders and ids, so clients' positions stay
// valid; name owners; read markers; unread mentions; and the room
// indexes. Run it with the server stopped (it reads one consistent
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
	if version != 5 {
		return st, fmt.Errorf("cluster: migrate: %s has schema version %d; this migration reads version 5 (a server of this version upgrades an older file when it opens it)", fromDB, version)
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
			if err := c.Import(ctx, page); err != nil {
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

	if st.Markers, err = copyMarkers(ctx, tx, c); err != nil {
		return st, err
	}
	if st.Mentions, err = copyMentions(ctx, tx, c); err != nil {
		return st, err
	}
	if err := c.index.flush(ctx); err != nil {
		return st, fmt.Errorf("cluster: migrate: writing the indexes: %w", err)
	}
	log.Info("migrated", "rooms", st.Rooms, "skipped", st.RoomsSkipped, "messages", st.Messages,
		"names", st.Names, "markers", st.Markers, "mentions", st.Mentions)
	return st, nil
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
		cm, _, err := c.roomHead(ctx, room)
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
			if len(sm) != 1 || sm[0] != *cm {
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
// source.
func sourceMessages(ctx context.Context, tx *sql.Tx, room string, after uint64, limit int) ([]protocol.Msg, error) {
	rows, err := tx.QueryContext(ctx, `SELECT seq, time, sender, cid, text FROM messages
		WHERE room = ? AND seq > ? ORDER BY seq LIMIT ?`, room, int64(after), limit)
	if err != nil {
		return nil, fmt.Errorf("cluster: migrate: messages of %q: %w", room, err)
	}
	defer rows.Close()
	var msgs []protocol.Msg
	for rows.Next() {
		var seq, t int64
		var sender string
		var id, text []byte
		if err := rows.Scan(&seq, &t, &sender, &id, &text); err != nil {
			return nil, fmt.Errorf("cluster: migrate: messages of %q: %w", room, err)
		}
		msgs = append(msgs, protocol.Msg{Room: room, Seq: uint64(seq), Time: uint64(t), Sender: sender, ID: string(id), Text: string(text)})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cluster: migrate: messages of %q: %w", room, err)
	}
	return msgs, nil
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
