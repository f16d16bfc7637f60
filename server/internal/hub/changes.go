package hub

// Acting on messages (protocol README.md section 4, "Acting on
// messages"): changes of earlier messages (edit, delete, react, unreact),
// replies, typing indicators and search.
//
// A change is published through the broker like a SEND (same idempotency
// key, same ACK) and stored as a change entry with its own sequence
// number; the store applies it to its target in the same commit. Members
// get it as UPDATE with the target's new state, and the ring's copy of the
// target takes that state, so a later join replays the message as it is
// now. In a replay, only the last change of a target older than the replay
// carries the state (ring.since, replayFrames): a resumer gets each final
// state once, not every edit.
//
// Typing indicators are never stored: they travel as broker notes for the
// room, which every node's hub passes on to its members of the room but
// the typist's own name.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"chat/protocol"
	"chat/server/internal/broker"
	"chat/server/internal/history"
	"chat/server/internal/moderation"
)

// checkTarget refuses (not-found, with the request's id) a change or a
// reply whose target cannot be a message of the room: 0, beyond what the
// member can have seen (delivered here, or acknowledged to it), or a
// change entry that the ring holds. A target that is not cached passes;
// the store has the last word for a change.
func (r *room) checkTarget(mem *member, seq uint64, id, what string) *protocol.Error {
	c := mem.conn
	c.mu.Lock()
	acked := mem.acked
	c.mu.Unlock()
	r.mu.Lock()
	head := max(r.delivered, mem.ahead, acked)
	change := r.loaded && r.ring.isChange(seq)
	r.mu.Unlock()
	if seq == 0 || seq > head || change {
		e := protocol.NewError(protocol.CodeNotFound, r.name, fmt.Sprintf("%s has no message %d that this %s", r.name, seq, what))
		e.ID = id
		return e
	}
	return nil
}

// isOp reports whether name is an operator of the room, as last read.
func (r *room) isOp(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mod != nil && r.mod.IsOp(name)
}

// Change publishes a CHANGE of an earlier message of a joined room; the
// ACK (or ERROR with the change's id) and the UPDATE follow once the
// store has applied it. The session has checked the lengths. The error is
// a *protocol.Error for a refusal, ErrShuttingDown during shutdown.
//
// Editing and deleting need a proven name (a JOIN with a secret): a name
// without a key could be anyone's the next time. A room operator (proven)
// or a server operator may delete any message. A muted name may not edit
// nor react, but may delete its messages and take reactions back.
func (c *Conn) Change(ch *protocol.Change) error {
	key := roomKey(ch.Room)
	mem := c.membership(key)
	if mem == nil {
		return protocol.NewError(protocol.CodeUnexpected, key, "CHANGE for "+key+", which this connection has not joined")
	}
	refuse := func(code protocol.ErrorCode, text string) error {
		e := protocol.NewError(code, key, text)
		e.ID = ch.ID
		return e
	}
	switch ch.Kind {
	case protocol.ChangeEdit:
		if ch.Text == "" {
			return refuse(protocol.CodeInvalid, "an edit needs the new text; to remove a message, delete it")
		}
	case protocol.ChangeDelete:
	case protocol.ChangeReact, protocol.ChangeUnreact:
		if !protocol.IsReaction(ch.Text) {
			return refuse(protocol.CodeInvalid, fmt.Sprintf("%q is not one of the reactions this server takes (%s)", ch.Text, strings.Join(protocol.Reactions[:], " ")))
		}
	default:
		return refuse(protocol.CodeInvalid, fmt.Sprintf("this server knows no change of kind %d", ch.Kind))
	}
	r := mem.room
	if e := r.checkTarget(mem, ch.Target, ch.ID, "change could apply to"); e != nil {
		return e
	}
	server := c.operator.Load()
	op := server || (mem.secretHash != "" && r.isOp(mem.nameKey))
	mine := ch.Kind == protocol.ChangeEdit || ch.Kind == protocol.ChangeDelete
	if mine && mem.secretHash == "" && !(ch.Kind == protocol.ChangeDelete && op) {
		return refuse(protocol.CodeForbidden, "editing or deleting a message needs a proven name: join "+key+" with your name key")
	}
	if !server && (ch.Kind == protocol.ChangeEdit || ch.Kind == protocol.ChangeReact) {
		if e := r.muted(mem.nameKey); e != nil {
			e.ID = ch.ID
			return e
		}
	}
	text := ch.Text
	if ch.Kind == protocol.ChangeDelete {
		text = ""
	}
	return c.publish(mem, &broker.Publication{Room: key, Sender: mem.name, ID: ch.ID, Tag: mem, Received: time.Now(),
		Change: &history.Change{Kind: ch.Kind, Target: ch.Target, Text: text, Moderator: ch.Kind == protocol.ChangeDelete && op}})
}

