package cluster

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"reflect"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"chat/protocol"
	"chat/server/internal/broker"
	"chat/server/internal/history"
)

// JetStream error codes the publisher tells apart.
const (
	errCodeWrongLastSeq      = 10071 // a compare-and-set failed
	errCodeWrongLastSeqConst = 10164 // the same, or another write to the subject is in flight (R>1)
	errCodeBatchDuplicate    = 10201 // an atomic batch holds a Nats-Msg-Id seen in the window
	errCodeBatchIncomplete   = 10176 // the batch was abandoned (leader change, gap)
	errCodeNoMessage         = 10037 // STREAM.MSG.GET found nothing
	errCodeMsgIDInProcess    = 10158 // a batch with this Nats-Msg-Id is proposed, not applied yet
	errCodeTooManyBatches    = 10210 // the stream has too many atomic batches in flight
)

// JetStream headers (set as-is: nats.Header.Set would canonicalise
// Nats-TTL into Nats-Ttl, which the server does not read).
const (
	hdrBatchID     = "Nats-Batch-Id"
	hdrBatchSeq    = "Nats-Batch-Sequence"
	hdrBatchCommit = "Nats-Batch-Commit"
	hdrExpectSubj  = "Nats-Expected-Last-Subject-Sequence"
	hdrMsgID       = "Nats-Msg-Id"
	hdrTTL         = "Nats-TTL"
)

