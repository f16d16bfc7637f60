package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"chat/protocol"
)

// Acting on messages (protocol README section 4, "Acting on messages"): a
// server with protocol.WelcomeMessages takes replies (SendReply), edits
// and deletions (Edit, Delete), reactions (React), typing indicators
// (Typing, StopTyping) and searches (Search). A change goes through the
// outbox like a message: it is sent again with its id after a reconnect
// (the server applies it once), an Acked confirms it, and a refusal comes
// as a RoomError with Stays that lists it in Unsent. Every member hears of
// a change as an Updated event; a typing member as a Typing event.

// Reaction is one emoji's reactions to a message.
type Reaction struct {
	Emoji string
	Count int      // how many names reacted with it
	Names []string // who, oldest first: at most protocol.MaxReactionNames of them
	// Mine: our name is among Names. (With more than
	// protocol.MaxReactionNames reactions, ours may be among those not
	// listed: Mine is then false.)
	Mine bool
}

// Updated reports that the message Target of Room changed (an UPDATE): it
// was edited, deleted, or reacted to. Seq is the change's own place in the
// room's sequence: it counts as seen for resuming, but an app must not
// count it as an unread message. Message is the target's state now, with
// every change up to this one applied; it is nil in a replay (History)
// when a later Updated of the same target, or the replayed message
// itself, carries the final state.
type Updated struct {
	Room   string
	Seq    uint64
	Time   time.Time
	Actor  string // who changed it: its sender, or an operator for a delete
	Kind   protocol.ChangeKind
	Target uint64
	Emoji  string // ChangeReact, ChangeUnreact: the emoji
	// Message is the target's new state; nil when a later event carries it.
	Message *Message
	// History: the change was made before this join (replayed), not live.
	History bool
	// Own: Actor is our name.
	Own bool
}

// Typing reports that Name is typing in Room, or no longer is (Stopped).
// It never comes for our own name. Apps show it until Stopped, a Message
// from Name, or 6 seconds after the last one (typingShown).
type Typing struct {
	Room    string
	Name    string
	Stopped bool
}

func (Updated) isEvent() {}
func (Typing) isEvent()  {}

// SearchOptions narrow a Search.
type SearchOptions struct {
	// Room searches only that room (joined, or one of our name's
	// direct-message rooms); empty: every room this connection has
	// joined and our name's direct-message rooms.
	Room string
	// Before pages back: only messages older than this; zero: now.
	Before time.Time
	// Limit is how many hits at most (0: the server's default, 20; a
	// server sends at most 50).
	Limit int
}

// SearchHit is one message found.
type SearchHit struct {
	Room    string
	Seq     uint64
	Time    time.Time
	Sender  string
	Text    string
	Matches []protocol.Span // the matched words, as byte offsets into Text, in order
}

// SearchResults answers Search: the hits newest first; More when older
// ones exist (ask again with Before = the last hit's Time).
type SearchResults struct {
	Query string
	Hits  []SearchHit
	More  bool
}

// errNoMessages is the ErrUnsupported of the methods of this file.
var errNoMessages = fmt.Errorf("%w: no replies, edits, deletions, reactions, typing or search", ErrUnsupported)

// typingEvery is how often Typing sends at most, per room; typingShown is
// how long a TYPING counts (and a StopTyping after it is worth sending).
const (
	typingEvery = 3 * time.Second
	typingShown = 6 * time.Second
)

// messages reports whether the current (or, while disconnected, the
// last) server speaks the frames of this file.
func (l *loop) messages() bool {
	return l.welcome != nil && l.welcome.Flags&protocol.WelcomeMessages != 0
}

// unsupported reports whether the server is known not to speak them.
func (l *loop) unsupported() bool { return l.welcome != nil && !l.messages() }

// MaxText is the longest message text the server takes, in bytes (the
// protocol's default until the first connection tells).
func (c *Client) MaxText() int { return int(c.maxText.Load()) }

// SendReply is Send with a reply target: the message answers the message
// reply (a sequence number) of the same room; 0 is a plain Send. To a
// server without replies (no protocol.WelcomeMessages) the message goes as
// a plain one.
func (c *Client) SendReply(room, text string, reply uint64) (id string, err error) {
	if err := c.checkText(text); err != nil {
		return "", err
	}
	id = string(randomBytes(16))
	if e := c.do(func(l *loop) { err = l.queue(&outgoing{room: c.key(room), id: id, text: text, reply: reply}) }); e != nil {
		return "", e
	}
	return id, err
}

func (c *Client) checkText(text string) error {
	if text == "" {
		return errors.New("the message is empty")
	}
	if limit := c.maxText.Load(); int64(len(text)) > limit {
		return fmt.Errorf("the message is %d bytes; the server allows %d", len(text), limit)
	}
	return nil
}