// changeRefusal is the ERROR for a change the store refused, or nil.
func changeRefusal(res *broker.Result) *protocol.Error {
	ch := res.Request.Change
	if ch == nil || res.Err == nil {
		return nil
	}
	var e *protocol.Error
	room := res.Request.Room
	switch {
	case errors.Is(res.Err, history.ErrNoMessage):
		e = protocol.NewError(protocol.CodeNotFound, room, fmt.Sprintf("%s has no message %d (it may have been deleted)", room, ch.Target))
	case errors.Is(res.Err, history.ErrNotSender):
		e = protocol.NewError(protocol.CodeForbidden, room, fmt.Sprintf("message %d of %s is another name's: only its sender may %s it", ch.Target, room, ch.Kind))
	default:
		return nil
	}
	e.ID = res.Request.ID
	return e
}

// changed runs on the delivery goroutine for each change this node
// stored: an operator's delete of another name's message goes to the
// audit log like a MODERATE delete.
func (h *Hub) changed(res *broker.Result, remote string) {
	ch, entry := res.Request.Change, res.Msg.Change
	if !ch.Moderator || ch.Kind != protocol.ChangeDelete || entry == nil || entry.State == nil ||
		protocol.Key(entry.State.Sender) == protocol.Key(res.Request.Sender) {
		return
	}
	h.audit(moderation.Entry{Time: time.Now().UnixMilli(), Room: res.Msg.Room, Actor: res.Request.Sender, Addr: remote,
		Action: protocol.ModDelete.String(), Seq: ch.Target})
}

// modWait is the Tag of a moderator's delete (MODERATE delete): its
// Result comes back on it instead of as an ACK.
type modWait chan broker.Result

// moderatorDelete deletes message seq of room as a change by actor, an
// operator, and waits for the store's answer: every member, live or
// resuming, gets the UPDATE. The caller sends MODEVENT and MODERATED.
func (c *Conn) moderatorDelete(room, actor string, seq uint64) *protocol.Error {
	h := c.h
	if seq == 0 {
		return protocol.NewError(protocol.CodeNotFound, room, fmt.Sprintf("%s has no message %d", room, seq))
	}
	done := make(modWait, 1)
	p := &broker.Publication{Room: room, Sender: actor, ID: "moderate-" + randomID(), Tag: done, Received: time.Now(),
		Change: &history.Change{Kind: protocol.ChangeDelete, Target: seq, Moderator: true}}
	h.sendMu.RLock()
	err := ErrShuttingDown
	if !h.closing {
		h.pending.Add(1)
		if err = h.b.Publish(p); err != nil {
			h.pending.Add(-1)
		}
	}
	h.sendMu.RUnlock()
	if err != nil {
		return h.modUnavailable(room, err)
	}
	var res broker.Result
	select {
	case res = <-done:
	case <-c.ctx.Done():
		return nil // the connection ended: nobody to answer
	}
	switch {
	case errors.Is(res.Err, history.ErrNoMessage):
		return protocol.NewError(protocol.CodeNotFound, room, fmt.Sprintf("%s has no message %d (it may have been deleted)", room, seq))
	case res.Err != nil:
		return h.modUnavailable(room, res.Err)
	}
	return nil
}

