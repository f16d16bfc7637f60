package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"chat/client"
	"chat/internal/modcmd"
	"chat/protocol"
)

// term is the terminal's view of the chat: the rooms it is in, which one
// lines go to, and how events are printed.
type term struct {
	c      *client.Client
	out    io.Writer // the transcript and what commands print
	errOut io.Writer // what went wrong with a line or command
	server string
	me     string // our name's key
	// refused counts lines the client refused at once (not in the room).
	refused int

	start   string   // the -room room: refused at the start (alone), it ends the program
	current string   // the room lines are sent to; "" when in none
	order   []string // rooms in the order they were joined, for /part to fall back on
	views   map[string]*view
	// partOnJoin: rooms /part left while not connected, to leave once
	// joined (after the lines typed for them).
	partOnJoin map[string]bool

	lists      int      // /rooms asked, RoomList not yet printed
	unasked    []string // /rooms typed before the connection was up, asked once it is
	identified bool     // the first Identified was printed

	mods    int         // moderation commands without their answer yet
	results chan func() // the answers, to print on the terminal's loop
	seqs    bool        // /seqs on: messages show their numbers (for /delete)

	// tty: the output is a terminal (not a pipe): search matches are
	// shown in bold, and who is typing.
	tty bool
	// changes are the commands on messages (/edit, /delete, /react…)
	// sent and not yet acknowledged, by id: a refusal names the command.
	changes map[string]string
	// searching counts the searches without their answer yet;
	// lastSearch and searchFrom are where /search alone goes on.
	searching  int
	lastSearch string
	searchFrom time.Time
	// uploads are the files /upload sent whose message is not stored
	// yet, by id; downloads counts the /downloads not finished, moved
	// is set when one of them made progress (the end of input waits as
	// long as they do), and transfers has their goroutines.
	uploads   map[string]*sending
	downloads int
	moved     bool
	transfers sync.WaitGroup
}

// view is a room the terminal is in, or joining.
type view struct {
	key     string
	label   string // #general, or @bob for the direct messages with bob
	joined  bool
	members map[string]string // by key
	count   int
	// shown: for a direct-message room joined because a message came,
	// the notices printed; the join's history up to there is not printed
	// again.
	shown uint64
	// printed is the last message printed, marked read after a quiet
	// moment (marked).
	printed, marked uint64
	topic           string // set by an operator
	operator        bool   // our name is an operator of the room
	// waiting are the moderation commands typed before the room was
	// joined, run once it is.
	waiting []func()
	// recent are the last messages printed (at most maxRecent), for
	// the quotes of replies; deleted the deletions printed.
	recent      map[uint64]recent
	recentOrder []uint64
	deleted     map[uint64]bool
	// typing: who was last seen typing, by key, and when.
	typing map[string]time.Time
	// files are the files of the messages printed (at most maxRecent),
	// by number, for /download.
	files map[uint64]*protocol.File
}

func newTerm(c *client.Client, room, server string, out, errOut io.Writer) *term {
	t := &term{c: c, out: out, errOut: errOut, server: server, me: protocol.Key(c.Name()),
		start: room, current: room, views: map[string]*view{}, partOnJoin: map[string]bool{}, results: make(chan func()),
		tty: isTerminal(out), changes: map[string]string{}, uploads: map[string]*sending{}}
	t.open(room)
	return t
}

// label names a room in the transcript: #room, or @peer for the direct
// messages with peer.
func (t *term) label(room string) string {
	if peer, ok := protocol.DMPeer(room, t.me); ok {
		return "@" + peer
	}
	if protocol.IsDM(room) {
		return room
	}
	return "#" + room
}

// open adds a room the terminal is joining, if new.
func (t *term) open(room string) *view {
	v := t.views[room]
	if v == nil {
		v = &view{key: room, label: t.label(room), members: map[string]string{}}
		t.views[room] = v
		t.order = append(t.order, room)
	}
	return v
}

