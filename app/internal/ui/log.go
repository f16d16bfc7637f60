package ui

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	"chat/client"
	"chat/protocol"
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
// that a window of them costs one allocation per growth, not one per row.
type row struct {
	kind     rowKind
	own      bool
	deleted  bool // an operator deleted the message: text says so
	status   msgStatus
	cont     bool // same sender as the row above, shortly after, same day: no name line
	dayBreak bool // the first row of its local day in the window: a day separator above it
	rtl      bool // a right-to-left paragraph (Hebrew, Arabic…): aligned right
	day      int32
	sender   string
	text     string
	seq      uint64 // the server's sequence number; 0 while pending, and for notices
	// anchor is, for a row that has no sequence number (notices, the
	// user's messages not stored), the newest sequence number known when
	// it was made: it belongs after that message. It puts the row back in
	// its place when the window drops it and loads its surroundings again.
	anchor uint64
	at     time.Time
	clock  string // formatted once: formatting per frame would allocate
	// seqClock is clock with the message's number in front, for the
	// room's operators (/delete takes it); empty without a number.
	seqClock string
	reason   string // why a message was not sent
	links    []link // web addresses in the text
	// view holds the text's selection, shaped layout and link clicks. It
	// is made when the row is first shown, so rows never scrolled to cost
	// no shaping; rows dropped from the window take it with them.
	view *rowView
	// reply is the message this one answers (0: none); edited is set
	// once it was edited; reactions are its reactions, in the order of
	// protocol.Reactions.
	reply     uint64
	edited    bool
	reactions []Reaction
	// file is the file the message carries (nil: none; text is then its
	// caption, maybe empty). While our own file uploads, before the
	// server's copy brings file, upName and upSize say what it is and
	// upSent how much the server has (upDone: all of it).
	file           *protocol.File
	upName         string
	upSize, upSent int64
	upDone         bool
}

// stored reports whether r is a message the server stored (it has a
// sequence number).
func (r *row) stored() bool { return r.seq != 0 }

// The window. A room may hold millions of messages; the list keeps a
// bounded stretch of them in rows, as gioverse/chat's list manager does:
// when it holds more than maxRows it drops the rows more than keepRows
// above or below the rows in view, and it asks for pages (a
// LoadOlderIntent, which the app loop turns into client.History) when the
// view comes within nearEdge rows of either end of the window.
//
// Older pages are History(room, before = the window's first sequence
// number). Newer pages, needed after the newer side was dropped because
// the user went deep into history, are History(room, before = the window's
// last sequence number + pageSize + 1): with the room's numbers
// contiguous, exactly the pageSize messages after the window. (Where a
// gap makes such a page bring nothing new, the next one reaches twice as
// far.) No other copy of dropped messages is kept: a window holds at most
// about maxRows rows whatever the room's size. Rows the server does not
// have (notices, the user's unsent messages) are kept aside (at most
// maxKept) while their place is outside the window and put back when it
// is loaded again.
//
// While the newer side is dropped ("detached"), live messages are not
// added (they are counted, for the jump button) but only noted: the
// pages bring them when the user scrolls down. A jump to the end (the
// jump button, sending a message) asks for the newest page (before = 0)
// and replaces the window with it.
const (
	pageSize = 100 // messages per page: the server's default page size
	maxRows  = 400 // rows held before rows far from view are dropped
	keepRows = 150 // rows kept above and below the view when dropping
	nearEdge = 40  // how close to an end of the window the view may come before a page is asked for
	maxKept  = 500 // rows without a sequence number kept outside the window
	maxEarly = 1000
)

// loadKind is the kind of page asked for.
type loadKind uint8

const (
	loadNone   loadKind = iota
	loadOlder           // before the window
	loadNewer           // after the window (detached)
	loadTail            // the newest messages, replacing the window (a jump to the end)
	loadAround          // the messages around one to show, replacing the window
)