// Edit replaces the text of our message seq in room. Like Send it returns
// the change's id at once; an Acked with it confirms the edit, and every
// member (us included) gets an Updated. The server refuses (a RoomError
// with Stays and Unsent [id]) a message of another name (forbidden), or
// one that does not exist or is deleted (not-found). Edit fails at once
// for an empty or over-long text, seq 0, a room not joined, or a server
// without edits (ErrUnsupported).
func (c *Client) Edit(room string, seq uint64, text string) (id string, err error) {
	if text == "" {
		return "", errors.New("the new text is empty; Delete removes a message")
	}
	if err := c.checkText(text); err != nil {
		return "", err
	}
	return c.change(room, protocol.ChangeEdit, seq, text)
}

// Delete removes the message seq of room for good: our own, or any as an
// operator of the room. See Edit for how it goes and how it is refused.
func (c *Client) Delete(room string, seq uint64) (id string, err error) {
	return c.change(room, protocol.ChangeDelete, seq, "")
}

// React adds (on) or takes back (!on) our reaction emoji, one of
// protocol.Reactions, to the message seq of room. It is idempotent, not a
// toggle: reacting twice counts once. See Edit for how it goes.
func (c *Client) React(room string, seq uint64, emoji string, on bool) (id string, err error) {
	if !protocol.IsReaction(emoji) {
		return "", fmt.Errorf("%q is not one of the reactions %v", emoji, protocol.Reactions)
	}
	kind := protocol.ChangeReact
	if !on {
		kind = protocol.ChangeUnreact
	}
	return c.change(room, kind, seq, emoji)
}

func (c *Client) change(room string, kind protocol.ChangeKind, seq uint64, text string) (id string, err error) {
	if seq == 0 {
		return "", errors.New("no message given: sequence numbers start at 1")
	}
	id = string(randomBytes(16))
	key := c.key(room)
	ch := &protocol.Change{Room: key, Kind: kind, Target: seq, ID: id, Text: text}
	if e := c.do(func(l *loop) {
		if l.unsupported() {
			err = errNoMessages
			return
		}
		err = l.queue(&outgoing{room: key, id: id, text: text, change: ch})
	}); e != nil {
		return "", e
	}
	return id, err
}

// Typing tells the room's other members that the user is typing. Call it
// on every keystroke: it sends at most one TYPING per room every 3
// seconds, and nothing while not connected, before the room is joined,
// or in a room above the server's size for typing indicators. It fails
// with ErrNotInRoom for a room not joined and ErrUnsupported for a server
// without typing indicators.
func (c *Client) Typing(room string) error {
	return c.typing(room, false)
}

// StopTyping tells the room's other members that the user stopped typing
// (the draft was sent elsewhere, or cleared); it sends only if a TYPING
// went out in the last 6 seconds. A message sent to the room needs none:
// members stop showing the indicator at the message.
func (c *Client) StopTyping(room string) error {
	return c.typing(room, true)
}

func (c *Client) typing(room string, stopped bool) error {
	var err error
	if e := c.do(func(l *loop) { err = l.typing(c.key(room), stopped, time.Now()) }); e != nil {
		return e
	}
	return err
}

func (l *loop) typing(key string, stopped bool, now time.Time) error {
	if l.unsupported() {
		return errNoMessages
	}
	r := l.rooms[key]
	if r == nil || !r.wanted() {
		return ErrNotInRoom
	}
	if l.conn == nil || r.state != roomJoined || r.modes&protocol.ModeNoTyping != 0 {
		return nil // ephemeral: nothing to send later
	}
	switch {
	case stopped && !r.typingSent.IsZero() && now.Sub(r.typingSent) < typingShown:
		r.typingSent = time.Time{}
		l.enqueue(&protocol.Typing{Room: key, Stopped: true})
	case !stopped && (r.typingSent.IsZero() || now.Sub(r.typingSent) >= typingEvery):
		r.typingSent = now
		l.enqueue(&protocol.Typing{Room: key})
	}
	return nil
}

