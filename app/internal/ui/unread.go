package ui

import "slices"

// unread counts a conversation's messages after our read marker. Sequence
// numbers are dense (1, 2, … head), so the count is head − read, less our
// own messages after the marker (written on another device, or not yet
// marked here): nothing we wrote is news to us. The server's marker and
// head come with each RoomJoined (and for direct conversations not joined
// yet, with the Identity); live messages move head; ReadMarker events,
// from this device or another of our name, move read. Changes to
// messages (MessageChanged) have numbers of their own too, and are taken
// off like our own messages.
//
// A known limit: only the changes this screen saw are taken off. A join
// that replays from after a number past the marker (a fresh join replays
// only the latest entries) leaves the changes between the marker and the
// replay counted as unread, until the marker passes them; the server
// tells no count of changes, and the view marks read through the head
// (changes included) once it shows the room's end (seenUpTo).
type unread struct {
	read, head uint64
	// joinRead, joinHead and joinMentions are the marker, the head and
	// the number of mentions after the marker that the last join
	// reported; mentions are those seen (replayed or live) after read.
	joinRead, joinHead uint64
	joinMentions       int
	mentions           []uint64
	own                []uint64 // our messages after read
	// changes are the changes (edits, deletions, reactions) after read:
	// they have their own numbers in the room, but are not messages.
	changes []uint64
}

// count is the number of unread messages.
func (u *unread) count() int {
	if u.head <= u.read {
		return 0
	}
	return max(0, int(u.head-u.read)-len(u.own)-len(u.changes))
}

// mentionCount is the number of unread messages that mention us: those
// seen, or the join's count while the marker has not moved since (the
// join replays only the latest messages, and older mentions may be
// among the unread).
func (u *unread) mentionCount() int {
	n := len(u.mentions)
	if u.read == u.joinRead && u.read < u.joinHead {
		old := 0 // of those the join counted
		for _, s := range u.mentions {
			if s <= u.joinHead {
				old++
			}
		}
		n += max(0, u.joinMentions-old)
	}
	return n
}

// known takes the state the server reported for a conversation not
// joined yet (Identity).
func (u *unread) known(read, head uint64) {
	u.head = max(u.head, head)
	u.markRead(read)
}

// joined takes a join's state. After a reset of the room's history the
// old numbers mean nothing: everything starts from the join's.
func (u *unread) joined(read, head uint64, mentions int, reset bool) {
	if reset {
		*u = unread{}
	}
	u.head = max(u.head, head)
	u.markRead(read)
	u.joinRead, u.joinHead, u.joinMentions = u.read, head, mentions
}

// message counts message seq: it moves head, a mention after the marker
// adds to the mentions, our own is not news.
func (u *unread) message(seq uint64, own, mention bool) {
	if seq == 0 {
		return
	}
	u.head = max(u.head, seq)
	if seq <= u.read {
		return
	}
	switch {
	case own:
		if !slices.Contains(u.own, seq) {
			u.own = append(u.own, seq)
		}
	case mention && !slices.Contains(u.mentions, seq):
		u.mentions = append(u.mentions, seq)
	}
}

// change counts change seq (an UPDATE): it moves head, and is no news.
func (u *unread) change(seq uint64) {
	if seq == 0 {
		return
	}
	u.head = max(u.head, seq)
	if seq > u.read && len(u.changes) < maxUnreadChanges && !slices.Contains(u.changes, seq) {
		u.changes = append(u.changes, seq)
	}
}

// maxUnreadChanges bounds the changes remembered after the read marker;
// past it, more changes count as unread until the marker moves.
const maxUnreadChanges = 5000

// markRead moves the marker forward to seq; it never moves back.
func (u *unread) markRead(seq uint64) {
	if seq <= u.read {
		return
	}
	u.read = seq
	gone := func(s uint64) bool { return s <= seq }
	u.own = slices.DeleteFunc(u.own, gone)
	u.changes = slices.DeleteFunc(u.changes, gone)
	u.mentions = slices.DeleteFunc(u.mentions, gone)
}
