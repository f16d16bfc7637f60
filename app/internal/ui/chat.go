package ui

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"gioui.org/io/key"
	"gioui.org/io/semantic"
	"gioui.org/layout"
	"gioui.org/op"
	"gioui.org/unit"
	"gioui.org/widget"
	"gioui.org/widget/material"

	"chat/client"
	"chat/protocol"
)

// offlineAfter is the reconnect wait from which the header says "offline"
// instead of "reconnecting…": the client is no longer trying right away,
// so the user should know, and gets a "retry now".
const offlineAfter = 2 * time.Second

// chatScreen is one conversation, a room or a direct-message one: its
// header, message list and composer, and what the sidebar shows of it.
type chatScreen struct {
	room string // canonical name: the key the loop and the server use
	name string // ours
	// dm is set for a direct-message conversation with the name whose
	// key is peer; peerName is that name as last spelled by its owner.
	dm       bool
	peer     string
	peerName string

	joined bool   // a RoomJoined came for the current connection
	gone   string // why the room was lost; the composer gives way to it

	// topic is the room's topic, shown under its title; operator, muted
	// and inviteOnly its modes for our name (RoomJoined, ModEvents).
	topic                       string
	operator, muted, inviteOnly bool

	count   int
	live    bool              // count and members are the current connection's
	members map[string]string // key → name as shown
	sorted  []string          // members for the panel; nil when stale

	unread unread
	// markSent is the highest read mark asked for, so each is asked once.
	markSent   uint64
	quiet      bool      // notifications off
	lastActive time.Time // of the last message, to order the direct messages

	log    *messageLog
	list   widget.List
	unseen int // messages that arrived while the user was scrolled up

	composer widget.Editor
	problem  string // why the last message was not sent, shown over the composer

	sendBtn, leaveBtn, membersBtn, jumpBtn, retryBtn, closeMembers widget.Clickable
	rejoinBtn, searchBtn                                           widget.Clickable
	copyKeyBtn, backBtn, quietBtn, sideBtn                         widget.Clickable
	memberBtns                                                     map[string]*widget.Clickable
	keyCopied                                                      bool
	showMembers                                                    bool
	memberList                                                     widget.List
	focusComposer                                                  bool // for UI.moveFocus

	// Acting on messages (actions.go): the row the pointer is over, the
	// one whose actions a long press opened, the one whose emoji picker
	// is open; the message the composer answers or edits (with what was
	// typed before the edit, for after it); the message jumped to, shown
	// highlighted until flashUntil.
	hover, pinned, picker uint64
	replyTo, editing      uint64
	draft                 string
	flash                 uint64
	flashUntil            time.Time
	cancelBtn             widget.Clickable
	// typing are the names typing in the conversation, by key: the name
	// as shown and when it stops showing.
	typing map[string]typist
	// typed: a TypingIntent went out since the composer was last empty.
	typed bool
	// attachBtn chooses a file to send; viewing is the picture shown at
	// full size (nil: none), of a message of viewingRoom.
	attachBtn           widget.Clickable
	viewing             *protocol.File
	viewingRoom         string
	viewClose, viewSave widget.Clickable
	viewNote            string // what became of a Save in the full-size view
}

// typist is a name typing, until a time.
type typist struct {
	name  string
	until time.Time
}

// newChatScreen is the conversation room, entered as name, before it is
// joined.
func newChatScreen(room, name string, now func() time.Time) *chatScreen {
	c := &chatScreen{
		room:       protocol.Key(room),
		name:       name,
		members:    map[string]string{},
		memberBtns: map[string]*widget.Clickable{},
		log:        newMessageLog(now),
		typing:     map[string]typist{},
	}
	if peer, ok := protocol.DMPeer(room, name); ok {
		c.dm, c.peer, c.peerName = true, peer, peer
	}
	c.list.Axis = layout.Vertical
	c.list.ScrollToEnd = true
	c.memberList.Axis = layout.Vertical
	c.composer.Submit = true // Enter sends; Shift+Enter is a newline
	c.composer.InputHint = key.HintText
	return c
}

// title is the conversation's name as shown: #room, or the other
// person's name.
func (c *chatScreen) title() string {
	if c.dm {
		return c.peerName
	}
	return "#" + c.room
}

