package hub

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"chat/protocol"
	"chat/server/internal/broker"
	"chat/server/internal/inbox"
	"chat/server/internal/moderation"
)

// Moderation (protocol README.md section 4, "Moderation"). The rooms'
// settings live in Config.Moderation, read whole at every JOIN and cached
// per room for the mute check of SEND. Whatever must reach every node —
// the MODEVENT for the room's members, the removal of kicked and banned
// members — goes as a note
// through the broker (modNote), which every node's hub, this one's
// included, acts on in noted.
//
// Two kinds of note are moderation's, told apart by the type of their
// frame and their empty Names (a note for names always has some):
//
//   - a MODEVENT frame: deliver it to the room's local members, then act
//     on it (remove the targets, reload the room's settings; a deleted
//     message's text leaves the ring with the delete's UPDATE);
//   - an ERROR banned frame: addresses were banned in the room (by the
//     node where the target of a ban-address is connected, the only one
//     that knows its addresses): remove the local members connected from
//     a banned address, with that frame.

// actorOperator is the actor of a server operator not in the room.
const actorOperator = "operator"

// maxModSeconds caps a MODERATE's seconds (about 100 years), so that the
// end of a ban cannot overflow.
const maxModSeconds = 100 * 365 * 24 * 3600

// isModNote reports whether n is one of moderation's notes.
func isModNote(n *broker.Note) bool {
	if len(n.Names) != 0 || n.Room == "" || len(n.Frame) <= protocol.LengthSize {
		return false
	}
	t := protocol.Type(n.Frame[protocol.LengthSize])
	return t == protocol.TypeModEvent || t == protocol.TypeError
}

// admit runs the moderation checks of a JOIN (spec section 4, step 2:
// bans, then invite-only) and makes the first proven name of a room
// without operators its operator. It returns the room's settings for
// JOINED.
func (h *Hub) admit(mem *member, j *protocol.Join) (*moderation.State, uint64, *protocol.Error) {
	c, key := mem.conn, mem.roomKey
	store := h.cfg.Moderation
	st, rev, err := store.Load(mem.ctx, key)
	if err != nil {
		if mem.ctx.Err() == nil {
			h.cfg.Logger.Error("reading a room's moderation", "room", key, "err", err)
		}
		return nil, 0, protocol.NewError(protocol.CodeUnavailable, key, "the server cannot check the room's bans right now; try again")
	}
	now := time.Now()
	allow := false
	if !c.operator.Load() {
		if b := st.NameBan(mem.nameKey, now); b != nil {
			return nil, 0, protocol.NewError(protocol.CodeBanned, key,
				fmt.Sprintf("%s is banned from %s %s", j.Name, key, banTerms(b.Until, b.Reason)))
		}
		if b := st.AddrBan(c.addr, now); b != nil {
			return nil, 0, protocol.NewError(protocol.CodeBanned, key,
				fmt.Sprintf("connections from your address are banned from %s %s", key, banTerms(b.Until, b.Reason)))
		}
		if st.InviteOnly && !st.IsAllowed(mem.nameKey) {
			if !st.ValidInvite(j.Invite, now) {
				text := key + " is invite-only: ask one of its operators for an invite code"
				if j.Invite != "" {
					text = "the invite code is unknown or expired; " + text
				}
				return nil, 0, protocol.NewError(protocol.CodeInviteOnly, key, text)
			}
			// A proven name that came with a valid code stays allowed.
			allow = j.Secret != ""
		}
	}
	creator := j.Secret != "" && len(st.Ops) == 0 && !inbox.IsDirect(key)
	if !allow && !creator {
		return st, rev, nil
	}
	st, rev, err = moderation.Update(mem.ctx, store, key, func(st *moderation.State) (bool, error) {
		changed := allow && st.Allow(mem.nameKey, h.cfg.ModLimits)
		if creator && len(st.Ops) == 0 {
			if ok, _ := st.AddOp(mem.nameKey, h.cfg.ModLimits); ok {
				changed = true
			}
		}
		return changed, nil
	})
	if err != nil {
		if mem.ctx.Err() == nil {
			h.cfg.Logger.Error("saving a room's moderation", "room", key, "err", err)
		}
		return nil, 0, protocol.NewError(protocol.CodeUnavailable, key, "the server cannot store the room's settings right now; try again")
	}
	if creator && st.IsOp(mem.nameKey) && len(st.Ops) == 1 {
		h.cfg.Logger.Info("room operator", "room", key, "name", mem.nameKey, "why", "first proven name in a room without operators")
	}
	return st, rev, nil
}