// close forgets a room; if it was the current one, the room joined most
// recently before becomes current.
func (t *term) close(room string) {
	if v := t.views[room]; v != nil {
		t.mods -= len(v.waiting) // never asked: the room is gone
	}
	delete(t.views, room)
	t.order = slices.DeleteFunc(t.order, func(r string) bool { return r == room })
	if t.current == room {
		t.current = ""
		if n := len(t.order); n > 0 {
			t.current = t.order[n-1]
			fmt.Fprintf(t.out, "-- now talking in %s\n", t.views[t.current].label)
		}
	}
}

// prefix is what starts a line about room: nothing while the terminal is
// in that room alone, the room's label otherwise, and always for direct
// messages.
func (t *term) prefix(room string) string {
	if len(t.views) <= 1 && room == t.current && !protocol.IsDM(room) {
		return ""
	}
	if v := t.views[room]; v != nil {
		return "[" + v.label + "] "
	}
	return "[" + t.label(room) + "] "
}

// line handles a line of input: a command, or text for the current room.
// It returns the id of a message sent, if any.
func (t *term) line(line string) (id string) {
	if strings.TrimSpace(line) == "" {
		return ""
	}
	if strings.HasPrefix(line, "//") {
		return t.send(t.current, line[1:])
	}
	if !strings.HasPrefix(line, "/") {
		return t.send(t.current, line)
	}
	cmd, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
	arg = strings.TrimSpace(arg)
	switch cmd {
	case "/join":
		t.join(arg)
	case "/part":
		t.part(arg)
	case "/msg":
		return t.msg(arg)
	case "/rooms":
		t.listRooms(arg)
	case "/names":
		t.names()
	case "/help":
		t.help()
	case "/reply", "/edit", "/delete", "/react", "/unreact", "/search":
		id, _ := t.actCommand(cmd, arg)
		return id
	case "/upload", "/download":
		id, _ := t.fileCommand(cmd, arg)
		return id
	default:
		if t.modCommand(line) {
			return ""
		}
		t.fail("unknown command %s; /help lists the commands, and // starts a line that begins with /", clean(cmd))
	}
	return ""
}

// listRooms asks for the server's rooms; before the connection is up (a
// script's first line comes at once) it asks once connected.
func (t *term) listRooms(query string) {
	t.lists++
	err := t.c.ListRooms(query)
	switch {
	case errors.Is(err, client.ErrNotConnected):
		t.unasked = append(t.unasked, query)
	case err != nil:
		t.lists--
		t.fail("/rooms: %v", err)
	}
}

func (t *term) fail(format string, args ...any) {
	fmt.Fprintf(t.errOut, "chat: "+format+"\n", args...)
}

func (t *term) send(room, text string) string {
	if room == "" {
		t.fail("not sent: you are in no room; /join one")
		return ""
	}
	id, err := t.c.Send(room, text)
	if err != nil {
		// Refused at once (the room was refused before the line came):
		// the same line as for the lines the client gave up, and the
		// same exit.
		t.refused++
		t.fail("1 messages not sent: %v", err)
		return ""
	}
	return id
}

// roomArg turns a room the user named (after /join, or with -room) into
// the room's key: a room name, or @NAME for the direct messages with NAME.
func roomArg(c *client.Client, arg string) (string, error) {
	if name, ok := strings.CutPrefix(arg, "@"); ok && protocol.CheckRoom(arg) != nil {
		if err := protocol.CheckMemberName(name); err != nil {
			return "", fmt.Errorf("the name %w", err)
		}
		arg = c.DirectRoom(name)
	}
	return c.RoomKey(arg)
}

func (t *term) join(arg string) {
	arg, code, _ := strings.Cut(arg, " ")
	code = strings.TrimSpace(code)
	if arg == "" || strings.Contains(code, " ") {
		t.fail("/join needs a room: /join ROOM [INVITE-CODE], or /join @NAME for direct messages")
		return
	}
	room, err := roomArg(t.c, arg)
	if err != nil {
		t.fail("%v", err)
		return
	}
	if v := t.views[room]; v != nil {
		t.current = room
		fmt.Fprintf(t.out, "-- now talking in %s\n", v.label)
		return
	}
	delete(t.partOnJoin, room) // joined again before the part took effect
	if err := t.c.JoinWith(room, client.JoinOptions{Invite: code}); err != nil {
		t.fail("/join: %v", err)
		return
	}
	t.open(room)
	t.current = room
}

