package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"chat/protocol"
	"chat/server/internal/broker"
	"chat/server/internal/history"
)

// HeaderChange marks a change entry of stream CHAT (DESIGN.md, "Changes"):
// "<kind> <target>", then " <emoji>" for a reaction. The entry's payload is
// its MSG frame without text (seq, time, actor as sender, change id).
const HeaderChange = "Chat-Change"

// MaxReactors bounds the reactions a message's record keeps (all emoji
// together): a record is one value, under NATS's 1 MB payload (a reactor
// takes up to ~150 bytes with the longest names). A reaction beyond it
// changes nothing (its change entry is stored).
const MaxReactors = 5000

// record is a changed message's current state, the value of its key
// Token(room).<seq> in chat-states: once a message is changed its stream
// message is erased and the record is the message.
type record struct {
	// Msg is the message's MSG frame now: text (empty once deleted),
	// edited time, reactions as clients see them.
	Msg []byte `json:"msg"`
	// Reacts are the reactions by name key, per emoji, oldest first: set
	// and unset are idempotent by key, while Msg lists display names.
	Reacts map[string][]reactor `json:"reacts,omitempty"`
	// Done are the dedup tokens of the last changes applied to the
	// message (at most maxDoneTokens, oldest first): a re-send of one
	// whose entry is missing (the change failed after its record was
	// written) finishes it without applying it again (DESIGN.md,
	// "Changes").
	Done []string `json:"done,omitempty"`
}

// maxDoneTokens bounds record.Done.
const maxDoneTokens = 8

// done reports whether the change with dedup token tok was applied.
func (r *record) done(tok string) bool {
	for _, t := range r.Done {
		if tok != "" && t == tok {
			return true
		}
	}
	return false
}

// addDone notes tok as applied, forgetting the oldest beyond the bound.
func (r *record) addDone(tok string) {
	if tok == "" {
		return
	}
	r.Done = append(r.Done, tok)
	if len(r.Done) > maxDoneTokens {
		r.Done = append(r.Done[:0:0], r.Done[len(r.Done)-maxDoneTokens:]...)
	}
}

type reactor struct {
	Key  string `json:"k"`
	Name string `json:"n"`
}

// parseRecord reads a record: JSON, or the bare MSG frame without text of
// a message deleted before edits existed (a frame starts with its length,
// never with '{').
func parseRecord(key string, rev uint64, v []byte) (*record, protocol.Msg, error) {
	rec := &record{}
	if len(v) > 0 && v[0] == '{' {
		if err := json.Unmarshal(v, rec); err != nil {
			return nil, protocol.Msg{}, fmt.Errorf("cluster: record %s: %w", key, err)
		}
	} else {
		rec.Msg = v
	}
	sm := storedMsg{Subject: "$KV." + BucketRedactions + "." + key, Seq: rev, Data: rec.Msg}
	m, err := sm.decode()
	if err != nil {
		return nil, protocol.Msg{}, err
	}
	return rec, m, nil
}

// loadRecord reads the record of room's message seq from the leader of
// chat-states, or, if it has none, of chat-redactions (a deletion from
// before edits existed): nil if there is none. rev is the record's
// revision in chat-states (0: none there, a change creates it).
func (c *Conn) loadRecord(ctx context.Context, room string, seq uint64) (*record, *protocol.Msg, uint64, error) {
	key := redactionKey(room, seq)
	v, rev, err := c.leaderGet(ctx, c.states, key)
	if err != nil {
		return nil, nil, 0, err
	}
	legacy := rev == 0
	if legacy {
		if v, rev, err = c.leaderGet(ctx, c.redactions, key); err != nil || rev == 0 {
			return nil, nil, 0, err
		}
	}
	rec, m, err := parseRecord(key, rev, v)
	if err != nil {
		return nil, nil, 0, err
	}
	m.Room = room
	if legacy {
		rev = 0
	}
	return rec, &m, rev, nil
}

// changeHeader is the HeaderChange value of a change entry.
func changeHeader(ch *protocol.ChangeEntry) string {
	s := strconv.Itoa(int(ch.Kind)) + " " + strconv.FormatUint(ch.Target, 10)
	if ch.Emoji != "" {
		s += " " + ch.Emoji
	}
	return s
}

