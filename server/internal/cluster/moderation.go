package cluster

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"chat/protocol"
	"chat/server/internal/history"
	"chat/server/internal/moderation"
)

// Moderation is the moderation.Store of a cluster (DESIGN.md,
// "Moderation"): each room's state is one key of chat-moderation, read
// and written whole by compare-and-set on the key's revision; a deleted
// message is erased from stream CHAT and a record of it without its text
// kept in chat-redactions, from which history reads fill it in; the audit
// log is stream CHAT_AUDIT, limited to its number of entries.
type Moderation struct {
	c     *Conn
	audit jetstream.Stream
}

var _ moderation.Store = (*Moderation)(nil)

// ModerationOptions tune a Moderation.
type ModerationOptions struct {
	// MaxAudit is how many audit entries the cluster keeps; the oldest
	// go first. It is the stream's limit: the node that opened the store
	// last sets it for every node. 0 keeps the limit the stream has (a
	// tool reading the log), or makes it 100 000 for a new stream.
	MaxAudit int
}

// Moderation returns the cluster's moderation store, creating the audit
// stream, or setting its limit to opts.MaxAudit.
func (c *Conn) Moderation(ctx context.Context, opts ModerationOptions) (*Moderation, error) {
	if opts.MaxAudit <= 0 {
		s, err := c.js.Stream(ctx, AuditStream)
		if err == nil {
			return &Moderation{c: c, audit: s}, nil
		}
		if !errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("cluster: stream %s: %w", AuditStream, err)
		}
		opts.MaxAudit = moderation.DefaultMaxAudit
	}
	cfg := jetstream.StreamConfig{
		Name:        AuditStream,
		Description: "moderation audit log",
		Subjects:    []string{AuditSubject + ">"},
		Storage:     jetstream.FileStorage,
		Replicas:    c.replicas(),
		MaxMsgs:     int64(opts.MaxAudit),
		Discard:     jetstream.DiscardOld,
	}
	var s jetstream.Stream
	err := retry(ctx, func(ctx context.Context) error {
		var err error
		s, err = c.js.CreateOrUpdateStream(ctx, cfg)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: stream %s: %w", AuditStream, err)
	}
	return &Moderation{c: c, audit: s}, nil
}

// auditToken is an audit entry's subject token: its room's, or
// noRoomToken for an entry of no room (an operator's login), which no
// Token can be (one base64 character encodes nothing).
func auditToken(room string) string {
	if room == "" {
		return noRoomToken
	}
	return Token(room)
}

const noRoomToken = "-"

// Load implements moderation.Store. It reads the bucket's leader, as
// every read that decides a compare-and-set.
func (m *Moderation) Load(ctx context.Context, room string) (*moderation.State, uint64, error) {
	v, rev, err := m.c.leaderGet(ctx, m.c.moderation, Token(room))
	if err != nil {
		return nil, 0, err
	}
	st, err := moderation.Unmarshal(v)
	if err != nil {
		return nil, 0, fmt.Errorf("cluster: the moderation state of %s: %w", room, err)
	}
	return st, rev, nil
}

// Save implements moderation.Store: Create for revision 0, Update on rev
// otherwise. A write refused for its revision is ErrConflict; so is one
// the leader refused for a proposal it had not applied yet, which
// moderation.Update answers by loading again.
func (m *Moderation) Save(ctx context.Context, room string, st *moderation.State, rev uint64) (uint64, error) {
	data, err := moderation.Marshal(st)
	if err != nil {
		return 0, err
	}
	var got uint64
	if rev == 0 {
		got, err = m.c.moderation.Create(ctx, Token(room), data)
	} else {
		got, err = m.c.moderation.Update(ctx, Token(room), data, rev)
	}
	if err != nil {
		if isConflict(err) {
			return 0, moderation.ErrConflict
		}
		return 0, fmt.Errorf("cluster: saving the moderation state of %s: %w", room, err)
	}
	return got, nil
}

// Audit implements moderation.Store.
func (m *Moderation) Audit(ctx context.Context, e moderation.Entry) error {
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if _, err := m.c.js.Publish(ctx, AuditSubject+auditToken(e.Room), data); err != nil {
		return fmt.Errorf("cluster: appending to the audit log: %w", err)
	}
	return nil
}

// AuditLog implements moderation.Store. The newest n of every room are
// the stream's last n messages; those of one room are read from its
// first on (the stream has no reverse read), keeping the last n.
//
// A read that finds no responder (the stream's leader changing, or a new
// consumer not yet placed, on a replicated stream) is made again, a few
// times.
func (m *Moderation) AuditLog(ctx context.Context, room string, n int) ([]moderation.Entry, error) {
	if n <= 0 {
		return nil, nil
	}
	for attempt := 1; ; attempt++ {
		entries, err := m.auditLog(ctx, room, n)
		if err == nil || attempt == auditReadTries || !unanswered(err) {
			return entries, err
		}
		m.c.opts.Logger.Debug("reading the audit log again", "err", err)
		t := time.NewTimer(time.Duration(attempt) * 100 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, err
		}
	}
}

