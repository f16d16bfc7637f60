package ui

// ListWindow describes the message list's window for tests and
// benchmarks: the rows held, the first and last sequence numbers among
// them, and whether the window reaches the room's first message and its
// end.
func (u *UI) ListWindow() (rows int, low, high uint64, first, end bool) {
	c := u.openChat()
	if c == nil {
		return 0, 0, 0, false, false
	}
	l := c.log
	return len(l.rows), l.lowSeq(), l.highSeq(), l.first, !l.detached
}

// PageWanted reports whether the list waits for a page it asked for.
func (u *UI) PageWanted() bool {
	c := u.openChat()
	return c != nil && c.log.loadKind != loadNone
}

// SeenUpTo is the newest message number the last frame showed.
func (u *UI) SeenUpTo() uint64 {
	c := u.openChat()
	if c == nil {
		return 0
	}
	return c.seenUpTo()
}

// openChat is the open conversation, nil on the form or with none open.
func (u *UI) openChat() *chatScreen {
	if !u.InChat() {
		return nil
	}
	return u.shell.open
}
