// Package broker is the seam under the hub: where a room's messages are
// stored and numbered, who hears of them, and who is present. The hub keeps
// only what concerns this node's connections (members, their queues, a
// cache of recent frames); everything another node would need goes
// through a Broker.
//
// Local is the embedded implementation: a history.Log (SQLite by default)
// plus in-process subscriptions and presence. Several hubs may share one
// Local, each through its own Node, which is how tests play a cluster; a
// NATS JetStream implementation serves a real one. The conformance suite
// in brokertest runs against every implementation.
package broker

import (
	"context"
	"errors"
	"time"

	"chat/protocol"
	"chat/server/internal/history"
)

// StreamPosition is a place in a room's history: the last sequence number
// (Offset) of the history with this Epoch.
type StreamPosition struct {
	Offset uint64
	Epoch  uint64
}

// Publication asks for one message to be stored. Tag comes back untouched
// in its Result, on the node that published it.
type Publication = history.Request

// Result is the outcome of a Publication, for the node that published it.
// For a re-sent message (same room, sender name and client id: the
// idempotency key) Msg is the message stored the first time and Duplicate
// is set.
type Result = history.Result

// Handler receives what a Broker delivers to one node. Published and
// Messages come from one goroutine at a time, in commit order: a node's
// Results before the Messages of the same commit, so an ACK precedes the
// sender's copy. PresenceChanged may come from any goroutine, also while
// the others run. No method may block for long: the broker calls them
// from its commit loop and from other nodes' presence calls.
type Handler interface {
	// Published reports the outcome of this node's publications.
	Published(results []Result)
	// Messages delivers newly stored messages of the rooms this node
	// subscribes to, in sequence order per room, each once.
	Messages(msgs []protocol.Msg)
	// PresenceChanged reports names that entered or left a room this node
	// subscribes to through another node, or whose entries expired.
	PresenceChanged(room string, changes []protocol.PresenceChange)
	// Noted delivers a Note given to Notify on any node. It may come from
	// any goroutine, also while the others run.
	Noted(n *Note)
}

// Note is a frame for the devices of some names, wherever they are
// connected: every connection identified as one of Names and, if Room is
// set, every connection in Room under one of Names gets Frame once.
type Note struct {
	Names []string // name keys
	Room  string   // canonical room name, or ""
	Frame []byte   // an encoded frame, the same bytes for everyone
}

// RoomCount is a room and how many names are present in it.
type RoomCount struct {
	Room  string
	Count int
}

// Presence identifies one connection's entry in a room's presence.
type Presence struct {
	Name string // as the member typed it
	// SecretHash is the hash of the name's secret (empty: none). Two
	// connections share a name in a room only with the same non-empty one.
	SecretHash string
	Conn       uint64 // the connection, unique on its node
}

// ErrNameTaken is PresenceAdd's refusal: the name is in the room under
// another secret (or without one).
var ErrNameTaken = errors.New("broker: the name is taken in this room")

// Broker is one node's view of the shared state.
type Broker interface {
	// Publish queues p for storage. Its Result reaches this node's
	// Handler once the message is durable; the message reaches every
	// subscribed node's Handler. Publish blocks while the store's queue is
	// full, which slows a fast sender to the store's speed.
	Publish(p *Publication) error
	// Flush returns once every Publish before it has reached the Handler.
	Flush(ctx context.Context) error

	// Subscribe starts delivering room's new messages to this node and
	// returns the room's position at that moment; messages up to it are
	// read with History, later ones arrive through Messages (a message at
	// or below the position may arrive too: skip it).
	Subscribe(ctx context.Context, room string) (StreamPosition, error)
	// Unsubscribe stops deliveries for room (its last local member left).
	Unsubscribe(room string)

	// Since returns up to limit messages with Seq > after, in order.
	Since(ctx context.Context, room string, after uint64, limit int) ([]protocol.Msg, error)
	// Before returns up to limit messages with Seq < before (the newest of
	// them), in order.
	Before(ctx context.Context, room string, before uint64, limit int) ([]protocol.Msg, error)
	// Last returns the last n messages, in order.
	Last(ctx context.Context, room string, n int) ([]protocol.Msg, error)
	// Floor returns the sequence number below room's oldest kept
	// message: every message up to it was removed by history retention
	// (0: none was; the head when none is kept). History reads never
	// return a message at or below it; the numbers are not reused.
	Floor(ctx context.Context, room string) (uint64, error)

	// Search finds messages by their words (history.Searcher).
	Search(ctx context.Context, q history.Query) (hits []protocol.Hit, more bool, err error)

	// PresenceAdd enters a connection in room's presence. first reports
	// that its name was not present before (through any node). A name
	// present under another secret gets ErrNameTaken.
	PresenceAdd(ctx context.Context, room string, p Presence) (first bool, err error)
	// PresenceRemove takes a connection out; last reports that it was its
	// name's last connection in the room.
	PresenceRemove(ctx context.Context, room string, p Presence) (last bool, err error)
	// PresenceList returns up to limit names present in room and how many
	// there are in all.
	PresenceList(ctx context.Context, room string, limit int) (names []string, count int, err error)

	// PresenceRooms returns up to limit rooms with names present for
	// which keep is true, most names first.
	PresenceRooms(ctx context.Context, keep func(room string) bool, limit int) ([]RoomCount, error)

	// Notify hands n to the Handler of every node, this one's included,
	// once each. It does not wait for the nodes to deliver it.
	Notify(ctx context.Context, n *Note) error

	// Close stops this node: its presence entries are removed (others see
	// its members leave) and no new calls reach its Handler (one already
	// under way may still finish).
	Close() error
}

// Defaults for presence expiry: a node renews its entries every
// PresenceTTL/3, so a node that dies takes its members with it within
// PresenceTTL.
const PresenceTTL = 30 * time.Second

// ErrNoSearch is Search's answer from a broker whose store cannot search.
var ErrNoSearch = errors.New("broker: this store has no search")

// ErrClosed is returned by a Broker after Close.
var ErrClosed = errors.New("broker: closed")
