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
	if r.kind == rowMessage && len(l.rows) > 0 {
		p := &l.rows[len(l.rows)-1]
		r.cont = p.kind == rowMessage && p.sender == r.sender && p.own == r.own && r.at.Sub(p.at) < 3*time.Minute
	}
	l.rows = append(l.rows, r)
	return len(l.rows) - 1
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
	if i < len(l.rows) && l.rows[i].kind == rowMessage {
		r := &l.rows[i]
		r.cont = i > 0 && l.rows[i-1].kind == rowMessage && l.rows[i-1].sender == r.sender && l.rows[i-1].own == r.own
	}
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

// acked turns a pending message normal. Its row stays in byID until the
// server's copy arrives, which must not add it a second time.
func (l *messageLog) acked(a client.Acked) {
	if i, ok := l.byID[a.ID]; ok && l.rows[i].status == statusPending {
		r := &l.rows[i]
		r.status, r.at, r.clock = statusDelivered, a.Time, clockText(a.Time, l.now())
	}
}

// message adds m, or completes the user's own row for it. It reports
// whether a new row was added.
func (l *messageLog) message(m client.Message) bool {
	if m.Own {
		if i, ok := l.byID[m.ID]; ok {
			delete(l.byID, m.ID)
			r := &l.rows[i]
			// The stored copy is the truth: it is stored, so it is no longer
			// pending even if its ack is still on the way.
			r.status, r.at, r.clock, r.sender = statusDelivered, m.Time, clockText(m.Time, l.now()), m.Sender
			return false
		}
	}
	l.append(row{kind: rowMessage, own: m.Own, sender: m.Sender, text: m.Text, at: m.Time})
	return true
}

// notice adds a quiet line.
func (l *messageLog) notice(text string, at time.Time) {
	l.append(row{kind: rowNotice, text: text, at: at})
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