// auditReadTries bounds the attempts of AuditLog.
const auditReadTries = 5

// unanswered reports whether err is a request nobody answered.
func unanswered(err error) bool {
	var ae *jetstream.APIError
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &ae) && ae.Code == 503)
}

func (m *Moderation) auditLog(ctx context.Context, room string, n int) ([]moderation.Entry, error) {
	subj := AuditSubject + ">"
	if room != "" {
		subj = AuditSubject + auditToken(room)
	}
	info, err := m.audit.Info(ctx, jetstream.WithSubjectFilter(subj))
	if err != nil {
		return nil, fmt.Errorf("cluster: reading the audit log's size: %w", err)
	}
	total := info.State.Msgs
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj}}
	if room == "" {
		if total > uint64(n) {
			cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
			cfg.OptStartSeq = info.State.LastSeq - uint64(n) + 1
			total = uint64(n)
		}
	} else {
		total = info.State.Subjects[subj]
	}
	if total == 0 {
		return nil, nil
	}
	cons, err := m.c.js.OrderedConsumer(ctx, AuditStream, cfg)
	if err != nil {
		return nil, fmt.Errorf("cluster: a consumer for the audit log: %w", err)
	}
	ring := make([]moderation.Entry, 0, min(uint64(n), total))
	start := 0 // index of the oldest entry once ring is full
	var read uint64
	for read < total {
		batch, err := cons.Fetch(int(min(total-read, 1000)), jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return nil, fmt.Errorf("cluster: reading the audit log: %w", err)
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			read++
			var e moderation.Entry
			if err := json.Unmarshal(msg.Data(), &e); err != nil {
				return nil, fmt.Errorf("cluster: an audit entry: %w", err)
			}
			if len(ring) < n {
				ring = append(ring, e)
			} else {
				ring[start] = e
				start = (start + 1) % n
			}
		}
		if err := batch.Error(); err != nil && (got == 0 || !unanswered(err)) {
			return nil, fmt.Errorf("cluster: reading the audit log: %w", err)
		}
		if got == 0 {
			break // the oldest went meanwhile (the stream's limit): all read
		}
	}
	return append(ring[start:], ring[:start]...), nil
}

// Redact implements moderation.Store (DESIGN.md, "Moderation"): the
// record without text first, so that a reader who no longer finds the
// message finds the record; then, if the message is the room's last, a
// copy without text after it (the room's numbering and the publishers'
// compare-and-set rest on its last message); then the erasure.
func (m *Moderation) Redact(ctx context.Context, room string, seq uint64) (bool, error) {
	return m.c.redact(ctx, room, seq)
}

func (c *Conn) redact(ctx context.Context, room string, seq uint64) (bool, error) {
	if seq == 0 {
		return false, nil
	}
	del := &history.Change{Kind: protocol.ChangeDelete, Target: seq, Moderator: true}
	_, err := c.change(ctx, room, "", del, 0, "")
	if errors.Is(err, history.ErrNoMessage) {
		// Deleted before (a no-op), or not there to delete.
		return c.deleted(ctx, room, seq)
	}
	return err == nil, err
}

// deleted reports whether room's message seq is there without its text:
// its record says so, or, without one, its stream message (deleted in a
// single server's database before a migration).
func (c *Conn) deleted(ctx context.Context, room string, seq uint64) (bool, error) {
	_, m, _, err := c.loadRecord(ctx, room, seq)
	if err != nil || m != nil {
		return m != nil && history.Deleted(m), err
	}
	h, err := c.readHead(ctx, room)
	if err != nil || seq > h.seq || h.stream == 0 {
		return false, err
	}
	_, msg, err := c.find(ctx, room, seq, h)
	if errors.Is(err, errNotFound) {
		return false, nil
	}
	return err == nil && msg.Seq == seq && msg.Change == nil && history.Deleted(&msg), err
}

