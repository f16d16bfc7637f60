// Package sqlite is the durable history.Log: one SQLite database file in
// WAL mode (modernc.org/sqlite, pure Go), written by a single group-commit
// loop and read through a separate pool of read-only connections.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"chat/protocol"
	"chat/server/internal/history"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Options tune the log; the zero value is the safe default.
type Options struct {
	// Synchronous is SQLite's synchronous setting: "full" (the default)
	// syncs every commit to disk, so an acknowledged message survives a
	// power cut; "normal" survives a crash of the server but may lose the
	// last commits on power loss, for less disk traffic.
	Synchronous string
	// QueueLen is how many appends may wait for the commit loop (default 8192).
	QueueLen int
	// MaxBatch caps the messages of one commit (default 1024).
	MaxBatch int
	// Retention removes old messages in the background (zero: keep
	// everything).
	Retention history.Retention
	// RetentionEvery is how often every room is checked against
	// Retention (default: a tenth of Retention.Age, between 1 s and a
	// minute; 10 minutes with a count limit only, whose rooms are also
	// trimmed right after they are written).
	RetentionEvery time.Duration
	// Logger reports what retention removed (default: nothing).
	Logger *slog.Logger
	// Removed is called after a commit or a retention pass removed
	// messages that may have carried files, so that the file store
	// collects their content (Files.Kick); nil: nobody is told.
	Removed func()
	// Searches is how many searches may read at once (default 2, at most
	// 3): the read pool has 4 connections, shared with JOIN replays and
	// HISTORY pages, which a few users searching at once must not take
	// all. Further searches wait for one to end (or their context).
	Searches int
}

// Log is a history.Log stored in SQLite.
type Log struct {
	*history.Batcher
	write, read *sql.DB
	insert      *sql.Stmt
	lookup      *sql.Stmt
	index       *sql.Stmt         // indexMessages
	room        *sql.Stmt         // upsertRoom
	dm          *sql.Stmt         // upsertDM
	heads       map[string]uint64 // last sequence per room; commit loop only
	lastRID     int64             // the last rid given to a message; commit loop only
	now         func() time.Time
	retain      *retainer     // nil without retention
	wiper       *walWiper     // empties the WAL after a text was removed
	searches    chan struct{} // a slot per search reading; Options.Searches
	logger      *slog.Logger
	removed     func() // Options.Removed
}

var _ history.Searcher = (*Log)(nil)

// schemaV3 is the schema of version 3, which every migration starts
// from: it creates what is missing of it (everything, in a new file).
const schemaV3 = `
CREATE TABLE IF NOT EXISTS messages (
	room       TEXT    NOT NULL,
	seq        INTEGER NOT NULL,
	time       INTEGER NOT NULL, -- Unix milliseconds
	sender     TEXT    NOT NULL,
	sender_key TEXT    NOT NULL, -- protocol.Key(sender), for deduplication
	cid        BLOB    NOT NULL, -- the sender's client message id
	text       BLOB    NOT NULL, -- BLOB keeps every byte, NUL included
	PRIMARY KEY (room, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS messages_dedup ON messages (room, sender_key, cid);
CREATE TABLE IF NOT EXISTS names (
	name_key    TEXT    PRIMARY KEY, -- protocol.Key(name)
	name        TEXT    NOT NULL,    -- as first claimed, for operators
	secret_hash BLOB    NOT NULL,    -- SHA-256 of the owner's secret; the secret itself is never stored
	claimed     INTEGER NOT NULL     -- Unix milliseconds
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rooms (
	room  TEXT    PRIMARY KEY, -- canonical room name
	epoch INTEGER NOT NULL     -- random id of this room's history (protocol JOINED epoch)
) WITHOUT ROWID;
`

