package hub

// What a name's devices share beyond the rooms they are in: identities
// (IDENTIFY), notices of direct messages and mentions, read markers,
// older history on demand and the room list.
//
// Notices and markers travel as broker Notes, so that they reach the
// devices of a name on every node. The node that stored a message sends
// its notices, once: direct-message notices as soon as the message is
// acknowledged, mentions once the mention worker has looked the names up
// and stored them. Neither ever waits in the delivery goroutine: Notes
// arrive in a list the delivery goroutine empties, and the mention
// worker has a bounded queue of its own.

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"

	"chat/protocol"
	"chat/server/internal/broker"
	"chat/server/internal/inbox"
	"chat/server/internal/moderation"
)

// roomKey returns the canonical name of a room: its key, and for a
// direct-message room in any spelling or order, "@a@b" with the two
// names' keys in order (protocol.DMRoom).
func roomKey(room string) string {
	k := protocol.Key(room)
	if strings.HasPrefix(k, protocol.DMPrefix) {
		if a, b, ok := protocol.ParseDM(k); ok {
			return protocol.DMRoom(a, b)
		}
	}
	return k
}

// directAccess checks a JOIN of the direct-message room key (canonical)
// under the name with key name: the name must be one of the room's two,
// and the JOIN must carry a name key (which the name check then holds
// against the name's owner). A hub without name owners has nobody to
// hold it against: it lets nobody in.
func (h *Hub) directAccess(key, name, secret string) *protocol.Error {
	a, b, ok := protocol.ParseDM(key)
	switch {
	case !ok:
		return protocol.NewError(protocol.CodeInvalidRoom, key, "the room name "+protocol.ErrDMForm.Error())
	case name != a && name != b:
		return protocol.NewError(protocol.CodeForbidden, key, "this is a direct-message room of two other names")
	case secret == "":
		return protocol.NewError(protocol.CodeForbidden, key, "a direct-message room needs the name key of its name")
	case h.cfg.Owners == nil:
		return protocol.NewError(protocol.CodeForbidden, key, "this server keeps no name owners, so it has no direct messages")
	}
	return nil
}

// readState is a name's read marker in a room and its mentions above it.
type readState struct {
	read, mentions uint64
	// mod is the room's moderation settings at the join, modRev their
	// revision (hub/moderation.go).
	mod    *moderation.State
	modRev uint64
}

// identity is what IDENTIFY made a connection: a device of a name.
// Until its IDENTIFIED is queued, notes for it are held, so that
// IDENTIFIED comes first.
type identity struct {
	key, name string
	ready     bool
	held      [][]byte
}

// testHookIdentifying, if set, runs in Identify once the connection's
// identity is set: tests close the connection there.
var testHookIdentifying func(c *Conn)

// maxHeld bounds the notes held for one identity while its IDENTIFIED is
// prepared (one store read).
const maxHeld = 1024

// Identified reports whether the connection has identified.
func (c *Conn) Identified() bool {
	c.idMu.Lock()
	defer c.idMu.Unlock()
	return c.identity != nil
}