// apiError is a JetStream API error response.
type apiError struct {
	Code        int    `json:"code"`
	ErrCode     int    `json:"err_code"`
	Description string `json:"description"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("JetStream: %s (%d)", e.Description, e.ErrCode)
}

func apiCode(err error) int {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.ErrCode
	}
	return 0
}

// head is a room's last message: its room seq and stream seq (0, 0: none).
type head struct{ seq, stream uint64 }

// DedupToken is the deduplication token of a message: sender name key
// and client id hashed into one subject token.
func DedupToken(senderKey, clientID string) string {
	sum := sha256.Sum256([]byte(senderKey + "\x00" + clientID))
	return base64.RawURLEncoding.EncodeToString(sum[:])[:22]
}

// Publish implements broker.Broker. It queues p behind the room's other
// publications on this node and blocks while PublishQueue publications
// are queued or in flight.
func (n *Node) Publish(p *broker.Publication) error {
	if n.closed.Load() {
		return broker.ErrClosed
	}
	select {
	case n.slots <- struct{}{}:
	case <-n.ctx.Done():
		return broker.ErrClosed
	}
	p.Origin = n
	n.flushMu.Lock()
	n.outstanding++
	n.flushMu.Unlock()
	n.pubMu.Lock()
	if n.closed.Load() {
		n.pubMu.Unlock()
		return broker.ErrClosed
	}
	q := n.queues[p.Room]
	start := q == nil
	if start {
		q = &roomQueue{}
		n.queues[p.Room] = q
		n.wg.Add(1)
	}
	q.pending = append(q.pending, p)
	n.pubMu.Unlock()
	if start {
		go n.runRoom(p.Room, q)
	}
	return nil
}

// roomQueue is a room's publications waiting on this node; while it
// exists, one goroutine (runRoom) sends them.
type roomQueue struct {
	pending []*broker.Publication
}

// runRoom sends a room's publications, up to MaxBatch at a time, one
// batch after the other: what arrives while a batch is in flight goes
// into the next.
//
// A publication that failed poisons its Tag (the hub's membership: one
// connection in one room) for failedTagTTL: later publications of the
// same Tag, queued behind it or sent before the hub heard of the failure
// and closed the connection, fail too. Stored, they would overtake the
// failed message, which the client sends again only after reconnecting.
func (n *Node) runRoom(room string, q *roomQueue) {
	defer n.wg.Done()
	for {
		n.pubMu.Lock()
		now := time.Now()
		var doomed []*broker.Publication
		if len(n.failedTags) > 0 {
			for tag, at := range n.failedTags {
				if now.Sub(at) > n.failedTagTTL() {
					delete(n.failedTags, tag)
				}
			}
			keep := make([]*broker.Publication, 0, len(q.pending))
			for _, p := range q.pending {
				if _, bad := n.failedTags[tagKey(p.Tag)]; bad && tagKey(p.Tag) != nil {
					doomed = append(doomed, p)
				} else {
					keep = append(keep, p)
				}
			}
			q.pending = keep
		}
		k := min(len(q.pending), n.opts.MaxBatch)
		// A change is applied to its target before its batch is sent:
		// one after a message goes in the next batch, after the message
		// is stored (it may be the target).
		for j, msgs := 0, false; j < k; j++ {
			if q.pending[j].Change == nil {
				msgs = true
			} else if msgs {
				k = j
				break
			}
		}
		if (k == 0 && len(doomed) == 0) || n.closed.Load() {
			// Publications still pending after Close get no result: the
			// node's handler hears nothing more.
			delete(n.queues, room)
			n.pubMu.Unlock()
			return
		}
		batch := q.pending[:k:k]
		q.pending = append([]*broker.Publication(nil), q.pending[k:]...)
		n.pubMu.Unlock()

		n.dmu.Lock()
		n.inflight[room]++
		n.dmu.Unlock()
		var results []broker.Result
		if len(batch) > 0 {
			select {
			case n.batchSlots <- struct{}{}:
				results = n.store(room, batch)
				<-n.batchSlots
			case <-n.ctx.Done():
				results = make([]broker.Result, len(batch))
				for i, p := range batch {
					results[i] = broker.Result{Request: p, Err: broker.ErrClosed}
				}
			}
		}
		for _, p := range doomed {
			results = append(results, broker.Result{Request: p, Err: errAfterFailure})
		}
		n.pubMu.Lock()
		for _, r := range results {
			if key := tagKey(r.Request.Tag); r.Err != nil && key != nil && !refused(r.Err) {
				n.failedTags[key] = now
			}
		}
		n.pubMu.Unlock()
		n.push(delivery{room: room, results: results, batchDone: true})
		for range len(batch) + len(doomed) {
			<-n.slots
		}
	}
}

// refused reports whether err is a change the target does not allow:
// nothing was stored, and nothing after it need wait.
func refused(err error) bool {
	return errors.Is(err, history.ErrNoMessage) || errors.Is(err, history.ErrNotSender)
}

// errAfterFailure fails a publication queued behind a failed one of the
// same membership.
var errAfterFailure = errors.New("cluster: not stored: an earlier message of this sender in this room was not stored, and this one must not overtake it")

// failedTagTTL is how long a failed publication's Tag stays poisoned:
// long enough for the hub to hear of the failure and close the
// connection, which stops its publications.
func (n *Node) failedTagTTL() time.Duration { return 4 * n.c.opts.PublishTimeout }

// tagKey returns tag if it can be a map key (the hub's tags are
// pointers), else nil.
func tagKey(tag any) any {
	if tag == nil || !reflect.TypeOf(tag).Comparable() {
		return nil
	}
	return tag
}

// store stores a batch of a room's publications and returns their
// results, in order. A re-send within the batch is a duplicate of its
// first occurrence; a re-send of a stored message is found by its marker
// when the batch fails.
func (n *Node) store(room string, batch []*broker.Publication) []broker.Result {
	timeout := n.c.opts.PublishTimeout
	ctx, cancel := context.WithTimeout(n.ctx, timeout)
	defer cancel()
	results := make([]broker.Result, len(batch))
	toks := make([]string, len(batch))
	// ids are the messages' Nats-Msg-Id suffixes: "" but for a re-send of
	// a message retention removed, whose id JetStream may still know.
	ids := make([]string, len(batch))
	dupOf := make([]int, len(batch))
	first := make(map[string]int, len(batch))
	var todo []int
	for i, p := range batch {
		results[i].Request = p
		toks[i] = DedupToken(protocol.Key(p.Sender), p.ID)
		if j, ok := first[toks[i]]; ok {
			dupOf[i] = j
			continue
		}
		first[toks[i]] = i
		dupOf[i] = -1
		todo = append(todo, i)
	}

	// Changes are applied to their targets first (their records
	// written), then stored as entries like messages; a re-sent change
	// is answered with its entry and not applied again.
	var states []*protocol.Msg // the changes' new states, by index in batch
	var changedAt uint64       // the changes' time: their entries' and the edits'
	if hasChanges(batch) {
		changedAt = uint64(time.Now().UnixMilli())
		states = make([]*protocol.Msg, len(batch))
		todo = n.applyChanges(ctx, room, batch, todo, toks, results, states, changedAt)
	}

	var lastErr error
	sameHead := 0 // failures in a row with the room's head unchanged
	for attempt := 0; len(todo) > 0; attempt++ {
		if ctx.Err() != nil {
			err := fmt.Errorf("cluster: not stored within %v: %w", timeout, errors.Join(ctx.Err(), lastErr))
			for _, i := range todo {
				results[i].Err = err
			}
			break
		}
		h, ok := n.cachedHead(room)
		if !ok {
			var err error
			if h, err = n.c.readHead(ctx, room); err != nil {
				lastErr = err
				n.backoff(ctx, attempt)
				continue
			}
			n.noteHead(room, h)
		}
		now := uint64(time.Now().UnixMilli())
		if changedAt != 0 {
			now = changedAt // an edit's time is its entry's
		}
		msgs := make([]protocol.Msg, len(todo))
		btoks, bids := make([]string, len(todo)), make([]string, len(todo))
		for k, i := range todo {
			p := batch[i]
			msgs[k] = protocol.Msg{Room: room, Seq: h.seq + 1 + uint64(k), Time: now, Sender: p.Sender, ID: p.ID, Text: p.Text, Reply: p.Reply, File: p.File}
			if ch := p.Change; ch != nil {
				msgs[k].Text, msgs[k].Reply, msgs[k].File = "", 0, nil
				msgs[k].Change = &protocol.ChangeEntry{Kind: ch.Kind, Target: ch.Target}
				if ch.Kind == protocol.ChangeReact || ch.Kind == protocol.ChangeUnreact {
					msgs[k].Change.Emoji = ch.Text
				}
			}
			btoks[k], bids[k] = toks[i], ids[i]
		}
		// An attempt waits a third of the timeout for its answer: an
		// answer lost with a connection to a server that went down
		// would otherwise use it all up.
		actx, acancel := context.WithTimeout(ctx, max(timeout/3, 100*time.Millisecond))
		last, err := n.c.sendBatch(actx, room, btoks, bids, msgs, h.stream, n.id)
		acancel()
		if err == nil {
			for k, i := range todo {
				results[i].Msg = msgs[k]
				if ch := results[i].Msg.Change; ch != nil {
					entry := *ch
					entry.State = states[i]
					results[i].Msg.Change = &entry
				}
				n.c.index.stored(&results[i].Msg)
				if fs := n.opts.Files; fs != nil && results[i].Msg.File != nil {
					fs.sent(results[i].Msg)
				}
			}
			// The last entry is the last message's marker.
			n.noteHead(room, head{seq: msgs[len(msgs)-1].Seq, stream: last - 1})
			for cur := n.storedSeq.Load(); cur < last-1 && !n.storedSeq.CompareAndSwap(cur, last-1); cur = n.storedSeq.Load() {
			}
			todo = nil
			break
		}
		lastErr = err
		n.forgetHead(room)
		if n.onBatchError != nil {
			n.onBatchError(apiCode(err))
		}
		switch code := apiCode(err); code {
		case errCodeWrongLastSeq, errCodeWrongLastSeqConst, errCodeBatchDuplicate, errCodeMsgIDInProcess:
			// The room moved on (another node stored in it), another
			// write to it is in flight (10164), or some messages are
			// re-sends: their markers exist (10071), or JetStream still
			// knows their Nats-Msg-Id (10201), or a batch with one of
			// their ids is proposed and not applied yet (10158: our own
			// earlier attempt whose answer was late, or another node's
			// send of the same re-send).
			nh, herr := n.c.readHead(ctx, room)
			if herr == nil && nh != h {
				n.noteHead(room, nh)
				sameHead = 0
				continue
			}
			sameHead++
			// A write in flight usually lands soon and moves the head:
			// look for markers (a request per message) only when it
			// does not.
			if (code != errCodeWrongLastSeqConst && code != errCodeMsgIDInProcess) || sameHead >= 3 {
				rest, rerr := n.resolveDuplicates(ctx, room, todo, toks, ids, results)
				if rerr != nil {
					lastErr = rerr
				}
				if len(rest) < len(todo) {
					todo = rest
					continue
				}
			}
			n.backoff(ctx, attempt)
		case errCodeBatchIncomplete, errCodeTooManyBatches, 0:
			// A leader change, too many batches on the stream, or no
			// answer (no quorum, no connection): try again until the
			// timeout. A batch stored without our hearing of it fails
			// its retry on the markers and is found by them.
			n.backoff(ctx, attempt)
		default:
			for _, i := range todo {
				results[i].Err = fmt.Errorf("cluster: storing a message: %w", err)
			}
			todo = nil
		}
	}
	for i, j := range dupOf {
		if j < 0 {
			continue
		}
		if results[j].Err != nil {
			results[i].Err = results[j].Err
		} else {
			results[i].Msg, results[i].Duplicate = results[j].Msg, true
		}
	}
	return results
}

// resolveDuplicates looks for the markers of the messages in todo: those
// with one are re-sends, answered with the original message; the others
// are returned.
func (n *Node) resolveDuplicates(ctx context.Context, room string, todo []int, toks, ids []string, results []broker.Result) ([]int, error) {
	var rest []int
	for _, i := range todo {
		mark, err := n.c.getMsg(ctx, getReq{LastBySubj: DedupSubject + Token(room) + "." + toks[i]})
		if errors.Is(err, errNotFound) {
			rest = append(rest, i)
			continue
		}
		if err != nil {
			return todo, err
		}
		var m protocol.Msg
		orig, err := n.c.getMsg(ctx, getReq{Seq: mark.Seq - 1})
		if errors.Is(err, errNotFound) {
			// An operator deleted the original: its record answers.
			m, err = n.c.redactedResend(ctx, room, toks[i])
			if errors.Is(err, errNotFound) {
				// Retention removed the original (its marker lives for the
				// dedup window, longer than a room's count limit may keep
				// it): the re-send is stored anew, as a single server does,
				// under a Nats-Msg-Id of its own (the old one may still be
				// in JetStream's window; nodes racing with the same re-send
				// pick the same id, and the new marker decides anyway).
				if err := n.c.stream.Purge(ctx, jetstream.WithPurgeSubject(mark.Subject)); err != nil {
					return todo, err
				}
				ids[i] = "." + strconv.FormatUint(mark.Seq, 36)
				rest = append(rest, i)
				continue
			}
		} else if err == nil {
			m, err = orig.decode()
		}
		if err != nil {
			return todo, err
		}
		results[i].Msg, results[i].Duplicate = m, true
	}
	return rest, nil
}

// backoff waits a little before a retry: 2 ms doubling to 200 ms, with
// jitter so two nodes contending for a room do not retry in step.
func (n *Node) backoff(ctx context.Context, attempt int) {
	d := min(2*time.Millisecond<<min(attempt, 10), 200*time.Millisecond)
	d = d/2 + mrand.N(d/2+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// sendBatch publishes msgs of room, each followed by its deduplication
// marker, as one atomic batch whose first message expects the room's
// last stream seq to be expect. It returns the stream seq of the last
// entry (the last marker).
func (c *Conn) sendBatch(ctx context.Context, room string, toks, ids []string, msgs []protocol.Msg, expect uint64, node string) (uint64, error) {
	rt := Token(room)
	ttl := c.opts.DedupWindow.String()
	entries := make([]*nats.Msg, 0, 2*len(msgs))
	for k := range msgs {
		m := c.msgEntry(rt, &msgs[k], node)
		m.Header[hdrMsgID] = []string{rt + "." + toks[k] + ids[k]}
		if k == 0 {
			// Only the first write to a subject in a batch may expect.
			m.Header[hdrExpectSubj] = []string{strconv.FormatUint(expect, 10)}
		}
		entries = append(entries, m, markerEntry(rt, toks[k], ttl))
	}
	return c.commit(ctx, entries)
}

// msgEntry is a message's stream entry, without batch headers.
func (c *Conn) msgEntry(rt string, m *protocol.Msg, node string) *nats.Msg {
	e := nats.NewMsg(MsgSubject + rt)
	e.Data = protocol.Encode(m)
	e.Header[HeaderSeq] = []string{strconv.FormatUint(m.Seq, 10)}
	e.Header[HeaderNode] = []string{node}
	if m.Change != nil {
		e.Header[HeaderChange] = []string{changeHeader(m.Change)}
	}
	return e
}

// markerEntry is a deduplication marker: it must not exist yet, and it
// expires after the deduplication window.
func markerEntry(rt, tok, ttl string) *nats.Msg {
	e := nats.NewMsg(DedupSubject + rt + "." + tok)
	e.Header[hdrExpectSubj] = []string{"0"}
	e.Header[hdrTTL] = []string{ttl}
	return e
}

// commit sends entries as one atomic batch and returns the stream seq of
// the last. Entries before the last go without a reply subject: the
// server answers only the commit, for the whole batch.
func (c *Conn) commit(ctx context.Context, entries []*nats.Msg) (uint64, error) {
	if len(entries) == 0 {
		return 0, errors.New("cluster: empty batch")
	}
	var idb [16]byte
	_, _ = rand.Read(idb[:])
	id := base64.RawURLEncoding.EncodeToString(idb[:])
	for i, e := range entries {
		e.Header[hdrBatchID] = []string{id}
		e.Header[hdrBatchSeq] = []string{strconv.Itoa(i + 1)}
		if i < len(entries)-1 {
			if err := c.nc.PublishMsg(e); err != nil {
				return 0, err
			}
		}
	}
	last := entries[len(entries)-1]
	last.Header[hdrBatchCommit] = []string{"1"}
	resp, err := c.nc.RequestMsgWithContext(ctx, last)
	if err != nil {
		return 0, err
	}
	var ack struct {
		Seq   uint64    `json:"seq"`
		Count int       `json:"count"`
		Error *apiError `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &ack); err != nil {
		return 0, fmt.Errorf("cluster: bad publish acknowledgement %q: %w", resp.Data, err)
	}
	if ack.Error != nil {
		return 0, ack.Error
	}
	if ack.Count != len(entries) {
		return 0, fmt.Errorf("cluster: batch of %d stored as %d", len(entries), ack.Count)
	}
	return ack.Seq, nil
}

