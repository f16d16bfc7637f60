package ui

// ListWindow describes the message list's window for tests and
// benchmarks: the rows held, the first and last sequence numbers among
// them, and whether the window reaches the room's first message and its
// end.
func (u *UI) ListWindow() (rows int, low, high uint64, first, end bool) {
	if u.chat == nil {
		return 0, 0, 0, false, false
	}
	l := u.chat.log
	return len(l.rows), l.lowSeq(), l.highSeq(), l.first, !l.detached
}

// PageWanted reports whether the list waits for a page it asked for.
func (u *UI) PageWanted() bool {
	return u.chat != nil && u.chat.log.loadKind != loadNone
}

// SeenUpTo is the newest message number the last frame showed.
func (u *UI) SeenUpTo() uint64 {
	if u.chat == nil {
		return 0
	}
	return u.chat.seenUpTo()
}
