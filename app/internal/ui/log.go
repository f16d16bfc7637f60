package ui

import (
	"slices"
	"time"

	"gioui.org/widget"

	"chat/client"
)

type rowKind uint8

const (
	rowMessage rowKind = iota
	rowNotice          // join/leave and other quiet lines
)

type msgStatus uint8

const (
	statusDelivered msgStatus = iota
	statusPending             // sent, not acknowledged by the server yet
	statusFailed              // the client library gave up on it
)

// row is one line of the message list. Rows are values in one slice so
// that 100k of them cost one allocation per growth, not one per row.
type row struct {
	kind   rowKind
	own    bool
	status msgStatus
	cont   bool // same sender as the row above, shortly after: no name line
	sender string
	text   string
	seq    uint64 // the server's sequence number; 0 while pending, and for notices
	at     time.Time
	clock  string // formatted once: formatting per frame would allocate
	reason string // why a message was not sent
	// sel holds the text's selection and shaped layout. It is made when the
	// row is first shown, so rows never scrolled to cost no shaping.
	sel *widget.Selectable
}

// messageLog is the list's model. It matches the user's own messages
// across their three lives: a pending row known by a local token, then by
// the id the client library gave it, then the server's copy.
type messageLog struct {
	rows    []row
	byToken map[uint64]int // pending rows waiting for their id
	byID    map[string]int // own rows waiting for the server's copy
	now     func() time.Time
}

func newMessageLog(now func() time.Time) *messageLog {
	return &messageLog{byToken: map[uint64]int{}, byID: map[string]int{}, now: now}
}

// clockText is a message's time as the list shows it: the local time of
// day, with the date for older days.
func clockText(t, now time.Time) string {
	t, now = t.Local(), now.Local()
	if y, m, d := t.Date(); y == now.Year() && m == now.Month() && d == now.Day() {
		return t.Format("15:04")
	}
	if t.Year() == now.Year() {
		return t.Format("Jan 2 15:04")
	}
	return t.Format("Jan 2 2006 15:04")
}

// append adds r and reports its index.
func (l *messageLog) append(r row) int {
	r.clock = clockText(r.at, l.now())
	l.rows = append(l.rows, r)
	i := len(l.rows) - 1
	l.regroup(i)
	return i
}

// regroup sets whether row i continues the row above it (same sender,
// shortly after), which decides whether it shows the name line.
func (l *messageLog) regroup(i int) {
	if i < 0 || i >= len(l.rows) {
		return
	}
	r := &l.rows[i]
	r.cont = false
	if r.kind == rowMessage && i > 0 {
		p := &l.rows[i-1]
		r.cont = p.kind == rowMessage && p.sender == r.sender && p.own == r.own && r.at.Sub(p.at) < 3*time.Minute
	}
}

// place moves row i, whose sequence number just became known, to the
// position the server gave it: below every row it stored earlier, above
// every row it stored later. A message typed while offline was shown
// where it was typed, but messages others sent meanwhile were stored
// first; every client must show the room in the server's order. Rows
// without a number (notices, other pending messages) keep their order.
// It returns the row's new index. The numbered rows are in order (every
// one was placed so), which ends each scan at the first row already in
// order: an ack at the end of a long log costs a step or two, not a pass.
func (l *messageLog) place(i int) int {
	s := l.rows[i].seq
	to := i
	for j := i + 1; j < len(l.rows); j++ {
		if q := l.rows[j].seq; q > s {
			break
		} else if q != 0 {
			to = j // down, to just below the last row stored before it
		}
	}
	if to == i {
		for j := i - 1; j >= 0; j-- {
			if q := l.rows[j].seq; q != 0 && q < s {
				break
			} else if q != 0 {
				to = j // up, to just above the first row stored after it
			}
		}
	}
	if to != i {
		l.move(i, to)
	}
	return to
}

// move moves row from to index to, shifting the rows between, and keeps
// the pending rows' indices and the grouping right.
func (l *messageLog) move(from, to int) {
	r := l.rows[from]
	lo, hi, shift := from, to, -1 // rows (from, to] move up one
	if to < from {
		copy(l.rows[to+1:from+1], l.rows[to:from])
		lo, hi, shift = to, from, 1 // rows [to, from) move down one
	} else {
		copy(l.rows[from:to], l.rows[from+1:to+1])
	}
	l.rows[to] = r
	fix := func(j int) int {
		switch {
		case j == from:
			return to
		case j >= lo && j <= hi:
			return j + shift
		}
		return j
	}
	for k, j := range l.byToken {
		l.byToken[k] = fix(j)
	}
	for k, j := range l.byID {
		l.byID[k] = fix(j)
	}
	for _, j := range []int{from, from + 1, to, to + 1} {
		l.regroup(j)
	}
}