// parseChange reads a HeaderChange value; nil if v is empty or malformed.
func parseChange(v string) *protocol.ChangeEntry {
	if v == "" {
		return nil
	}
	kind, rest, _ := strings.Cut(v, " ")
	target, emoji, _ := strings.Cut(rest, " ")
	k, err1 := strconv.Atoi(kind)
	t, err2 := strconv.ParseUint(target, 10, 64)
	if err1 != nil || err2 != nil || k <= 0 || k > 255 {
		return nil
	}
	return &protocol.ChangeEntry{Kind: protocol.ChangeKind(k), Target: t, Emoji: emoji}
}

// headers returns the stream message's headers (nil: none).
func (s *storedMsg) headers() nats.Header {
	if s.hdr != nil || len(s.Header) == 0 {
		return s.hdr
	}
	h, err := nats.DecodeHeadersMsg(s.Header)
	if err != nil {
		return nil
	}
	s.hdr = h
	return h
}

// isCopy reports whether s is the copy without text of a room's last
// message that was changed (HeaderRedacted): readers take the message
// from its record.
func (s *storedMsg) isCopy() bool {
	h := s.headers()
	return h != nil && len(h[HeaderRedacted]) > 0
}

// stateFrame is the state's frame as a record keeps it: the message
// itself, not a change entry.
func stateFrame(m protocol.Msg) []byte {
	m.Change = nil
	return protocol.Encode(&m)
}

// reactionsOf lists reacts as a Msg shows them: in protocol.Reactions
// order, emoji with reactions only, up to MaxReactionNames names each.
func reactionsOf(reacts map[string][]reactor) []protocol.Reaction {
	var out []protocol.Reaction
	for _, e := range protocol.Reactions {
		rs := reacts[e]
		if len(rs) == 0 {
			continue
		}
		r := protocol.Reaction{Emoji: e, Count: uint64(len(rs))}
		for _, x := range rs[:min(len(rs), protocol.MaxReactionNames)] {
			r.Names = append(r.Names, x.Name)
		}
		out = append(out, r)
	}
	return out
}

// reactsOf is the record's reactions of a message stored with some (an
// import or migration of a single server's history): by the names the
// message lists (up to protocol.MaxReactionNames an emoji).
func reactsOf(rs []protocol.Reaction) map[string][]reactor {
	if len(rs) == 0 {
		return nil
	}
	out := map[string][]reactor{}
	for _, r := range rs {
		for _, name := range r.Names {
			out[r.Emoji] = append(out[r.Emoji], reactor{Key: protocol.Key(name), Name: name})
		}
	}
	return out
}

// apply applies change ch by actor to state (rec: its reactions) at time
// now, checking that it is allowed.
func apply(state *protocol.Msg, rec *record, actor string, ch *history.Change, now uint64) error {
	if history.Deleted(state) {
		return history.ErrNoMessage // deleted
	}
	own := protocol.Key(actor) == protocol.Key(state.Sender)
	switch ch.Kind {
	case protocol.ChangeEdit:
		if !own {
			return history.ErrNotSender
		}
		if ch.Text == "" {
			return fmt.Errorf("cluster: an edit without text")
		}
		state.Text, state.Edited = ch.Text, now
	case protocol.ChangeDelete:
		if !own && !ch.Moderator {
			return history.ErrNotSender
		}
		// now 0: moderation's Redact, which keeps the message as it
		// was but for its text (moderation.Store).
		// The file goes with the text: the store forgets the reference
		// (the index drops it on the delete entry), Collect the content.
		state.Text, state.Reactions, state.File = "", nil, nil
		if now != 0 {
			state.Edited = now
		}
		rec.Reacts = nil
	case protocol.ChangeReact, protocol.ChangeUnreact:
		key := protocol.Key(actor)
		rs := rec.Reacts[ch.Text]
		i := 0
		for ; i < len(rs) && rs[i].Key != key; i++ {
		}
		if ch.Kind == protocol.ChangeReact && i == len(rs) {
			total := 0
			for _, x := range rec.Reacts {
				total += len(x)
			}
			if total < MaxReactors {
				if rec.Reacts == nil {
					rec.Reacts = map[string][]reactor{}
				}
				rec.Reacts[ch.Text] = append(rs, reactor{Key: key, Name: actor})
			}
		} else if ch.Kind == protocol.ChangeUnreact && i < len(rs) {
			rs = append(rs[:i:i], rs[i+1:]...)
			if len(rs) == 0 {
				delete(rec.Reacts, ch.Text)
			} else {
				rec.Reacts[ch.Text] = rs
			}
		}
		state.Reactions = reactionsOf(rec.Reacts)
	default:
		return fmt.Errorf("cluster: unknown change kind %d", ch.Kind)
	}
	return nil
}