// randomID is a fresh client id for a publication of the server's own.
func randomID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// replayFrames encodes a page of history read from the broker for a
// replay of (after, …]: messages as MESSAGE, change entries as UPDATE with
// the target's state only for the last change in the page of each target
// at or below after that no earlier page stated (stated records them). A
// target's changes more than a page apart thus carry the state on the
// last of the first page that has one: reads give every change entry the
// target's current state, so it is the final state all the same, once.
func replayFrames(msgs []protocol.Msg, after uint64, stated map[uint64]bool) [][]byte {
	frames := make([][]byte, len(msgs))
	for i := len(msgs) - 1; i >= 0; i-- {
		m := &msgs[i]
		if m.Change == nil {
			frames[i] = protocol.Encode(m)
			continue
		}
		var state *protocol.Msg
		if t := m.Change.Target; t <= after && !stated[t] {
			state = m.Change.State
			stated[t] = true
		}
		frames[i] = protocol.Encode(m.Update(state))
	}
	return frames
}

// typed notes that the member sent a message: its typing ended, and the
// next TYPING is forwarded whatever the time.
func (c *Conn) typed(mem *member) {
	c.mu.Lock()
	mem.typingAt, mem.typingOn = time.Time{}, false
	c.mu.Unlock()
}

// Typing forwards a TYPING to the room's other members on every node as
// IS-TYPING. It is dropped, silently (typing is ephemeral), for a room
// the connection is not in, when the
// connection forwarded a start in this room less than TypingEvery ago (a
// stop passes once after each forwarded start), in rooms above
// TypingMaxMembers, and from a muted name.
func (c *Conn) Typing(room string, stopped bool) *protocol.Error {
	h := c.h
	key := roomKey(room)
	mem := c.membership(key)
	if mem == nil {
		// Dropped, not refused: a client's typing may cross the kick or
		// ban that took it out of the room, and typing is worth no
		// closed connection.
		return nil
	}
	r := mem.room
	r.mu.Lock()
	big := r.count > h.cfg.TypingMaxMembers
	r.mu.Unlock()
	if big || (!c.operator.Load() && r.muted(mem.nameKey) != nil) {
		return nil
	}
	now := time.Now()
	c.mu.Lock()
	var ok bool
	if stopped {
		ok = mem.typingOn
	} else {
		ok = mem.typingAt.IsZero() || now.Sub(mem.typingAt) >= h.cfg.TypingEvery
		if ok {
			mem.typingAt = now
		}
	}
	if ok {
		mem.typingOn = !stopped
	}
	c.mu.Unlock()
	if !ok {
		return nil
	}
	frame := protocol.Encode(&protocol.IsTyping{Room: key, Name: mem.name, Stopped: stopped})
	if err := h.b.Notify(c.ctx, &broker.Note{Room: key, Frame: frame}); err != nil && c.ctx.Err() == nil {
		h.cfg.Logger.Warn("forwarding a typing indicator", "room", key, "err", err)
	}
	return nil
}

// isTypingNote reports whether n is a typing indicator for a room.
func isTypingNote(n *broker.Note) bool {
	return len(n.Names) == 0 && n.Room != "" && len(n.Frame) > protocol.LengthSize &&
		protocol.Type(n.Frame[protocol.LengthSize]) == protocol.TypeIsTyping
}

// typingNoted passes a typing indicator on to this node's members of its
// room, but those under the typist's name. It runs on the delivery
// goroutine.
func (h *Hub) typingNoted(n *broker.Note) {
	msg, err := protocol.Decode(n.Frame[protocol.LengthSize:])
	t, ok := msg.(*protocol.IsTyping)
	if err != nil || !ok {
		h.cfg.Logger.Warn("dropping a malformed typing note", "room", n.Room, "err", err)
		return
	}
	typist := protocol.Key(t.Name)
	h.mu.Lock()
	r := h.rooms[n.Room]
	h.mu.Unlock()
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	for mem := range r.members {
		if mem.nameKey != typist {
			mem.send(n.Frame, h.cfg.CatchUpBacklog)
		}
	}
}

// Search limits.
const (
	searchDefault = 20
	searchMax     = 50
)

