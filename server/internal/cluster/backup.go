package cluster

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
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
	Moderation(room string, state []byte) error  // moderation.Marshal of a moderation.State
	Audit(room string, entry []byte) error       // JSON of a moderation.Entry, oldest first
}

// ExportStats counts what Export read.
type ExportStats struct {
	Rooms, Messages, Names, Markers, Mentions int
	// Deleted is how many of Messages are deleted messages filled in from
	// their redaction records (without text, as the single server keeps
	// them).
	Deleted int
	// ModeratedRooms is how many rooms' moderation states were read,
	// AuditEntries how many entries of the audit log.
	ModeratedRooms, AuditEntries int
}

func (s ExportStats) String() string {
	return fmt.Sprintf("%d rooms, %d messages (%d deleted), %d claimed names, %d read markers, %d unread mentions, %d moderated rooms, %d audit entries",
		s.Rooms, s.Messages, s.Deleted, s.Names, s.Markers, s.Mentions, s.ModeratedRooms, s.AuditEntries)
}

// exportFetch is how many messages Export asks its consumer for at once,
// and exportWait how long one fetch may wait for them.
const (
	exportFetch = 1024
	exportWait  = 5 * time.Second
)

// Export reads the cluster's history, name claims, read markers, unread
// mentions and moderation (room states and the audit log) into sink. The
// messages are those in the stream when Export starts (the stream's
// order is the cluster's one order, so it is a consistent cut: messages
// stored later are left out), with the messages operators deleted filled
// in from their redaction records, without text, as the single server
// keeps them; names, markers, mentions and moderation states are read
// after them, as they are then, and the audit log up to its newest entry
// when its reading starts. It runs while the chat nodes serve.
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
		if err = c.exportMessages(ctx, first.Seq, last, sink, &st); err != nil {
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
	err = c.eachKey(ctx, c.moderation, func(key string, v []byte) error {
		room, err := FromToken(key)
		if err != nil {
			return err
		}
		st.ModeratedRooms++
		return sink.Moderation(room, v)
	})
	if err != nil {
		return st, fmt.Errorf("cluster: export: moderation: %w", err)
	}
	if err := c.exportAudit(ctx, sink, &st); err != nil {
		return st, err
	}
	return st, nil
}

// exportMessages reads the rooms' messages from stream sequence from to
// last with an ordered consumer, in the stream's order, and hands each
// room's to sink in its sequence order, gap-free where the single server
// would be: a room seq the stream skips that an operator deleted is
// filled in from its redaction record (fillDeleted). A seq the stream
// holds twice (a deleted last message and its copy without text, while
// the deletion is under way) is handed over once, the first.
func (c *Conn) exportMessages(ctx context.Context, from, last uint64, sink ExportSink, st *ExportStats) error {
	cons, err := c.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{MsgSubject + ">"},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    from,
	})
	if err != nil {
		return fmt.Errorf("cluster: export: %w", err)
	}
	rooms := map[string]*exportRoom{}
	defer func() { st.Rooms = len(rooms) }()
	for {
		batch, err := cons.Fetch(exportFetch, jetstream.FetchMaxWait(exportWait))
		if err != nil {
			return fmt.Errorf("cluster: export: reading messages: %w", err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("cluster: export: %w", err)
			}
			if md.Sequence.Stream > last {
				return nil
			}
			sm := storedMsg{Subject: m.Subject(), Seq: md.Sequence.Stream, Data: m.Data(), hdr: m.Headers()}
			msg, err := sm.decode()
			if err != nil {
				return fmt.Errorf("cluster: export: %w", err)
			}
			if sm.isCopy() {
				// The copy without text of a changed last message: the
				// message is its record (its current state).
				rec, err := c.redaction(ctx, redactionKey(msg.Room, msg.Seq))
				if err != nil {
					return fmt.Errorf("cluster: export: the state of %q #%d: %w", msg.Room, msg.Seq, err)
				}
				if rec != nil {
					msg = *rec
				}
			}
			r := rooms[msg.Room]
			if r == nil {
				r = &exportRoom{}
				rooms[msg.Room] = r
			}
			if msg.Seq > r.last { // else twice: a deletion under way
				if err := c.fillDeleted(ctx, msg.Room, r, msg.Seq, sink, st); err != nil {
					return err
				}
				if err := sink.Message(msg); err != nil {
					return err
				}
				st.Messages++
				r.last = msg.Seq
			}
			if md.Sequence.Stream == last || md.NumPending == 0 {
				return nil
			}
		}
		if err := batch.Error(); err != nil {
			return fmt.Errorf("cluster: export: reading messages: %w", err)
		}
		if got == 0 {
			return fmt.Errorf("cluster: export: the stream gave no message for %v with more to read (at %d messages)", exportWait, st.Messages)
		}
	}
}