func (t *term) part(arg string) {
	if arg != "" {
		t.fail("/part leaves the current room and takes nothing after it; /join the room first")
		return
	}
	if t.current == "" {
		t.fail("/part: you are in no room")
		return
	}
	room := t.current
	if t.c.State() != client.Connected {
		// Not connected (a script's lines come before the connection
		// is up): a leave now would drop the lines typed for the room
		// before it. The room is left once joined, after them.
		t.partOnJoin[room] = true
	} else if err := t.c.Leave(room); err != nil {
		t.fail("/part: %v", err)
		return
	}
	// Left confirms it; meanwhile the room is out of the terminal's view.
	t.close(room)
}

func (t *term) msg(arg string) string {
	name, text, _ := strings.Cut(arg, " ")
	if name == "" || strings.TrimSpace(text) == "" {
		t.fail("usage: /msg NAME text")
		return ""
	}
	name = strings.TrimPrefix(name, "@")
	if err := protocol.CheckMemberName(name); err != nil {
		t.fail("/msg: the name %v", err)
		return ""
	}
	room := t.c.DirectRoom(name)
	if t.views[room] == nil {
		if err := t.c.Join(room); err != nil {
			t.fail("/msg: %v", err)
			return ""
		}
		t.open(room)
		if t.current == "" {
			t.current = room
		}
	}
	return t.send(room, text)
}

func (t *term) names() {
	v := t.views[t.current]
	if v == nil {
		t.fail("/names: you are in no room")
		return
	}
	if !v.joined {
		fmt.Fprintf(t.out, "-- %s: not joined yet\n", v.label)
		return
	}
	names := make([]string, 0, len(v.members))
	for _, n := range v.members {
		names = append(names, clean(n))
	}
	slices.Sort(names)
	more := ""
	if v.count > len(names) {
		more = fmt.Sprintf(" and %d more", v.count-len(names))
	}
	fmt.Fprintf(t.out, "-- %d in %s: %s%s\n", v.count, v.label, strings.Join(names, ", "), more)
}

func (t *term) help() {
	here := "none now; /join one"
	if v := t.views[t.current]; v != nil {
		here = "now " + v.label
	}
	fmt.Fprintf(t.out, `-- commands:
--   /join ROOM      join ROOM, or switch to it; /join @NAME opens the direct messages with NAME
--   /part           leave the current room
--   /msg NAME text  send a direct message to NAME
--   /rooms [TEXT]   list the server's rooms (those whose name contains TEXT)
--   /names          who is in the current room
--   /help           this list
--   //text          send a line that starts with /text
-- other lines go to the current room: %s
-- messages (SEQ is a message's number, shown as [SEQ]):
`, here)
	for _, h := range messageHelp {
		fmt.Fprintf(t.out, "--   %-30s %s\n", h[0], h[1])
	}
	fmt.Fprintln(t.out, "-- files:")
	for _, h := range fileHelp {
		fmt.Fprintf(t.out, "--   %-30s %s\n", h[0], h[1])
	}
	fmt.Fprintln(t.out, "-- moderation (room operators, in the current room; server operators in any):")
	for _, h := range withoutDelete(modcmd.Help) {
		fmt.Fprintf(t.out, "--   %-30s %s\n", h[0], h[1])
	}
}

// pending reports whether something asked for is still to come: joins
// and room lists. At the end of input the terminal waits for them too.
func (t *term) pending() bool {
	if t.lists > 0 || t.mods > 0 || t.searching > 0 || t.downloads > 0 {
		return true
	}
	for _, v := range t.views {
		if !v.joined {
			return true
		}
	}
	return false
}

// markRead marks what was printed as read, for the name's other devices.
func (t *term) markRead() {
	for _, v := range t.views {
		if v.joined && v.printed > v.marked {
			v.marked = v.printed
			_ = t.c.MarkRead(v.key, v.printed) // an older server has no markers: nothing to do
		}
	}
}

