package ui

import (
	"fmt"
	"image"
	"slices"
	"strings"
	"time"

	"gioui.org/io/event"
	"gioui.org/io/key"
	"gioui.org/layout"
	"gioui.org/op"
	"gioui.org/op/clip"
	"gioui.org/op/paint"
	"gioui.org/unit"
	"gioui.org/widget"
	"gioui.org/widget/material"
	"golang.org/x/exp/shiny/materialdesign/icons"

	"chat/client"
	"chat/protocol"
)

// wideFrom is the window width from which the conversation list and the
// open conversation show side by side; narrower (a phone) they are two
// screens, the list first.
const wideFrom = unit.Dp(640)

// sidebarWidth is the conversation list's width in the wide layout.
const sidebarWidth = unit.Dp(272)

// shellIcons are the icons of the conversation list and its panels.
type shellIcons struct {
	back, add, bell, bellOff, message, search, signOut *widget.Icon
}

func loadShellIcons() shellIcons {
	return shellIcons{
		back:    mustIcon(icons.NavigationArrowBack),
		add:     mustIcon(icons.ContentAdd),
		bell:    mustIcon(icons.SocialNotifications),
		bellOff: mustIcon(icons.SocialNotificationsOff),
		message: mustIcon(icons.CommunicationChatBubbleOutline),
		search:  mustIcon(icons.ActionSearch),
		signOut: mustIcon(icons.ActionPowerSettingsNew),
	}
}

// panel is an overlay over the conversations.
type panel int

const (
	noPanel         panel = iota
	roomPanel             // join or create a room
	dmPanel               // start a direct conversation
	jumpPanel             // Ctrl+K: jump to a conversation by name
	searchPanelKind       // Ctrl+F: search the messages
)

// shell is the app once connected: the conversations of one connection,
// the list of them, the open one and the panels. It exists from the join
// on, hidden behind the form until the room the form asked for is joined.
type shell struct {
	name  string // ours
	want  string // the key of the room the form asked for
	shown bool

	conn connection
	// noFiles: the server said it takes no files (Connection.NoFiles);
	// the last connection's word holds while offline.
	noFiles bool

	rooms []*chatScreen // by name
	dms   []*chatScreen // the most recently active first
	byKey map[string]*chatScreen
	open  *chatScreen
	// left are the conversations the user left, by key, until joined
	// again: a Joined already on its way when the user left is ignored.
	left map[string]bool

	// narrow is whether the last frame had the one-pane layout; showList
	// whether that layout shows the list rather than the open conversation.
	narrow   bool
	showList bool

	panel    panel
	roomForm directoryPanel
	dmForm   directPanel
	jump     jumpList
	search   searchPanel
	focus    *widget.Editor // to be focused by UI.moveFocus

	// askNotify offers to turn notifications on (the browser asks the
	// user first); asked is set once the user was asked.
	askNotify, asked bool

	side                                        widget.List
	addRoomBtn, addDMBtn, signOutBtn, notifyBtn widget.Clickable
	emptyJoinBtn, emptyDMBtn, scrim, closePanel widget.Clickable
	panelCard                                   widget.Clickable // takes the clicks on the panel
}

func newShell(name, room string) *shell {
	s := &shell{name: name, want: protocol.Key(room), byKey: map[string]*chatScreen{}, left: map[string]bool{}}
	s.side.Axis = layout.Vertical
	s.roomForm.init()
	s.dmForm.init()
	s.jump.init()
	s.search.init()
	return s
}

// all returns the conversations in the list's order: rooms, then direct
// conversations.
func (s *shell) all() []*chatScreen {
	return append(slices.Clip(s.rooms), s.dms...)
}

// each yields the conversations in the list's order, without making a
// slice of them (for what runs every frame).
func (s *shell) each(yield func(*chatScreen) bool) {
	for _, list := range [][]*chatScreen{s.rooms, s.dms} {
		for _, c := range list {
			if !yield(c) {
				return
			}
		}
	}
}

