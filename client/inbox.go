package client

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"chat/protocol"
)

// What a connection does beyond its rooms: identity (IDENTIFY), read
// markers (READ, MARKER), scrollback (HISTORY, PAGE), the room list (LIST,
// ROOMS) and notices (NOTICE). A server announces these with the WELCOME
// flag protocol.WelcomeInbox; an older one gets none of these frames.

// Errors of History, MarkRead and ListRooms.
var (
	// ErrUnsupported: the server is older than this client and has no
	// scrollback, read markers or room list.
	ErrUnsupported = errors.New("the server does not support scrollback, read markers or the room list (it is older than this client)")
	// ErrNotConnected: the request needs a connection (or, for History, a
	// joined room) and there is none now; ask again after the next
	// Joined (or StateChanged to Connected).
	ErrNotConnected = errors.New("not connected to the server; try again once connected")
)

// inbox reports whether the current (or, while disconnected, the last)
// server speaks the frames above.
func (l *loop) inbox() bool {
	return l.welcome != nil && l.welcome.Flags&protocol.WelcomeInbox != 0
}

// identify sends IDENTIFY on a new connection to a server that knows it,
// and asks again for the room lists lost with the last connection.
func (l *loop) identify() {
	if !l.inbox() {
		return
	}
	if n := max(len(l.c.cfg.Name), len(l.c.nameKey)); uint64(n) > l.welcome.MaxName {
		// The server would answer too-long, which closes the connection;
		// the rooms are refused for the same reason (refuseLong).
		l.c.events.push(IdentityRefused{Err: &protocol.Error{Code: protocol.CodeTooLong,
			Text: fmt.Sprintf("the name %q is longer than the %d bytes the server allows", l.c.cfg.Name, l.welcome.MaxName)}})
	} else {
		l.identifying = true
		l.requests++
		l.identifyOrder = l.requests
		l.enqueue(&protocol.Identify{Name: l.c.cfg.Name, Secret: l.c.cfg.Secret, Key: l.c.cfg.Key})
	}
	for _, q := range l.lists {
		l.enqueue(&protocol.List{Query: q})
	}
}

func (l *loop) onIdentified(m *protocol.Identified) {
	l.identifying = false
	if !l.wantsRooms() {
		l.attempt = 0 // the connection proved itself: healthy has no rooms to go by
	}
	ev := Identified{Name: m.Name}
	for _, d := range m.DMs {
		peer, _ := protocol.DMPeer(d.Room, m.Name)
		ev.DMs = append(ev.DMs, RoomState{Room: d.Room, Peer: peer, Head: d.Head, Time: protocol.FromMillis(d.Time), Read: d.Read})
		if r := l.rooms[d.Room]; r != nil {
			r.read = max(r.read, d.Read)
		}
	}
	l.c.events.push(ev)
	l.sendFetches()
}

// message converts a message of the wire to the event.
func (l *loop) message(m *protocol.Msg, history bool) Message {
	own := protocol.Key(m.Sender) == l.c.nameKey
	msg := Message{Room: m.Room, Seq: m.Seq, Time: protocol.FromMillis(m.Time), Sender: m.Sender, ID: m.ID, Text: m.Text,
		Own: own, Deleted: m.Text == "" && m.File == nil, File: m.File, History: history, Mention: !own && !protocol.IsDM(m.Room) && protocol.Mentions(m.Text, l.c.cfg.Name),
		Reply: m.Reply, Reactions: l.reactions(m.Reactions)}
	if m.Edited != 0 {
		msg.Edited = protocol.FromMillis(m.Edited)
	}
	return msg
}

func (l *loop) onMarker(m *protocol.Marker) {
	if r := l.rooms[m.Room]; r != nil {
		r.read = max(r.read, m.Seq)
	}
	l.c.events.push(ReadMarker{Room: m.Room, Seq: m.Seq})
}

func (l *loop) onPage(m *protocol.Page) {
	if r := l.rooms[m.Room]; r != nil && len(r.history) > 0 {
		r.history = r.history[1:] // answered in order
	}
	ev := Page{Room: m.Room, Before: m.Before, First: m.First, Messages: make([]Message, 0, len(m.Messages))}
	for i := range m.Messages {
		ev.Messages = append(ev.Messages, l.message(&m.Messages[i], true))
	}
	l.c.events.push(ev)
}

func (l *loop) onRooms(m *protocol.Rooms) {
	if len(l.lists) > 0 {
		l.lists = l.lists[1:] // answered in order
	}
	ev := RoomList{Query: m.Query, Rooms: make([]RoomInfo, 0, len(m.Rooms))}
	for _, x := range m.Rooms {
		info := RoomInfo{Room: x.Room, Members: int(min(x.Members, 1<<31-1)), Head: x.Head}
		if x.Time != 0 {
			info.LastActive = protocol.FromMillis(x.Time)
		}
		ev.Rooms = append(ev.Rooms, info)
	}
	l.c.events.push(ev)
}

// queueRead queues a READ for r if its mark is ahead of the server's
// marker and none is queued yet (the queued one takes the newest mark).
func (l *loop) queueRead(r *room) {
	if r.mark <= r.read || r.readQueued || r.state != roomJoined || l.conn == nil || !l.inbox() {
		return
	}
	r.readQueued = true
	l.sendq = append(l.sendq, queued{read: r})
	l.pump()
}

func (l *loop) markRead(key string, seq uint64) error {
	if l.welcome != nil && !l.inbox() {
		return ErrUnsupported
	}
	r := l.rooms[key]
	if r == nil || !r.wanted() {
		return ErrNotInRoom
	}
	if r.everJoined {
		// Never past what the room had: a server clamps a mark to its head,
		// and a mark kept for later must not cover messages to come.
		seq = min(seq, max(r.head, r.lastSeen))
	}
	if seq <= max(r.read, r.mark) {
		return nil // markers only move forward
	}
	r.mark = seq
	l.queueRead(r)
	return nil
}

func (l *loop) history(key string, before uint64, limit int) error {
	if limit < 0 {
		return fmt.Errorf("history limit %d is negative", limit)
	}
	if l.welcome != nil && !l.inbox() {
		return ErrUnsupported
	}
	r := l.rooms[key]
	if r == nil || !r.wanted() {
		return ErrNotInRoom
	}
	if l.conn == nil || r.state != roomJoined {
		return ErrNotConnected
	}
	h := protocol.History{Room: key, Before: before, Limit: uint64(limit), Full: l.messages(), Files: l.files()}
	r.history = append(r.history, h)
	l.enqueue(&h)
	return nil
}

func (l *loop) listRooms(query string) error {
	if !utf8.ValidString(query) {
		return errors.New("the query is not valid UTF-8")
	}
	if l.conn == nil {
		return ErrNotConnected
	}
	if !l.inbox() {
		return ErrUnsupported
	}
	if n := len(protocol.Key(query)); uint64(n) > l.welcome.MaxRoom {
		return fmt.Errorf("the query is %d bytes; room names have at most %d", n, l.welcome.MaxRoom)
	}
	l.lists = append(l.lists, query)
	l.enqueue(&protocol.List{Query: query})
	return nil
}
