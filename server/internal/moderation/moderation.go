// Package moderation defines what the server keeps to moderate rooms
// (protocol README.md section 4, "Moderation"): each room's operators,
// bans, mutes, topic, invite-only mode, invite codes and allowed names,
// the redaction of deleted messages, and an audit log of every action.
//
// A room's settings are one State, read and written whole with a
// revision (compare-and-set), so that an implementation needs nothing
// but a key-value store with revisions: sqlite.Moderation keeps it in
// the chat database, a cluster in a JetStream KV bucket. Every list in a
// State is bounded (Limits), so a State stays small. The conformance
// suite in moderationtest runs against every implementation.
//
// For a cluster: Load and Save map to a KV bucket's Get and Create
// (revision 0) or Update (the revision the KV gave); Redact erases the
// JetStream message and keeps a redaction record so that the room's
// numbering and reads (Since, Before, Last) show the message with an
// empty text; the audit log is a stream limited to its number of entries.
//
// Names are given by key (protocol.Key), rooms by canonical name.
package moderation

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"slices"
	"time"
)

// Store keeps the moderation state of rooms and the audit log.
type Store interface {
	// Load returns room's state and its revision; a room never saved
	// has a zero State and revision 0.
	Load(ctx context.Context, room string) (*State, uint64, error)
	// Save stores st as room's state if the stored revision is still
	// rev (0: nothing stored yet) and returns the new revision, which is
	// never 0. Another Save since rev makes it fail with ErrConflict.
	Save(ctx context.Context, room string, st *State, rev uint64) (uint64, error)
	// Redact removes the text of message seq of room from the history for
	// good, keeping its sequence number, time, sender and id. It reports
	// false when the room has no message seq. Redacting twice is no error.
	Redact(ctx context.Context, room string, seq uint64) (bool, error)
	// Audit appends e to the audit log. The store keeps at most its
	// limit of entries (default 100 000); the oldest go first.
	Audit(ctx context.Context, e Entry) error
	// AuditLog returns the newest n entries, of room only if room is not
	// empty, oldest first.
	AuditLog(ctx context.Context, room string, n int) ([]Entry, error)
}

// ErrConflict is Save's refusal: the state changed since it was loaded.
var ErrConflict = errors.New("moderation: the room's state changed meanwhile")

// State is one room's moderation settings.
type State struct {
	Topic      string   `json:"topic,omitempty"`
	InviteOnly bool     `json:"invite_only,omitempty"`
	Ops        []string `json:"ops,omitempty"` // name keys of the room's operators
	Bans       []Ban    `json:"bans,omitempty"`
	Mutes      []Mute   `json:"mutes,omitempty"`
	Invites    []Invite `json:"invites,omitempty"`
	// Allowed are the names (keys) an invite-only room admits without a
	// code: those that joined with one, and the members of the moment it
	// became invite-only. Oldest first.
	Allowed []string `json:"allowed,omitempty"`
}

// Ban refuses a name or an address network.
type Ban struct {
	Name   string `json:"name,omitempty"`  // a name key, or
	Net    string `json:"net,omitempty"`   // an address network (netip.Prefix), /32 or /64
	Until  int64  `json:"until,omitempty"` // Unix milliseconds; 0: for good
	By     string `json:"by,omitempty"`    // who banned, for operators' eyes
	Reason string `json:"reason,omitempty"`
}

// Mute refuses a name's messages.
type Mute struct {
	Name  string `json:"name"`
	Until int64  `json:"until,omitempty"` // Unix milliseconds; 0: for good
}

// Invite is a code that admits names to an invite-only room.
type Invite struct {
	Code  string `json:"code"`
	Until int64  `json:"until"` // Unix milliseconds
	By    string `json:"by,omitempty"`
}

// Limits bound a State. Zero values take the defaults.
type Limits struct {
	MaxOps     int // operators per room (default 100)
	MaxBans    int // bans per room, names and addresses (default 1000)
	MaxMutes   int // mutes per room (default 1000)
	MaxInvites int // live invite codes per room (default 100)
	MaxAllowed int // allowed names per room (default 10000)
}