// event prints ev and reports whether the program should end, and how.
func (t *term) event(ev client.Event) (code int, done bool) {
	w := t.out
	switch e := ev.(type) {
	case client.StateChanged:
		switch e.State {
		case client.Connected:
			// Which server, of a list or of a name's addresses: the
			// user can tell a node that misbehaves.
			switch {
			case e.Remote != "" && !strings.Contains(e.Addr, e.Remote):
				fmt.Fprintf(w, "-- connected to %s (%s)\n", e.Addr, e.Remote)
			case e.Addr != "":
				fmt.Fprintf(w, "-- connected to %s\n", e.Addr)
			default:
				fmt.Fprintln(w, "-- connected")
			}
			unasked := t.unasked
			t.unasked = nil
			for _, q := range unasked {
				t.lists--
				t.listRooms(q)
			}
		case client.Reconnecting:
			if e.RetryIn == 0 {
				// Parked after the server's idle timeout: the next /join connects.
				fmt.Fprintf(w, "-- idle, disconnected until a room is joined: %v\n", e.Err)
				break
			}
			fmt.Fprintf(w, "-- reconnecting in %v: %v\n", e.RetryIn.Round(100*time.Millisecond), e.Err)
		case client.Closed:
			if e.Err == nil {
				return 0, true
			}
			fmt.Fprintf(w, "-- disconnected: %v\n", e.Err)
			var cerr *client.CertificateError
			if errors.As(e.Err, &cerr) {
				// -trust replaces the fingerprint saved for the server.
				if cerr.Pinned == "" {
					fmt.Fprint(w, "-- to trust this server, run again with:")
				} else {
					fmt.Fprint(w, "-- only if the server's operator confirms the new certificate, trust it instead of the old one with:")
				}
				trust := cerr.Fingerprint
				if strings.Contains(t.server, ",") && cerr.Addr != "" {
					trust = cerr.Addr + "=" + trust // only that server of the list
				}
				fmt.Fprintf(w, " chat -server %s -trust %s\n", t.server, trust)
			}
			return 1, true
		}
	case client.Identified:
		if t.identified {
			break
		}
		t.identified = true
		var unread []string
		for _, d := range e.DMs {
			if d.Head > d.Read {
				unread = append(unread, fmt.Sprintf("@%s (%d)", clean(d.Peer), d.Head-d.Read))
			}
		}
		if len(unread) > 0 {
			fmt.Fprintf(w, "-- unread direct messages: %s; /join @NAME to read them\n", strings.Join(unread, ", "))
		}
	case client.IdentityRefused:
		fmt.Fprintf(w, "-- the server does not know this terminal as %s (%v): direct messages and mentions reach it only in the rooms it is in\n",
			clean(t.c.Name()), e.Err)
	case client.Joined:
		if t.partOnJoin[e.Room] {
			delete(t.partOnJoin, e.Room)
			if err := t.c.Leave(e.Room); err != nil {
				t.fail("/part: %v", err)
			}
			break // Left says it
		}
		v := t.open(e.Room)
		v.joined, v.count = true, e.Count
		clear(v.members)
		for _, n := range e.Members {
			v.members[protocol.Key(n)] = n
		}
		if e.Reset {
			fmt.Fprintf(w, "-- the history of %s was reset on the server; what follows replaces what was shown above\n", e.Room)
			v.shown, v.printed, v.marked = 0, 0, 0
		}
		verb := "joined"
		if e.Resumed {
			verb = "rejoined"
		}
		fmt.Fprintf(w, "-- %s %s as %s; %d here: %s\n", verb, e.Room, clean(e.Name), e.Count, clean(strings.Join(e.Members, ", ")))
		if e.Removed > 0 {
			fmt.Fprintf(w, "-- messages of %s up to #%d that you had not seen were removed by the server's history retention\n", e.Room, e.Removed)
		}
		if e.Topic != "" && (!e.Resumed || e.Topic != v.topic) {
			fmt.Fprintf(w, "-- topic: %s\n", clean(e.Topic))
		}
		v.topic = e.Topic
		var modes []string
		if e.Operator && (!e.Resumed || !v.operator) {
			modes = append(modes, "you are an operator of "+v.label)
		}
		if e.InviteOnly && !e.Resumed {
			modes = append(modes, v.label+" is invite-only")
		}
		if e.Muted {
			modes = append(modes, "you are muted in "+v.label+": your messages are not sent")
		}
		if len(modes) > 0 {
			fmt.Fprintf(w, "-- %s\n", strings.Join(modes, "; "))
		}
		v.operator = e.Operator
		waiting := v.waiting
		v.waiting = nil
		for _, f := range waiting {
			f()
		}
	case client.Message:
		v := t.views[e.Room]
		if v == nil {
			break // left meanwhile
		}
		// Printed now or when its notice came: read either way.
		v.printed = max(v.printed, e.Seq)
		if e.Seq <= v.shown {
			// Printed when its notice came. It may come as history or,
			// when the join took effect before the room delivered it
			// (the notice goes out at commit), live after JOINED.
			break
		}
		t.message(e)
	case client.Notice:
		t.notice(e)
	case client.Uploading:
		t.uploading(e)
	case client.Acked:
		t.uploadDone(e.ID)
	case client.Updated:
		t.updated(e)
	case client.Typing:
		t.typing(e)
	case client.ModEvent:
		t.modEvent(e)
	case client.OperRefused:
		fmt.Fprintf(w, "-- no longer a server operator: %s\n", modcmd.ErrorText(e.Err))
	case client.Presence:
		v := t.views[e.Room]
		if v == nil {
			break
		}
		v.count = e.Count
		for _, ch := range e.Changes {
			if protocol.Key(ch.Name) == t.me {
				// Our own join, or our stale session leaving when a
				// reconnect takes over: not news to us.
				continue
			}
			switch ch.Kind {
			case protocol.PresenceJoined:
				v.members[protocol.Key(ch.Name)] = ch.Name
			case protocol.PresenceLeft:
				delete(v.members, protocol.Key(ch.Name))
			default:
				continue // a kind from a later protocol revision: the spec says skip it
			}
			fmt.Fprintf(w, "%s* %s %s\n", t.prefix(e.Room), clean(ch.Name), ch.Kind)
		}
	case client.Left:
		for _, id := range e.Unsent {
			delete(t.changes, id)
			t.uploadDone(id)
		}
		if len(e.Unsent) > 0 {
			fmt.Fprintf(w, "-- %d messages to %s not sent\n", len(e.Unsent), t.label(e.Room))
		}
		fmt.Fprintf(w, "-- left %s\n", t.label(e.Room))
		if t.views[e.Room] != nil { // lost while leaving, say
			t.close(e.Room)
		}
	case client.RoomList:
		t.lists = max(0, t.lists-1)
		t.roomList(e)
	case client.RoomError:
		if t.changeRefused(e) || t.uploadRefused(e) {
			break
		}
		for _, id := range e.Unsent {
			delete(t.changes, id)
			t.uploadDone(id)
		}
		if len(e.Unsent) > 0 {
			fmt.Fprintf(w, "-- %d messages not sent\n", len(e.Unsent))
		}
		v := t.views[e.Room]
		switch e.Err.Code {
		case protocol.CodeKicked, protocol.CodeBanned, protocol.CodeMuted, protocol.CodeInviteOnly:
			fmt.Fprintln(w, "-- "+clean(modcmd.RoomText(t.label(e.Room), e.Room, e.Err, v != nil && v.joined)))
		default:
			fmt.Fprintf(w, "-- %v\n", e.Err)
		}
		if e.Stays || e.Room == "" || v == nil {
			break
		}
		wasJoined := v.joined
		t.close(e.Room)
		if e.Room == t.start && len(t.views) == 0 && !wasJoined {
			if e.Err.Code == protocol.CodeInviteOnly {
				fmt.Fprintln(w, "-- with an invite code: chat -room "+clean(e.Room)+" -invite CODE")
			}
			return 1, true // our only room refused us (by the server, or the client by its limits)
		}
	}
	return 0, false
}