// exportRoom is what exportMessages knows of a room: the last seq handed
// to the sink, and whether the room has redaction records (checked once,
// at its first gap).
type exportRoom struct {
	last                uint64
	checked, redactions bool
}

// fillDeleted hands sink the deleted messages of room between the last
// one handed (r.last) and seq, from their redaction records. Between two
// messages of the stream every missing seq is looked up; a seq without a
// record was removed by retention and stays missing. Below the room's
// first message in the stream (r.last 0), the records are read downwards
// from seq-1 only while there are some: retention removes a room's
// oldest messages, and the single server loses their deletions with
// them, so records older than a seq retention took (if the cluster keeps
// them) are left out, and a room whose old messages retention removed
// costs one look-up, not one per removed message.
func (c *Conn) fillDeleted(ctx context.Context, room string, r *exportRoom, seq uint64, sink ExportSink, st *ExportStats) error {
	if seq <= r.last+1 {
		return nil
	}
	if !r.checked {
		has, err := c.hasRedactions(ctx, room)
		if err != nil {
			return fmt.Errorf("cluster: export: the deletions of %q: %w", room, err)
		}
		r.checked, r.redactions = true, has
	}
	if !r.redactions {
		return nil
	}
	var recs []*protocol.Msg
	if r.last == 0 {
		for s := seq - 1; s > 0; s-- {
			rec, err := c.redaction(ctx, redactionKey(room, s))
			if err != nil {
				return fmt.Errorf("cluster: export: the deletion of %q #%d: %w", room, s, err)
			}
			if rec == nil {
				break
			}
			recs = append(recs, rec)
		}
		slices.Reverse(recs)
	} else {
		for s := r.last + 1; s < seq; s++ {
			rec, err := c.redaction(ctx, redactionKey(room, s))
			if err != nil {
				return fmt.Errorf("cluster: export: the deletion of %q #%d: %w", room, s, err)
			}
			if rec != nil {
				recs = append(recs, rec)
			}
		}
	}
	for _, rec := range recs {
		if rec.Room != room || rec.Seq <= r.last || rec.Seq >= seq {
			return fmt.Errorf("cluster: export: the deletion record %s holds %q #%d", redactionKey(room, rec.Seq), rec.Room, rec.Seq)
		}
		if err := sink.Message(*rec); err != nil {
			return err
		}
		st.Messages++
		if history.Deleted(rec) {
			st.Deleted++
		}
		r.last = rec.Seq
	}
	return nil
}

// exportAudit hands sink the audit log, oldest first, up to its newest
// entry when it starts (entries the stream's limit drops meanwhile are
// skipped). A cluster whose nodes never opened moderation has no log.
func (c *Conn) exportAudit(ctx context.Context, sink ExportSink, st *ExportStats) error {
	s, err := c.js.Stream(ctx, AuditStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cluster: export: the audit log: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return fmt.Errorf("cluster: export: the audit log: %w", err)
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return nil
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{AuditSubject + ">"}})
	if err != nil {
		return fmt.Errorf("cluster: export: the audit log: %w", err)
	}
	for {
		batch, err := cons.Fetch(exportFetch, jetstream.FetchMaxWait(exportWait))
		if err != nil {
			return fmt.Errorf("cluster: export: reading the audit log: %w", err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("cluster: export: the audit log: %w", err)
			}
			if md.Sequence.Stream > last {
				return nil
			}
			room, err := auditRoom(m.Subject())
			if err != nil {
				return fmt.Errorf("cluster: export: audit entry %d: %w", md.Sequence.Stream, err)
			}
			if err := sink.Audit(room, m.Data()); err != nil {
				return err
			}
			st.AuditEntries++
			if md.Sequence.Stream == last || md.NumPending == 0 {
				return nil
			}
		}
		if err := batch.Error(); err != nil {
			return fmt.Errorf("cluster: export: reading the audit log: %w", err)
		}
		if got == 0 {
			return fmt.Errorf("cluster: export: the audit log gave no entry for %v with more to read (at %d entries)", exportWait, st.AuditEntries)
		}
	}
}

// auditRoom is the room of an audit entry's subject: auditToken reversed.
func auditRoom(subject string) (string, error) {
	tok, ok := strings.CutPrefix(subject, AuditSubject)
	if !ok {
		return "", fmt.Errorf("subject %q is not the audit log's", subject)
	}
	if tok == noRoomToken {
		return "", nil
	}
	return FromToken(tok)
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
	// Changed messages' states of an earlier history would stand for the
	// restored messages of the same seqs.
	if err := c.statesStream.Purge(ctx); err != nil {
		return 0, fmt.Errorf("cluster: removing the earlier history's message states: %w", err)
	}
	c.epoch = epoch
	return epoch, nil
}