// WithDefaults returns l with zero values replaced by the defaults.
func (l Limits) WithDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxOps, 100)
	def(&l.MaxBans, 1000)
	def(&l.MaxMutes, 1000)
	def(&l.MaxInvites, 100)
	def(&l.MaxAllowed, 10000)
	return l
}

// ErrFull refuses an operator, ban or mute beyond the room's limit.
var ErrFull = errors.New("moderation: the room's list is full")

// Entry is one line of the audit log. It never holds a message's text.
type Entry struct {
	Time   int64  `json:"time"` // Unix milliseconds
	Room   string `json:"room,omitempty"`
	Actor  string `json:"actor"`          // the operator's name, or "operator"
	Addr   string `json:"addr,omitempty"` // the actor's connection address
	Action string `json:"action"`         // protocol.ModAction's name
	Target string `json:"target,omitempty"`
	Seq    uint64 `json:"seq,omitempty"`    // delete: the message
	Until  int64  `json:"until,omitempty"`  // ban, mute: the end, Unix milliseconds
	Detail string `json:"detail,omitempty"` // a reason or a topic; never a message text
}

// Marshal encodes a State for a store.
func Marshal(st *State) ([]byte, error) { return json.Marshal(st) }

// Unmarshal decodes what Marshal made.
func Unmarshal(b []byte) (*State, error) {
	st := new(State)
	if len(b) == 0 {
		return st, nil
	}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, err
	}
	return st, nil
}

// Update applies change to room's state and saves it, again from a fresh
// load when another Save came first. change returns false to leave the
// state unsaved (nothing to do, or refused with an error of its own).
// It returns the state as saved (or as loaded, when nothing was saved)
// and its revision.
func Update(ctx context.Context, s Store, room string, change func(*State) (bool, error)) (*State, uint64, error) {
	for {
		st, rev, err := s.Load(ctx, room)
		if err != nil {
			return nil, 0, err
		}
		save, err := change(st)
		if err != nil || !save {
			return st, rev, err
		}
		rev, err = s.Save(ctx, room, st, rev)
		if !errors.Is(err, ErrConflict) {
			return st, rev, err
		}
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
	}
}

// Network is the network an address is banned by: the address itself
// for IPv4, its /64 for IPv6 (one host has many addresses of its /64).
func Network(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64)
	return p
}

// ParseRemote is the address of a connection's remote address ("host:port"
// or a bare address); invalid when it has none (a test transport).
func ParseRemote(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(remote); err == nil {
		return a.Unmap()
	}
	return netip.Addr{}
}

func live(until, now int64) bool { return until == 0 || until > now }

// Prune drops what has expired: bans, mutes and invites whose time is past.
func (st *State) Prune(now time.Time) {
	ms := now.UnixMilli()
	st.Bans = slices.DeleteFunc(st.Bans, func(b Ban) bool { return !live(b.Until, ms) })
	st.Mutes = slices.DeleteFunc(st.Mutes, func(m Mute) bool { return !live(m.Until, ms) })
	st.Invites = slices.DeleteFunc(st.Invites, func(i Invite) bool { return i.Until <= ms })
}

// IsOp reports whether name is an operator of the room.
func (st *State) IsOp(name string) bool { return slices.Contains(st.Ops, name) }

// NameBan returns the ban of name in force at now, or nil.
func (st *State) NameBan(name string, now time.Time) *Ban {
	for i := range st.Bans {
		if b := &st.Bans[i]; b.Name == name && live(b.Until, now.UnixMilli()) {
			return b
		}
	}
	return nil
}

// AddrBan returns the ban of addr's network in force at now, or nil.
func (st *State) AddrBan(addr netip.Addr, now time.Time) *Ban {
	if !addr.IsValid() {
		return nil
	}
	addr = addr.Unmap()
	for i := range st.Bans {
		b := &st.Bans[i]
		if b.Net == "" || !live(b.Until, now.UnixMilli()) {
			continue
		}
		if p, err := netip.ParsePrefix(b.Net); err == nil && p.Contains(addr) {
			return b
		}
	}
	return nil
}