// conv returns the conversation of room, adding it to the list if new.
func (s *shell) conv(u *UI, room string) *chatScreen {
	k := protocol.Key(room)
	if c := s.byKey[k]; c != nil {
		return c
	}
	c := newChatScreen(room, s.name, u.now)
	s.byKey[k] = c
	delete(s.left, k)
	if c.dm {
		s.dms = append(s.dms, c)
	} else {
		// Rooms in the order of their names: where to look for one does
		// not depend on when it was joined.
		at, _ := slices.BinarySearchFunc(s.rooms, c.room, func(x *chatScreen, k string) int { return strings.Compare(x.room, k) })
		s.rooms = slices.Insert(s.rooms, at, c)
	}
	return c
}

// sortDMs keeps the direct conversations most recent first.
func (s *shell) sortDMs() {
	slices.SortStableFunc(s.dms, func(a, b *chatScreen) int { return b.lastActive.Compare(a.lastActive) })
}

// unreadTotal is the number of unread messages of every conversation.
func (s *shell) unreadTotal() int {
	n := 0
	for c := range s.each {
		n += c.unread.count()
	}
	return n
}

// apply routes one event of the loop to its conversation.
func (s *shell) apply(u *UI, ev any) {
	now := u.now()
	switch e := ev.(type) {
	case Connection:
		s.conn.set(e, now)
		if e.State != Connected {
			// Without a connection nobody tells us who comes and goes:
			// the counts are history until each room is joined again.
			for c := range s.each {
				c.live, c.joined = false, false
			}
		} else if s.noFiles = e.NoFiles; s.panel == roomPanel && !s.roomForm.answered {
			s.roomForm.again = true // the next frame asks
		}
		return
	case Identity:
		s.name = e.Name
		for _, d := range e.DMs {
			c := s.conv(u, d.Room)
			c.unread.known(d.Read, d.Head)
			c.quiet = d.Quiet
			if d.Time.After(c.lastActive) {
				c.lastActive = d.Time
			}
		}
		s.sortDMs()
		return
	case Directory:
		s.roomForm.answer(e)
		return
	case SearchResults:
		s.search.answer(e)
		return
	case NotificationsAsk:
		s.askNotify = e.Ask
		return
	case RoomJoined:
		s.conn.set(Connection{State: Connected}, now) // a join needs a connection
		if s.left[protocol.Key(e.Room)] {
			return // sent before the loop knew the user left
		}
		c := s.conv(u, e.Room)
		c.apply(e, now)
		if !s.shown && protocol.Key(e.Room) == s.want {
			s.shown = true
			u.join.joined()
			s.openConv(u, c)
		}
		return
	}
	room := ""
	switch e := ev.(type) {
	case client.Message:
		room = e.Room
	case client.Acked:
		room = e.Room
	case client.Page:
		room = e.Room
	case Presence:
		room = e.Room
	case RoomFailed:
		room = e.Room
	case ReadMarker:
		room = e.Room
	case SendResult:
		room = e.Room
	case client.ModEvent:
		room = e.Room
	case ModerateResult:
		room = e.Room
	case MessageChanged:
		room = e.Room
	case Typing:
		room = e.Room
	case ChangeResult:
		room = e.Room
	case FileQueued:
		room = e.Room
	case UploadProgress:
		room = e.Room
	case AttachFailed:
		room = e.Room
	case FileSaved:
		room = e.Room
	}
	c := s.byKey[protocol.Key(room)]
	if c == nil {
		m, ok := ev.(client.Message)
		if !ok || !protocol.IsDM(m.Room) {
			return // a room we left
		}
		c = s.conv(u, m.Room)
	}
	c.apply(ev, now)
	if _, ok := ev.(client.Message); ok && c.dm {
		s.sortDMs()
	}
}

// openConv shows c and puts the cursor in its composer.
func (s *shell) openConv(u *UI, c *chatScreen) {
	if s.open != c {
		u.emit(OpenIntent{Room: c.room})
	}
	s.open, s.showList, s.panel = c, false, noPanel
	c.focusComposer = true
}