// Bounds of one atomic batch of Append: JetStream takes at most 1000
// entries in a batch (a message and its marker are two), and a batch is
// one raft entry in a replicated stream, so it stays small.
const (
	MaxAppend      = 200
	maxAppendBytes = 512 << 10
)

// Append stores messages of one room with the seqs and times they carry
// (tests, tools): the first must follow the room's last message, the
// others each other. They go in atomic batches of up to MaxAppend, each a
// compare-and-set on the room's head, with deduplication markers (a
// client's re-send of one is recognised for the deduplication window
// from now) but no Nats-Msg-Id. A batch that finds the room changed
// fails Append; batches before it stay stored. Nodes deliver the
// messages like any others.
func (c *Conn) Append(ctx context.Context, msgs []protocol.Msg) error {
	return c.appendRoom(ctx, msgs, false, 0)
}

// appendRoom is Append; in a room new to the stream the first message
// may also be floor+1 (floor 0: it must be 1). With windowFromSent (a migration: the messages'
// times are when they were first stored), a marker lives for what is left
// of the window since then, and a message older than the window gets
// none: a history of millions would otherwise hold millions of markers
// in NATS's memory for a day. There is no Nats-Msg-Id either way:
// JetStream's window would know a re-send whose marker is gone, which
// would then be neither found nor stored.
func (c *Conn) appendRoom(ctx context.Context, msgs []protocol.Msg, windowFromSent bool, floor uint64) error {
	if len(msgs) == 0 {
		return nil
	}
	room := msgs[0].Room
	for i := range msgs {
		if msgs[i].Room != room || (i > 0 && msgs[i].Seq != msgs[i-1].Seq+1) {
			return fmt.Errorf("cluster: Append: message %d (room %q, seq %d) does not follow", i, msgs[i].Room, msgs[i].Seq)
		}
	}
	h, err := c.readHead(ctx, room)
	if err != nil {
		return err
	}
	// A room new to the stream may start at floor+1: a history whose
	// oldest messages retention removed (a migration from such a
	// database).
	if msgs[0].Seq != h.seq+1 && (h.seq != 0 || floor == 0 || msgs[0].Seq != floor+1) {
		return fmt.Errorf("cluster: Append: room %q is at seq %d, the first message has %d", room, h.seq, msgs[0].Seq)
	}
	rt := Token(room)
	node := cmp.Or(c.opts.Name, "append")
	for len(msgs) > 0 {
		k, size := 0, 0
		for ; k < len(msgs) && k < MaxAppend && size < maxAppendBytes; k++ {
			size += len(msgs[k].Text) + len(msgs[k].Sender) + len(msgs[k].ID) + len(room)
			if f := msgs[k].File; f != nil {
				size += len(f.ID) + len(f.Name) + len(f.Type) + len(f.Thumb) + 32
			}
		}
		batch := msgs[:k]
		msgs = msgs[k:]
		now := time.Now()
		entries := make([]*nats.Msg, 0, 2*len(batch))
		seen := make(map[string]bool, len(batch))
		for k := range batch {
			e := c.msgEntry(rt, &batch[k], node)
			if k == 0 {
				e.Header[hdrExpectSubj] = []string{strconv.FormatUint(h.stream, 10)}
			}
			entries = append(entries, e)
			// A marker per idempotency key: a key stored twice in the
			// old store keeps the first.
			ttl := c.opts.DedupWindow
			if windowFromSent {
				ttl = time.UnixMilli(int64(batch[k].Time)).Add(ttl).Sub(now).Truncate(time.Second)
			}
			if tok := DedupToken(protocol.Key(batch[k].Sender), batch[k].ID); !seen[tok] && ttl >= time.Second {
				seen[tok] = true
				entries = append(entries, markerEntry(rt, tok, ttl.String()))
			}
		}
		if _, err := c.commit(ctx, entries); err != nil {
			return fmt.Errorf("cluster: Append to room %q at seq %d: %w", room, batch[0].Seq, err)
		}
		for k := range batch {
			c.index.stored(&batch[k])
		}
		if h, err = c.readHead(ctx, room); err != nil {
			return err
		}
	}
	return nil
}

// cachedHead returns the room's head as this node last saw it.
func (n *Node) cachedHead(room string) (head, bool) {
	n.headMu.Lock()
	defer n.headMu.Unlock()
	h, ok := n.heads[room]
	return h, ok
}

// noteHead records a room's head if it is newer than the one known.
func (n *Node) noteHead(room string, h head) {
	n.headMu.Lock()
	defer n.headMu.Unlock()
	cur, ok := n.heads[room]
	if ok && cur.stream >= h.stream {
		return
	}
	if !ok && len(n.heads) >= maxHeads {
		clear(n.heads)
	}
	n.heads[room] = h
}

func (n *Node) forgetHead(room string) {
	n.headMu.Lock()
	delete(n.heads, room)
	n.headMu.Unlock()
}