// MuteOf returns the mute of name in force at now, or nil.
func (st *State) MuteOf(name string, now time.Time) *Mute {
	for i := range st.Mutes {
		if m := &st.Mutes[i]; m.Name == name && live(m.Until, now.UnixMilli()) {
			return m
		}
	}
	return nil
}

// IsAllowed reports whether an invite-only room admits name without a code.
func (st *State) IsAllowed(name string) bool {
	return st.IsOp(name) || slices.Contains(st.Allowed, name)
}

// ValidInvite reports whether code is a live invite code at now.
func (st *State) ValidInvite(code string, now time.Time) bool {
	if code == "" {
		return false
	}
	for _, i := range st.Invites {
		if i.Code == code && i.Until > now.UnixMilli() {
			return true
		}
	}
	return false
}

// AddOp makes name an operator; false if it is one already.
func (st *State) AddOp(name string, l Limits) (bool, error) {
	if st.IsOp(name) {
		return false, nil
	}
	if len(st.Ops) >= l.WithDefaults().MaxOps {
		return false, ErrFull
	}
	st.Ops = append(st.Ops, name)
	return true, nil
}

// RemoveOp takes the operator right from name; false if it had none.
func (st *State) RemoveOp(name string) bool {
	n := len(st.Ops)
	st.Ops = slices.DeleteFunc(st.Ops, func(s string) bool { return s == name })
	return len(st.Ops) != n
}

// AddBan adds b, replacing a ban of the same name or network. Expired
// bans are dropped first; beyond the limit it fails with ErrFull.
func (st *State) AddBan(b Ban, now time.Time, l Limits) error {
	st.Prune(now)
	st.Bans = slices.DeleteFunc(st.Bans, func(x Ban) bool { return x.Name == b.Name && x.Net == b.Net })
	if len(st.Bans) >= l.WithDefaults().MaxBans {
		return ErrFull
	}
	st.Bans = append(st.Bans, b)
	return nil
}

// Unban lifts the bans of name (a name key) or of the network of an
// address; false if there was none.
func (st *State) Unban(name string, addr netip.Addr) bool {
	n := len(st.Bans)
	var net string
	if addr.IsValid() {
		net = Network(addr).String()
	}
	st.Bans = slices.DeleteFunc(st.Bans, func(b Ban) bool {
		return (b.Name != "" && b.Name == name) || (net != "" && b.Net == net)
	})
	return len(st.Bans) != n
}

// AddMute mutes name until (0: for good), replacing an earlier mute.
func (st *State) AddMute(name string, until int64, now time.Time, l Limits) error {
	st.Prune(now)
	st.Mutes = slices.DeleteFunc(st.Mutes, func(m Mute) bool { return m.Name == name })
	if len(st.Mutes) >= l.WithDefaults().MaxMutes {
		return ErrFull
	}
	st.Mutes = append(st.Mutes, Mute{Name: name, Until: until})
	return nil
}

// Unmute lifts name's mute; false if it had none in force.
func (st *State) Unmute(name string, now time.Time) bool {
	st.Prune(now)
	n := len(st.Mutes)
	st.Mutes = slices.DeleteFunc(st.Mutes, func(m Mute) bool { return m.Name == name })
	return len(st.Mutes) != n
}

// AddInvite adds a code; beyond the limit the invite that expires first
// goes.
func (st *State) AddInvite(inv Invite, now time.Time, l Limits) {
	st.Prune(now)
	for len(st.Invites) >= l.WithDefaults().MaxInvites {
		first := 0
		for i, x := range st.Invites {
			if x.Until < st.Invites[first].Until {
				first = i
			}
		}
		st.Invites = slices.Delete(st.Invites, first, first+1)
	}
	st.Invites = append(st.Invites, inv)
}

// Allow admits name to the invite-only room from now on; beyond the
// limit the oldest allowed name goes. It reports whether it changed st.
func (st *State) Allow(name string, l Limits) bool {
	if slices.Contains(st.Allowed, name) {
		return false
	}
	if max := l.WithDefaults().MaxAllowed; len(st.Allowed) >= max {
		st.Allowed = slices.Delete(st.Allowed, 0, len(st.Allowed)-max+1)
	}
	st.Allowed = append(st.Allowed, name)
	return true
}