// leaveRoom leaves c at once; the loop tells the server.
func (s *shell) leaveRoom(u *UI, c *chatScreen) {
	delete(s.byKey, c.room)
	s.left[c.room] = true
	s.rooms = slices.DeleteFunc(s.rooms, func(x *chatScreen) bool { return x == c })
	s.dms = slices.DeleteFunc(s.dms, func(x *chatScreen) bool { return x == c })
	u.emit(LeaveRoomIntent{Room: c.room})
	if s.open == c {
		s.open = nil
		s.showList = true
		if all := s.all(); len(all) > 0 {
			s.open = all[0]
			u.emit(OpenIntent{Room: s.open.room})
		}
	}
}

// joinRoom opens room, joining it first if needed; it reports a problem
// with the name instead.
func (s *shell) joinRoom(u *UI, room string) string { return s.joinRoomWith(u, room, "") }

// joinRoomWith is joinRoom with an invite code. A room that was lost (a
// kick, a ban, a refusal) is joined again.
func (s *shell) joinRoomWith(u *UI, room, invite string) string {
	room = strings.TrimPrefix(strings.TrimSpace(room), "#")
	if room == "" {
		return "Type the name of a room."
	}
	if err := protocol.CheckRoom(room); err != nil || protocol.IsDM(room) {
		if err == nil {
			err = protocol.ErrDMForm
		}
		return "That room name cannot be used: it " + err.Error() + "."
	}
	if c := s.byKey[protocol.Key(room)]; c != nil {
		if c.gone != "" {
			c.gone, c.problem = "", ""
			u.emit(JoinRoomIntent{Room: room, Invite: invite})
		}
		s.openConv(u, c)
		return ""
	}
	c := s.conv(u, room)
	u.emit(JoinRoomIntent{Room: room, Invite: invite})
	s.openConv(u, c)
	return ""
}

// direct opens the direct conversation with peer, joining it if new; it
// reports a problem with the name instead.
func (s *shell) direct(u *UI, peer string) string {
	peer = strings.TrimPrefix(strings.TrimSpace(peer), "@")
	if peer == "" {
		return "Type the name of the person to write to."
	}
	if err := protocol.CheckMemberName(peer); err != nil {
		return "That name cannot be used: it " + err.Error() + "."
	}
	room := protocol.DMRoom(s.name, peer)
	c := s.byKey[room]
	if c == nil {
		c = s.conv(u, room)
		c.peerName = peer
		u.emit(DirectIntent{Peer: peer, Room: room})
	}
	s.openConv(u, c)
	return ""
}

// firstSend asks for the notification permission with the user's first
// message: sending is a gesture, and one that shows the app is in use.
func (s *shell) firstSend(u *UI) {
	if s.askNotify && !s.asked {
		s.asked = true
		u.emit(NotificationsIntent{})
	}
}

// step moves to the previous (dir −1) or next (dir 1) conversation with
// unread messages, going round the list.
func (s *shell) step(u *UI, dir int) {
	all := s.all()
	n := len(all)
	at := slices.Index(all, s.open)
	if at < 0 && dir < 0 {
		at = n // nothing open: start from the end
	}
	for i := 1; i <= n; i++ {
		j := ((at+dir*i)%n + n) % n
		if c := all[j]; c != s.open && c.unread.count() > 0 {
			s.openConv(u, c)
			return
		}
	}
}

// openPanel shows p with its field focused.
func (s *shell) openPanel(u *UI, p panel) {
	s.panel = p
	switch p {
	case roomPanel:
		s.focus = &s.roomForm.query
		s.roomForm.opened(u)
	case dmPanel:
		s.focus = &s.dmForm.name
		s.dmForm.err = ""
	case jumpPanel:
		s.focus = &s.jump.query
		s.jump.query.SetText("")
		s.jump.sel = 0
	case searchPanelKind:
		s.focus = &s.search.query
		s.search.query.SetCaret(0, s.search.query.Len()) // typing replaces the last query
	}
}