// modes are JOINED's mode bits for a member. Operator rights count only
// for a JOIN with a secret, as they are checked (spec section 4); a
// server operator may moderate every room.
func modes(st *moderation.State, mem *member, now time.Time) protocol.JoinedModes {
	var m protocol.JoinedModes
	if st == nil {
		return 0
	}
	if st.InviteOnly {
		m |= protocol.ModeInviteOnly
	}
	if (mem.secretHash != "" && st.IsOp(mem.nameKey)) || mem.conn.operator.Load() {
		m |= protocol.ModeOperator
	}
	if !mem.conn.operator.Load() && st.MuteOf(mem.nameKey, now) != nil {
		m |= protocol.ModeMuted
	}
	return m
}

// setMod caches a room's settings unless newer ones are cached already.
// Called with r.mu held.
func (r *room) setMod(st *moderation.State, rev uint64) {
	if st != nil && (r.mod == nil || rev >= r.modRev) {
		r.mod, r.modRev = st, rev
	}
}

// muted returns the refusal of a SEND of name in the room, if it is muted.
func (r *room) muted(name string) *protocol.Error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mod == nil {
		return nil
	}
	if m := r.mod.MuteOf(name, time.Now()); m != nil {
		until := "until an operator unmutes you"
		if m.Until != 0 {
			until = "until " + fmtTime(m.Until)
		}
		return protocol.NewError(protocol.CodeMuted, r.name, "you are muted in "+r.name+" "+until+"; the message was not sent")
	}
	return nil
}