// schemaV4 adds what a name's devices share (read markers, mentions) and
// the indexes that list rooms without reading messages: each room's head
// and last activity, kept by the commit loop, and each name's
// direct-message rooms.
const schemaV4 = `
ALTER TABLE rooms ADD COLUMN head INTEGER NOT NULL DEFAULT 0; -- last sequence number, 0 without messages
ALTER TABLE rooms ADD COLUMN time INTEGER NOT NULL DEFAULT 0; -- time of the last message, Unix milliseconds
CREATE INDEX rooms_active ON rooms (time);
CREATE TABLE dms (
	name_key TEXT NOT NULL, -- one of the room's two names
	room     TEXT NOT NULL, -- canonical direct-message room name
	PRIMARY KEY (name_key, room)
) WITHOUT ROWID;
CREATE TABLE markers (
	name_key TEXT    NOT NULL,
	room     TEXT    NOT NULL,
	seq      INTEGER NOT NULL, -- every message up to it has been read
	PRIMARY KEY (name_key, room)
) WITHOUT ROWID;
CREATE TABLE mentions (
	id       INTEGER PRIMARY KEY, -- insertion order: the oldest are dropped first
	name_key TEXT    NOT NULL,    -- the name mentioned
	room     TEXT    NOT NULL,
	seq      INTEGER NOT NULL
);
CREATE UNIQUE INDEX mentions_room ON mentions (name_key, room, seq);
CREATE INDEX mentions_age ON mentions (name_key, id);
`

// schemaV5 bounds the room lists. LIST walks rooms_listed, which holds
// only rooms with messages that are not direct-message rooms (a room
// joined but never written to keeps its row for its epoch, outside the
// index); IDENTIFY walks dms_recent, each name's direct-message rooms by
// last activity, which dms now keeps beside rooms.time.
const schemaV5 = `
DROP INDEX IF EXISTS rooms_active;
CREATE INDEX rooms_listed ON rooms (time, room, head) WHERE ` + listedRooms + `;
ALTER TABLE dms ADD COLUMN time INTEGER NOT NULL DEFAULT 0; -- rooms.time of the room
UPDATE dms SET time = coalesce((SELECT r.time FROM rooms r WHERE r.room = dms.room), 0);
CREATE INDEX dms_recent ON dms (name_key, time);
`

// listedRooms is the condition of the partial index rooms_listed. A query
// uses the index only if its WHERE clause has these very terms.
const listedRooms = "head > 0 AND substr(room, 1, 1) <> '" + protocol.DMPrefix + "'"

// withAutoVacuum makes a new database reuse the pages retention frees and
// give them back to the file system bit by bit (PRAGMA
// incremental_vacuum). It can only be chosen before the database is
// switched to WAL, so it goes before journal_mode in every writer's
// connection string (read-only connections cannot set it); an older file
// keeps reusing its free pages for new messages without shrinking (a
// VACUUM, with the server stopped, converts it).
func withAutoVacuum(dsn string) string {
	return strings.Replace(dsn, "_pragma=journal_mode", "_pragma=auto_vacuum(incremental)&_pragma=journal_mode", 1)
}

// schemaV6 adds moderation (moderation.Store): each room's settings as
// one document with a revision for compare-and-set, and the audit log,
// bounded by Moderation's limit.
const schemaV6 = `
CREATE TABLE moderation (
	room  TEXT    PRIMARY KEY, -- canonical room name
	state BLOB    NOT NULL,    -- moderation.Marshal of the room's State
	rev   INTEGER NOT NULL     -- revision, from 1; Save compares and sets it
) WITHOUT ROWID;
CREATE TABLE audit (
	id    INTEGER PRIMARY KEY, -- insertion order: the oldest are dropped first
	room  TEXT    NOT NULL,    -- "" for actions outside rooms (oper)
	entry BLOB    NOT NULL     -- JSON of moderation.Entry; never a message's text
);
CREATE INDEX audit_room ON audit (room, id);
`