// seen learns how the other person of a direct-message conversation
// spells their name.
func (c *chatScreen) seen(name string) {
	if c.dm && protocol.Key(name) == c.peer {
		c.peerName = name
	}
}

// joinedRoom takes the member list and the read state of a join or a
// re-join. It adds no notices: on a re-join the app reports who came and
// went while we were away as a Presence, and a notice per listed member
// would say "bob joined" at every reconnect without a matching "left".
func (c *chatScreen) joinedRoom(j RoomJoined) {
	if j.Reset {
		c.resetRoom() // the room's history was replaced: what we show belongs to the old one
		c.markSent = 0
	}
	c.joined, c.gone, c.name, c.quiet = true, "", j.Name, j.Quiet
	c.topic, c.operator, c.muted, c.inviteOnly = j.Topic, j.Operator, j.Muted, j.InviteOnly
	c.count, c.live = j.Count, true
	clear(c.members)
	for _, n := range j.Members {
		c.members[protocol.Key(n)] = n
		c.seen(n)
	}
	c.members[protocol.Key(c.name)] = c.name
	c.sorted = nil
	c.unread.joined(j.Read, j.Head, j.Mentions, j.Reset)
}

// apply updates the conversation with one event from the app loop.
func (c *chatScreen) apply(ev any, now time.Time) {
	switch e := ev.(type) {
	case RoomJoined:
		c.joinedRoom(e)
		c.log.rejoined(e.Head) // msglist: the room's head
		if e.Resumed && !e.Reset {
			c.log.resumed()
		}
		if e.Removed > 0 && !e.Reset {
			c.log.notice("Some messages you had not seen were removed by the server, which keeps only recent history", now)
		}
	case client.Page:
		c.page(e) // msglist: older (or newer) messages the list asked for
	case client.Message:
		c.seen(e.Sender)
		delete(c.typing, protocol.Key(e.Sender)) // the message she typed is here
		c.unread.message(e.Seq, e.Own, e.Mention)
		if e.Time.After(c.lastActive) {
			c.lastActive = e.Time
		}
		if c.log.message(e) && c.list.Position.BeforeEnd {
			c.unseen++
		}
	case client.Acked:
		c.unread.message(e.Seq, true, false)
		c.log.acked(e)
	case ReadMarker:
		c.unread.markRead(e.Seq)
	case MessageChanged:
		c.unread.change(e.Seq)
		if e.State != nil && e.State.Deleted && c.viewing != nil {
			if i := c.log.indexOf(e.Target); i >= 0 && c.log.rows[i].file == c.viewing {
				c.viewing, c.viewNote = nil, "" // its file is gone from the server
			}
		}
		c.log.change(e)
		if e.State != nil && e.State.Deleted && c.editing == e.Target {
			c.cancelCompose() // nothing left to edit
		}
	case Typing:
		k := protocol.Key(e.Name)
		if e.Stopped || k == protocol.Key(c.name) {
			delete(c.typing, k)
		} else {
			c.typing[k] = typist{name: e.Name, until: now.Add(typingFor)}
		}
	case ChangeResult:
		if e.Err != nil {
			c.problem = "Not done: " + e.Err.Error()
		}
	case Presence:
		c.count = e.Count
		self := protocol.Key(c.name)
		for _, ch := range e.Changes {
			k := protocol.Key(ch.Name)
			if k == self {
				// The server tells us of our own join too, and of our
				// stale session leaving when this one takes over: noise.
				continue
			}
			if ch.Joined {
				c.members[k] = ch.Name
				c.seen(ch.Name)
				c.log.notice(ch.Name+" joined", now)
			} else {
				delete(c.members, k)
				c.log.notice(ch.Name+" left", now)
			}
		}
		c.sorted = nil
	case RoomFailed:
		c.log.failIDs(e.Unsent, e.Reason)
		if e.Stays {
			c.problem = "Not sent: " + e.Reason
			return
		}
		c.joined, c.live, c.gone = false, false, e.Reason
	case client.ModEvent:
		c.modEvent(e, now)
	case ModerateResult:
		if e.Err != "" {
			c.problem = "Not done: " + e.Err
		}
		if e.Text != "" {
			c.log.notice(e.Text, now)
		}
	case FileQueued:
		c.log.addUpload(c.name, e)
		c.scrollToEnd()
	case UploadProgress:
		c.log.progress(e)
	case AttachFailed:
		c.problem = e.Reason
	case FileSaved:
		switch {
		case e.Cancelled:
		case e.Err != "":
			c.problem = "Not saved: " + e.Err
		default:
			c.log.notice("Saved "+e.Name, now)
		}
		if c.viewing != nil && !e.Cancelled {
			c.viewNote = "Saved " + e.Name
			if e.Err != "" {
				c.viewNote = "Not saved: " + e.Err
			}
		}
	case SendResult:
		if e.Err == nil {
			c.log.sent(e.Token, e.ID)
			return
		}
		c.problem = "Not sent: " + e.Err.Error()
		if c.composer.Len() == 0 {
			// Put the text back where the user can fix it.
			if text, ok := c.log.takeBack(e.Token); ok {
				c.composer.SetText(text)
				c.composer.SetCaret(c.composer.Len(), c.composer.Len())
				c.focusComposer = true
			}
		} else {
			c.log.markFailed(e.Token, e.Err.Error())
		}
	}
}