func fmtTime(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04 UTC") }

// banTerms says until when and why, for an ERROR banned.
func banTerms(until int64, reason string) string {
	s := "for good"
	if until != 0 {
		s = "until " + fmtTime(until)
	}
	if reason != "" {
		s += " (" + reason + ")"
	}
	return s
}

// Moderate carries out a MODERATE (spec section 4, "Moderation"). The
// session has checked the lengths.
func (c *Conn) Moderate(m *protocol.Moderate) *protocol.Error {
	h := c.h
	if m.Action == protocol.ModOper {
		return c.oper(m.Text)
	}
	if !m.Action.Known() {
		return protocol.NewError(protocol.CodeNotFound, "", fmt.Sprintf("this server knows no moderation action %d", m.Action))
	}
	if err := protocol.CheckRoom(m.Room); err != nil {
		return protocol.NewError(protocol.CodeInvalidRoom, m.Room, "the room name "+err.Error())
	}
	key := roomKey(m.Room)
	mem := c.membership(key)
	actor := actorOperator
	if mem != nil {
		actor = mem.name
	}
	ctx := c.ctx
	store := h.cfg.Moderation
	if !c.operator.Load() {
		switch {
		case mem == nil:
			return protocol.NewError(protocol.CodeForbidden, key, "you are not in "+key)
		case mem.secretHash == "":
			return protocol.NewError(protocol.CodeForbidden, key, "operator rights need a proven name: join "+key+" with your name key")
		}
		st, _, err := store.Load(ctx, key)
		if err != nil {
			return h.modUnavailable(key, err)
		}
		if !st.IsOp(mem.nameKey) {
			return protocol.NewError(protocol.CodeForbidden, key, "you are not an operator of "+key)
		}
	}
	now := time.Now()
	seconds := min(m.Seconds, maxModSeconds)
	var until int64
	if seconds != 0 {
		until = now.Add(time.Duration(seconds) * time.Second).UnixMilli()
	}
	target := m.Target
	var targetKey string
	switch m.Action {
	case protocol.ModOp, protocol.ModDeop, protocol.ModKick, protocol.ModBan, protocol.ModBanAddress, protocol.ModMute, protocol.ModUnmute:
		if err := protocol.CheckMemberName(target); err != nil {
			return protocol.NewError(protocol.CodeInvalidName, key, "the name "+err.Error())
		}
		targetKey = protocol.Key(target)
		target = targetKey
	}
	ev := &protocol.ModEvent{Room: key, Action: m.Action, Actor: actor, Target: target}
	answer := &protocol.Moderated{Room: key, Action: m.Action, Target: target}
	entry := moderation.Entry{Time: now.UnixMilli(), Room: key, Actor: actor, Addr: c.remote,
		Action: m.Action.String(), Target: target}
	update := func(change func(*moderation.State) (bool, error)) *protocol.Error {
		_, _, err := moderation.Update(ctx, store, key, change)
		switch {
		case errors.Is(err, moderation.ErrFull):
			return protocol.NewError(protocol.CodeForbidden, key, "the room's list is full; remove some entries first")
		case errors.Is(err, errNotFound):
			return protocol.NewError(protocol.CodeNotFound, key, notFoundText(m.Action, m.Target, key))
		case err != nil:
			return h.modUnavailable(key, err)
		}
		return nil
	}
	switch m.Action {
	case protocol.ModOp:
		if e := update(func(st *moderation.State) (bool, error) { return st.AddOp(targetKey, h.cfg.ModLimits) }); e != nil {
			return e
		}
	case protocol.ModDeop:
		if e := update(func(st *moderation.State) (bool, error) {
			if !st.RemoveOp(targetKey) {
				return false, errNotFound
			}
			return true, nil
		}); e != nil {
			return e
		}
	case protocol.ModKick, protocol.ModBanAddress:
		present, err := h.present(ctx, key, targetKey)
		if err != nil {
			return h.modUnavailable(key, err)
		}
		if !present {
			return protocol.NewError(protocol.CodeNotFound, key, notFoundText(m.Action, m.Target, key))
		}
		ev.Text = m.Text
		if m.Action == protocol.ModBanAddress {
			ev.Until, ev.Text = uint64(until), ""
			entry.Until = until
		} else {
			entry.Detail = m.Text
		}
	case protocol.ModBan:
		if e := update(func(st *moderation.State) (bool, error) {
			return true, st.AddBan(moderation.Ban{Name: targetKey, Until: until, By: actor, Reason: m.Text}, now, h.cfg.ModLimits)
		}); e != nil {
			return e
		}
		ev.Until, ev.Text = uint64(until), m.Text
		entry.Until, entry.Detail = until, m.Text
	case protocol.ModUnban:
		addr, err := netip.ParseAddr(m.Target)
		name := ""
		if err != nil {
			if e := protocol.CheckMemberName(m.Target); e != nil {
				return protocol.NewError(protocol.CodeNotFound, key, m.Target+" is neither a name nor an address")
			}
			name = protocol.Key(m.Target)
			answer.Target, ev.Target, entry.Target = name, name, name
		} else {
			// The operator typed the address: it is not secret from them,
			// but a MODEVENT never carries one.
			ev.Target = ""
		}
		if e := update(func(st *moderation.State) (bool, error) {
			if !st.Unban(name, addr) {
				return false, errNotFound
			}
			return true, nil
		}); e != nil {
			return e
		}
	case protocol.ModMute:
		if e := update(func(st *moderation.State) (bool, error) {
			return true, st.AddMute(targetKey, until, now, h.cfg.ModLimits)
		}); e != nil {
			return e
		}
		ev.Until = uint64(until)
		entry.Until = until
	case protocol.ModUnmute:
		if e := update(func(st *moderation.State) (bool, error) {
			if !st.Unmute(targetKey, now) {
				return false, errNotFound
			}
			return true, nil
		}); e != nil {
			return e
		}
	case protocol.ModDelete:
		// A change of the room's history like the sender's own delete
		// (changes.go): the text is gone from the store, every member
		// gets the UPDATE and resumers the final state.
		if e := c.moderatorDelete(key, actor, m.Seq); e != nil {
			return e
		}
		if c.ctx.Err() != nil {
			return nil
		}
		ev.Target, ev.Seq = "", m.Seq
		answer.Target = ""
		entry.Target, entry.Seq = "", m.Seq
	case protocol.ModTopic:
		if e := update(func(st *moderation.State) (bool, error) {
			st.Topic = m.Text
			return true, nil
		}); e != nil {
			return e
		}
		ev.Target, ev.Text = "", m.Text
		entry.Target, entry.Detail = "", m.Text
	case protocol.ModInviteOnlyOn:
		// The names in the room now stay allowed: those claimed (a name
		// without a key could be anyone's the next time).
		names, _, err := h.b.PresenceList(ctx, key, h.cfg.ModLimits.WithDefaults().MaxAllowed)
		if err != nil {
			return h.modUnavailable(key, err)
		}
		keys := make([]string, len(names))
		for i, n := range names {
			keys[i] = protocol.Key(n)
		}
		if o := h.cfg.Owners; o != nil {
			if keys, err = o.Claimed(ctx, keys); err != nil {
				return h.modUnavailable(key, err)
			}
		} else {
			keys = nil
		}
		if e := update(func(st *moderation.State) (bool, error) {
			st.InviteOnly = true
			for _, k := range keys {
				st.Allow(k, h.cfg.ModLimits)
			}
			return true, nil
		}); e != nil {
			return e
		}
		ev.Target = ""
	case protocol.ModInviteOnlyOff:
		if e := update(func(st *moderation.State) (bool, error) {
			st.InviteOnly = false
			return true, nil
		}); e != nil {
			return e
		}
		ev.Target = ""
	case protocol.ModInvite:
		ttl := h.cfg.InviteTTL
		if seconds != 0 {
			ttl = time.Duration(seconds) * time.Second
		}
		code := inviteCode()
		expires := now.Add(ttl).UnixMilli()
		if e := update(func(st *moderation.State) (bool, error) {
			st.AddInvite(moderation.Invite{Code: code, Until: expires, By: actor}, now, h.cfg.ModLimits)
			return true, nil
		}); e != nil {
			return e
		}
		answer.Target, answer.Text = "", code
		entry.Target, entry.Until = "", expires
		ev = nil // only the operator learns of an invite
	}
	h.audit(entry)
	if ev != nil {
		// Stored already; without the note no node acts on it, so the
		// operator is told to try again (the actions are idempotent).
		if err := h.b.Notify(c.ctx, &broker.Note{Room: key, Frame: protocol.Encode(ev)}); err != nil {
			return h.modUnavailable(key, err)
		}
	}
	c.m.Deliver(protocol.Encode(answer))
	return nil
}

var errNotFound = errors.New("hub: moderation target not found")

func notFoundText(a protocol.ModAction, target, room string) string {
	switch a {
	case protocol.ModKick, protocol.ModBanAddress:
		return target + " is not in " + room
	case protocol.ModDeop:
		return target + " is not an operator of " + room
	case protocol.ModUnban:
		return target + " is not banned from " + room
	case protocol.ModUnmute:
		return target + " is not muted in " + room
	}
	return "not found"
}

func (h *Hub) modUnavailable(room string, err error) *protocol.Error {
	h.cfg.Logger.Error("moderation store", "room", room, "err", err)
	return protocol.NewError(protocol.CodeUnavailable, room, "the server cannot store moderation right now; try again")
}

// oper makes the connection a server operator if token is the server's.
func (c *Conn) oper(token string) *protocol.Error {
	h := c.h
	if h.cfg.OperatorToken == "" {
		return protocol.NewError(protocol.CodeForbidden, "", "this server has no operator token: nobody can become its operator")
	}
	// Hashes make the comparison constant-time whatever the lengths.
	got, want := sha256.Sum256([]byte(token)), sha256.Sum256([]byte(h.cfg.OperatorToken))
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		h.cfg.Logger.Warn("wrong operator token", "remote", c.remote)
		return protocol.NewError(protocol.CodeForbidden, "", "wrong operator token")
	}
	c.operator.Store(true)
	h.audit(moderation.Entry{Time: time.Now().UnixMilli(), Actor: actorOperator, Addr: c.remote, Action: protocol.ModOper.String()})
	c.m.Deliver(protocol.Encode(&protocol.Moderated{Action: protocol.ModOper}))
	return nil
}