// schemaV7 adds acting on messages (protocol README section 4): replies,
// edits and deletions applied to the messages in place, change entries
// (rows with a kind) between them, reactions, and the full-text index
// words, an FTS5 table without content of its own (the text stays in
// messages) whose rows are the messages' rid. A message leaves it by
// FTS5's 'delete' command, given the text it was indexed with; with the
// secure-delete option its tokens are then removed from the index's
// pages (contentless_delete=1 would only mark the row deleted, leaving
// the words in the file). Every writer of the text (the commit loop,
// moderation's Redact, retention) changes words in the same transaction,
// by explicit statements rather than triggers: FTS5 writes its pending
// changes out at every statement's savepoint, so a trigger would make a
// segment per message where the commit loop makes one per batch.
// search_todo lists the messages of an older database still to index,
// oldest first; the log indexes them when it opens (indexBacklog).
const schemaV7 = `
ALTER TABLE messages ADD COLUMN reply  INTEGER NOT NULL DEFAULT 0;  -- the seq of the message answered, 0: none
ALTER TABLE messages ADD COLUMN edited INTEGER NOT NULL DEFAULT 0;  -- last edit or the deletion, Unix milliseconds; 0: never
ALTER TABLE messages ADD COLUMN kind   INTEGER NOT NULL DEFAULT 0;  -- 0: a message; else the protocol.ChangeKind of a change entry
ALTER TABLE messages ADD COLUMN target INTEGER NOT NULL DEFAULT 0;  -- a change entry's changed message
ALTER TABLE messages ADD COLUMN emoji  TEXT    NOT NULL DEFAULT ''; -- a reaction change's emoji
ALTER TABLE messages ADD COLUMN rid    INTEGER;                     -- the message's row in words; NULL: not indexed
-- The search's lookup of its matches: with the primary key's room (every
-- index of a WITHOUT ROWID table holds it) and the time, a match of
-- another room or time is skipped without reading its row.
CREATE UNIQUE INDEX messages_rid ON messages (rid, time) WHERE rid IS NOT NULL;
CREATE TABLE reactions (
	room     TEXT    NOT NULL,
	seq      INTEGER NOT NULL, -- the message reacted to
	emoji    TEXT    NOT NULL, -- one of protocol.Reactions
	name_key TEXT    NOT NULL, -- protocol.Key of the name that reacted
	name     TEXT    NOT NULL, -- the name as written then
	at       INTEGER NOT NULL, -- the seq of the change that reacted: orders the names
	PRIMARY KEY (room, seq, emoji, name_key)
) WITHOUT ROWID;
CREATE INDEX reactions_order ON reactions (room, seq, emoji, at);
-- prefix: the search's last word is also a prefix; FTS5 reads a prefix of
-- these lengths from an index of its own, lazily, newest first, where a
-- longer one merges the whole lists of every word it begins (a common
-- word's is long). The most frequent words of a language are short.
-- room holds the message's room token (roomToken): a search matches its
-- words only among the rows of the searcher's rooms, FTS5 skipping along
-- the rooms' lists, so its cost follows the matches in those rooms, not
-- in the whole server.
CREATE VIRTUAL TABLE words USING fts5(text, room, content='', tokenize='unicode61 remove_diacritics 2', prefix='2 3 4 5');
INSERT INTO words (words, rank) VALUES ('secure-delete', 1);
CREATE TABLE search_todo (
	id   INTEGER PRIMARY KEY, -- becomes the message's rid: older messages first
	room TEXT    NOT NULL,
	seq  INTEGER NOT NULL
);
INSERT INTO search_todo (room, seq) SELECT room, seq FROM messages WHERE length(text) > 0 ORDER BY time, room, seq;
`