// resetRoom forgets what the room showed, for a re-join after the
// server's history of the room started over (RoomJoined.Reset): the
// history that follows replaces it. The user's messages not stored yet
// stay: the client library still has them and sends them again.
func (c *chatScreen) resetRoom() {
	c.log.reset()
	c.unseen = 0
	// Numbers of the old history: the message edited or answered, the
	// ones whose actions or picker are open or that flash are not those
	// of the new one. An edit ends with what was typed before it back.
	c.cancelCompose()
	c.replyTo, c.editing = 0, 0
	c.hover, c.pinned, c.picker, c.flash, c.flashUntil = 0, 0, 0, 0, time.Time{}
}

// update handles the conversation's own input: the composer and the
// buttons. The keys that move between conversations and close panels are
// the shell's.
func (c *chatScreen) update(gtx layout.Context, u *UI) {
	if c.composer.Len() == 0 && c.editing == 0 {
		// Up in an empty composer edits our last message. Asked for
		// before the editor reads its keys, which it would take to move
		// the caret.
		for {
			ev, ok := gtx.Event(key.Filter{Focus: &c.composer, Name: key.NameUpArrow})
			if !ok {
				break
			}
			if e, ok := ev.(key.Event); ok && e.State == key.Press {
				c.editLast()
			}
		}
	}
	for {
		ev, ok := c.composer.Update(gtx)
		if !ok {
			break
		}
		switch ev.(type) {
		case widget.SubmitEvent:
			c.submit(u)
		case widget.ChangeEvent:
			c.composerChanged(u)
		}
	}
	if c.cancelBtn.Clicked(gtx) {
		c.cancelCompose()
	}
	if c.sendBtn.Clicked(gtx) {
		c.submit(u)
		c.focusComposer = true
	}
	if c.attachBtn.Clicked(gtx) && c.gone == "" {
		u.emit(AttachIntent{Room: c.room, Reply: c.replyTo})
		c.replyTo = 0
		c.problem = ""
	}
	if c.leaveBtn.Clicked(gtx) {
		u.shell.leaveRoom(u, c)
		return
	}
	if c.backBtn.Clicked(gtx) {
		u.shell.showList = true
	}
	if c.quietBtn.Clicked(gtx) {
		c.quiet = !c.quiet
		u.emit(QuietIntent{Room: c.room, Quiet: c.quiet})
	}
	if c.searchBtn.Clicked(gtx) {
		u.shell.openPanel(u, searchPanelKind)
	}
	if c.membersBtn.Clicked(gtx) {
		c.showMembers = !c.showMembers
	}
	if c.closeMembers.Clicked(gtx) {
		c.showMembers = false
	}
	for k, b := range c.memberBtns {
		if b.Clicked(gtx) {
			c.showMembers = false
			u.shell.direct(u, c.members[k])
			return
		}
	}
	if c.copyKeyBtn.Clicked(gtx) {
		// The other device is usually at hand while this one is in a
		// room: the key is copied from here too, not only from the form.
		copyText(gtx, u.join.nk.key)
		c.keyCopied = true
	}
	if c.jumpBtn.Clicked(gtx) {
		c.scrollToEnd()
	}
	if c.retryBtn.Clicked(gtx) {
		u.emit(RetryIntent{})
	}
	if c.rejoinBtn.Clicked(gtx) {
		u.shell.joinRoomWith(u, c.room, "")
	}
}