// openMessage opens the conversation of room at message seq (a search
// hit, a link to a message).
func (s *shell) openMessage(u *UI, room string, seq uint64) {
	k := protocol.Key(room)
	c := s.byKey[k]
	if c == nil {
		if !protocol.IsDM(k) {
			if p := s.joinRoom(u, k); p != "" {
				// Say why nothing opens, where the user clicked.
				if c := s.open; c != nil {
					c.log.notice("The link "+MessageLink(room, seq)+" cannot be opened. "+p, u.now())
				}
				return
			}
		}
		c = s.conv(u, k)
	}
	s.openConv(u, c)
	c.showMessage(seq, u.now())
}

// closePanels closes the open panel and the member list, reporting
// whether there was one.
func (s *shell) closePanels() bool {
	if c := s.open; c != nil && c.viewing != nil {
		c.viewing, c.viewNote = nil, "" // a picture at full size closes first
		return true
	}
	if s.panel != noPanel {
		s.panel = noPanel
		if s.open != nil {
			s.open.focusComposer = true
		}
		return true
	}
	if s.open != nil && s.open.showMembers {
		s.open.showMembers = false
		return true
	}
	if c := s.open; c != nil && (c.picker != 0 || c.pinned != 0) {
		c.picker, c.pinned = 0, 0
		return true
	}
	if s.open != nil && s.open.cancelCompose() {
		return true
	}
	return false
}

// keys handles the shell's keys. It runs before any editor of the frame
// handles its events, so the shortcuts work while typing.
func (s *shell) keys(gtx layout.Context, u *UI) {
	filters := []event.Filter{
		key.Filter{Name: key.NameEscape},
		key.Filter{Name: "K", Required: key.ModShortcut},
		key.Filter{Name: "F", Required: key.ModShortcut},
		key.Filter{Name: key.NameUpArrow, Required: key.ModAlt},
		key.Filter{Name: key.NameDownArrow, Required: key.ModAlt},
	}
	// Back is asked for only when there is something to go back from:
	// otherwise the platform does its default (Android leaves the app).
	if s.panel != noPanel || (s.open != nil && (s.open.viewing != nil || s.open.showMembers || s.open.editing != 0 || s.open.replyTo != 0 || s.open.pinned != 0)) || (s.narrow && !s.showList) {
		filters = append(filters, key.Filter{Name: key.NameBack})
	}
	for {
		ev, ok := gtx.Event(filters...)
		if !ok {
			break
		}
		e, ok := ev.(key.Event)
		if !ok || e.State != key.Press {
			continue
		}
		switch e.Name {
		case key.NameEscape, key.NameBack:
			if !s.closePanels() && s.narrow && s.open != nil {
				s.showList = true
			}
		case "F":
			if s.panel == searchPanelKind {
				s.closePanels()
			} else {
				s.openPanel(u, searchPanelKind)
			}
		case "K":
			if s.panel == jumpPanel {
				s.closePanels()
			} else {
				s.openPanel(u, jumpPanel)
			}
		case key.NameUpArrow:
			s.step(u, -1)
		case key.NameDownArrow:
			s.step(u, 1)
		}
	}
}

// update handles the list's buttons.
func (s *shell) update(gtx layout.Context, u *UI) {
	for c := range s.each {
		if c.sideBtn.Clicked(gtx) {
			s.openConv(u, c)
		}
	}
	if s.addRoomBtn.Clicked(gtx) || s.emptyJoinBtn.Clicked(gtx) {
		s.openPanel(u, roomPanel)
	}
	if s.addDMBtn.Clicked(gtx) || s.emptyDMBtn.Clicked(gtx) {
		s.openPanel(u, dmPanel)
	}
	if s.notifyBtn.Clicked(gtx) {
		s.askNotify, s.asked = false, true
		u.emit(NotificationsIntent{})
	}
	if s.scrim.Clicked(gtx) || s.closePanel.Clicked(gtx) {
		s.closePanels()
	}
	if s.signOutBtn.Clicked(gtx) {
		u.signOut()
	}
}