// change applies ch by actor to room's message ch.Target (DESIGN.md,
// "Changes") and returns its new state: it reads the message (its record
// if it has one, else the stream message), checks the change, writes the
// new state as the record by compare-and-set on the key's revision
// (reading again on a conflict), erases the previous revision of the
// record and the original stream message (after a copy without text if
// it is the room's last), so that no earlier text stays readable. tok is
// the change's dedup token ("" for moderation's Redact): a re-send of a
// change the record has applied already (a step after the record failed)
// is not applied again but finished: the original and the record's older
// revisions are erased, and the state returned for its entry.
func (c *Conn) change(ctx context.Context, room, actor string, ch *history.Change, now uint64, tok string) (protocol.Msg, error) {
	t := ch.Target
	key := redactionKey(room, t)
	for attempt := 0; ; attempt++ {
		h, err := c.readHead(ctx, room)
		if err != nil {
			return protocol.Msg{}, err
		}
		if t == 0 || t > h.seq {
			return protocol.Msg{}, history.ErrNoMessage
		}
		// The stream first, then the record: a writer records before it
		// erases, so a message found erased has its record.
		var orig *storedMsg
		var origMsg protocol.Msg
		if h.stream != 0 {
			sm, m, err := c.find(ctx, room, t, h)
			if err != nil && !errors.Is(err, errNotFound) {
				return protocol.Msg{}, err
			}
			if err == nil && m.Seq == t {
				if m.Change != nil {
					return protocol.Msg{}, history.ErrNoMessage
				}
				if !sm.isCopy() {
					orig, origMsg = sm, m
				}
			}
		}
		rec, recMsg, rev, err := c.loadRecord(ctx, room, t)
		if err != nil {
			return protocol.Msg{}, err
		}
		if recMsg != nil && !c.retained(recMsg, h.seq) {
			// Retention removed the message; its record awaits the sweep.
			return protocol.Msg{}, history.ErrNoMessage
		}
		if recMsg != nil && orig != nil {
			// A change recorded the message but failed before erasing
			// its original (or a node died there): the record is the
			// message, the original's text must go whatever this change
			// turns out to be.
			if err := c.erase(ctx, room, orig, origMsg, h); err != nil {
				return protocol.Msg{}, err
			}
			orig = nil
		}
		if recMsg != nil && rev != 0 && rec.done(tok) {
			// A re-send of a change applied before its entry was stored:
			// finish it (older revisions erased) and let the batch store
			// the entry.
			if err := c.eraseOlderStates(ctx, key, rev); err != nil {
				return protocol.Msg{}, err
			}
			state := *recMsg
			state.Room = room
			return state, nil
		}
		var state protocol.Msg
		switch {
		case recMsg != nil:
			state = *recMsg
		case orig != nil:
			state, rec = origMsg, &record{Reacts: reactsOf(origMsg.Reactions)}
		default:
			return protocol.Msg{}, history.ErrNoMessage // removed by retention
		}
		state.Room = room
		if err := apply(&state, rec, actor, ch, now); err != nil {
			return protocol.Msg{}, err
		}
		rec.Msg = stateFrame(state)
		rec.addDone(tok)
		data, err := json.Marshal(rec)
		if err != nil {
			return protocol.Msg{}, err
		}
		if rev == 0 {
			_, err = c.states.Create(ctx, key, data)
		} else {
			_, err = c.states.Update(ctx, key, data, rev)
		}
		if isConflict(err) && attempt < 100 {
			// Another node changed it first (or the leader has not
			// applied its last write yet): read it again.
			if err := pause(ctx, attempt); err != nil {
				return protocol.Msg{}, err
			}
			continue
		}
		if err != nil {
			return protocol.Msg{}, fmt.Errorf("cluster: recording the change of %s #%d: %w", room, t, err)
		}
		if c.afterRecord != nil {
			if err := c.afterRecord(); err != nil {
				return protocol.Msg{}, err
			}
		}
		if rev != 0 {
			// The replaced revision is still there (the stream keeps a
			// few): overwrite it on disk, so no earlier text stays.
			if err := c.statesStream.SecureDeleteMsg(ctx, rev); err != nil && !erased(err) {
				return protocol.Msg{}, fmt.Errorf("cluster: erasing the previous state of %s #%d: %w", room, t, err)
			}
		}
		if orig != nil {
			if err := c.erase(ctx, room, orig, origMsg, h); err != nil {
				return protocol.Msg{}, err
			}
		}
		return state, nil
	}
}