func (c *chatScreen) scrollToEnd() {
	c.list.Position.BeforeEnd = false
	c.unseen = 0
}

// submit sends the composer's text. The row appears at once as pending;
// the editor is cleared; the app loop hands the text to the client library.
func (c *chatScreen) submit(u *UI) {
	text := strings.TrimRight(c.composer.Text(), " \t\r\n")
	text = strings.TrimLeft(text, "\r\n")
	if strings.TrimSpace(text) == "" || c.gone != "" {
		if c.editing != 0 && c.gone == "" {
			c.problem = "An edit needs some text: to remove the message, use Delete in its actions."
		}
		return
	}
	if strings.HasPrefix(text, "//") {
		text = text[1:] // a line that starts with "/", not a command
	} else if strings.HasPrefix(text, "/") {
		c.command(u, text)
		return
	}
	if c.editing != 0 {
		seq := c.editing
		if r := c.log.indexOf(seq); r < 0 || c.log.rows[r].text != text {
			u.emit(EditIntent{Room: c.room, Seq: seq, Text: text})
		}
		c.editing = 0
		c.composer.SetText(c.draft)
		c.composer.SetCaret(c.composer.Len(), c.composer.Len())
		c.draft, c.problem = "", ""
		return
	}
	u.tokens++
	c.log.addPending(u.tokens, c.name, text)
	if c.replyTo != 0 {
		c.log.rows[c.log.byToken[u.tokens]].reply = c.replyTo
	}
	c.composer.SetText("")
	c.problem = ""
	c.scrollToEnd()
	u.emit(SendIntent{Token: u.tokens, Room: c.room, Text: text, Reply: c.replyTo})
	c.replyTo = 0
	c.stopTyping(u)
	u.shell.firstSend(u)
}

// composerChanged tells the room that the user types, or stopped (the
// composer is empty again). Commands and edits are not typing a message.
func (c *chatScreen) composerChanged(u *UI) {
	text := c.composer.Text()
	if strings.TrimSpace(text) == "" || strings.HasPrefix(text, "/") || c.editing != 0 {
		c.stopTyping(u)
		return
	}
	c.typed = true
	u.emit(TypingIntent{Room: c.room})
}

// stopTyping tells the room the user no longer types, if it was told
// they did.
func (c *chatScreen) stopTyping(u *UI) {
	if c.typed {
		c.typed = false
		u.emit(TypingIntent{Room: c.room, Stopped: true})
	}
}

// typingText is the line above the composer naming who types, and when
// it must be drawn again (the first of them expires).
func (c *chatScreen) typingText(now time.Time) (string, time.Time) {
	var names []string
	var next time.Time
	for k, t := range c.typing {
		if !now.Before(t.until) {
			delete(c.typing, k)
			continue
		}
		names = append(names, t.name)
		if next.IsZero() || t.until.Before(next) {
			next = t.until
		}
	}
	slices.SortFunc(names, func(a, b string) int { return strings.Compare(protocol.Key(a), protocol.Key(b)) })
	switch len(names) {
	case 0:
		return "", next
	case 1:
		return names[0] + " is typing…", next
	case 2:
		return names[0] + " and " + names[1] + " are typing…", next
	}
	return fmt.Sprintf("%s, %s and %d more are typing…", names[0], names[1], len(names)-2), next
}

func (c *chatScreen) layout(gtx layout.Context, u *UI) layout.Dimensions {
	c.update(gtx, u)
	th := u.th
	if c.viewing != nil {
		// A picture at full size takes the conversation's place until
		// it is closed.
		return c.viewer(gtx, u)
	}
	return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
		layout.Rigid(func(gtx layout.Context) layout.Dimensions { return c.header(gtx, u) }),
		layout.Rigid(func(gtx layout.Context) layout.Dimensions {
			return u.shell.conn.banner(gtx, th, &c.retryBtn, u.now(), u.shell.waiting())
		}),
		layout.Flexed(1, func(gtx layout.Context) layout.Dimensions { return c.body(gtx, u) }),
		layout.Rigid(func(gtx layout.Context) layout.Dimensions {
			if c.gone != "" {
				return c.goneBar(gtx, u)
			}
			return c.composerBar(gtx, u)
		}),
	)
}

