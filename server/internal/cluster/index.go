package cluster

import (
	"context"

	"chat/protocol"
)

// indexer records room activity in chat-rooms and chat-dms after a node
// stores messages, coalesced per room, off the publishing path.
type indexer struct {
	c *Conn
}

func newIndexer(c *Conn) *indexer { return &indexer{c: c} }

// stored is told of each message this node stored (not duplicates). It
// never blocks for long.
func (x *indexer) stored(m *protocol.Msg) {}

// flush returns once every message given to stored before it is in the
// indexes.
func (x *indexer) flush(ctx context.Context) error { return nil }

// close stops the indexer after flushing what it holds.
func (x *indexer) close() {}