// Identify makes the connection a device of id.Name, once; the caller has
// checked lengths, the name rules and the server key. It queues
// IDENTIFIED, or returns an ERROR to send.
func (c *Conn) Identify(id *protocol.Identify) *protocol.Error {
	c.inbox.Store(true)
	h := c.h
	switch {
	case c.Identified():
		return protocol.NewError(protocol.CodeUnexpected, "", "second IDENTIFY: a connection identifies once")
	case id.Secret == "":
		return protocol.NewError(protocol.CodeForbidden, "", "IDENTIFY needs the name key of the name")
	case h.cfg.Owners == nil:
		// Without owners anyone could be anyone's device.
		return protocol.NewError(protocol.CodeForbidden, "", "this server keeps no name owners: there is nothing to identify as")
	}
	ok, err := h.cfg.Owners.Claim(c.ctx, id.Name, id.Secret)
	switch {
	case c.ctx.Err() != nil:
		return nil
	case err != nil:
		h.cfg.Logger.Error("checking name ownership", "err", err)
		return protocol.NewError(protocol.CodeUnavailable, "", "the server cannot check names right now; try again")
	case !ok:
		return protocol.NewError(protocol.CodeNameOwned, "", fmt.Sprintf(
			"the name %q belongs to someone else on this server; if it is yours, use the name key from the device that claimed it", id.Name))
	}
	key := protocol.Key(id.Name)
	// Registered before the direct-message rooms are read: a message
	// stored meanwhile is in the list or in a held notice, never in
	// neither. The identity and the hub's table change together, under
	// c.idMu (then h.idMu: the only nesting of the two), so that a
	// forget (Close) finds both or neither.
	c.idMu.Lock()
	if c.identity != nil {
		c.idMu.Unlock()
		return protocol.NewError(protocol.CodeUnexpected, "", "second IDENTIFY: a connection identifies once")
	}
	c.identity = &identity{key: key, name: id.Name}
	h.idMu.Lock()
	conns := h.identified[key]
	if conns == nil {
		conns = map[*Conn]bool{}
		h.identified[key] = conns
	}
	conns[c] = true
	h.idMu.Unlock()
	c.idMu.Unlock()
	if testHookIdentifying != nil {
		testHookIdentifying(c)
	}
	if c.ctx.Err() != nil {
		c.forget() // Close ran before the registration: undo it
		return nil
	}

	dms, err := h.cfg.Inbox.Direct(c.ctx, key, h.cfg.MaxDMs)
	if err != nil {
		c.forget()
		if c.ctx.Err() != nil {
			return nil
		}
		h.cfg.Logger.Error("listing direct-message rooms", "err", err)
		return protocol.NewError(protocol.CodeUnavailable, "", "the server cannot read your direct messages right now; try again")
	}
	c.idMu.Lock()
	defer c.idMu.Unlock()
	if c.identity == nil {
		return nil // closed meanwhile
	}
	c.m.Deliver(protocol.Encode(&protocol.Identified{Name: id.Name, DMs: dms}))
	for _, f := range c.identity.held {
		c.m.Deliver(f)
	}
	c.identity.held, c.identity.ready = nil, true
	return nil
}

// forget takes the connection's identity out of the hub's registry. It
// holds c.idMu and h.idMu one after the other, never both.
func (c *Conn) forget() {
	c.idMu.Lock()
	id := c.identity
	c.identity = nil
	c.idMu.Unlock()
	if id == nil {
		return
	}
	h := c.h
	h.idMu.Lock()
	defer h.idMu.Unlock()
	if conns := h.identified[id.key]; conns != nil {
		delete(conns, c)
		if len(conns) == 0 {
			delete(h.identified, id.key)
		}
	}
}

// note queues a frame for the connection's identity.
func (c *Conn) note(frame []byte) {
	c.idMu.Lock()
	defer c.idMu.Unlock()
	id := c.identity
	switch {
	case id == nil:
	case id.ready:
		c.m.Deliver(frame)
	case len(id.held) < maxHeld:
		id.held = append(id.held, frame)
	default:
		c.m.Fail(protocol.NewError(protocol.CodeSlowConsumer, "", "too many notices while identifying; reconnect"))
	}
}

// Noted never blocks, like PresenceChanged: notes go to the list the
// delivery goroutine empties, at most NoteQueue of them besides
// moderation's, which are never dropped (a lost kick or ban would leave
// its target in the room; they come at an operator's pace).
func (hd handler) Noted(n *broker.Note) {
	h := hd.h
	h.noticeMu.Lock()
	if h.notes >= h.cfg.NoteQueue && !isModNote(n) {
		h.noticeMu.Unlock()
		h.cfg.Logger.Error("notes waiting for delivery are over the limit: one dropped", "limit", h.cfg.NoteQueue, "room", n.Room)
		return
	}
	h.notes++
	h.notices = append(h.notices, delivery{note: n})
	h.noticeMu.Unlock()
	select {
	case h.noticeWake <- struct{}{}:
	default:
	}
}