// copyLast stores red, the copy without text of room's last message (at
// stream seq last), after it, by compare-and-set on the room's subject.
// It is done when the copy is stored, or when the room's last message is
// another one (a newer message, or a copy another redaction stored):
// that carries the numbering on. A compare-and-set may also fail while
// a publisher's write to the room is in flight (10164, replicated
// streams), which may yet fail: then the room is read again after a
// pause.
func (c *Conn) copyLast(ctx context.Context, room string, red *protocol.Msg, last uint64) error {
	for attempt := 0; ; attempt++ {
		e := c.msgEntry(Token(room), red, cmp.Or(c.opts.Name, "redact"))
		e.Header[HeaderRedacted] = []string{"1"}
		_, err := c.js.PublishMsg(ctx, e, jetstream.WithExpectLastSequencePerSubject(last))
		if err == nil || !isConflict(err) {
			return err
		}
		h, err := c.readHead(ctx, room)
		if err != nil {
			return err
		}
		if h.stream > last {
			return nil
		}
		// Gone without a copy (never by Redact, which copies first): the
		// copy restores the room's last number.
		last = h.stream
		t := time.NewTimer(min(time.Duration(attempt+1)*2*time.Millisecond, 100*time.Millisecond))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// redactionKey is the key in chat-redactions of room's message seq.
func redactionKey(room string, seq uint64) string {
	return Token(room) + "." + strconv.FormatUint(seq, 10)
}

// redactionDedupKey is the key in chat-redactions of room's message with
// dedup token tok: a client's re-send of a redacted message is answered
// with it (the marker's message is gone).
func redactionDedupKey(room, tok string) string { return Token(room) + ".d." + tok }

// redaction reads a record from its bucket's leader: chat-states (a
// changed message's current state), else chat-redactions (a deletion
// from before edits; a message without text for re-sends): nil if none.
func (c *Conn) redaction(ctx context.Context, key string) (*protocol.Msg, error) {
	for _, kv := range []jetstream.KeyValue{c.states, c.redactions} {
		v, rev, err := c.leaderGet(ctx, kv, key)
		if err != nil {
			return nil, err
		}
		if rev != 0 {
			_, m, err := parseRecord(key, rev, v)
			if err != nil {
				return nil, err
			}
			return &m, nil
		}
	}
	return nil, nil
}

// hasRedactions reports whether any message of room was ever redacted:
// reads of rooms without (nearly all) skip looking for records.
func (c *Conn) hasRedactions(ctx context.Context, room string) (bool, error) {
	for _, b := range []string{BucketStates, BucketRedactions} {
		m, err := c.leaderMsg(ctx, "KV_"+b, getReq{LastBySubj: "$KV." + b + "." + Token(room) + ".>"})
		if err != nil || m != nil {
			return m != nil, err
		}
	}
	return false, nil
}

// withRedactions completes msgs, room seqs from..from+count-1 as read
// from the stream, with the records of the redacted ones among those
// missing, and drops what does not belong: seqs out of order or twice (a
// message and its copy without text while a redaction is under way) and
// beyond the range. A seq neither in the stream nor redacted (removed
// by retention) stays missing.
//
// A record retention no longer keeps (retained; head is the room's head)
// is not read back: its message is removed like the stream's.
func (c *Conn) withRedactions(ctx context.Context, room string, from uint64, count int, msgs []protocol.Msg, copies map[uint64]bool, head uint64) ([]protocol.Msg, error) {
	end := from + uint64(count) - 1
	if len(copies) == 0 && len(msgs) == count && msgs[0].Seq == from && msgs[len(msgs)-1].Seq == end {
		return msgs, nil // gap-free: the common case
	}
	kept := msgs[:0]
	var copied []protocol.Msg // the copies, should their records be missing
	for _, m := range msgs {
		if m.Seq < from || m.Seq > end || (len(kept) > 0 && m.Seq <= kept[len(kept)-1].Seq) {
			continue
		}
		if copies[m.Seq] {
			copied = append(copied, m)
			continue
		}
		kept = append(kept, m)
	}
	var missing []uint64
	next := from
	for _, m := range kept {
		for ; next < m.Seq; next++ {
			missing = append(missing, next)
		}
		next = m.Seq + 1
	}
	for ; next <= end; next++ {
		missing = append(missing, next)
	}
	if len(missing) == 0 {
		return kept, nil
	}
	if len(copied) == 0 {
		if has, err := c.hasRedactions(ctx, room); err != nil || !has {
			return kept, err
		}
	}
	recs := make([]*protocol.Msg, len(missing))
	err := eachParallel(len(missing), func(i int) error {
		var err error
		recs[i], err = c.redaction(ctx, redactionKey(room, missing[i]))
		if recs[i] != nil && !c.retained(recs[i], head) {
			recs[i] = nil
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]protocol.Msg, 0, len(kept)+len(missing))
	k, j := 0, 0
	for i, seq := range missing {
		for ; k < len(kept) && kept[k].Seq < seq; k++ {
			out = append(out, kept[k])
		}
		for ; j < len(copied) && copied[j].Seq < seq; j++ {
		}
		if recs[i] != nil {
			recs[i].Room = room
			out = append(out, *recs[i])
		} else if j < len(copied) && copied[j].Seq == seq && c.retained(&copied[j], head) {
			out = append(out, copied[j])
		}
	}
	return append(out, kept[k:]...), nil
}

// redactedResend answers a client's re-send of a redacted message of
// room (dedup token tok): the record without text, or errNotFound.
func (c *Conn) redactedResend(ctx context.Context, room, tok string) (protocol.Msg, error) {
	rec, err := c.redaction(ctx, redactionDedupKey(room, tok))
	if err != nil {
		return protocol.Msg{}, err
	}
	if rec == nil {
		return protocol.Msg{}, errNotFound
	}
	return *rec, nil
}