// eraseOlderStates erases the revisions of record key older than rev
// that are still in chat-states (a change that failed before erasing the
// revision it replaced).
func (c *Conn) eraseOlderStates(ctx context.Context, key string, rev uint64) error {
	revs, err := c.states.History(ctx, key)
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("cluster: reading the states of %s: %w", key, err)
	}
	for _, e := range revs {
		if e.Revision() >= rev {
			continue
		}
		if err := c.statesStream.SecureDeleteMsg(ctx, e.Revision()); err != nil && !erased(err) {
			return fmt.Errorf("cluster: erasing a previous state of %s: %w", key, err)
		}
	}
	return nil
}

// erase removes a changed message's original from the stream, its record
// written: first a record for re-sends of it (their marker's message is
// gone), then, if it is the room's last, a copy without text after it
// (the room's numbering and the publishers' compare-and-set rest on its
// last message), then the erasure proper (SecureDeleteMsg: its bytes are
// overwritten on disk).
func (c *Conn) erase(ctx context.Context, room string, sm *storedMsg, m protocol.Msg, h head) error {
	bare := protocol.Msg{Room: room, Seq: m.Seq, Time: m.Time, Sender: m.Sender, ID: m.ID, Reply: m.Reply}
	frame := protocol.Encode(&bare)
	// The record for re-sends is needed only while a re-send is
	// recognised: it expires with the deduplication window.
	dedupKey := redactionDedupKey(room, DedupToken(protocol.Key(m.Sender), m.ID))
	if _, err := c.redactions.Create(ctx, dedupKey, frame, jetstream.KeyTTL(c.opts.DedupWindow)); err != nil && !isConflict(err) {
		return fmt.Errorf("cluster: recording %s #%d for re-sends: %w", room, m.Seq, err)
	}
	if sm.Seq == h.stream {
		if err := c.copyLast(ctx, room, &bare, sm.Seq); err != nil {
			return fmt.Errorf("cluster: changing %s #%d: %w", room, m.Seq, err)
		}
	}
	if err := c.stream.SecureDeleteMsg(ctx, sm.Seq); err != nil && !erased(err) {
		return fmt.Errorf("cluster: erasing %s #%d: %w", room, m.Seq, err)
	}
	return nil
}