// schemaV8 adds files (protocol README section 4, "Files"): the file a
// message carries, in columns of its row (NULL file: none; a delete sets
// them back), the content stored once per SHA-256 (blobs; the bytes are
// under the data directory, Files), what each name uploaded and may
// send (holds) and the uploads still coming in (uploads). messages_file
// and messages_thumb answer "does a live message of this room carry
// it", messages_sender_file a name's usage.
const schemaV8 = `
ALTER TABLE messages ADD COLUMN file         TEXT;                        -- File.ID; NULL: no file
ALTER TABLE messages ADD COLUMN thumb        TEXT;                        -- File.Thumb; NULL: none
ALTER TABLE messages ADD COLUMN file_name    TEXT    NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN file_type    TEXT    NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN file_size    INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN width        INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN height       INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN thumb_width  INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN thumb_height INTEGER NOT NULL DEFAULT 0;
CREATE INDEX messages_file ON messages (file, room) WHERE file IS NOT NULL;
CREATE INDEX messages_thumb ON messages (thumb, room) WHERE thumb IS NOT NULL;
CREATE INDEX messages_sender_file ON messages (sender_key, file) WHERE file IS NOT NULL;
CREATE TABLE blobs (
	id      TEXT    PRIMARY KEY, -- lowercase hex SHA-256 of the content
	size    INTEGER NOT NULL,
	type    TEXT    NOT NULL,    -- MIME type, sniffed
	created INTEGER NOT NULL     -- Unix milliseconds
) WITHOUT ROWID;
CREATE TABLE holds (
	owner  TEXT    NOT NULL, -- protocol.Key of the uploader
	upload TEXT    NOT NULL, -- the upload's id
	size   INTEGER NOT NULL, -- the upload's size (the stored file may be smaller)
	file   TEXT    NOT NULL, -- File.ID
	thumb  TEXT    NOT NULL, -- File.Thumb, '' for none
	meta   BLOB    NOT NULL, -- JSON of the protocol.File
	until  INTEGER NOT NULL, -- Unix milliseconds: the hold ends
	-- used: when a message of the owner last carried the file (Unix
	-- milliseconds, set by the commit loop; 0: none did; 1 in databases
	-- of an earlier version). From then on the messages keep the
	-- content, not the hold: deleting them frees it, though the hold
	-- lets a re-sent SEND in until it ends. Collect's grace period
	-- starts over after it.
	used   INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (owner, upload)
) WITHOUT ROWID;
CREATE INDEX holds_file ON holds (file, owner);
CREATE INDEX holds_thumb ON holds (thumb);
CREATE TABLE uploads (
	owner   TEXT    NOT NULL,
	id      TEXT    NOT NULL, -- the client's upload id
	room    TEXT    NOT NULL,
	name    TEXT    NOT NULL, -- the file's name, cleaned
	size    INTEGER NOT NULL, -- total bytes; counts against the quotas until finished
	path    TEXT    NOT NULL, -- the partial file, relative to the files directory
	touched INTEGER NOT NULL, -- Unix milliseconds of its begin or last resume
	PRIMARY KEY (owner, id)
) WITHOUT ROWID;
`

// schemaVersion is the user_version this server's schema has. Version 2
// databases gained the rooms table in version 3 (their rooms get an epoch
// when first used, which clients that resume without one accept);
// version 3 databases gain the tables and columns of schemaV4, filled in
// from the messages by migrate; version 4 databases gain the indexes of
// schemaV5, with the activity of each name's direct-message rooms copied
// from rooms; version 5 databases gain the moderation tables of schemaV6;
// version 6 databases gain schemaV7's columns, reactions and search index,
// which the log fills from the messages (indexBacklog); version 7
// databases gain schemaV8's file columns and tables.
const schemaVersion = 8

// migrate creates the schema, or brings an older one up to date, or
// checks it is one this server knows. It runs in one transaction: two
// processes opening one file at once migrate it once.
func migrate(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var version int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return err
	}
	switch {
	case version > schemaVersion:
		return fmt.Errorf("database schema version %d is newer than this server (%d): upgrade the server", version, schemaVersion)
	case version == schemaVersion:
		return tx.Commit()
	}
	var steps []string
	if version < 4 {
		steps = append(steps, schemaV3, schemaV4)
	}
	if version < 5 {
		steps = append(steps, schemaV5)
	}
	if version < 6 {
		steps = append(steps, schemaV6)
	}
	if version < 7 {
		steps = append(steps, schemaV7)
	}
	for _, step := range append(steps, schemaV8) {
		if _, err := tx.ExecContext(ctx, step); err != nil {
			return err
		}
	}
	if version < 4 {
		if err := fillRooms(ctx, tx); err != nil {
			return fmt.Errorf("migrating to schema version %d: %w", schemaVersion, err)
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", schemaVersion)); err != nil {
		return err
	}
	return tx.Commit()
}

