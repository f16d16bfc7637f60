package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"chat/protocol"
	"chat/server/internal/history"
)

// getReq is a STREAM.MSG.GET request. It goes to the stream leader, not
// to a replica as a direct get may, so it sees every acknowledged write.
type getReq struct {
	Seq        uint64 `json:"seq,omitempty"`
	NextBySubj string `json:"next_by_subj,omitempty"`
	LastBySubj string `json:"last_by_subj,omitempty"`
}

// storedMsg is a message as STREAM.MSG.GET returns it.
type storedMsg struct {
	Subject string      `json:"subject"`
	Seq     uint64      `json:"seq"`
	Header  []byte      `json:"hdrs,omitempty"`
	Data    []byte      `json:"data,omitempty"`
	Time    time.Time   `json:"time"` // when it was stored
	hdr     nats.Header // Header parsed, or as a direct get gave it
}

func (s *storedMsg) decode() (protocol.Msg, error) {
	if len(s.Data) <= protocol.LengthSize {
		return protocol.Msg{}, fmt.Errorf("cluster: stream message %d on %s is no frame", s.Seq, s.Subject)
	}
	dec, err := protocol.Decode(s.Data[protocol.LengthSize:])
	if err != nil {
		return protocol.Msg{}, fmt.Errorf("cluster: stream message %d: %w", s.Seq, err)
	}
	m, ok := dec.(*protocol.Msg)
	if !ok {
		return protocol.Msg{}, fmt.Errorf("cluster: stream message %d is a %T", s.Seq, dec)
	}
	if h := s.headers(); h != nil {
		m.Change = parseChange(h.Get(HeaderChange))
	}
	return *m, nil
}

// getMsg reads one message of the stream; errNotFound if there is none.
func (c *Conn) getMsg(ctx context.Context, req getReq) (*storedMsg, error) {
	return c.getMsgFrom(ctx, StreamName, req)
}