// noted delivers a note to this node's connections: those identified as
// one of its names, and those in its room under one of them that have
// sent an inbox request (spec section 9: a client of before the inbox
// would take MARKER for a broken server), each once. It runs on the
// delivery goroutine.
func (h *Hub) noted(n *broker.Note) {
	if isModNote(n) {
		h.modNoted(n)
		return
	}
	if isTypingNote(n) {
		h.typingNoted(n)
		return
	}
	sent := map[*Conn]bool{}
	h.idMu.Lock()
	for _, name := range n.Names {
		for c := range h.identified[name] {
			sent[c] = true
		}
	}
	h.idMu.Unlock()
	for c := range sent {
		c.note(n.Frame)
	}
	if n.Room == "" {
		return
	}
	h.mu.Lock()
	r := h.rooms[n.Room]
	h.mu.Unlock()
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for mem := range r.members {
		if !sent[mem.conn] && mem.conn.inbox.Load() && slices.Contains(n.Names, mem.nameKey) {
			sent[mem.conn] = true
			// In order with the room's messages, and before any LEFT:
			// members leave the room under r.mu before LEFT is queued.
			mem.send(n.Frame, h.cfg.CatchUpBacklog)
		}
	}
}

// stored runs on the delivery goroutine for each new message this node
// stored: a direct message is noticed to both names at once; a message
// that may mention someone goes to the mention worker.
func (h *Hub) stored(m *protocol.Msg) {
	if inbox.IsDirect(m.Room) {
		a, b, ok := protocol.ParseDM(m.Room)
		if !ok {
			return
		}
		names := []string{a, b}
		if a == b {
			names = names[:1]
		}
		h.notify(&broker.Note{Names: names, Frame: protocol.Encode(&protocol.Notice{Kind: protocol.NoticeDirect, Msg: *m})})
		return
	}
	if h.cfg.Owners == nil || !strings.Contains(m.Text, "@") {
		return
	}
	select {
	case h.mentions <- *m:
	default:
		h.cfg.Logger.Error("mentions waiting to be stored are over the limit: a message's mentions dropped",
			"limit", h.cfg.MentionQueue, "room", m.Room, "seq", m.Seq)
	}
}

func (h *Hub) notify(n *broker.Note) {
	if err := h.b.Notify(context.Background(), n); err != nil {
		h.cfg.Logger.Error("sending a notice", "err", err)
	}
}

// mentionWorker finds the claimed names a message mentions (not its
// sender's), stores the mentions and notices them to the names' devices.
func (h *Hub) mentionWorker() {
	defer close(h.mentionsDone)
	ctx := context.Background()
	for m := range h.mentions {
		sender := protocol.Key(m.Sender)
		keys := slices.DeleteFunc(protocol.MentionedKeys(m.Text, h.cfg.MaxName), func(k string) bool { return k == sender })
		if len(keys) == 0 {
			continue
		}
		names, err := h.cfg.Owners.Claimed(ctx, keys)
		if err == nil && len(names) > 0 {
			err = h.cfg.Inbox.Mention(ctx, m.Room, m.Seq, names)
		}
		if err != nil {
			h.cfg.Logger.Error("storing mentions", "room", m.Room, "seq", m.Seq, "err", err)
			continue
		}
		if len(names) > 0 {
			h.notify(&broker.Note{Names: names, Frame: protocol.Encode(&protocol.Notice{Kind: protocol.NoticeMention, Msg: m})})
		}
	}
}

// Read moves the read marker of the name the connection joined room
// under, and tells the name's devices when it moved.
func (c *Conn) Read(room string, seq uint64) *protocol.Error {
	c.inbox.Store(true)
	key := roomKey(room)
	mem := c.membership(key)
	if mem == nil {
		return protocol.NewError(protocol.CodeUnexpected, key, "READ for "+key+", which this connection has not joined")
	}
	if mem.secretHash == "" {
		return protocol.NewError(protocol.CodeForbidden, key, "read markers are kept for names with a name key; this JOIN had none")
	}
	r := mem.room
	r.mu.Lock()
	head := r.delivered
	r.mu.Unlock()
	seq = min(seq, head)
	// One READ of a name at a time (per stripe): MARKERs go out in the
	// order the marker moved, so no device sees it go back.
	mu := &c.h.readMu[stripe(mem.nameKey)]
	mu.Lock()
	defer mu.Unlock()
	moved, err := c.h.cfg.Inbox.Advance(mem.ctx, mem.nameKey, key, seq)
	switch {
	case err == nil && moved:
		// Also when the membership ended meanwhile: the marker moved,
		// and the name's other devices must hear of it.
		c.h.notify(&broker.Note{Names: []string{mem.nameKey}, Room: key, Frame: protocol.Encode(&protocol.Marker{Room: key, Seq: seq})})
	case err == nil, mem.ctx.Err() != nil:
	default:
		c.h.cfg.Logger.Error("storing a read marker", "room", key, "err", err)
		return protocol.NewError(protocol.CodeUnavailable, key, "the read marker could not be stored; reconnect and try again")
	}
	return nil
}