// messageLog is the list's model. It matches the user's own messages
// across their three lives: a pending row known by a local token, then by
// the id the client library gave it, then the server's copy.
type messageLog struct {
	rows    []row
	byToken map[uint64]int // pending rows waiting for their id
	byID    map[string]int // own rows waiting for the server's copy
	now     func() time.Time

	first    bool   // no message older than the window's first exists
	detached bool   // messages newer than the window's last exist outside it
	jumping  bool   // waiting for the newest page to replace the window
	head     uint64 // the newest sequence number seen, a change's too
	// msgHead is the newest sequence number known to be a message (live,
	// in a page, acknowledged), and joinHead the room's head as the last
	// join told it (a message or a change: it cannot tell). The window
	// reaches the end when it holds msgHead and a page reached past
	// joinHead (or holds it): head itself may be a change, which no
	// window ever holds.
	msgHead  uint64
	joinHead uint64
	// changeHead is the newest change's number seen (an UPDATE).
	changeHead uint64
	span       uint64 // how far past the window's last message a newer page reaches
	kept       []row  // rows without a sequence number outside the window, in the order they left it
	early      []client.Message
	loadKind   loadKind
	loading    uint64 // the Before of the page asked for

	// The view as the last layout left it, and what happened to the rows
	// above it since.
	viewFirst, viewCount int
	following            bool // the view is at the end and follows it
	shift                int  // rows inserted (+) or dropped (-) above the view since the last layout
	toEnd                bool // the window was replaced: show its end

	days dayLabels

	// quotes remember what replies show of the messages they answer
	// (bounded by maxQuotes); changed holds the states of messages
	// changed while a jump waits for its page (bounded by maxEarly).
	quotes  map[uint64]quote
	changed map[uint64]MessageState
	// around, when not 0, is a message to show that is not in the window:
	// a page around it replaces the window (loadAround). scrollTo, when
	// not -1, is the row the next layout shows at the top of the view.
	around   uint64
	scrollTo int
}

func newMessageLog(now func() time.Time) *messageLog {
	return &messageLog{byToken: map[uint64]int{}, byID: map[string]int{}, now: now, following: true, span: pageSize, scrollTo: -1}
}

// clockText is a message's time as the list shows it: the local time of
// day. The day separators above the rows tell the date.
func clockText(t time.Time) string {
	return t.Local().Format("15:04")
}

// prepare computes what a row shows that depends only on it.
func prepare(r *row) {
	r.clock = clockText(r.at)
	r.seqClock = ""
	if r.kind == rowMessage && r.seq != 0 && !r.deleted {
		r.seqClock = "#" + strconv.FormatUint(r.seq, 10) + " · " + r.clock
	}
	r.day = dayOf(r.at)
	if r.kind == rowMessage {
		r.rtl = rightToLeft(r.text)
		r.links = findLinks(r.text)
	}
}

// rowOf is the row of a message from the server.
func rowOf(m client.Message) row {
	r := row{kind: rowMessage, own: m.Own, sender: m.Sender, text: m.Text, at: m.Time, seq: m.Seq, file: m.File}
	x := extrasOf(m)
	r.reply, r.edited, r.reactions = x.reply, !x.edited.IsZero(), x.reactions
	if m.Deleted {
		r.text, r.deleted, r.reactions, r.file = deletedText, true, nil, nil
	}
	prepare(&r)
	return r
}

// setState gives row r a message's state after a change.
func setState(r *row, s MessageState) {
	r.view = nil // its text is shaped again
	r.edited = !s.Edited.IsZero()
	r.reactions = s.Reactions
	r.text, r.deleted = s.Text, s.Deleted
	if s.Deleted {
		r.text, r.reactions, r.file = deletedText, nil, nil // the server removed the file with it
	}
	prepare(r)
}

// change applies a change of message e.Target to its row, wherever the
// log holds it. A change without a state (in a replay, where the message
// itself brings its final state) changes nothing.
func (l *messageLog) change(e MessageChanged) {
	l.head = max(l.head, e.Seq) // a change: not a message the window could hold
	l.changeHead = max(l.changeHead, e.Seq)
	if e.State == nil {
		return
	}
	for i := range l.rows {
		if r := &l.rows[i]; r.kind == rowMessage && r.seq == e.Target {
			setState(r, *e.State)
			l.remember(r)
		}
	}
	// A page on its way (a jump, older or newer messages) may have been
	// read before this change: its copy of the target is set right when it
	// comes.
	if len(l.early) > 0 || l.loadKind != loadNone || l.jumping || l.around != 0 {
		if l.changed == nil {
			l.changed = map[uint64]MessageState{}
		}
		if len(l.changed) < maxEarly {
			l.changed[e.Target] = *e.State
		}
	}
}