// handle handles the keys, buttons and panels that move between
// conversations. UI.Layout calls it before moveFocus, so that what they
// open has its composer or field focused in the same frame, before that
// editor handles its events. Focused in a later frame, the router would
// close the text input in between (the editor that had the focus is no
// longer laid out), and in the browser that blurs the page's text input:
// for the app, the window losing the focus.
func (s *shell) handle(gtx layout.Context, u *UI) {
	// Known first: which keys the shell asks for depends on it.
	s.narrow = gtx.Constraints.Max.X < gtx.Dp(wideFrom)
	shown := s.panel
	s.keys(gtx, u)
	s.update(gtx, u)
	if u.shell != s || s.panel != shown {
		// Signed out, or another panel: its field takes the focus first,
		// and its events from the next frame on.
		return
	}
	switch s.panel {
	case roomPanel:
		s.roomForm.update(gtx, u, s)
	case dmPanel:
		s.dmForm.update(gtx, u, s)
	case jumpPanel:
		s.jump.update(gtx, u, s)
	case searchPanelKind:
		s.search.update(gtx, u, s)
	}
}

func (s *shell) layout(gtx layout.Context, u *UI) layout.Dimensions {
	th := u.th
	dims := layout.Stack{}.Layout(gtx,
		layout.Expanded(func(gtx layout.Context) layout.Dimensions {
			if s.narrow {
				if s.showList || s.open == nil {
					return s.sidebar(gtx, u)
				}
				return s.open.layout(gtx, u)
			}
			return layout.Flex{}.Layout(gtx,
				layout.Rigid(func(gtx layout.Context) layout.Dimensions {
					gtx.Constraints.Min.X = gtx.Dp(sidebarWidth)
					gtx.Constraints.Max.X = gtx.Constraints.Min.X
					return s.sidebar(gtx, u)
				}),
				layout.Rigid(func(gtx layout.Context) layout.Dimensions {
					size := image.Pt(max(1, gtx.Dp(1)), gtx.Constraints.Max.Y)
					paint.FillShape(gtx.Ops, th.Divider, clip.Rect{Max: size}.Op())
					return layout.Dimensions{Size: size}
				}),
				layout.Flexed(1, func(gtx layout.Context) layout.Dimensions {
					if s.open == nil {
						return s.empty(gtx, u)
					}
					return s.open.layout(gtx, u)
				}),
			)
		}),
		layout.Expanded(func(gtx layout.Context) layout.Dimensions {
			if s.panel == noPanel {
				return layout.Dimensions{}
			}
			return s.panelLayout(gtx, u)
		}),
	)
	if s.markRead(u) {
		// The list drew the conversation as unread: draw it again.
		gtx.Execute(op.InvalidateCmd{})
	}
	return dims
}

// markRead moves the read marker of the open conversation to the newest
// message the user has seen: the window has the focus, the conversation
// is on screen, and its list showed the message. It reports whether it
// did.
func (s *shell) markRead(u *UI) bool {
	c := s.open
	if c == nil || !u.focused || (s.narrow && s.showList) || !c.joined {
		return false
	}
	seen := c.seenUpTo()
	if seen <= c.unread.read || seen <= c.markSent {
		return false
	}
	c.markSent = seen
	c.unread.markRead(seen) // at once: the server's MARKER confirms it
	u.emit(MarkReadIntent{Room: c.room, Seq: seen})
	return true
}

// empty is the conversation pane when no conversation is open.
func (s *shell) empty(gtx layout.Context, u *UI) layout.Dimensions {
	th := u.th
	return layout.Center.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
		return layout.Flex{Axis: layout.Vertical, Alignment: layout.Middle}.Layout(gtx,
			layout.Rigid(label(th, 15, "You are in no conversation.", th.Muted).Layout),
			layout.Rigid(layout.Spacer{Height: 12}.Layout),
			layout.Rigid(func(gtx layout.Context) layout.Dimensions {
				return buttonPair(gtx, th, &s.emptyJoinBtn, "Join a room", &s.emptyDMBtn, "Message someone")
			}),
		)
	})
}