// readStripes is how many locks order READs.
const readStripes = 64

// stripe picks the lock of readMu for a name key.
func stripe(name string) int {
	h := fnv.New32a()
	h.Write([]byte(name))
	return int(h.Sum32() % readStripes)
}

// maxChangeRun is the longest read of older history when the reads
// before it held change entries only.
const maxChangeRun = 4096

// History answers a HISTORY with a PAGE of the room's older messages,
// read from the broker by index.
func (c *Conn) History(q *protocol.History) *protocol.Error {
	c.inbox.Store(true)
	h := c.h
	key := roomKey(q.Room)
	mem := c.membership(key)
	if mem == nil {
		return protocol.NewError(protocol.CodeUnexpected, key, "HISTORY for "+key+", which this connection has not joined")
	}
	r := mem.room
	r.mu.Lock()
	below := r.delivered + 1 // nothing the live stream has not reached yet
	r.mu.Unlock()
	if q.Before != 0 {
		below = min(below, q.Before)
	}
	want := h.cfg.PageDefault
	if q.Limit != 0 {
		want = int(min(q.Limit, uint64(h.cfg.PageMax)))
	}
	want = min(want, h.cfg.PageMax)
	// Change entries are not in pages (a page holds messages, in their
	// state now): reads go on further back while they return changes
	// only, so that a PAGE without First holds a message to page on from
	// (spec section 9). Each read is one index range, twice as long as
	// the one before (up to maxChangeRun), so a long run of changes (a
	// member toggling a reaction at the frame rate) costs a few reads,
	// not one per page; the connection's end stops them.
	var msgs []protocol.Msg
	asked := want
	for {
		got, err := h.b.Before(mem.ctx, key, below, asked)
		switch {
		case mem.ctx.Err() != nil:
			return nil
		case err != nil:
			h.cfg.Logger.Error("reading older history", "room", key, "err", err)
			return protocol.NewError(protocol.CodeUnavailable, key, "history could not be read; reconnect and try again")
		}
		msgs = got
		if len(got) < asked || slices.ContainsFunc(got, func(m protocol.Msg) bool { return m.Change == nil }) {
			break
		}
		below = got[0].Seq
		asked = min(2*asked, max(want, maxChangeRun))
	}
	reachedStart := len(msgs) < asked
	// A longer read may hold more messages than asked for: the newest
	// want of them.
	for n, i := 0, len(msgs)-1; i >= 0; i-- {
		if msgs[i].Change == nil {
			if n++; n > want {
				msgs, reachedStart = msgs[i+1:], false
				break
			}
		}
	}
	// The newest that fit the page's bytes.
	cut, size := len(msgs), 0
	for cut > 0 {
		m := &msgs[cut-1]
		n := 0
		if m.Change == nil {
			n = 3*10 + len(m.Sender) + len(m.ID) + len(m.Text) + 3*5 // varints and length prefixes, at most
			if f := m.File; f != nil && q.Files {
				n += len(f.ID) + len(f.Name) + len(f.Type) + len(f.Thumb) + 10*7
			}
			if q.Full || q.Files {
				n += 3 * 10
				for _, x := range m.Reactions {
					n += 2*10 + len(x.Emoji)
					for _, name := range x.Names {
						n += 5 + len(name)
					}
				}
			}
		}
		if size+n > h.cfg.PageBytes {
			break
		}
		size += n
		cut--
	}
	kept := msgs[cut:]
	first := reachedStart && cut == 0 // nothing older exists
	if len(kept) > 0 && kept[0].Seq <= 1 {
		first = true
	}
	if !first && len(kept) > 0 {
		// The oldest message retention keeps is as far back as it goes.
		floor, err := h.b.Floor(mem.ctx, key)
		switch {
		case mem.ctx.Err() != nil:
			return nil
		case err != nil:
			h.cfg.Logger.Error("reading the room's oldest kept message", "room", key, "err", err)
			return protocol.NewError(protocol.CodeUnavailable, key, "history could not be read; reconnect and try again")
		}
		first = kept[0].Seq <= floor+1
	}
	if len(msgs) > 0 && len(kept) == 0 {
		// One message bigger than a page cannot be: texts are bounded
		// far below it. Say so rather than loop a client forever.
		h.cfg.Logger.Error("a message does not fit a page", "room", key, "seq", msgs[len(msgs)-1].Seq)
		return protocol.NewError(protocol.CodeUnavailable, key, "history could not be read")
	}
	page := make([]protocol.Msg, 0, len(kept))
	for _, m := range kept {
		if m.Change == nil {
			page = append(page, m)
		}
	}
	frame := protocol.Encode(&protocol.Page{Room: key, Before: q.Before, First: first, Full: q.Full, Files: q.Files, Messages: page})
	// Replay, not Deliver: paced to the client's reading, and never after
	// the room's LEFT.
	_ = c.m.Replay(mem.ctx, [][]byte{frame})
	return nil
}