// message prints a message: "[15:04] bob: text", with its number
// ("[15:04] [12] bob: text") once numbers are on, what it answers
// ("alice (reply to [7] bob: first words…): text"), and, for one from
// history, whether it was edited and its reactions.
func (t *term) message(e client.Message) {
	v := t.views[e.Room]
	text := strings.ReplaceAll(clean(e.Text), "\n", "\n        ")
	switch {
	case e.Deleted:
		text = "(message deleted)"
	case !e.Edited.IsZero():
		text += " (edited)"
	}
	text += reactionsText(e.Reactions)
	seq := ""
	if t.seqs {
		seq = seqLabel(e.Seq) + " "
	}
	quote := t.replyQuote(v, e.Reply)
	if v != nil {
		v.remember(e.Seq, e.Sender, e.Text)
		delete(v.typing, protocol.Key(e.Sender))
	}
	if e.File != nil && !e.Deleted {
		// "alice sent photo.jpg (1.2 MB): caption"
		if v != nil {
			v.rememberFile(e.Seq, e.File)
		}
		if e.Text != "" {
			text = ": " + text
		}
		fmt.Fprintf(t.out, "%s[%s] %s%s%s%s%s\n", t.prefix(e.Room), e.Time.Local().Format("15:04"), seq, clean(e.Sender), quote,
			fileLine(e.File), text)
		return
	}
	fmt.Fprintf(t.out, "%s[%s] %s%s%s: %s\n", t.prefix(e.Room), e.Time.Local().Format("15:04"), seq, clean(e.Sender), quote, text)
}