// audit records an action in the store's audit log and the server log.
func (h *Hub) audit(e moderation.Entry) {
	h.cfg.Logger.Info("moderation", "room", e.Room, "actor", e.Actor, "remote", e.Addr, "action", e.Action,
		"target", e.Target, "seq", e.Seq, "until", e.Until, "detail", e.Detail)
	if err := h.cfg.Moderation.Audit(context.Background(), e); err != nil {
		h.cfg.Logger.Error("writing the audit log", "err", err)
	}
}

// present reports whether a name is in the room, through any node.
func (h *Hub) present(ctx context.Context, room, name string) (bool, error) {
	names, _, err := h.b.PresenceList(ctx, room, maxPresenceScan)
	if err != nil {
		return false, err
	}
	for _, n := range names {
		if protocol.Key(n) == name {
			return true, nil
		}
	}
	return false, nil
}

// maxPresenceScan bounds the names read to find a target in a room.
const maxPresenceScan = 100000

// inviteCode is a fresh random invite code: 12 characters, 72 bits.
func inviteCode() string {
	b := make([]byte, 9)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// bannedSinceAdmitted reads room r's moderation again for mem, which
// just entered it: a moderation note acted on between admit's read and
// mem being among r's members could not find mem. It applies the
// settings (a mute) and removes mem, reporting true, if a ban now
// refuses it.
func (h *Hub) bannedSinceAdmitted(r *room, mem *member) bool {
	st, rev, err := h.cfg.Moderation.Load(mem.ctx, r.name)
	if err != nil {
		return false // the note's own walk or the next JOIN's check acts
	}
	r.mu.Lock()
	r.setMod(st, rev)
	r.mu.Unlock()
	if mem.conn.operator.Load() {
		return false
	}
	now := time.Now()
	b := st.NameBan(mem.nameKey, now)
	if b == nil {
		b = st.AddrBan(mem.conn.addr, now)
	}
	if b == nil {
		return false
	}
	e := protocol.NewError(protocol.CodeBanned, r.name, "you are banned from "+r.name+" "+banTerms(b.Until, b.Reason))
	mem.conn.removeFrom(mem, protocol.Encode(e))
	return true
}

// modNoteWait bounds the store read of a moderation note on the
// delivery goroutine, which every ACK and fan-out of the node waits for.
const modNoteWait = 2 * time.Second

// modNoted acts on one of moderation's notes; it runs on the delivery
// goroutine.
func (h *Hub) modNoted(n *broker.Note) {
	h.modNotes.Add(1)
	h.mu.Lock()
	r := h.rooms[n.Room]
	h.mu.Unlock()
	if r == nil {
		return // nobody here is in the room
	}
	// The settings changed: reload them for the mute check and JOINED.
	ctx, cancel := context.WithTimeout(context.Background(), modNoteWait)
	st, rev, err := h.cfg.Moderation.Load(ctx, n.Room)
	cancel()
	if err != nil {
		h.cfg.Logger.Error("reloading a room's moderation", "room", n.Room, "err", err)
		st = nil
	}
	if protocol.Type(n.Frame[protocol.LengthSize]) == protocol.TypeError {
		h.cutBannedAddresses(r, st, rev, n.Frame)
		return
	}
	msg, err := protocol.Decode(n.Frame[protocol.LengthSize:])
	ev, ok := msg.(*protocol.ModEvent)
	if err != nil || !ok {
		h.cfg.Logger.Warn("dropping a malformed moderation note", "room", n.Room, "err", err)
		return
	}
	var cut []*member
	var nets []netip.Prefix
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.setMod(st, rev)
	r.flushPresence() // keep presence and events in the order they happened
	for mem := range r.members {
		mem.send(n.Frame, h.cfg.CatchUpBacklog)
		switch ev.Action {
		case protocol.ModKick, protocol.ModBan, protocol.ModBanAddress:
			if mem.nameKey == ev.Target && !mem.conn.operator.Load() {
				cut = append(cut, mem)
				if a := mem.conn.addr; a.IsValid() && ev.Action == protocol.ModBanAddress {
					nets = append(nets, moderation.Network(a))
				}
			}
		}
	}
	r.mu.Unlock()
	switch ev.Action {
	case protocol.ModKick:
		e := protocol.NewError(protocol.CodeKicked, r.name, "you were removed from "+r.name+" by "+ev.Actor+reasonText(ev.Text)+"; you may join again")
		for _, mem := range cut {
			mem.conn.removeFrom(mem, protocol.Encode(e))
		}
	case protocol.ModBan:
		e := protocol.NewError(protocol.CodeBanned, r.name, "you are banned from "+r.name+" by "+ev.Actor+" "+banTerms(int64(ev.Until), ev.Text))
		for _, mem := range cut {
			mem.conn.removeFrom(mem, protocol.Encode(e))
		}
	case protocol.ModBanAddress:
		// The target is out at once, whatever becomes of its addresses'
		// ban (none known, or the store refusing it).
		e := protocol.NewError(protocol.CodeBanned, r.name, "you are banned from "+r.name+" by "+ev.Actor+" "+banTerms(int64(ev.Until), ""))
		for _, mem := range cut {
			mem.conn.removeFrom(mem, protocol.Encode(e))
		}
		if len(nets) > 0 {
			// Storing and cutting wait for the store: off the delivery
			// goroutine.
			go h.banNets(r.name, nets, ev)
		}
	}
}

func reasonText(reason string) string {
	if reason == "" {
		return ""
	}
	return " (" + reason + ")"
}

// banNets bans the networks of a ban-address's target, found on this
// node, and has every node cut the members connected from them.
func (h *Hub) banNets(room string, nets []netip.Prefix, ev *protocol.ModEvent) {
	now := time.Now()
	_, _, err := moderation.Update(context.Background(), h.cfg.Moderation, room, func(st *moderation.State) (bool, error) {
		for _, p := range nets {
			if err := st.AddBan(moderation.Ban{Net: p.String(), Until: int64(ev.Until), By: ev.Actor}, now, h.cfg.ModLimits); err != nil {
				return false, err
			}
		}
		return true, nil
	})
	if err != nil {
		h.cfg.Logger.Error("storing an address ban", "room", room, "err", err)
		return
	}
	e := protocol.NewError(protocol.CodeBanned, room, "connections from your address are banned from "+room+" by "+ev.Actor+" "+banTerms(int64(ev.Until), ""))
	h.notify(&broker.Note{Room: room, Frame: protocol.Encode(e)})
}

// cutBannedAddresses removes the local members of r connected from an
// address st bans, with frame (an ERROR banned).
func (h *Hub) cutBannedAddresses(r *room, st *moderation.State, rev uint64, frame []byte) {
	if st == nil {
		return
	}
	now := time.Now()
	var cut []*member
	r.mu.Lock()
	r.setMod(st, rev)
	for mem := range r.members {
		if !mem.conn.operator.Load() && st.AddrBan(mem.conn.addr, now) != nil {
			cut = append(cut, mem)
		}
	}
	r.mu.Unlock()
	for _, mem := range cut {
		mem.conn.removeFrom(mem, frame)
	}
}

// removeFrom ends a membership for a moderator: out of the room as after
// LEAVE (the others see PRESENCE left), but with frame, an ERROR kicked
// or banned, instead of LEFT.
func (c *Conn) removeFrom(mem *member, frame []byte) {
	c.mu.Lock()
	in := mem.state == live || mem.state == replaying
	c.mu.Unlock()
	if !in {
		return
	}
	c.leave(mem, false)
	c.m.Deliver(frame)
}
