package ui

import (
	"fmt"
	"image"
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

// chatScreen is a joined room: header, message list, composer.
type chatScreen struct {
	room, name string
	state      client.State
	stateErr   error
	retryIn    time.Duration
	retryAt    time.Time // when the client tries again, for the countdown

	count   int
	live    bool              // count and members are the current connection's
	members map[string]string // key → name as shown
	sorted  []string          // members for the panel; nil when stale

	log    *messageLog
	list   widget.List
	unseen int // messages that arrived while the user was scrolled up

	composer widget.Editor
	problem  string // why the last message was not sent, shown over the composer

	sendBtn, leaveBtn, membersBtn, jumpBtn, retryBtn, closeMembers widget.Clickable
	copyKeyBtn                                                     widget.Clickable
	keyCopied                                                      bool
	showMembers                                                    bool
	memberList                                                     widget.List
	focusComposer                                                  bool // for UI.moveFocus
}

func newChatScreen(j client.Joined, now func() time.Time) *chatScreen {
	c := &chatScreen{
		room:          j.Room,
		name:          j.Name,
		state:         client.Connected,
		members:       map[string]string{},
		log:           newMessageLog(now),
		focusComposer: true,
	}
	c.list.Axis = layout.Vertical
	c.list.ScrollToEnd = true
	c.memberList.Axis = layout.Vertical
	c.composer.Submit = true // Enter sends; Shift+Enter is a newline
	c.composer.InputHint = key.HintText
	c.joined(j)
	return c
}

// joined takes the member list of a join or a re-join. It adds no
// notices: on a re-join the client library reports who came and went
// while we were away as a Presence, and a notice per listed member would
// say "bob joined" at every reconnect without a matching "left".
func (c *chatScreen) joined(j client.Joined) {
	c.count, c.live = j.Count, true
	clear(c.members)
	for _, n := range j.Members {
		c.members[protocol.Key(n)] = n
	}
	c.members[protocol.Key(c.name)] = c.name
	c.sorted = nil
}

// apply updates the screen with one event from the app loop.
func (c *chatScreen) apply(ev any, now time.Time) {
	switch e := ev.(type) {
	case client.StateChanged:
		c.state, c.stateErr, c.retryIn, c.retryAt = e.State, e.Err, e.RetryIn, now.Add(e.RetryIn)
		// Without a connection nobody tells us who comes and goes: the
		// count is history until the room is joined again.
		c.live = false
	case client.Joined:
		c.state = client.Connected
		if e.Reset {
			c.resetRoom() // the room's history was replaced: what we show belongs to the old one
		}
		c.joined(e)
		c.log.rejoined(e) // msglist: re-ask a page lost with the connection
	case client.Page:
		c.page(e) // msglist: older (or newer) messages the list asked for
	case client.Message:
		if c.log.message(e) && c.list.Position.BeforeEnd {
			c.unseen++
		}
	case client.Acked:
		c.log.acked(e)
	case client.Presence:
		c.count = e.Count
		self := protocol.Key(c.name)
		for _, ch := range e.Changes {
			k := protocol.Key(ch.Name)
			if k == self {
				// The server tells us of our own join too, and of our
				// stale session leaving when this one takes over: noise.
				continue
			}
			switch ch.Kind {
			case protocol.PresenceJoined:
				c.members[k] = ch.Name
				c.log.notice(ch.Name+" joined", now)
			case protocol.PresenceLeft:
				delete(c.members, k)
				c.log.notice(ch.Name+" left", now)
			}
		}
		c.sorted = nil
	case client.RoomError:
		if e.Err != nil {
			reason := e.Err.Text
			if reason == "" {
				reason = e.Err.Error()
			}
			c.log.failIDs(e.Unsent, reason)
			c.problem = "Not sent: " + reason
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
// server's history of the room started over (Joined.Reset): the history
// that follows replaces it. The user's messages not stored yet stay: the
// client library still has them and sends them again.
func (c *chatScreen) resetRoom() {
	c.log.reset()
	c.unseen = 0
}

// stateText is the connection state as the header shows it.
func (c *chatScreen) stateText() string {
	switch {
	case c.state == client.Connected:
		return "connected"
	case c.state == client.Reconnecting && c.retryIn >= offlineAfter, c.state == client.Closed:
		return "offline"
	}
	return "reconnecting…"
}

// update handles input: keys, the composer and the buttons. It may leave
// the room (u.chat becomes nil).
func (c *chatScreen) update(gtx layout.Context, u *UI) {
	for {
		ev, ok := gtx.Event(key.Filter{Name: key.NameBack}, key.Filter{Name: key.NameEscape})
		if !ok {
			break
		}
		if e, ok := ev.(key.Event); ok && e.State == key.Press {
			switch {
			case c.showMembers:
				c.showMembers = false
			case e.Name == key.NameBack:
				u.leave()
				return
			}
		}
	}
	for {
		ev, ok := c.composer.Update(gtx)
		if !ok {
			break
		}
		if _, ok := ev.(widget.SubmitEvent); ok {
			c.submit(u)
		}
	}
	if c.sendBtn.Clicked(gtx) {
		c.submit(u)
		c.focusComposer = true
	}
	if c.leaveBtn.Clicked(gtx) {
		u.leave()
		return
	}
	if c.membersBtn.Clicked(gtx) {
		c.showMembers = !c.showMembers
	}
	if c.closeMembers.Clicked(gtx) {
		c.showMembers = false
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
	if strings.TrimSpace(text) == "" {
		return
	}
	u.tokens++
	c.log.addPending(u.tokens, c.name, text)
	c.composer.SetText("")
	c.problem = ""
	c.scrollToEnd()
	u.emit(SendIntent{Token: u.tokens, Text: text})
}

func (c *chatScreen) layout(gtx layout.Context, u *UI) layout.Dimensions {
	c.update(gtx, u)
	if u.chat != c {
		return layout.Dimensions{Size: gtx.Constraints.Max} // left during update
	}
	th := u.th
	return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
		layout.Rigid(func(gtx layout.Context) layout.Dimensions { return c.header(gtx, u) }),
		layout.Rigid(func(gtx layout.Context) layout.Dimensions { return c.banner(gtx, th) }),
		layout.Flexed(1, func(gtx layout.Context) layout.Dimensions { return c.body(gtx, u) }),
		layout.Rigid(func(gtx layout.Context) layout.Dimensions { return c.composerBar(gtx, u) }),
	)
}

func (c *chatScreen) header(gtx layout.Context, u *UI) layout.Dimensions {
	th := u.th
	dims := background(gtx, th.Surface, 0, func(gtx layout.Context) layout.Dimensions {
		gtx.Constraints.Min.X = gtx.Constraints.Max.X
		return layout.Inset{Top: 6, Bottom: 6, Left: 16, Right: 4}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
			return layout.Flex{Alignment: layout.Middle}.Layout(gtx,
				layout.Flexed(1, func(gtx layout.Context) layout.Dimensions {
					return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
						layout.Rigid(func(gtx layout.Context) layout.Dimensions {
							l := bold(label(th, 17, "#"+c.room, th.Fg))
							l.MaxLines = 1
							return l.Layout(gtx)
						}),
						layout.Rigid(func(gtx layout.Context) layout.Dimensions { return c.status(gtx, th) }),
					)
				}),
				layout.Rigid(func(gtx layout.Context) layout.Dimensions { return c.countButton(gtx, u) }),
				layout.Rigid(iconButton(th, &u.themeBtn, u.icons.theme, "Switch theme").Layout),
				layout.Rigid(iconButton(th, &c.leaveBtn, u.icons.leave, "Leave room").Layout),
			)
		})
	})
	return dims
}

// status is the connection state under the room name.
func (c *chatScreen) status(gtx layout.Context, th *Theme) layout.Dimensions {
	txt := c.stateText()
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

// banner explains an offline state below the header.
func (c *chatScreen) banner(gtx layout.Context, th *Theme) layout.Dimensions {
	if c.stateText() != "offline" {
		return layout.Dimensions{}
	}
	msg := "Offline."
	if c.stateErr != nil {
		// The app loop words the error as a sentence.
		msg = strings.TrimSuffix(c.stateErr.Error(), ".") + "."
	}
	if c.state == client.Reconnecting {
		if left := c.retryAt.Sub(c.log.now()); left > 0 {
			secs := (left + time.Second - 1) / time.Second
			msg += fmt.Sprintf(" Retrying in %d s.", secs)
			// Redraw when the number changes.
			gtx.Execute(op.InvalidateCmd{At: gtx.Now.Add(left - (secs-1)*time.Second)})
		} else {
			msg += " Retrying…"
		}
	}
	msg += " Messages you send will go out when the connection is back."
	if n := c.log.pending(); n > 0 {
		msg += fmt.Sprintf(" %d waiting.", n)
	}
	return layout.Inset{Top: 8, Left: 12, Right: 12}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
		gtx.Constraints.Min.X = gtx.Constraints.Max.X
		return background(gtx, th.Surface, 8, func(gtx layout.Context) layout.Dimensions {
			return layout.UniformInset(10).Layout(gtx, func(gtx layout.Context) layout.Dimensions {
				return layout.Flex{Alignment: layout.Middle}.Layout(gtx,
					layout.Flexed(1, label(th, 13, msg, th.Fg).Layout),
					layout.Rigid(func(gtx layout.Context) layout.Dimensions {
						b := material.Button(&th.Theme, &c.retryBtn, "Retry now")
						b.TextSize = 13
						b.Inset = layout.Inset{Top: 6, Bottom: 6, Left: 10, Right: 10}
						return b.Layout(gtx)
					}),
				)
			})
		})
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
	title := fmt.Sprintf("%d in #%s", c.count, c.room)
	if !c.live {
		title, extra = "In #"+c.room+" when last connected", 0
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
								txt, col := "", th.Fg
								switch {
								case i == len(names):
									txt, col = fmt.Sprintf("and %d more", extra), th.Muted
								case protocol.Key(names[i]) == protocol.Key(c.name):
									txt = names[i] + " (you)"
								default:
									txt = names[i]
								}
								return layout.Inset{Top: 4, Bottom: 4}.Layout(gtx, label(th, 14, txt, col).Layout)
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
			if c.problem == "" {
				return layout.Dimensions{}
			}
			return layout.Inset{Top: 6, Left: 16, Right: 16}.Layout(gtx, label(th, 13, c.problem, th.Error).Layout)
		}),
		layout.Rigid(func(gtx layout.Context) layout.Dimensions {
			return layout.Inset{Top: 8, Bottom: 8, Left: 12, Right: 8}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
				return layout.Flex{Alignment: layout.End}.Layout(gtx,
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
									e := material.Editor(&th.Theme, &c.composer, "Message #"+c.room)
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