// Search asks the server for the messages matching query (words; the
// server's full-text search) in the rooms this connection has joined and
// our name's direct-message rooms, or only in opts.Room, and waits for
// the results or the end of ctx. Searches are answered one at a time, in
// the order asked. The server's refusal comes back as a *protocol.Error:
// invalid (no words in the query), forbidden (opts.Room is not one we
// may read). It fails with ErrUnsupported for a server without search,
// ErrNotConnected while not connected, and ErrConnectionLost when the
// connection drops before the answer.
func (c *Client) Search(ctx context.Context, query string, opts SearchOptions) (SearchResults, error) {
	switch {
	case !utf8.ValidString(query):
		return SearchResults{}, errors.New("the query is not valid UTF-8")
	case query == "":
		return SearchResults{}, errors.New("the query is empty")
	case opts.Limit < 0:
		return SearchResults{}, fmt.Errorf("the limit %d is negative", opts.Limit)
	}
	if limit := c.maxText.Load(); int64(len(query)) > limit {
		return SearchResults{}, fmt.Errorf("the query is %d bytes; at most %d", len(query), limit)
	}
	s := protocol.Search{Query: query, Limit: uint64(opts.Limit)}
	if opts.Room != "" {
		key, err := c.RoomKey(opts.Room)
		if err != nil {
			return SearchResults{}, err
		}
		s.Room = key
	}
	if !opts.Before.IsZero() {
		s.Before = uint64(max(0, opts.Before.UnixMilli()))
	}
	req := &searchRequest{msg: s, reply: make(chan searchReply, 1)}
	var err error
	if e := c.do(func(l *loop) { err = l.search(req) }); e != nil {
		return SearchResults{}, e
	}
	if err != nil {
		return SearchResults{}, err
	}
	select {
	case r := <-req.reply:
		return r.res, r.err
	case <-ctx.Done():
		return SearchResults{}, ctx.Err()
	case <-c.done:
		return SearchResults{}, ErrClosed
	}
}

type searchReply struct {
	res SearchResults
	err error
}

// searchRequest is a SEARCH on the wire waiting for its RESULTS or ERROR.
type searchRequest struct {
	msg   protocol.Search
	order uint64 // when it was queued, among IDENTIFY, MODERATEs and other SEARCHes
	// afterJoin: the room's JOIN was on its way when the SEARCH was sent
	// (a refusal of the room may be the JOIN's).
	afterJoin bool
	reply     chan searchReply // buffered: the loop never waits for a caller gone
}

func (l *loop) search(req *searchRequest) error {
	if l.unsupported() {
		return errNoMessages
	}
	if l.conn == nil {
		return ErrNotConnected
	}
	if n := uint64(len(req.msg.Room)); n > l.welcome.MaxRoom && !protocol.IsDM(req.msg.Room) {
		// The server would answer too-long, which closes the connection.
		return fmt.Errorf("the room name is %d bytes; the server allows %d", n, l.welcome.MaxRoom)
	}
	l.requests++
	req.order = l.requests
	if r := l.rooms[req.msg.Room]; r != nil && r.state == roomJoining {
		req.afterJoin = true
	}
	l.searches = append(l.searches, req)
	l.enqueue(&req.msg)
	return nil
}

// onResults answers the SEARCH it is for: the oldest with its query (the
// server answers in order and echoes the query).
func (l *loop) onResults(m *protocol.Results) {
	i := slices.IndexFunc(l.searches, func(s *searchRequest) bool { return s.msg.Query == m.Query })
	if i < 0 {
		if len(l.searches) == 0 {
			return // not asked on this connection
		}
		i = 0
	}
	req := l.searches[i]
	l.searches = slices.Delete(l.searches, i, i+1)
	res := SearchResults{Query: m.Query, More: m.More, Hits: make([]SearchHit, 0, len(m.Hits))}
	for _, h := range m.Hits {
		res.Hits = append(res.Hits, SearchHit{Room: h.Room, Seq: h.Seq, Time: protocol.FromMillis(h.Time), Sender: h.Sender,
			Text: h.Text, Matches: h.Matches})
	}
	req.reply <- searchReply{res: res}
}

// searchRefused reports whether e refuses a SEARCH on the wire, and if so
// hands it to its caller.
//
// The server refuses a SEARCH's scope (forbidden: a room not joined) and
// its query (invalid: no word) as it reads the frame, so these come in
// the order of the connection's frames; only the store's failures
// (unavailable) come later. A refusal names the SEARCH's room (none for a
// search of every room), so e goes to the oldest SEARCH with e's room,
// unless a frame that may draw the same refusal without an id went before
// that SEARCH and has no answer yet:
//   - IDENTIFY (refused with no room), while it waits;
//   - a MODERATE of the room sent before it;
//   - the room's JOIN, when it was on its way as the SEARCH was sent and
//     is still (a direct-message room is refused forbidden).
//
// READ is refused forbidden only after a JOIN without a name key, and
// this client's JOINs always carry one (Config.Secret is generated when
// empty); the other frames of a room (HISTORY, TYPING, LEAVE) are never
// refused forbidden or invalid, and refusals of SEND and CHANGE carry
// their id. Errors that end a membership or refuse a SEND or a JOIN
// (kicked, banned, muted, invite-only) are never a SEARCH's.
func (l *loop) searchRefused(e *protocol.Error) bool {
	if len(l.searches) == 0 || e.ID != "" {
		return false
	}
	switch e.Code {
	case protocol.CodeForbidden, protocol.CodeInvalid, protocol.CodeUnavailable:
	default:
		return false
	}
	i := slices.IndexFunc(l.searches, func(s *searchRequest) bool { return s.msg.Room == e.Room })
	if i < 0 {
		return false
	}
	req := l.searches[i]
	if e.Room == "" && l.identifying && l.identifyOrder < req.order {
		return false
	}
	if len(l.mods) > 0 && l.mods[0].order < req.order && l.mods[0].msg.Room == e.Room {
		return false // the MODERATE went first
	}
	if req.afterJoin {
		if r := l.rooms[e.Room]; r != nil && r.state == roomJoining {
			req.afterJoin = false // the JOIN's refusal; the SEARCH's follows
			return false
		}
	}
	l.searches = slices.Delete(l.searches, i, i+1)
	req.reply <- searchReply{err: e}
	return true
}