func (c *chatScreen) header(gtx layout.Context, u *UI) layout.Dimensions {
	th, s := u.th, u.shell
	return background(gtx, th.Surface, 0, func(gtx layout.Context) layout.Dimensions {
		gtx.Constraints.Min.X = gtx.Constraints.Max.X
		left := unit.Dp(16)
		if s.narrow {
			left = 4
		}
		return layout.Inset{Top: 6, Bottom: 6, Left: left, Right: 4}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
			return layout.Flex{Alignment: layout.Middle}.Layout(gtx,
				layout.Rigid(func(gtx layout.Context) layout.Dimensions {
					if !s.narrow {
						return layout.Dimensions{}
					}
					return iconButton(th, &c.backBtn, u.shellIcons.back, "Back to conversations").Layout(gtx)
				}),
				layout.Flexed(1, func(gtx layout.Context) layout.Dimensions {
					return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
						layout.Rigid(func(gtx layout.Context) layout.Dimensions {
							l := bold(label(th, 17, c.title(), th.Fg))
							l.MaxLines = 1
							return l.Layout(gtx)
						}),
						layout.Rigid(func(gtx layout.Context) layout.Dimensions {
							if c.topic == "" {
								return layout.Dimensions{}
							}
							l := label(th, 13, c.topic, th.Muted)
							l.MaxLines = 1
							return l.Layout(gtx)
						}),
						layout.Rigid(func(gtx layout.Context) layout.Dimensions { return s.conn.status(gtx, th) }),
					)
				}),
				layout.Rigid(func(gtx layout.Context) layout.Dimensions {
					if c.dm {
						return layout.Dimensions{}
					}
					return c.countButton(gtx, u)
				}),
				layout.Rigid(func(gtx layout.Context) layout.Dimensions {
					return iconButton(th, &c.searchBtn, u.shellIcons.search, "Search messages").Layout(gtx)
				}),
				layout.Rigid(func(gtx layout.Context) layout.Dimensions {
					ic, desc := u.shellIcons.bell, "Turn off notifications"
					if c.quiet {
						ic, desc = u.shellIcons.bellOff, "Turn on notifications"
					}
					return iconButton(th, &c.quietBtn, ic, desc).Layout(gtx)
				}),
				layout.Rigid(func(gtx layout.Context) layout.Dimensions {
					switch {
					case c.dm && c.gone != "":
						return iconButton(th, &c.leaveBtn, u.icons.close, "Close conversation").Layout(gtx)
					case c.dm:
						// A direct conversation stays while it holds
						// messages: the server lists it at every start.
						return layout.Dimensions{}
					}
					return iconButton(th, &c.leaveBtn, u.icons.leave, "Leave room").Layout(gtx)
				}),
			)
		})
	})
}

// countButton is the member count; clicking it opens the member list.
func (c *chatScreen) countButton(gtx layout.Context, u *UI) layout.Dimensions {
	th := u.th
	return material.Clickable(gtx, &c.membersBtn, func(gtx layout.Context) layout.Dimensions {
		semantic.DescriptionOp("Members").Add(gtx.Ops)
		return layout.UniformInset(10).Layout(gtx, func(gtx layout.Context) layout.Dimensions {
			return iconLabel(gtx, th, u.icons.people, 20, 4, c.countText(), th.Fg)
		})
	})
}

// countText is the member count for the header: a dash when offline, as
// a number from before the outage would pass for the current one.
func (c *chatScreen) countText() string {
	if !c.live {
		return "–"
	}
	return fmt.Sprint(c.count)
}

// goneBar says why the room was lost, in the composer's place; the
// header's button leaves (closes) it.
func (c *chatScreen) goneBar(gtx layout.Context, u *UI) layout.Dimensions {
	if c.dm {
		return layout.UniformInset(12).Layout(gtx, label(u.th, 14, c.gone, u.th.Error).Layout)
	}
	// A room stays listed: the user may join it again (after a kick at
	// once, after a ban when it ends, after an invite for an invite-only
	// room, with /join ROOM CODE).
	return layout.UniformInset(12).Layout(gtx, func(gtx layout.Context) layout.Dimensions {
		return layout.Flex{Alignment: layout.Middle}.Layout(gtx,
			layout.Flexed(1, label(u.th, 14, c.gone, u.th.Error).Layout),
			layout.Rigid(layout.Spacer{Width: 12}.Layout),
			layout.Rigid(func(gtx layout.Context) layout.Dimensions {
				return material.Button(&u.th.Theme, &c.rejoinBtn, "Join again").Layout(gtx)
			}),
		)
	})
}