// addPending shows a message the user just sent.
func (l *messageLog) addPending(token uint64, sender, text string) {
	l.byToken[token] = l.append(row{kind: rowMessage, own: true, status: statusPending, sender: sender, text: text, at: l.now()})
}

// sent records the id the client library gave a pending message.
func (l *messageLog) sent(token uint64, id string) {
	i, ok := l.byToken[token]
	if !ok {
		return
	}
	delete(l.byToken, token)
	if l.rows[i].status == statusPending {
		l.byID[id] = i
	}
}

// takeBack removes a pending message the library refused and returns its
// text, so that nothing the user typed is lost.
func (l *messageLog) takeBack(token uint64) (string, bool) {
	i, ok := l.byToken[token]
	if !ok {
		return "", false
	}
	delete(l.byToken, token)
	text := l.rows[i].text
	l.rows = slices.Delete(l.rows, i, i+1)
	for k, j := range l.byToken {
		if j > i {
			l.byToken[k] = j - 1
		}
	}
	for k, j := range l.byID {
		if j > i {
			l.byID[k] = j - 1
		}
	}
	l.regroup(i)
	return text, true
}

// markFailed marks token's message as not sent: used when the text cannot
// go back into the editor because the user is typing something else.
func (l *messageLog) markFailed(token uint64, reason string) {
	if i, ok := l.byToken[token]; ok {
		delete(l.byToken, token)
		l.rows[i].status, l.rows[i].reason = statusFailed, reason
	}
}

// failIDs marks messages the library dropped (RoomError.Unsent).
func (l *messageLog) failIDs(ids []string, reason string) {
	for _, id := range ids {
		if i, ok := l.byID[id]; ok {
			delete(l.byID, id)
			l.rows[i].status, l.rows[i].reason = statusFailed, reason
		}
	}
}

// acked turns a pending message normal and moves it to its place in the
// server's order. Its row stays in byID until the server's copy arrives,
// which must not add it a second time.
func (l *messageLog) acked(a client.Acked) {
	if i, ok := l.byID[a.ID]; ok && l.rows[i].status == statusPending {
		l.stored(i, a.Seq, a.Time)
	}
}

// stored records that the server stored the user's row i as seq at t.
func (l *messageLog) stored(i int, seq uint64, t time.Time) {
	r := &l.rows[i]
	r.status, r.seq, r.at, r.clock = statusDelivered, seq, t, clockText(t, l.now())
	if seq != 0 {
		i = l.place(i)
	}
	l.regroup(i)
	l.regroup(i + 1)
}

// message adds m, or completes the user's own row for it. It reports
// whether a new row was added.
func (l *messageLog) message(m client.Message) bool {
	if m.Own {
		if i, ok := l.byID[m.ID]; ok {
			delete(l.byID, m.ID)
			// The stored copy is the truth: it is stored, so it is no longer
			// pending even if its ack is still on the way.
			l.rows[i].sender = m.Sender
			l.stored(i, m.Seq, m.Time)
			return false
		}
	}
	l.append(row{kind: rowMessage, own: m.Own, sender: m.Sender, text: m.Text, at: m.Time, seq: m.Seq})
	return true
}

// notice adds a quiet line.
func (l *messageLog) notice(text string, at time.Time) {
	l.append(row{kind: rowNotice, text: text, at: at})
}

// reset drops every row but the user's messages that are not stored
// (pending, or failed: what the user typed is not lost), for a room whose
// history the server started over. Numbers of the old history mean
// nothing in the new one, so the kept rows have none.
func (l *messageLog) reset() {
	moved := map[int]int{}
	var kept []row
	for i, r := range l.rows {
		if r.kind == rowMessage && r.own && r.status != statusDelivered {
			moved[i] = len(kept)
			r.seq = 0
			kept = append(kept, r)
		}
	}
	l.rows = kept
	for k, i := range l.byToken {
		l.byToken[k] = moved[i] // pending rows are all kept
	}
	for k, i := range l.byID {
		if j, ok := moved[i]; ok {
			l.byID[k] = j
		} else {
			delete(l.byID, k) // stored and dropped: its copy comes with the new history
		}
	}
	for i := range l.rows {
		l.regroup(i)
	}
}

// pending counts the user's messages not yet acknowledged.
func (l *messageLog) pending() int {
	n := len(l.byToken)
	for _, i := range l.byID {
		if l.rows[i].status == statusPending {
			n++
		}
	}
	return n
}
