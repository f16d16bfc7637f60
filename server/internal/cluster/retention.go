package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"chat/protocol"
	"chat/server/internal/history"
)

// retained reports whether a changed message's record (m, its state) is
// still history under Options.Retention, the room's head being head: a
// record lives in chat-states, which the stream's limits do not reach, so
// the readers apply them (DESIGN.md, "History retention"): the room's
// last Messages seqs, and messages younger than Age.
func (c *Conn) retained(m *protocol.Msg, head uint64) bool {
	r := c.opts.Retention
	if r == nil || m == nil {
		return true
	}
	if r.Messages > 0 && head > uint64(r.Messages) && m.Seq <= head-uint64(r.Messages) {
		return false
	}
	if r.Age > 0 && int64(m.Time) < time.Now().Add(-r.Age).UnixMilli() {
		return false
	}
	return true
}

// recordSeqs lists the seqs of room's messages with a record in
// chat-states (and, with legacy, in chat-redactions: deletions from
// before edits), ascending, each once.
func (c *Conn) recordSeqs(ctx context.Context, room string, legacy bool) ([]uint64, error) {
	kvs := []jetstream.KeyValue{c.states}
	if legacy {
		kvs = append(kvs, c.redactions)
	}
	seen := map[uint64]bool{}
	var seqs []uint64
	prefix := Token(room) + "."
	for _, kv := range kvs {
		lister, err := kv.ListKeysFiltered(ctx, Token(room)+".*")
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("cluster: listing the records of %s: %w", room, err)
		}
		for k := range lister.Keys() {
			if s, err := strconv.ParseUint(strings.TrimPrefix(k, prefix), 10, 64); err == nil && !seen[s] {
				seen[s] = true
				seqs = append(seqs, s)
			}
		}
		_ = lister.Stop()
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	return seqs, nil
}