// notice prints a message for us from a room the terminal is not in
// (those of its rooms come as messages too). A direct message opens the
// conversation: the terminal joins its room.
func (t *term) notice(e client.Notice) {
	m := e.Message
	v := t.views[m.Room]
	switch {
	case v != nil && v.joined:
		return // the message comes as such
	case v == nil && m.Own:
		// Our own message in a conversation this terminal is not in:
		// written on another device, or the late notice of one written
		// here just before a /part. Neither reopens the conversation;
		// the other's answer does.
		return
	case v == nil && e.Kind == protocol.NoticeDirect:
		if err := t.c.Join(m.Room); err != nil {
			t.fail("joining the direct messages in %s: %v", m.Room, err)
		} else {
			v = t.open(m.Room)
			if t.current == "" {
				t.current = m.Room
			}
			fmt.Fprintf(t.out, "-- direct message from %s; answer with /msg %s text\n", clean(m.Sender), clean(m.Sender))
		}
	case v == nil && e.Kind != protocol.NoticeMention:
		return // a kind from a later protocol revision
	}
	if v != nil {
		v.shown = max(v.shown, m.Seq)
	}
	t.message(m)
}

func (t *term) roomList(e client.RoomList) {
	w := t.out
	what := "rooms"
	if e.Query != "" {
		what = fmt.Sprintf("rooms matching %q", clean(e.Query))
	}
	if len(e.Rooms) == 0 {
		fmt.Fprintf(w, "-- no %s\n", what)
		return
	}
	if len(e.Rooms) == 1 {
		what = strings.Replace(what, "rooms", "room", 1)
	}
	fmt.Fprintf(w, "-- %d %s:\n", len(e.Rooms), what)
	width := 0
	for _, r := range e.Rooms {
		width = max(width, len(clean(r.Room))+1)
	}
	now := time.Now()
	for _, r := range e.Rooms {
		last := "no messages"
		if !r.LastActive.IsZero() {
			at := r.LastActive.Local()
			if y, m, d := at.Date(); y == now.Year() && m == now.Month() && d == now.Day() {
				last = "last message " + at.Format("15:04")
			} else {
				last = "last message " + at.Format("2006-01-02 15:04")
			}
		}
		here := "here"
		if t.views[r.Room] != nil {
			here = "here, you included"
		}
		fmt.Fprintf(w, "--   %-*s %3d %s, %s\n", width, "#"+clean(r.Room), r.Members, here, last)
	}
}