// List answers LIST with ROOMS: rooms that are not direct-message rooms,
// whose key contains the query's, with members or messages; most members
// first, then the most recently active.
func (c *Conn) List(query string) *protocol.Error {
	c.inbox.Store(true)
	h := c.h
	match := protocol.Key(query)
	if len(match) > h.cfg.MaxRoom {
		// Longer than any room name (direct-message rooms, which may be
		// longer, are never listed): nothing to look for.
		c.m.Deliver(protocol.Encode(&protocol.Rooms{Query: query}))
		return nil
	}
	keep := func(room string) bool { return !inbox.IsDirect(room) && strings.Contains(room, match) }
	limit := h.cfg.MaxRoomList
	present, err := h.b.PresenceRooms(c.ctx, keep, limit)
	var active []protocol.RoomInfo
	if err == nil {
		active, err = h.cfg.Inbox.Active(c.ctx, match, limit)
	}
	rooms := map[string]*protocol.RoomInfo{}
	for i := range active {
		rooms[active[i].Room] = &active[i]
	}
	var missing []string // present rooms whose activity is still to be read
	for _, p := range present {
		if rooms[p.Room] == nil {
			missing = append(missing, p.Room)
		}
	}
	var heads []protocol.RoomInfo
	if err == nil {
		heads, err = h.cfg.Inbox.Heads(c.ctx, missing)
	}
	switch {
	case c.ctx.Err() != nil:
		return nil
	case err != nil:
		h.cfg.Logger.Error("listing rooms", "err", err)
		return protocol.NewError(protocol.CodeUnavailable, "", "the room list cannot be read right now; try again")
	}
	for i := range heads {
		rooms[heads[i].Room] = &heads[i]
	}
	for _, p := range present {
		info := rooms[p.Room]
		if info == nil {
			info = &protocol.RoomInfo{Room: p.Room}
			rooms[p.Room] = info
		}
		info.Members = uint64(p.Count)
	}
	out := make([]protocol.RoomInfo, 0, len(rooms))
	for _, info := range rooms {
		out = append(out, *info)
	}
	slices.SortFunc(out, func(a, b protocol.RoomInfo) int {
		if c := cmp.Compare(b.Members, a.Members); c != 0 {
			return c
		}
		if c := cmp.Compare(b.Time, a.Time); c != 0 {
			return c
		}
		return strings.Compare(a.Room, b.Room)
	})
	c.m.Deliver(protocol.Encode(&protocol.Rooms{Query: query, Rooms: out[:min(len(out), limit)]}))
	return nil
}