// recordFloor is the floor of a room whose oldest stream message is at
// room seq top+1 and whose message top has a record that retention keeps
// (head: the room's head): below the run of kept records that ends at
// top. Records need not form one run (scattered changes; a sweep removed
// some): the room's record keys are listed, the run walked down from top,
// cut at retention's count, and, for retention by age, searched for its
// oldest kept record (ages grow with seqs).
func (c *Conn) recordFloor(ctx context.Context, room string, top, head uint64) (uint64, error) {
	seqs, err := c.recordSeqs(ctx, room, true)
	if err != nil {
		return 0, err
	}
	i := sort.Search(len(seqs), func(i int) bool { return seqs[i] >= top })
	if i == len(seqs) || seqs[i] != top {
		return top, nil // removed meanwhile
	}
	lo := top
	for i > 0 && seqs[i-1] == lo-1 {
		i--
		lo--
	}
	if r := c.opts.Retention; r != nil && r.Messages > 0 && head > uint64(r.Messages) {
		lo = max(lo, head-uint64(r.Messages)+1)
	}
	if r := c.opts.Retention; r != nil && r.Age > 0 {
		hi := top // the lowest kept seq is in [lo, hi]; top is kept
		for lo < hi {
			mid := lo + (hi-lo)/2
			m, err := c.redaction(ctx, redactionKey(room, mid))
			if err != nil {
				return 0, err
			}
			if m != nil && c.retained(m, head) {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
	}
	return lo - 1, nil
}

// maxSweep bounds the records one sweep of a room removes (or reads, for
// their age); the rest wait for the next.
const maxSweep = 256

// sweepRecords removes room's records that retention no longer keeps
// (retained), at most maxSweep: the stream dropped those messages, and
// their text must go with them. head is the room's head.
func (c *Conn) sweepRecords(ctx context.Context, room string, head uint64) (int, error) {
	r := c.opts.Retention
	if r == nil || (r.Messages <= 0 && r.Age <= 0) {
		return 0, nil
	}
	seqs, err := c.recordSeqs(ctx, room, false)
	if err != nil {
		return 0, err
	}
	removed, read := 0, 0
	for _, s := range seqs {
		if removed >= maxSweep || read >= maxSweep {
			break
		}
		gone := r.Messages > 0 && head > uint64(r.Messages) && s <= head-uint64(r.Messages)
		if !gone && r.Age > 0 {
			read++
			m, err := c.redaction(ctx, redactionKey(room, s))
			if err != nil {
				return removed, err
			}
			if m == nil || c.retained(m, head) {
				break // younger ones follow: seqs grow with time
			}
			gone = true
		}
		if !gone {
			break
		}
		subj := "$KV." + BucketStates + "." + redactionKey(room, s)
		if err := c.statesStream.Purge(ctx, jetstream.WithPurgeSubject(subj)); err != nil {
			return removed, fmt.Errorf("cluster: removing the record of %s #%d: %w", room, s, err)
		}
		removed++
	}
	return removed, nil
}

// maxMultiLast bounds the subjects of one multi_last direct get.
const maxMultiLast = 256

// recordsIn reads the chat-states records of room's messages seqs in
// batched direct gets (multi_last: the last revision of each key that
// has one), any replica answering: map seq → state.
func (c *Conn) recordsIn(ctx context.Context, room string, seqs []uint64) (map[uint64]*protocol.Msg, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.PublishTimeout)
		defer cancel()
	}
	out := map[uint64]*protocol.Msg{}
	for len(seqs) > 0 {
		chunk := seqs[:min(len(seqs), maxMultiLast)]
		seqs = seqs[len(chunk):]
		subjs := make([]string, len(chunk))
		for i, s := range chunk {
			subjs[i] = "$KV." + BucketStates + "." + redactionKey(room, s)
		}
		reply := c.nc.NewRespInbox()
		sub, err := c.nc.SubscribeSync(reply)
		if err != nil {
			return nil, err
		}
		body, _ := json.Marshal(struct {
			MultiLast []string `json:"multi_last"`
			Batch     int      `json:"batch"`
		}{subjs, len(subjs)})
		err = c.nc.PublishRequest("$JS.API.DIRECT.GET.KV_"+BucketStates, reply, body)
		for err == nil {
			var msg *nats.Msg
			if msg, err = sub.NextMsgWithContext(ctx); err != nil {
				break
			}
			if status := msg.Header.Get("Status"); status != "" {
				if status != "204" && status != "404" {
					err = fmt.Errorf("cluster: reading records: status %s %s", status, msg.Header.Get("Description"))
				}
				break
			}
			if op := msg.Header.Get("KV-Operation"); op != "" || len(msg.Data) == 0 {
				continue // a delete or purge marker: no record
			}
			subj := msg.Header.Get("Nats-Subject")
			key := strings.TrimPrefix(subj, "$KV."+BucketStates+".")
			rev, _ := strconv.ParseUint(msg.Header.Get("Nats-Sequence"), 10, 64)
			_, m, perr := parseRecord(key, rev, msg.Data)
			if perr != nil {
				err = perr
				break
			}
			m.Room = room
			out[m.Seq] = &m
		}
		_ = sub.Unsubscribe()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// preferRecords replaces the messages of msgs that have a record by it:
// a change that failed after writing the record left the original in the
// stream until its re-send (or any later change) erases it, and the
// record is the message (DESIGN.md, "Changes"). Only rooms with records
// pay the batched read. Best effort: if chat-states cannot answer (its
// leader moving), the messages stay as the stream has them — a read does
// not fail for a window only a failed change opens.
func (c *Conn) preferRecords(ctx context.Context, room string, msgs []protocol.Msg, head uint64) {
	if err := c.preferRecordsErr(ctx, room, msgs, head); err != nil {
		c.opts.Logger.Debug("cluster: records not checked for a read", "room", room, "err", err)
	}
}

func (c *Conn) preferRecordsErr(ctx context.Context, room string, msgs []protocol.Msg, head uint64) error {
	var seqs []uint64
	for _, m := range msgs {
		if m.Change == nil && !history.Deleted(&m) {
			seqs = append(seqs, m.Seq)
		}
	}
	if len(seqs) == 0 {
		return nil
	}
	if has, err := c.hasRedactions(ctx, room); err != nil || !has {
		return err
	}
	recs, err := c.recordsIn(ctx, room, seqs)
	if err != nil {
		return err
	}
	for i, m := range msgs {
		if r := recs[m.Seq]; r != nil && m.Change == nil && c.retained(r, head) {
			msgs[i] = *r
		}
	}
	return nil
}
