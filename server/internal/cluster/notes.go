package cluster

import (
	"context"
	"encoding/binary"
	"errors"

	"github.com/nats-io/nats.go"

	"chat/server/internal/broker"
)

// A note on chat.note is, in order: the number of names, each name and
// the room as a uvarint length and bytes, then the frame (the rest).

func encodeNote(n *broker.Note) []byte {
	size := 2*binary.MaxVarintLen64 + len(n.Room) + len(n.Frame)
	for _, s := range n.Names {
		size += binary.MaxVarintLen64 + len(s)
	}
	b := make([]byte, 0, size)
	b = binary.AppendUvarint(b, uint64(len(n.Names)))
	for _, s := range n.Names {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.AppendUvarint(b, uint64(len(n.Room)))
	b = append(b, n.Room...)
	return append(b, n.Frame...)
}

var errBadNote = errors.New("cluster: malformed note")

func decodeNote(b []byte) (*broker.Note, error) {
	str := func() (string, error) {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return "", errBadNote
		}
		s := string(b[k : k+int(l)])
		b = b[k+int(l):]
		return s, nil
	}
	count, k := binary.Uvarint(b)
	if k <= 0 || count > uint64(len(b)) {
		return nil, errBadNote
	}
	b = b[k:]
	n := &broker.Note{Names: make([]string, 0, count)}
	for range count {
		s, err := str()
		if err != nil {
			return nil, err
		}
		n.Names = append(n.Names, s)
	}
	room, err := str()
	if err != nil {
		return nil, err
	}
	n.Room = room
	n.Frame = append([]byte(nil), b...)
	return n, nil
}

// Notify implements broker.Broker: one core NATS message, which every
// node (this one too) hands to its handler. Like a node's own delivery,
// it is a hint, not stored: a node that misses it loses nothing kept.
func (n *Node) Notify(_ context.Context, note *broker.Note) error {
	if err := n.errClosed(); err != nil {
		return err
	}
	return n.c.nc.Publish(NoteSubject, encodeNote(note))
}

// noted runs on the note subscription's goroutine.
func (n *Node) noted(m *nats.Msg) {
	if n.closed.Load() {
		return
	}
	note, err := decodeNote(m.Data)
	if err != nil {
		n.log.Warn("dropping a malformed note", "err", err)
		return
	}
	n.h.Noted(note)
}