// body is the message list with its overlays: the jump to new messages
// and the member list.
func (c *chatScreen) body(gtx layout.Context, u *UI) layout.Dimensions {
	dims := layout.Stack{Alignment: layout.S}.Layout(gtx,
		layout.Expanded(func(gtx layout.Context) layout.Dimensions { return c.messages(gtx, u) }),
		layout.Stacked(func(gtx layout.Context) layout.Dimensions {
			if c.unseen == 0 || !c.list.Position.BeforeEnd {
				return layout.Dimensions{}
			}
			return layout.Inset{Bottom: 12}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
				return c.jumpButton(gtx, u)
			})
		}),
	)
	if !c.list.Position.BeforeEnd {
		c.unseen = 0
	}
	if c.showMembers {
		layout.NE.Layout(gtx, func(gtx layout.Context) layout.Dimensions { return c.memberPanel(gtx, u) })
	}
	return dims
}

func (c *chatScreen) memberNames() []string {
	if c.sorted == nil {
		c.sorted = make([]string, 0, len(c.members))
		for _, n := range c.members {
			c.sorted = append(c.sorted, n)
		}
		slices.SortFunc(c.sorted, func(a, b string) int { return strings.Compare(protocol.Key(a), protocol.Key(b)) })
	}
	return c.sorted
}

func (c *chatScreen) memberPanel(gtx layout.Context, u *UI) layout.Dimensions {
	th := u.th
	names := c.memberNames()
	extra := c.count - len(names)
	title := fmt.Sprintf("%d in %s", c.count, c.title())
	if !c.live {
		title, extra = "In "+c.title()+" when last connected", 0
	}
	return layout.Inset{Top: 8, Right: 8}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
		gtx.Constraints.Max.X = min(gtx.Constraints.Max.X, gtx.Dp(260))
		gtx.Constraints.Max.Y = min(gtx.Constraints.Max.Y, gtx.Dp(360))
		gtx.Constraints.Min.X = gtx.Constraints.Max.X
		return widget.Border{Color: th.Divider, CornerRadius: 10, Width: 1}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
			return background(gtx, th.Surface, 10, func(gtx layout.Context) layout.Dimensions {
				return layout.UniformInset(12).Layout(gtx, func(gtx layout.Context) layout.Dimensions {
					return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
						layout.Rigid(func(gtx layout.Context) layout.Dimensions {
							return layout.Flex{Alignment: layout.Middle}.Layout(gtx,
								layout.Flexed(1, bold(label(th, 14, title, th.Fg)).Layout),
								layout.Rigid(iconButton(th, &c.closeMembers, u.icons.close, "Close member list").Layout),
							)
						}),
						// Rigid, so the panel is only as tall as its names;
						// it leaves room for the name key row under it.
						layout.Rigid(func(gtx layout.Context) layout.Dimensions {
							gtx.Constraints.Max.Y = max(0, gtx.Constraints.Max.Y-gtx.Dp(72))
							n := len(names)
							if extra > 0 {
								n++
							}
							return material.List(&th.Theme, &c.memberList).Layout(gtx, n, func(gtx layout.Context, i int) layout.Dimensions {
								switch {
								case i == len(names):
									return layout.Inset{Top: 4, Bottom: 4}.Layout(gtx, label(th, 14, fmt.Sprintf("and %d more", extra), th.Muted).Layout)
								case protocol.Key(names[i]) == protocol.Key(c.name):
									return layout.Inset{Top: 4, Bottom: 4}.Layout(gtx, label(th, 14, names[i]+" (you)", th.Fg).Layout)
								}
								// Another member: a click starts a direct conversation.
								return c.memberRow(gtx, u, names[i])
							})
						}),
						layout.Rigid(layout.Spacer{Height: 6}.Layout),
						layout.Rigid(func(gtx layout.Context) layout.Dimensions { return divider(gtx, th.Divider) }),
						layout.Rigid(func(gtx layout.Context) layout.Dimensions {
							if c.keyCopied {
								return layout.Inset{Top: 6, Bottom: 6}.Layout(gtx,
									label(th, 13, "Name key copied: enter it on your other device to use the name "+c.name+" there.", th.Muted).Layout)
							}
							return linkButton(gtx, th, &c.copyKeyBtn, "Copy my name key")
						}),
					)
				})
			})
		})
	})
}