// Search answers a SEARCH with RESULTS, found among the rooms this
// connection has joined and the identified name's direct-message rooms
// (or only q.Room, which must be one of them). One search of a
// connection runs at a time, off its reader: a second waits for the
// first (slowing the client down, as the frame rate limit does). A
// search the store cannot run is refused without closing the connection.
func (c *Conn) Search(q *protocol.Search) *protocol.Error {
	h := c.h
	scope := map[string]bool{}
	c.mu.Lock()
	for key, mem := range c.rooms {
		if mem.state == live || mem.state == replaying {
			scope[key] = true
		}
	}
	c.mu.Unlock()
	c.idMu.Lock()
	var name string
	if c.identity != nil {
		name = c.identity.key
	}
	c.idMu.Unlock()
	if name != "" {
		dms, err := h.cfg.Inbox.Direct(c.ctx, name, h.cfg.MaxDMs)
		switch {
		case c.ctx.Err() != nil:
			return nil
		case err != nil:
			h.cfg.Logger.Error("listing direct-message rooms for a search", "err", err)
			return &protocol.Error{Code: protocol.CodeUnavailable, Text: "the server cannot search right now; try again"}
		}
		for _, d := range dms {
			scope[d.Room] = true
		}
	}
	var room string
	if q.Room != "" {
		room = roomKey(q.Room)
		if !scope[room] {
			return protocol.NewError(protocol.CodeForbidden, room, "you can search only rooms you are in: join "+room+" first")
		}
		scope = map[string]bool{room: true}
	}
	// Refusals that depend on the request only are answered here, in
	// the order of the connection's frames (a client matches them to
	// its requests by that order); only the store's own failures come
	// later, from the search.
	if len(history.QueryWords(q.Query)) == 0 {
		return protocol.NewError(protocol.CodeInvalid, room, "the search has no word to look for")
	}
	rooms := make([]string, 0, len(scope))
	for k := range scope {
		rooms = append(rooms, k)
	}
	limit := searchDefault
	if q.Limit != 0 {
		limit = int(min(q.Limit, searchMax))
	}
	select {
	case c.searching <- struct{}{}:
	case <-c.ctx.Done():
		return nil
	}
	go func() {
		defer func() { <-c.searching }()
		var hits []protocol.Hit
		var more bool
		var err error
		if len(rooms) > 0 {
			ctx, cancel := context.WithTimeout(c.ctx, h.cfg.SearchTimeout)
			hits, more, err = h.b.Search(ctx, history.Query{Rooms: rooms, Text: q.Query, Before: q.Before, Limit: limit})
			cancel()
		}
		var e *protocol.Error
		switch {
		case c.ctx.Err() != nil:
			return
		case errors.Is(err, history.ErrBadQuery):
			e = protocol.NewError(protocol.CodeInvalid, room, "the search has no word to look for")
		case errors.Is(err, broker.ErrNoSearch):
			e = &protocol.Error{Code: protocol.CodeUnavailable, Room: room, Text: "this server cannot search messages"}
		case err != nil:
			h.cfg.Logger.Error("searching", "err", err)
			e = &protocol.Error{Code: protocol.CodeUnavailable, Room: room, Text: "the search failed; try again"}
		}
		if e != nil {
			c.m.Deliver(protocol.Encode(e))
			return
		}
		// The store was asked for these rooms only; a hit elsewhere
		// would be a store's bug, and must still not leak.
		kept, size := hits[:0], 0
		for _, hit := range hits {
			if !scope[hit.Room] {
				continue
			}
			// The hits that fit a PAGE's bytes (texts may be long on a server
			// with a raised -max-text); More says older ones exist.
			n := len(hit.Room) + len(hit.Sender) + len(hit.Text) + 4*10 + len(hit.Matches)*20
			if size+n > h.cfg.PageBytes && len(kept) > 0 {
				more = true
				break
			}
			size += n
			kept = append(kept, hit)
		}
		c.m.Deliver(protocol.Encode(&protocol.Results{Query: q.Query, More: more, Hits: kept}))
	}()
	return nil
}