// fillRooms sets the head and time of every room with messages and lists
// direct-message rooms under their names, for a database of an older
// version. It finds the rooms by skipping along the messages' primary key
// (one index seek per room), not by reading every message.
func fillRooms(ctx context.Context, tx *sql.Tx) error {
	room := ""
	for {
		var next string
		err := tx.QueryRowContext(ctx, "SELECT room FROM messages WHERE room > ? ORDER BY room LIMIT 1", room).Scan(&next)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		room = next
		var seq, t int64
		if err := tx.QueryRowContext(ctx, "SELECT seq, time FROM messages WHERE room = ? ORDER BY seq DESC LIMIT 1", room).Scan(&seq, &t); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, upsertRoom, room, int64(history.NewEpoch()), seq, t); err != nil {
			return err
		}
		for _, name := range dmNames(room) {
			if _, err := tx.ExecContext(ctx, upsertDM, name, room, t); err != nil {
				return err
			}
		}
	}
}

const (
	upsertRoom = `INSERT INTO rooms (room, epoch, head, time) VALUES (?, ?, ?, ?)
		ON CONFLICT (room) DO UPDATE SET head = excluded.head, time = excluded.time`
	upsertDM = `INSERT INTO dms (name_key, room, time) VALUES (?, ?, ?)
		ON CONFLICT (name_key, room) DO UPDATE SET time = excluded.time`
)

// dmNames returns the keys of the two names of a direct-message room
// (one for a room with oneself), nil for any other room. Rooms are
// stored by canonical name; a room stored under another spelling (before
// direct messages existed) is nobody's.
func dmNames(room string) []string {
	a, b, ok := protocol.ParseDM(room)
	switch {
	case !ok || room != protocol.DMPrefix+a+protocol.DMPrefix+b:
		return nil
	case a == b:
		return []string{a}
	}
	return []string{a, b}
}

// Open opens or creates the database at path and starts the commit loop,
// which delivers results to sink.
func Open(path string, sink history.Sink, opts Options) (*Log, error) {
	sync := "FULL"
	switch opts.Synchronous {
	case "", "full", "FULL":
	case "normal", "NORMAL":
		sync = "NORMAL"
	default:
		return nil, fmt.Errorf("sqlite: synchronous must be full or normal, not %q", opts.Synchronous)
	}
	dsn := func(extra string) string {
		return "file:" + (&url.URL{Path: path}).EscapedPath() + "?_pragma=busy_timeout(" + strconv.FormatInt(busyTimeout.Milliseconds(), 10) + ")&_pragma=journal_mode(WAL)" + extra
	}
	write, err := sql.Open("sqlite", withAutoVacuum(dsn("&_pragma=synchronous("+sync+")&_pragma=secure_delete(1)&_txlock=immediate")))
	if err != nil {
		return nil, err
	}
	// One writer connection: the commit loop is the only writer anyway, and
	// prepared statements then stay on the connection they were made on.
	write.SetMaxOpenConns(1)
	l := &Log{write: write, heads: map[string]uint64{}, now: time.Now, logger: opts.Logger, removed: opts.Removed}
	if l.logger == nil {
		l.logger = slog.New(slog.DiscardHandler)
	}
	if err := l.setup(); err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// The readers map the file into memory (up to 1 GiB) and cache up to
	// 16 MiB each: a search reads long runs of the index, which mapped
	// pages serve without a copy (BENCHMARKS.md, "Search").
	l.read, err = sql.Open("sqlite", dsn("&mode=ro&_pragma=mmap_size(1073741824)&_pragma=cache_size(-16384)"))
	if err != nil {
		l.closeDBs()
		return nil, err
	}
	l.read.SetMaxOpenConns(readConns)
	l.read.SetMaxIdleConns(readConns)
	l.searches = make(chan struct{}, min(cmp(opts.Searches, 2), readConns-1))
	l.wiper = startWiper(write, l.logger)
	l.Batcher = history.NewBatcher(cmp(opts.QueueLen, 8192), cmp(opts.MaxBatch, 1024), l.commit, sink)
	if opts.Retention.Enabled() {
		l.retain = startRetainer(l, opts)
	}
	return l, nil
}

// readConns is the size of the Log's pool of read connections.
const readConns = 4

