package cluster

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"chat/protocol"
	"chat/server/internal/history"
)

// ExportSink receives what Export reads (sqlite.Writer is one).
type ExportSink interface {
	Message(m protocol.Msg) error // each room's in sequence order
	Name(key string, secretHash []byte) error
	Marker(name, room string, seq uint64) error
	Mention(name, room string, seq uint64) error // each name's oldest first
}

// ExportStats counts what Export read.
type ExportStats struct {
	Rooms, Messages, Names, Markers, Mentions int
}

func (s ExportStats) String() string {
	return fmt.Sprintf("%d rooms, %d messages, %d claimed names, %d read markers, %d unread mentions",
		s.Rooms, s.Messages, s.Names, s.Markers, s.Mentions)
}

// exportFetch is how many messages Export asks its consumer for at once,
// and exportWait how long one fetch may wait for them.
const (
	exportFetch = 1024
	exportWait  = 5 * time.Second
)

// Export reads the cluster's history, name claims, read markers and
// unread mentions into sink. The messages are those in the stream when
// Export starts (the stream's order is the cluster's one order, so it is
// a consistent cut: messages stored later are left out); names, markers
// and mentions are read after them, as they are then. It runs while the
// chat nodes serve.
func (c *Conn) Export(ctx context.Context, sink ExportSink) (ExportStats, error) {
	var st ExportStats
	info, err := c.stream.Info(ctx)
	if err != nil {
		return st, fmt.Errorf("cluster: export: %w", err)
	}
	last := info.State.LastSeq
	// The first message of any room, if there is one.
	first, err := c.getMsg(ctx, getReq{Seq: 1, NextBySubj: MsgSubject + ">"})
	switch {
	case errors.Is(err, errNotFound):
	case err != nil:
		return st, fmt.Errorf("cluster: export: %w", err)
	case first.Seq <= last:
		if st.Messages, st.Rooms, err = c.exportMessages(ctx, first.Seq, last, sink); err != nil {
			return st, err
		}
	}
	err = c.eachKey(ctx, c.names, func(key string, v []byte) error {
		name, err := FromToken(key)
		if err != nil {
			return err
		}
		st.Names++
		return sink.Name(name, v)
	})
	if err != nil {
		return st, fmt.Errorf("cluster: export: names: %w", err)
	}
	err = c.eachKey(ctx, c.marks, func(key string, v []byte) error {
		name, room, ok := splitKey(key)
		if !ok {
			return errors.New("not a name and a room")
		}
		seq, err := parseMarker(v)
		if err != nil {
			return err
		}
		st.Markers++
		return sink.Marker(name, room, seq)
	})
	if err != nil {
		return st, fmt.Errorf("cluster: export: read markers: %w", err)
	}
	err = c.eachKey(ctx, c.mentions, func(key string, v []byte) error {
		name, err := FromToken(key)
		if err != nil {
			return err
		}
		list, err := decodeMentions(v)
		if err != nil {
			return err
		}
		for _, m := range list {
			st.Mentions++
			if err := sink.Mention(name, m.Room, m.Seq); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("cluster: export: mentions: %w", err)
	}
	return st, nil
}

// exportMessages reads the rooms' messages from stream sequence from to
// last with an ordered consumer, in the stream's order.
func (c *Conn) exportMessages(ctx context.Context, from, last uint64, sink ExportSink) (msgs, rooms int, err error) {
	cons, err := c.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{MsgSubject + ">"},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    from,
	})
	if err != nil {
		return 0, 0, fmt.Errorf("cluster: export: %w", err)
	}
	seen := map[string]bool{}
	for {
		batch, err := cons.Fetch(exportFetch, jetstream.FetchMaxWait(exportWait))
		if err != nil {
			return msgs, len(seen), fmt.Errorf("cluster: export: reading messages: %w", err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				return msgs, len(seen), fmt.Errorf("cluster: export: %w", err)
			}
			if md.Sequence.Stream > last {
				return msgs, len(seen), nil
			}
			sm := storedMsg{Subject: m.Subject(), Seq: md.Sequence.Stream, Data: m.Data()}
			msg, err := sm.decode()
			if err != nil {
				return msgs, len(seen), fmt.Errorf("cluster: export: %w", err)
			}
			if err := sink.Message(msg); err != nil {
				return msgs, len(seen), err
			}
			msgs++
			seen[msg.Room] = true
			if md.Sequence.Stream == last || md.NumPending == 0 {
				return msgs, len(seen), nil
			}
		}
		if err := batch.Error(); err != nil {
			return msgs, len(seen), fmt.Errorf("cluster: export: reading messages: %w", err)
		}
		if got == 0 {
			return msgs, len(seen), fmt.Errorf("cluster: export: the stream gave no message for %v with more to read (at %d messages)", exportWait, msgs)
		}
	}
}

// eachKey calls f with every key of bucket and its value.
func (c *Conn) eachKey(ctx context.Context, kv jetstream.KeyValue, f func(key string, v []byte) error) error {
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return err
	}
	defer stopWatch(w)
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("the watch ended early")
			}
			if e == nil { // the initial values are all delivered
				return nil
			}
			if err := f(e.Key(), e.Value()); err != nil {
				return fmt.Errorf("key %q: %w", e.Key(), err)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// ErrNotEmpty is returned by RenewEpoch when the cluster holds messages.
var ErrNotEmpty = errors.New("the cluster holds messages")

// RenewEpoch gives the cluster's stream a new history epoch, for a
// restore: clients that resume with the epoch they knew are told their
// rooms' history changed. It refuses (ErrNotEmpty) if the stream holds
// any room's message: a restore goes into an empty cluster. Chat nodes
// read the epoch when they start, so none may run meanwhile.
func (c *Conn) RenewEpoch(ctx context.Context) (uint64, error) {
	if _, err := c.getMsg(ctx, getReq{Seq: 1, NextBySubj: MsgSubject + ">"}); err == nil {
		return 0, ErrNotEmpty
	} else if !errors.Is(err, errNotFound) {
		return 0, fmt.Errorf("cluster: %w", err)
	}
	info, err := c.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("cluster: %w", err)
	}
	cfg := info.Config
	cfg.Metadata = maps.Clone(cfg.Metadata)
	if cfg.Metadata == nil {
		cfg.Metadata = map[string]string{}
	}
	epoch := history.NewEpoch()
	for epoch == c.epoch {
		epoch = history.NewEpoch()
	}
	cfg.Metadata[EpochKey] = strconv.FormatUint(epoch, 10)
	if _, err := c.js.UpdateStream(ctx, cfg); err != nil {
		return 0, fmt.Errorf("cluster: setting a new epoch: %w", err)
	}
	c.epoch = epoch
	return epoch, nil
}