// quote is what a reply shows of the message it answers.
type quote struct{ sender, line string }

// maxQuotes bounds the quotes remembered of messages no longer in the
// window; when it is reached they are forgotten and collected again.
const maxQuotes = 2000

// remember keeps what a reply to message r would show of it.
func (l *messageLog) remember(r *row) {
	if r.kind != rowMessage || r.seq == 0 {
		return
	}
	if l.quotes == nil || len(l.quotes) >= maxQuotes {
		l.quotes = map[uint64]quote{}
	}
	line, _, _ := strings.Cut(r.text, "\n")
	l.quotes[r.seq] = quote{sender: r.sender, line: line}
}

// quoteOf is what a reply to message seq shows of it, if the log has seen it.
func (l *messageLog) quoteOf(seq uint64) (quote, bool) {
	q, ok := l.quotes[seq]
	return q, ok
}

// indexOf is the index of the row of message seq in the window, or -1.
func (l *messageLog) indexOf(seq uint64) int {
	for i := range l.rows {
		if l.rows[i].seq == seq && l.rows[i].kind == rowMessage {
			return i
		}
	}
	return -1
}

// deletedText stands for the text of a message an operator deleted.
const deletedText = "message deleted"

// deleteSeq shows message seq as deleted, wherever it is held: its text
// is gone from the server, and must go from the screen too.
func (l *messageLog) deleteSeq(seq uint64) {
	del := func(r *row) {
		if r.kind == rowMessage && r.seq == seq {
			r.text, r.deleted, r.view, r.reactions, r.file = deletedText, true, nil, nil, nil
			prepare(r)
			l.remember(r)
		}
	}
	for i := range l.rows {
		del(&l.rows[i])
	}
	for i := range l.kept {
		del(&l.kept[i])
	}
	for i := range l.early {
		if l.early[i].Seq == seq {
			l.early[i].Text, l.early[i].Deleted = "", true
		}
	}
}

// noteSeq records that message seq exists.
func (l *messageLog) noteSeq(seq uint64) {
	l.head = max(l.head, seq)
	l.msgHead = max(l.msgHead, seq)
}

// reaches reports whether a window whose last message is hi, after a
// newer page asked with before, reaches the room's end: it holds the
// newest message known, and the page reached past the head the join
// told (which may be a change, that no window holds).
func (l *messageLog) reaches(before, hi uint64) bool {
	return hi >= l.msgHead && (hi >= l.joinHead || before > l.joinHead)
}

// readThrough is how far the user has read when the view shows message
// hi, the window's last, at the room's end: the head, when every entry
// known after hi is a change (a reaction to the last message is no
// message to read, but the read marker must pass it, or the room counts
// it unread at the next sign-in). Else hi.
func (l *messageLog) readThrough(hi uint64) uint64 {
	if l.detached || l.jumping || l.loadKind == loadTail || l.loadKind == loadAround || l.around != 0 {
		return hi
	}
	if hi != l.highSeq() || hi < l.msgHead || max(hi, l.changeHead) < l.joinHead {
		return hi // messages may exist past the window: the join's head is not known to be a change
	}
	return max(hi, l.head)
}

// maxSpan bounds how far past the window a newer page reaches: doubled
// after each page that brings nothing, it must not overflow.
const maxSpan = 1 << 40

// bound drops rows far from view when many came without a frame to drop
// them after (a busy room while the window is hidden). It may detach the
// window: callers check after.
func (l *messageLog) bound() {
	if len(l.rows) >= 2*maxRows {
		l.trim()
	}
}

// append adds r at the end and reports its index.
func (l *messageLog) append(r row) int {
	prepare(&r)
	l.rows = append(l.rows, r)
	i := len(l.rows) - 1
	l.remember(&l.rows[i])
	l.regroup(i)
	return i
}