// pause waits a few milliseconds more with each attempt (at most 100 ms).
func pause(ctx context.Context, attempt int) error {
	t := time.NewTimer(min(time.Duration(attempt+1)*2*time.Millisecond, 100*time.Millisecond))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// withStates fills the State of the change entries among msgs with their
// targets' current states: the record of each target, or, without one
// (a history migrated with its changes applied), its stream message; nil
// if neither (removed by retention).
func (c *Conn) withStates(ctx context.Context, room string, msgs []protocol.Msg) error {
	var targets []uint64
	idx := map[uint64]int{}
	for _, m := range msgs {
		if m.Change == nil {
			continue
		}
		if _, ok := idx[m.Change.Target]; !ok {
			idx[m.Change.Target] = len(targets)
			targets = append(targets, m.Change.Target)
		}
	}
	if len(targets) == 0 {
		return nil
	}
	states := make([]*protocol.Msg, len(targets))
	err := eachParallel(len(targets), func(i int) error {
		_, m, _, err := c.loadRecord(ctx, room, targets[i])
		states[i] = m
		return err
	})
	if err != nil {
		return err
	}
	var h *head
	if c.opts.Retention != nil {
		// Records of messages retention removed are not read back.
		hd, err := c.readHead(ctx, room)
		if err != nil {
			return err
		}
		h = &hd
		for i := range states {
			if !c.retained(states[i], h.seq) {
				states[i] = nil
			}
		}
	}
	// A target without a record came with its changes applied (migrated
	// from a single server): its stream message is its state.
	for i, t := range targets {
		if states[i] != nil {
			continue
		}
		if h == nil {
			hd, err := c.readHead(ctx, room)
			if err != nil {
				return err
			}
			h = &hd
		}
		if t > h.seq || h.stream == 0 {
			continue
		}
		_, m, err := c.find(ctx, room, t, *h)
		if errors.Is(err, errNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if m.Seq == t && m.Change == nil {
			m.Room = room
			states[i] = &m
		}
	}
	for i := range msgs {
		if ch := msgs[i].Change; ch != nil {
			entry := *ch
			if s := states[idx[ch.Target]]; s != nil {
				st := *s
				entry.State = &st
			}
			msgs[i].Change = &entry
		}
	}
	return nil
}

// hasChanges reports whether batch holds a change.
func hasChanges(batch []*broker.Publication) bool {
	for _, p := range batch {
		if p.Change != nil {
			return true
		}
	}
	return false
}

// applyChanges applies the changes among the publications todo of batch
// (indexes) to their targets, in order, and returns todo without those
// that are done: a re-send of a stored change (its marker exists: the
// result is its entry, a duplicate) and a change refused or failed (the
// result's error). states gets the new state of each change applied.
func (n *Node) applyChanges(ctx context.Context, room string, batch []*broker.Publication, todo []int, toks []string, results []broker.Result, states []*protocol.Msg, now uint64) []int {
	rest := todo[:0:0]
	for _, i := range todo {
		p := batch[i]
		if p.Change == nil {
			rest = append(rest, i)
			continue
		}
		entry, err := n.c.storedChange(ctx, room, toks[i])
		if err == nil {
			results[i].Msg, results[i].Duplicate = entry, true
			continue
		}
		if !errors.Is(err, errNotFound) {
			results[i].Err = err
			continue
		}
		st, err := n.c.change(ctx, room, p.Sender, p.Change, now, toks[i])
		// A copy of the room's last message may have moved its head
		// (a refused change may have erased an original too).
		n.forgetHead(room)
		if err != nil {
			results[i].Err = err
			continue
		}
		states[i] = &st
		rest = append(rest, i)
	}
	return rest
}

// storedChange returns the entry of room's change with dedup token tok if
// it was stored (its marker exists and the entry is kept), with its
// target's state; errNotFound if not.
func (c *Conn) storedChange(ctx context.Context, room, tok string) (protocol.Msg, error) {
	mark, err := c.getMsg(ctx, getReq{LastBySubj: DedupSubject + Token(room) + "." + tok})
	if err != nil {
		return protocol.Msg{}, err
	}
	sm, err := c.getMsg(ctx, getReq{Seq: mark.Seq - 1})
	if err != nil {
		// Gone by retention: the change is applied again (idempotent)
		// and the batch finds the marker (resolveDuplicates).
		return protocol.Msg{}, err
	}
	m, err := sm.decode()
	if err != nil {
		return protocol.Msg{}, err
	}
	msgs := []protocol.Msg{m}
	if err := c.withStates(ctx, room, msgs); err != nil {
		return protocol.Msg{}, err
	}
	return msgs[0], nil
}

// erased reports whether a deletion failed because the message is gone
// already (another node's change of it erased it first).
func erased(err error) bool {
	var ae *jetstream.APIError
	return errors.Is(err, jetstream.ErrMsgNotFound) ||
		errors.As(err, &ae) && ae.ErrorCode == jetstream.JSErrCodeMessageNotFound ||
		// JetStream's 10057, which nats.go passes on as text only.
		errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) && strings.Contains(err.Error(), "no message found")
}