// failSearches answers the SEARCHes still waiting when the connection is
// lost.
func (l *loop) failSearches(cause error) {
	for _, req := range l.searches {
		req.reply <- searchReply{err: fmt.Errorf("%w (%v)", ErrConnectionLost, cause)}
	}
	clear(l.searches)
	l.searches = l.searches[:0]
}

// onUpdate turns an UPDATE of a joined room into an Updated. It moves the
// resume point like a MESSAGE: the change has its place in the room.
func (l *loop) onUpdate(m *protocol.Update) {
	r := l.rooms[m.Room]
	if r == nil || r.state != roomJoined || m.Seq <= r.lastSeen {
		return // not ours, on its way out, or seen already
	}
	r.lastSeen = m.Seq
	ev := Updated{Room: m.Room, Seq: m.Seq, Time: protocol.FromMillis(m.Time), Actor: m.Actor, Kind: m.Kind,
		Target: m.Target, Emoji: m.Emoji, History: m.Seq <= r.head, Own: protocol.Key(m.Actor) == l.c.nameKey}
	if m.State != nil {
		st := *m.State
		st.Room = m.Room
		msg := l.message(&st, m.Target <= r.head)
		ev.Message = &msg
	}
	l.c.events.push(ev)
}

func (l *loop) onIsTyping(m *protocol.IsTyping) {
	r := l.rooms[m.Room]
	if r == nil || r.state != roomJoined || protocol.Key(m.Name) == l.c.nameKey {
		return // not ours, or our own name (another device of it)
	}
	l.c.events.push(Typing{Room: m.Room, Name: m.Name, Stopped: m.Stopped})
}

// settle gives up the outbox entry a refusal names by its id (a server
// with WelcomeMessages names the SEND or CHANGE it refuses): a RoomError
// with Stays lists it. It reports whether e named one.
func (l *loop) settle(e *protocol.Error) bool {
	if e.ID == "" {
		return false
	}
	i := slices.IndexFunc(l.outbox, func(o *outgoing) bool { return o.id == e.ID && o.room == e.Room })
	if e.Code == protocol.CodeMuted {
		if r := l.rooms[e.Room]; r != nil {
			r.modes |= protocol.ModeMuted
		}
	}
	if i < 0 {
		return true // settled already (a re-send answered twice)
	}
	o := l.outbox[i]
	if l.reupload(o, e) {
		return true
	}
	l.giveUp(o, e)
	return true
}

// dropUnsupported gives up the changes queued for a server that turns out
// not to take them (no WelcomeMessages), and the reply targets of
// messages (they go as plain messages).
func (l *loop) dropUnsupported() {
	if l.messages() {
		return
	}
	dropped := map[string][]string{}
	l.outbox = slices.DeleteFunc(l.outbox, func(o *outgoing) bool {
		o.reply = 0
		if o.change != nil {
			dropped[o.room] = append(dropped[o.room], o.id)
			return true
		}
		return false
	})
	for room, ids := range dropped {
		l.c.events.push(RoomError{Room: room, Unsent: ids, Stays: true, Err: protocol.NewError(protocol.CodeInvalid, room,
			"the server does not support edits, deletions and reactions (it is older than this client)")})
	}
	l.checkDrained()
}

// reactions converts a message's reactions, marking ours.
func (l *loop) reactions(rs []protocol.Reaction) []Reaction {
	if len(rs) == 0 {
		return nil
	}
	out := make([]Reaction, 0, len(rs))
	for _, x := range rs {
		if x.Count == 0 {
			continue
		}
		mine := slices.ContainsFunc(x.Names, func(n string) bool { return protocol.Key(n) == l.c.nameKey })
		out = append(out, Reaction{Emoji: x.Emoji, Count: int(min(x.Count, 1<<31-1)), Names: x.Names, Mine: mine})
	}
	return out
}