// regroup sets whether row i continues the row above it (same sender,
// shortly after), which decides whether it shows the name line, and
// whether a day separator goes above it.
func (l *messageLog) regroup(i int) {
	if i < 0 || i >= len(l.rows) {
		return
	}
	r := &l.rows[i]
	r.cont = false
	r.dayBreak = i == 0 || l.rows[i-1].day != r.day
	if r.kind == rowMessage && i > 0 && !r.dayBreak {
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
	l.bound()
	l.byToken[token] = l.append(row{kind: rowMessage, own: true, status: statusPending, sender: sender, text: text, at: l.now(), anchor: l.head})
}

// addUpload shows a file of ours going into the outbox, with its
// upload's progress, as message e.ID (the library gave it its id already).
func (l *messageLog) addUpload(sender string, e FileQueued) {
	l.bound()
	i := l.append(row{kind: rowMessage, own: true, status: statusPending, sender: sender, at: l.now(), anchor: l.head,
		reply: e.Reply, upName: e.Name, upSize: e.Size})
	l.byID[e.ID] = i
}

// progress updates an upload's row.
func (l *messageLog) progress(e UploadProgress) {
	if i, ok := l.byID[e.ID]; ok {
		r := &l.rows[i]
		r.upSent, r.upDone = e.Sent, e.Done
		if e.Size > 0 {
			r.upSize = e.Size
		}
	}
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
	l.remove(i, i+1)
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
	r.status, r.seq, r.at = statusDelivered, seq, t
	prepare(r)
	l.remember(r)
	l.noteSeq(seq)
	if seq != 0 {
		i = l.place(i)
	}
	l.regroup(i)
	l.regroup(i + 1)
}

// message adds m, or completes the user's own row for it. It reports
// whether m is new to the user: a row was added, or it waits below a
// window that does not reach the end.
func (l *messageLog) message(m client.Message) bool {
	if m.Own {
		if i, ok := l.byID[m.ID]; ok {
			delete(l.byID, m.ID)
			// The stored copy is the truth: it is stored, so it is no longer
			// pending even if its ack is still on the way.
			l.rows[i].sender = m.Sender
			if m.File != nil {
				l.rows[i].file, l.rows[i].view = m.File, nil // the upload's progress gives way to the file
			}
			l.stored(i, m.Seq, m.Time)
			return false
		}
	}
	l.noteSeq(m.Seq)
	l.bound()
	switch {
	case l.jumping:
		// The newest page may have been read before m was stored: keep
		// m to add after it.
		if len(l.early) < maxEarly {
			l.early = append(l.early, m)
		}
		return true
	case l.detached:
		return true // a page brings it when the user scrolls down
	case m.Seq != 0 && l.hasSeq(m.Seq):
		return false // already here, from a page
	}
	l.append(rowOf(m))
	return true
}

// notice adds a quiet line.
func (l *messageLog) notice(text string, at time.Time) {
	r := row{kind: rowNotice, text: text, at: at, anchor: l.head}
	l.bound()
	if l.detached || l.jumping {
		prepare(&r)
		l.keep(r) // its place, the end, is not in the window
		return
	}
	l.append(r)
}

// reset drops every row but the user's messages that are not stored
// (pending, or failed: what the user typed is not lost), for a room whose
// history the server started over. Numbers of the old history mean
// nothing in the new one, so the kept rows have none.
func (l *messageLog) reset() {
	for _, r := range l.kept {
		if r.kind == rowMessage {
			l.rows = append(l.rows, r)
		}
	}
	moved := map[int]int{}
	var kept []row
	for i, r := range l.rows {
		if r.kind == rowMessage && r.own && r.status != statusDelivered {
			moved[i] = len(kept)
			r.seq, r.anchor = 0, 0
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
	l.kept, l.early = nil, nil
	l.first, l.detached, l.jumping, l.head, l.span = false, false, false, 0, pageSize
	l.msgHead, l.joinHead, l.changeHead = 0, 0, 0
	l.loadKind, l.loading = loadNone, 0
	// Numbers of the old history: a quote, a change, a message to jump
	// to belong to messages the new one does not have.
	l.quotes, l.changed, l.around, l.scrollTo = nil, nil, 0, -1
	l.toEnd, l.shift = true, 0
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

// lowSeq is the window's first sequence number, 0 if it has none.
func (l *messageLog) lowSeq() uint64 {
	for i := range l.rows {
		if s := l.rows[i].seq; s != 0 {
			return s
		}
	}
	return 0
}

// highSeq is the window's last sequence number, 0 if it has none.
func (l *messageLog) highSeq() uint64 {
	for i := len(l.rows) - 1; i >= 0; i-- {
		if s := l.rows[i].seq; s != 0 {
			return s
		}
	}
	return 0
}

// hasSeq reports whether the window holds message seq, looking from the
// end, where new messages go.
func (l *messageLog) hasSeq(seq uint64) bool {
	for i := len(l.rows) - 1; i >= 0; i-- {
		switch s := l.rows[i].seq; {
		case s == seq:
			return true
		case s != 0 && s < seq:
			return false
		}
	}
	return false
}

// insert inserts add before row at, keeping the pending rows' indices and
// the view on the same rows.
func (l *messageLog) insert(at int, add []row) {
	n := len(add)
	if n == 0 {
		return
	}
	l.rows = slices.Insert(l.rows, at, add...)
	for i := range add {
		l.remember(&add[i])
	}
	for k, j := range l.byToken {
		if j >= at {
			l.byToken[k] = j + n
		}
	}
	for k, j := range l.byID {
		if j >= at {
			l.byID[k] = j + n
		}
	}
	if at <= l.viewFirst && !(at == 0 && len(l.rows) == n) {
		l.viewFirst += n
		l.shift += n
	}
	for i := at; i <= at+n; i++ {
		l.regroup(i)
	}
}

// remove removes rows [from, to), keeping the pending rows' indices and
// the view on the same rows. No pending row may be among them.
func (l *messageLog) remove(from, to int) {
	n := to - from
	if n <= 0 {
		return
	}
	l.rows = slices.Delete(l.rows, from, to)
	for k, j := range l.byToken {
		if j >= to {
			l.byToken[k] = j - n
		}
	}
	for k, j := range l.byID {
		if j >= to {
			l.byID[k] = j - n
		}
	}
	if from < l.viewFirst {
		d := min(n, l.viewFirst-from)
		l.viewFirst -= d
		l.shift -= d
	}
	if cap(l.rows) > 4*maxRows && len(l.rows) < maxRows {
		l.rows = slices.Clip(slices.Clone(l.rows)) // give the memory back
	}
}

// keep sets r aside while its place is outside the window.
func (l *messageLog) keep(r row) {
	r.view = nil
	l.kept = append(l.kept, r)
	if len(l.kept) > maxKept {
		l.kept[0] = row{}
		l.kept = l.kept[1:]
	}
}

// reinsertKept puts back the kept rows whose place is in the window now.
func (l *messageLog) reinsertKept() {
	if len(l.kept) == 0 {
		return
	}
	lo, hi := l.lowSeq(), l.highSeq()
	rest := l.kept[:0]
	for _, r := range l.kept {
		// r goes between message r.anchor and the next one.
		in := !l.detached || r.anchor <= hi
		if lo != 0 && r.anchor+1 < lo && !l.first {
			in = false
		}
		if !in {
			rest = append(rest, r)
			continue
		}
		l.insert(l.afterSeq(r.anchor), []row{r})
	}
	clear(l.kept[len(rest):])
	l.kept = rest
}

// afterSeq is where a row made after message seq goes: after the last
// message numbered up to seq and the rows without a number made after it
// too.
func (l *messageLog) afterSeq(seq uint64) int {
	i := len(l.rows)
	for i > 0 && (l.rows[i-1].seq == 0 || l.rows[i-1].seq > seq) {
		i--
	}
	for i < len(l.rows) && l.rows[i].seq == 0 && l.rows[i].anchor <= seq {
		i++
	}
	return i
}

// lowestReferenced is the index of the first row waiting for an id, an
// ack or the server's copy (len(rows) if none): rows from there on stay.
func (l *messageLog) lowestReferenced() int {
	n := len(l.rows)
	for _, j := range l.byToken {
		n = min(n, j)
	}
	for _, j := range l.byID {
		n = min(n, j)
	}
	return n
}

// trim drops the rows far from the view when the window holds more than
// maxRows: those more than keepRows above the view, and those more than
// keepRows below it unless the view follows the end or the user's
// messages are on their way (their rows stay where acks find them).
func (l *messageLog) trim() {
	if len(l.rows) <= maxRows {
		return
	}
	first, count := l.viewFirst, l.viewCount
	if l.following {
		first = max(0, len(l.rows)-count)
	}
	if cut := min(first-keepRows, l.lowestReferenced()); cut > 0 {
		for i := range l.rows[:cut] {
			if r := &l.rows[i]; r.stored() {
				l.first = false
			} else {
				l.keep(*r)
			}
		}
		l.remove(0, cut)
		first -= cut
		l.regroup(0)
	}
	end := first + count + keepRows
	if end < len(l.rows) && !l.following && !l.jumping && len(l.byToken)+len(l.byID) == 0 {
		for i := range l.rows[end:] {
			if r := &l.rows[end+i]; r.stored() {
				if !l.detached {
					l.detached, l.span = true, pageSize
				}
			} else {
				l.keep(*r)
			}
		}
		l.remove(end, len(l.rows))
	}
}

// viewed records where the layout left the view.
func (l *messageLog) viewed(first, count int, following bool) {
	l.viewFirst, l.viewCount, l.following = first, count, following
}

// takeShift returns the rows inserted (+) or dropped (-) above the view
// since the last call: the list's position moves by as much to stay on
// the same rows.
func (l *messageLog) takeShift() int {
	s := l.shift
	l.shift = 0
	return s
}

// request returns the Before of the page the list should ask for now, if
// any, and records that it is asked for.
func (l *messageLog) request() (before uint64, ok bool) {
	if l.loadKind != loadNone {
		return 0, false
	}
	switch {
	case l.around != 0:
		// A page whose newest messages are pageSize/2 past the one to
		// show: with the room's numbers contiguous but for changes, which
		// pages skip, it holds that message and those around it.
		l.loadKind, l.loading = loadAround, l.around+pageSize/2
		l.around = 0
		return l.loading, true
	case l.jumping:
		l.loadKind, l.loading = loadTail, 0
		return 0, true
	case !l.first && l.viewFirst < nearEdge:
		switch low := l.lowSeq(); low {
		case 0:
			// Nothing stored in the window: the join's replay fills it.
		case 1:
			l.first = true
		default:
			l.loadKind, l.loading = loadOlder, low
			return low, true
		}
	}
	if l.detached && len(l.rows)-(l.viewFirst+l.viewCount) < nearEdge {
		before := l.highSeq() + l.span + 1
		l.loadKind, l.loading = loadNewer, before
		return before, true
	}
	return 0, false
}

// jumpToEnd asks for the newest page, to replace the window with: the
// user wants the end of a room whose window does not reach it.
func (l *messageLog) jumpToEnd() {
	if !l.jumping {
		l.jumping, l.early = true, nil
		l.loadKind, l.loading = loadNone, 0 // a page on its way is of no use now
	}
}

// rejoined notes the room's head. A page asked for and not come is not
// asked again: the client library asks again for one sent when the
// connection dropped, the app loop for one refused while offline, and a
// second request would bring the page twice.
func (l *messageLog) rejoined(head uint64) {
	l.head = max(l.head, head)
	l.joinHead = max(l.joinHead, head)
}

// resumed is for a join that brings only the messages after the last one
// the client saw: with no message here (a new screen for a room joined
// again while its leave was on its way), the list would stay empty, or
// show only those, and never ask for the older ones. It asks for the
// newest page instead; the messages that come meanwhile are kept to add
// after it.
func (l *messageLog) resumed() {
	if l.lowSeq() == 0 && l.head > 0 {
		l.jumpToEnd()
	}
}

// page takes a page the list asked for (see request); others are
// ignored.
func (l *messageLog) page(p client.Page) {
	if l.loadKind == loadNone || p.Before != l.loading {
		return
	}
	kind := l.loadKind
	l.loadKind, l.loading = loadNone, 0
	msgs := slices.Clone(p.Messages)
	slices.SortStableFunc(msgs, func(a, b client.Message) int { return cmp.Compare(a.Seq, b.Seq) })
	for _, m := range msgs {
		l.noteSeq(m.Seq)
	}
	switch kind {
	case loadOlder:
		l.prependPage(msgs, p.First)
	case loadNewer:
		l.appendPage(msgs, p.Before)
	case loadTail:
		l.replace(msgs, p.First)
	case loadAround:
		target := p.Before - pageSize/2
		l.replace(msgs, p.First)
		l.toEnd = false
		if !l.reaches(p.Before, l.highSeq()) {
			l.detached, l.span = true, pageSize // the newer ones come as the user scrolls down
		}
		l.scrollTo = l.nearest(target)
	}
	if l.loadKind == loadNone && !l.jumping && l.around == 0 {
		l.changed = nil // no page on its way: every row has its state
	}
}

// jumpTo shows message seq: at once if the window holds it, else after a
// page around it replaces the window. It reports whether the message is
// in the window already.
func (l *messageLog) jumpTo(seq uint64) bool {
	if i := l.indexOf(seq); i >= 0 {
		l.scrollTo = i
		return true
	}
	l.around, l.jumping, l.early = seq, false, nil
	l.loadKind, l.loading = loadNone, 0 // a page on its way is of no use now
	return false
}

// nearest is the index of the row of message seq, or of the first after
// it when it is not there (a change entry, or removed).
func (l *messageLog) nearest(seq uint64) int {
	for i := range l.rows {
		if s := l.rows[i].seq; s != 0 && s >= seq {
			return i
		}
	}
	return max(0, len(l.rows)-1)
}

// pageRow is the row of message m from a page: with the state of a
// change that came while the page was on its way, which the page may
// have been read before.
func (l *messageLog) pageRow(m client.Message) row {
	r := rowOf(m)
	if s, ok := l.changed[m.Seq]; ok {
		setState(&r, s)
	}
	return r
}

// prependPage adds older messages above the window.
func (l *messageLog) prependPage(msgs []client.Message, first bool) {
	low := l.lowSeq()
	add := make([]row, 0, len(msgs))
	for _, m := range msgs {
		if m.Seq != 0 && (low == 0 || m.Seq < low) {
			add = append(add, l.pageRow(m))
		}
	}
	if first || len(add) == 0 {
		l.first = true // nothing older; or a page that brings nothing would be asked for again and again
	}
	l.insert(0, add)
	l.reinsertKept()
}

// appendPage adds newer messages below a detached window.
func (l *messageLog) appendPage(msgs []client.Message, before uint64) {
	if !l.detached {
		return
	}
	hi := l.highSeq()
	add := make([]row, 0, len(msgs))
	for _, m := range msgs {
		if m.Seq > hi {
			add = append(add, l.pageRow(m))
		}
	}
	if len(add) == 0 {
		l.span = min(2*l.span, maxSpan) // a gap in the numbers: reach further
	} else {
		l.span = pageSize
	}
	l.insert(len(l.rows), add)
	if l.reaches(before, l.highSeq()) {
		l.detached = false
	}
	l.reinsertKept()
}

// replace replaces the window with the newest messages. The user's
// messages that are not stored, or wait for their ack or copy, stay
// below them; notices go aside and come back where they belong.
func (l *messageLog) replace(msgs []client.Message, first bool) {
	old := l.rows
	waiting := map[int]bool{}
	for _, j := range l.byToken {
		waiting[j] = true
	}
	mine := map[uint64]bool{}
	for _, j := range l.byID {
		waiting[j] = true
		if s := old[j].seq; s != 0 {
			mine[s] = true
		}
	}
	rows := make([]row, 0, len(msgs)+len(l.early)+len(waiting))
	var last uint64
	add := func(m client.Message) {
		if m.Seq > last && !mine[m.Seq] {
			rows = append(rows, l.pageRow(m))
			last = m.Seq
		}
	}
	for _, m := range msgs {
		add(m)
	}
	for _, m := range l.early {
		add(m)
	}
	l.early, l.changed = nil, nil
	moved := map[int]int{}
	var placeAgain []int
	for i, r := range old {
		switch {
		case waiting[i] || (r.kind == rowMessage && r.own && r.status != statusDelivered):
			moved[i] = len(rows)
			if r.seq != 0 {
				placeAgain = append(placeAgain, len(rows))
			}
			rows = append(rows, r)
		case !r.stored():
			l.keep(r)
		}
	}
	l.rows = rows
	for k, j := range l.byToken {
		l.byToken[k] = moved[j]
	}
	for k, j := range l.byID {
		l.byID[k] = moved[j]
	}
	l.first, l.detached, l.jumping = first, false, false
	l.viewFirst, l.shift, l.toEnd = 0, 0, true
	for i := range l.rows {
		l.regroup(i)
	}
	for _, i := range placeAgain {
		l.place(i)
	}
	l.reinsertKept()
}