// connection is the client's connection state as the shell shows it.
type connection struct {
	state   ConnState
	err     error
	retryIn time.Duration
	retryAt time.Time // when the client tries again, for the countdown
}

func (c *connection) set(e Connection, now time.Time) {
	c.state, c.err, c.retryIn, c.retryAt = e.State, e.Err, e.RetryIn, now.Add(e.RetryIn)
}

// text is the connection state in words.
func (c *connection) text() string {
	switch {
	case c.state == Connected:
		return "connected"
	case c.state == Reconnecting && c.retryIn >= offlineAfter, c.state == Closed:
		return "offline"
	}
	return "reconnecting…"
}

// status is the connection state as a colored dot and its word.
func (c *connection) status(gtx layout.Context, th *Theme) layout.Dimensions {
	txt := c.text()
	col, dot := th.Muted, th.Online
	switch txt {
	case "reconnecting…":
		col, dot = th.Accent, th.Accent
	case "offline":
		col, dot = th.Error, th.Error
	}
	return layout.Flex{Alignment: layout.Middle}.Layout(gtx,
		layout.Rigid(func(gtx layout.Context) layout.Dimensions {
			// A dot in the state's color, readable without the words.
			d := gtx.Dp(7)
			fillRounded(gtx.Ops, image.Pt(d, d), d/2, dot)
			return layout.Dimensions{Size: image.Pt(d, d)}
		}),
		layout.Rigid(layout.Spacer{Width: 6}.Layout),
		layout.Rigid(label(th, 13, txt, col).Layout),
	)
}

// banner explains an offline state below a conversation's header, with
// the number of messages waiting to go out.
func (c *connection) banner(gtx layout.Context, th *Theme, retry *widget.Clickable, now time.Time, waiting int) layout.Dimensions {
	if c.text() != "offline" {
		return layout.Dimensions{}
	}
	msg := "Offline."
	if c.err != nil {
		// The app loop words the error as a sentence.
		msg = strings.TrimSuffix(c.err.Error(), ".") + "."
	}
	if c.state == Reconnecting {
		if left := c.retryAt.Sub(now); left > 0 {
			secs := (left + time.Second - 1) / time.Second
			msg += fmt.Sprintf(" Retrying in %d s.", secs)
			// Redraw when the number changes.
			gtx.Execute(op.InvalidateCmd{At: gtx.Now.Add(left - (secs-1)*time.Second)})
		} else {
			msg += " Retrying…"
		}
	}
	msg += " Messages you send will go out when the connection is back."
	if waiting > 0 {
		msg += fmt.Sprintf(" %d waiting.", waiting)
	}
	return layout.Inset{Top: 8, Left: 12, Right: 12}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
		gtx.Constraints.Min.X = gtx.Constraints.Max.X
		return background(gtx, th.Surface, 8, func(gtx layout.Context) layout.Dimensions {
			return layout.UniformInset(10).Layout(gtx, func(gtx layout.Context) layout.Dimensions {
				return layout.Flex{Alignment: layout.Middle}.Layout(gtx,
					layout.Flexed(1, label(th, 13, msg, th.Fg).Layout),
					layout.Rigid(func(gtx layout.Context) layout.Dimensions {
						b := material.Button(&th.Theme, retry, "Retry now")
						b.TextSize = 13
						b.Inset = layout.Inset{Top: 6, Bottom: 6, Left: 10, Right: 10}
						return b.Layout(gtx)
					}),
				)
			})
		})
	})
}

// waiting counts the messages of every conversation not acknowledged yet.
func (s *shell) waiting() int {
	n := 0
	for c := range s.each {
		n += c.log.pending()
	}
	return n
}