// getMsgFrom reads one message of a stream (a bucket's: KV_<bucket>).
func (c *Conn) getMsgFrom(ctx context.Context, stream string, req getReq) (*storedMsg, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.PublishTimeout)
		defer cancel()
	}
	body, _ := json.Marshal(req)
	resp, err := c.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+stream, body)
	if err != nil {
		return nil, fmt.Errorf("cluster: reading the stream: %w", err)
	}
	var r struct {
		Message *storedMsg `json:"message"`
		Error   *apiError  `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return nil, fmt.Errorf("cluster: reading the stream: %w", err)
	}
	if r.Error != nil {
		if r.Error.ErrCode == errCodeNoMessage {
			return nil, errNotFound
		}
		return nil, r.Error
	}
	if r.Message == nil {
		return nil, errNotFound
	}
	return r.Message, nil
}

// readHead reads room's last message from the stream leader. A room
// whose messages all expired (retention by age) has none: its head is
// then the one chat-rooms recorded, with stream seq 0 (the subject is
// empty, which is what a compare-and-set on it expects), so numbering
// goes on from it.
func (c *Conn) readHead(ctx context.Context, room string) (head, error) {
	sm, err := c.getMsg(ctx, getReq{LastBySubj: MsgSubject + Token(room)})
	if err == errNotFound {
		return c.indexedHead(ctx, room)
	}
	if err != nil {
		return head{}, err
	}
	m, err := sm.decode()
	if err != nil {
		return head{}, err
	}
	return head{seq: m.Seq, stream: sm.Seq}, nil
}

// indexedHead is a room's head as chat-rooms has it, for a room without
// messages in the stream.
func (c *Conn) indexedHead(ctx context.Context, room string) (head, error) {
	val, _, err := c.leaderGet(ctx, c.rooms, Token(room))
	if err != nil || val == nil {
		return head{}, err
	}
	var e indexEntry
	if err := json.Unmarshal(val, &e); err != nil {
		return head{}, fmt.Errorf("cluster: room index of %s: %w", room, err)
	}
	return head{seq: e.Head}, nil
}

// floor returns the room seq below room's oldest message in the stream:
// retention removed every message up to it (0: none was removed).
func (c *Conn) floor(ctx context.Context, room string) (uint64, error) {
	sm, err := c.getMsg(ctx, getReq{NextBySubj: MsgSubject + Token(room)})
	if err == errNotFound {
		h, err := c.readHead(ctx, room)
		return h.seq, err
	}
	if err != nil {
		return 0, err
	}
	m, err := sm.decode()
	if err != nil {
		return 0, err
	}
	// Changed messages before it are erased from the stream but kept in
	// their records, as long as retention keeps them: they are history,
	// not removed. One read when the message before has no record (nearly
	// always); else recordFloor.
	top := m.Seq - 1
	if top == 0 {
		return 0, nil
	}
	rec, err := c.redaction(ctx, redactionKey(room, top))
	if err != nil || rec == nil {
		return top, err
	}
	h, err := c.readHead(ctx, room)
	if err != nil {
		return 0, err
	}
	if !c.retained(rec, h.seq) {
		return top, nil
	}
	return c.recordFloor(ctx, room, top, h.seq)
}

// find returns the stream message of room seq n (1 ≤ n ≤ h.seq), or the
// room's oldest if retention removed n, by binary search over stream
// seqs. Room seqs grow with stream seqs and every kept room message is
// one stream message, so room seq n is at a stream seq of at most
// h.stream-(h.seq-n); each probe asks for the room's first message at or
// after a stream seq, which for a removed n is the oldest kept wherever
// it is. The search starts at stream seq 1, not n: a room migrated from a
// database with retention starts at a room seq above its stream seq.
func (c *Conn) find(ctx context.Context, room string, n uint64, h head) (*storedMsg, protocol.Msg, error) {
	subj := MsgSubject + Token(room)
	lo, hi := uint64(1), h.stream
	if d := h.seq - n; d < h.stream {
		hi = h.stream - d
	}
	exact, clo, chi := c.seqs.bounds(room, n)
	if exact != 0 {
		sm, err := c.getMsg(ctx, getReq{Seq: exact})
		if err == nil && sm.Subject == subj {
			if m, err := sm.decode(); err == nil && m.Seq == n {
				return sm, m, nil
			}
		}
	} else if clo > lo || (chi != 0 && chi < hi) {
		h2 := hi
		if chi != 0 {
			h2 = min(hi, chi)
		}
		sm, m, err := c.search(ctx, subj, n, max(lo, clo), h2)
		if err == nil && m.Seq == n {
			return sm, m, nil
		}
		if err != nil && err != errNotFound {
			return nil, protocol.Msg{}, err
		}
	}
	// The cache knew nothing, or was wrong (a stream made anew).
	return c.search(ctx, subj, n, lo, hi)
}

// search is find's binary search between stream seqs lo and hi: the
// first message of the room with room seq n or more.
func (c *Conn) search(ctx context.Context, subj string, n, lo, hi uint64) (*storedMsg, protocol.Msg, error) {
	var best *storedMsg
	var bestMsg protocol.Msg
	for lo <= hi {
		mid := lo + (hi-lo)/2
		sm, err := c.getMsg(ctx, getReq{Seq: mid, NextBySubj: subj})
		if err == errNotFound {
			hi = mid - 1
			continue
		}
		if err != nil {
			return nil, protocol.Msg{}, err
		}
		m, err := sm.decode()
		if err != nil {
			return nil, protocol.Msg{}, err
		}
		if m.Seq >= n {
			best, bestMsg = sm, m
			if m.Seq == n {
				break
			}
			hi = mid - 1
		} else {
			lo = sm.Seq + 1
		}
	}
	if best == nil {
		return nil, protocol.Msg{}, errNotFound
	}
	return best, bestMsg, nil
}

// readRange reads up to count messages of room from room seq from on,
// none above room seq to. Where retention removed from, it starts at
// the oldest kept message.
func (c *Conn) readRange(ctx context.Context, room string, from uint64, count int, to uint64, h head) ([]protocol.Msg, error) {
	if count <= 0 || from > h.seq || h.stream == 0 {
		return nil, nil // nothing asked for, or nothing kept
	}
	from = max(from, 1)
	sm, m, err := c.find(ctx, room, from, h)
	if err == errNotFound || (err == nil && m.Seq > to) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	// The range starts at from, or at the oldest kept message when
	// retention removed from. A message missing from the stream is
	// either: an operator's deletion leaves a record (moderation.go), so
	// only a room with records keeps from as its start.
	start := from
	if m.Seq > from {
		has, err := c.hasRedactions(ctx, room)
		if err != nil {
			return nil, err
		}
		if !has {
			start = m.Seq
		}
	}
	count = int(min(uint64(count), to-start+1))
	subj := MsgSubject + Token(room)
	out := make([]protocol.Msg, 0, count)
	// copies are the seqs read as a copy without text of a changed
	// message (the room's last when it was changed): its record is the
	// message.
	var copies map[uint64]bool
	add := func(sm *storedMsg, m protocol.Msg) {
		if sm.isCopy() {
			if copies == nil {
				copies = map[uint64]bool{}
			}
			copies[m.Seq] = true
		}
		out = append(out, m)
	}
	add(sm, m)
	for len(out) < count && out[len(out)-1].Seq < to {
		// Many at a time from any replica (fast), checked: a replica that
		// lags gives fewer, and the leader is asked for the next one.
		batch, err := c.readBatch(ctx, subj, sm.Seq+1, min(count-len(out), maxReadBatch))
		if err != nil {
			c.opts.Logger.Debug("cluster: batch read failed; reading one by one", "room", room, "err", err)
		}
		took := 0
		for _, b := range batch {
			bm, err := b.decode()
			if err != nil {
				return nil, err
			}
			if bm.Seq != out[len(out)-1].Seq+1 {
				break
			}
			add(b, bm)
			sm = b
			took++
		}
		if len(out) >= count || took == maxReadBatch {
			continue
		}
		sm, err = c.getMsg(ctx, getReq{Seq: sm.Seq + 1, NextBySubj: subj})
		if err == errNotFound {
			break
		}
		if err != nil {
			return nil, err
		}
		if m, err = sm.decode(); err != nil {
			return nil, err
		}
		if m.Seq > to {
			break // past the range: the messages up to to were deleted
		}
		add(sm, m)
	}
	// Changed messages are gone from the stream: their records fill the
	// gaps (changes.go, moderation.go), and change entries get their
	// targets' states.
	out, err = c.withRedactions(ctx, room, start, count, out, copies, h.seq)
	if err != nil {
		return nil, err
	}
	c.preferRecords(ctx, room, out, h.seq)
	if err := c.withStates(ctx, room, out); err != nil {
		return nil, err
	}
	return out, nil
}

// maxReadBatch bounds the messages one batched read asks for.
const maxReadBatch = 256

// readBatch reads up to n messages on subj from stream seq start on, in
// one direct get: the replies stream in and end with an EOB status. Any
// replica may answer, and one that lags answers with fewer or older
// messages: callers check what they got against what they expect.
func (c *Conn) readBatch(ctx context.Context, subj string, start uint64, n int) ([]*storedMsg, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.PublishTimeout)
		defer cancel()
	}
	reply := c.nc.NewRespInbox()
	sub, err := c.nc.SubscribeSync(reply)
	if err != nil {
		return nil, err
	}
	defer sub.Unsubscribe()
	body, _ := json.Marshal(struct {
		Seq        uint64 `json:"seq"`
		NextBySubj string `json:"next_by_subj"`
		Batch      int    `json:"batch"`
	}{start, subj, n})
	if err := c.nc.PublishRequest("$JS.API.DIRECT.GET."+StreamName, reply, body); err != nil {
		return nil, err
	}
	var out []*storedMsg
	for len(out) <= n {
		msg, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return out, err
		}
		if status := msg.Header.Get("Status"); status != "" {
			if status == "204" || status == "404" { // end of batch; nothing (more)
				return out, nil
			}
			return out, fmt.Errorf("cluster: batch read: status %s %s", status, msg.Header.Get("Description"))
		}
		seq, err := strconv.ParseUint(msg.Header.Get("Nats-Sequence"), 10, 64)
		if err != nil {
			return out, fmt.Errorf("cluster: batch read: no sequence in a reply")
		}
		out = append(out, &storedMsg{Subject: msg.Header.Get("Nats-Subject"), Seq: seq, Data: msg.Data, hdr: msg.Header})
	}
	return out, nil
}

// Since implements broker.Broker.
func (n *Node) Since(ctx context.Context, room string, after uint64, limit int) ([]protocol.Msg, error) {
	if err := n.errClosed(); err != nil {
		return nil, err
	}
	h, err := n.c.readHead(ctx, room)
	if err != nil || after >= h.seq {
		return nil, err
	}
	return n.c.readRange(ctx, room, after+1, int(min(uint64(max(limit, 0)), h.seq-after)), h.seq, h)
}

// Before implements broker.Broker.
func (n *Node) Before(ctx context.Context, room string, before uint64, limit int) ([]protocol.Msg, error) {
	if err := n.errClosed(); err != nil {
		return nil, err
	}
	if before <= 1 || limit <= 0 {
		return nil, nil
	}
	h, err := n.c.readHead(ctx, room)
	if err != nil {
		return nil, err
	}
	end := min(before-1, h.seq)
	if end == 0 {
		return nil, nil
	}
	from := uint64(1)
	if end > uint64(limit) {
		from = end - uint64(limit) + 1
	}
	return n.c.readRange(ctx, room, from, int(end-from+1), end, h)
}

// Floor implements broker.Broker. Retention removes a room's oldest
// messages (MaxMsgsPerSubject, MaxAge), so its first message in the
// stream is the oldest kept.
func (n *Node) Floor(ctx context.Context, room string) (uint64, error) {
	if err := n.errClosed(); err != nil {
		return 0, err
	}
	return n.c.floor(ctx, room)
}

// Last implements broker.Broker.
func (n *Node) Last(ctx context.Context, room string, limit int) ([]protocol.Msg, error) {
	if err := n.errClosed(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	h, err := n.c.readHead(ctx, room)
	if err != nil || h.seq == 0 {
		return nil, err
	}
	from := uint64(1)
	if h.seq > uint64(limit) {
		from = h.seq - uint64(limit) + 1
	}
	return n.c.readRange(ctx, room, from, int(h.seq-from+1), h.seq, h)
}

// Search implements broker.Broker from the node's search index, which
// follows the stream a few milliseconds behind (DESIGN.md, "Search").
func (n *Node) Search(ctx context.Context, q history.Query) ([]protocol.Hit, bool, error) {
	if err := n.errClosed(); err != nil {
		return nil, false, err
	}
	return n.search.search(ctx, q)
}

// SearchSynced returns once the node's search index has applied every
// message stored in the stream before the call.
func (n *Node) SearchSynced(ctx context.Context) error {
	if err := n.errClosed(); err != nil {
		return err
	}
	// The last chat message, not a marker (which the index never sees).
	last, err := n.c.getMsg(ctx, getReq{LastBySubj: MsgSubject + ">"})
	if errors.Is(err, errNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return n.search.waitFor(ctx, last.Seq)
}
