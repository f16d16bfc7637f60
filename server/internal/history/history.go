// Package history defines the durable message log behind the hub: it gives
// each room's messages their sequence numbers, stores them, deduplicates
// client re-sends, and reads history back. The server uses the SQLite
// implementation; Memory serves tests. A cluster mode can implement Log on
// a replicated stream (NATS JetStream maps onto it one to one: subject per
// room, Nats-Msg-Id for deduplication, stream sequence per subject).
package history

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"time"

	"chat/protocol"
)

// Request asks for one message to be stored.
type Request struct {
	Room   string // canonical room name
	Sender string // display name of the sender
	ID     string // the sender's client message id
	Text   string // empty for a change
	// Reply is the message of Room this one answers (0: none). The hub
	// checks that it exists; the log stores it as given.
	Reply uint64
	// File is the file the message carries, as the file store described
	// it (files.Store.Held); nil for none. The log stores it with the
	// message; a delete removes it with the text.
	File *protocol.File
	// Change, if set, makes this a change of an earlier message: the log
	// applies it to the target and stores an entry without text for it,
	// with its own sequence number (protocol.Msg.Change), in the same
	// commit. A change the target does not allow fails with ErrNoMessage
	// or ErrNotSender in its Result, and nothing is stored.
	Change *Change
	// Tag travels with the request to its Result untouched: the hub uses it
	// to find whom to acknowledge.
	Tag any
	// Origin is the broker's, like Tag: which node published the request.
	Origin any
	// Received is when the server got the message from its sender, for
	// the commit latency metric; not stored.
	Received time.Time
}

// Change is what a Request changes (README.md of the protocol, section
// 4, "Acting on messages").
type Change struct {
	Kind   protocol.ChangeKind
	Target uint64 // the changed message's sequence number
	// Text is the new text of an edit, the emoji of a reaction; empty for
	// a delete.
	Text string
	// Moderator lets a delete remove another name's message (a room or
	// server operator's); without it every change but a reaction needs
	// Request.Sender to be the target's sender (same name key).
	Moderator bool
}

// Deleted reports whether m (not a change entry) was deleted: a stored
// message has a text or a file (or both), and a delete removes both.
func Deleted(m *protocol.Msg) bool { return m.Text == "" && m.File == nil }

// SearchText is what a search matches of a message: its text (a file's
// caption) and the name of its file. Hits show the text alone.
func SearchText(text string, f *protocol.File) string {
	if f == nil || f.Name == "" {
		return text
	}
	if text == "" {
		return f.Name
	}
	return text + " " + f.Name
}

// Errors of a change in its Result.
var (
	// ErrNoMessage: the target does not exist, is itself a change,
	// was deleted, or was removed by retention.
	ErrNoMessage = errors.New("history: no such message")
	// ErrNotSender: an edit or a delete (without Moderator) of another
	// name's message.
	ErrNotSender = errors.New("history: the message is another name's")
)

// Query asks a Searcher for the messages of Rooms whose text matches
// Text: every word of Text, in any order, the last word also as a
// prefix ("hel" finds "hello") if it has two characters or more,
// case- and accent-insensitive (words.go). Hits come
// newest first, sent before Before (Unix milliseconds; 0: now), at most
// Limit.
type Query struct {
	Rooms  []string // canonical room names; empty finds nothing
	Text   string
	Before uint64
	Limit  int
}

// Searcher finds messages by their words. Deleted messages never match;
// an edited one matches its current text only.
type Searcher interface {
	// Search returns the hits, and more when older ones exist.
	Search(ctx context.Context, q Query) (hits []protocol.Hit, more bool, err error)
}

// ErrBadQuery: a Query without a word to search for.
var ErrBadQuery = errors.New("history: the search has no word to look for")

// Result is the outcome of one Request.
type Result struct {
	Request *Request
	// Msg is the stored message with its sequence number and time. For a
	// duplicate it is the message stored the first time.
	Msg       protocol.Msg
	Duplicate bool
	Err       error // not stored; the sender must not be acknowledged
}

// Sink receives results in commit order, on one goroutine at a time.
// Within a room, sequence numbers arrive in increasing order without gaps.
type Sink func(results []Result)

// Log is a durable, ordered, per-room message log.
type Log interface {
	// Append queues r for storage; its Result reaches the sink after the
	// message is durable. Append blocks while the queue is full, which is
	// how a fast sender is slowed to the speed of the disk.
	Append(r *Request) error
	// Flush returns after every request appended before it has reached
	// the sink.
	Flush(ctx context.Context) error
	// Since returns up to limit messages of room with Seq > after, in
	// order. Reads return change entries (Msg.Change set, its State the
	// target's state now or nil when the target is gone) among the
	// messages, and messages with every change applied.
	Since(ctx context.Context, room string, after uint64, limit int) ([]protocol.Msg, error)
	// Last returns the last n messages of room, in order.
	Last(ctx context.Context, room string, n int) ([]protocol.Msg, error)
	// Before returns up to limit messages of room with Seq < before, the
	// newest of them, in order: a page of older history.
	Before(ctx context.Context, room string, before uint64, limit int) ([]protocol.Msg, error)
	// Bounds returns room's floor and head: every message with Seq <=
	// floor was removed by retention (0: none was), head is the room's
	// last sequence number (0: no message yet), also when retention
	// removed every message. floor <= head.
	Bounds(ctx context.Context, room string) (floor, head uint64, err error)
	// Epoch returns the random non-zero id of room's history, creating it
	// the first time. It changes only when the history is reset (a new
	// store) or restored, never while the store lives.
	Epoch(ctx context.Context, room string) (uint64, error)
	// Close flushes and stops. Later calls to Append fail with ErrClosed.
	Close() error
}

// Retention limits how much history every room keeps; the zero value
// keeps everything. A message goes when either limit says so. Removal
// never renumbers: sequence numbers are not reused, and a room's head and
// epoch stay.
type Retention struct {
	// Messages is how many of its newest messages a room keeps (0: all).
	Messages int
	// Age is how long a message is kept (0: forever).
	Age time.Duration
}

// Enabled reports whether r removes anything.
func (r Retention) Enabled() bool { return r.Messages > 0 || r.Age > 0 }

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("history: log is closed")

// DedupKey is the identity of a message for deduplication: the same client
// message id from the same sender name in the same room is the same message.
type DedupKey struct {
	Room, SenderKey, ID string
}

// KeyOf returns r's deduplication key.
func KeyOf(r *Request) DedupKey {
	return DedupKey{Room: r.Room, SenderKey: protocol.Key(r.Sender), ID: r.ID}
}

// NewEpoch returns a random history epoch: non-zero, and below 2⁵³ so
// that it survives a trip through JSON numbers in a browser.
func NewEpoch() uint64 {
	var b [8]byte
	for {
		_, _ = rand.Read(b[:]) // crypto/rand never fails; it panics instead
		if e := binary.BigEndian.Uint64(b[:]) >> 11; e != 0 {
			return e
		}
	}
}