func (c *chatScreen) composerBar(gtx layout.Context, u *UI) layout.Dimensions {
	th := u.th
	return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
		layout.Rigid(func(gtx layout.Context) layout.Dimensions {
			now := u.now()
			txt, next := c.typingText(now)
			if txt == "" {
				return layout.Dimensions{}
			}
			gtx.Execute(op.InvalidateCmd{At: gtx.Now.Add(next.Sub(now))}) // to take it away when it expires
			return layout.Inset{Top: 4, Left: 20, Right: 16}.Layout(gtx, label(th, 12, txt, th.Muted).Layout)
		}),
		layout.Rigid(func(gtx layout.Context) layout.Dimensions {
			var txt string
			switch {
			case c.editing != 0:
				txt = "Editing your message · Esc to cancel, Enter to save"
			case c.replyTo != 0:
				txt = "Replying to " + c.quoteText(c.replyTo)
			default:
				return layout.Dimensions{}
			}
			return layout.Inset{Top: 6, Left: 16, Right: 8}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
				return layout.Flex{Alignment: layout.Middle}.Layout(gtx,
					layout.Flexed(1, func(gtx layout.Context) layout.Dimensions {
						l := label(th, 13, txt, th.Accent)
						l.MaxLines = 1
						return l.Layout(gtx)
					}),
					layout.Rigid(func(gtx layout.Context) layout.Dimensions {
						desc := "Cancel reply"
						if c.editing != 0 {
							desc = "Cancel edit"
						}
						b := iconButton(th, &c.cancelBtn, u.icons.close, desc)
						b.Size, b.Inset = 16, layout.UniformInset(6)
						return b.Layout(gtx)
					}),
				)
			})
		}),
		layout.Rigid(func(gtx layout.Context) layout.Dimensions {
			if c.problem == "" {
				return layout.Dimensions{}
			}
			return layout.Inset{Top: 6, Left: 16, Right: 16}.Layout(gtx, label(th, 13, c.problem, th.Error).Layout)
		}),
		layout.Rigid(func(gtx layout.Context) layout.Dimensions {
			return layout.Inset{Top: 8, Bottom: 8, Left: 12, Right: 8}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
				return layout.Flex{Alignment: layout.End}.Layout(gtx,
					layout.Rigid(func(gtx layout.Context) layout.Dimensions {
						if u.shell != nil && u.shell.noFiles {
							return layout.Dimensions{} // a button that can only be refused is worse than none
						}
						b := iconButton(th, &c.attachBtn, u.icons.attach, "Attach a file")
						b.Size, b.Inset = 22, layout.UniformInset(11)
						return b.Layout(gtx)
					}),
					layout.Rigid(layout.Spacer{Width: 4}.Layout),
					layout.Flexed(1, func(gtx layout.Context) layout.Dimensions {
						border, width := th.Divider, unit.Dp(1)
						if gtx.Focused(&c.composer) {
							border, width = th.Accent, 2
						}
						gtx.Constraints.Min.X = gtx.Constraints.Max.X
						return widget.Border{Color: border, CornerRadius: 18, Width: width}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
							return background(gtx, th.Surface, 18, func(gtx layout.Context) layout.Dimensions {
								return layout.Inset{Top: 10, Bottom: 10, Left: 16, Right: 16}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
									// The editor grows with its text up to a few
									// lines, then scrolls.
									gtx.Constraints.Max.Y = min(gtx.Constraints.Max.Y, gtx.Dp(120))
									hint := "Message " + c.title()
									if c.muted {
										hint = "You are muted in " + c.title() + ": your messages are refused"
									}
									e := material.Editor(&th.Theme, &c.composer, hint)
									e.HintColor = th.Muted
									return e.Layout(gtx)
								})
							})
						})
					}),
					layout.Rigid(layout.Spacer{Width: 8}.Layout),
					layout.Rigid(func(gtx layout.Context) layout.Dimensions {
						b := material.IconButton(&th.Theme, &c.sendBtn, u.icons.send, "Send")
						b.Size = 22
						b.Inset = layout.UniformInset(11)
						if c.composer.Len() == 0 {
							b.Background = th.Divider
							b.Color = th.Muted
						}
						return b.Layout(gtx)
					}),
				)
			})
		}),
	)
}