func cmp(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

func (l *Log) setup() error {
	ctx := context.Background()
	if err := migrate(ctx, l.write); err != nil {
		return err
	}
	if err := l.indexBacklog(ctx); err != nil {
		return fmt.Errorf("indexing the messages for search: %w", err)
	}
	if err := l.write.QueryRowContext(ctx, "SELECT coalesce(max(rid), 0) FROM messages WHERE rid IS NOT NULL").Scan(&l.lastRID); err != nil {
		return err
	}
	var err error
	l.insert, err = l.write.PrepareContext(ctx, `INSERT INTO messages (room, seq, time, sender, sender_key, cid, text, reply, kind, target, emoji, rid, `+fileColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (room, sender_key, cid) DO NOTHING`)
	if err != nil {
		return err
	}
	l.lookup, err = l.write.PrepareContext(ctx, `SELECT seq FROM messages WHERE room = ? AND sender_key = ? AND cid = ?`)
	if err != nil {
		return err
	}
	if l.index, err = l.write.PrepareContext(ctx, indexMessages); err != nil {
		return err
	}
	if l.room, err = l.write.PrepareContext(ctx, upsertRoom); err != nil {
		return err
	}
	l.dm, err = l.write.PrepareContext(ctx, upsertDM)
	return err
}

// head returns the last sequence number of room, from the cache or, the
// first time a room is written after start, from the database: the rooms
// table's head, which outlives the messages retention removed (a number
// is never given twice), or the last message (a database of schema
// version 2 has no heads until migrated).
func (l *Log) head(tx *sql.Tx, room string) (uint64, error) {
	if h, ok := l.heads[room]; ok {
		return h, nil
	}
	var h int64
	if err := tx.QueryRow(`SELECT max(coalesce((SELECT max(seq) FROM messages WHERE room = ?1), 0),
		coalesce((SELECT head FROM rooms WHERE room = ?1), 0))`, room).Scan(&h); err != nil {
		return 0, err
	}
	l.heads[room] = uint64(h)
	return uint64(h), nil
}

// Bounds implements history.Log: two index seeks, in one snapshot.
func (l *Log) Bounds(ctx context.Context, room string) (floor, head uint64, err error) {
	var first, h int64
	err = l.read.QueryRowContext(ctx, `SELECT coalesce((SELECT min(seq) FROM messages WHERE room = ?1), 0),
		coalesce((SELECT head FROM rooms WHERE room = ?1), 0)`, room).Scan(&first, &h)
	if err != nil {
		return 0, 0, err
	}
	if first == 0 {
		return uint64(h), uint64(h), nil // nothing kept (or nothing yet)
	}
	return uint64(first) - 1, uint64(max(h, first)), nil
}

// Epoch implements history.Log. A new database file (a reset) starts
// every room with a new random epoch.
func (l *Log) Epoch(ctx context.Context, room string) (uint64, error) {
	var e int64
	err := l.read.QueryRowContext(ctx, "SELECT epoch FROM rooms WHERE room = ?", room).Scan(&e)
	if err == nil {
		return uint64(e), nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, err
	}
	// The write connection is shared with the commit loop; database/sql
	// hands it over between statements.
	if _, err := l.write.ExecContext(ctx, "INSERT INTO rooms (room, epoch) VALUES (?, ?) ON CONFLICT (room) DO NOTHING",
		room, int64(history.NewEpoch())); err != nil {
		return 0, err
	}
	err = l.write.QueryRowContext(ctx, "SELECT epoch FROM rooms WHERE room = ?", room).Scan(&e)
	return uint64(e), err
}

// Close commits what is queued and closes the database.
func (l *Log) Close() error {
	l.Batcher.Close()
	l.retain.stop()
	l.wiper.close()
	return l.closeDBs()
}

func (l *Log) closeDBs() error {
	var errs []error
	for _, s := range []*sql.Stmt{l.insert, l.lookup, l.index, l.room, l.dm} {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	if l.read != nil {
		errs = append(errs, l.read.Close())
	}
	// Closing the last connection checkpoints the WAL into the main file.
	errs = append(errs, l.write.Close())
	return errors.Join(errs...)
}
