package ui

import (
	"image"
	"strconv"
	"strings"
	"time"

	"gioui.org/gesture"
	"gioui.org/io/event"
	"gioui.org/io/pointer"
	"gioui.org/io/semantic"
	"gioui.org/layout"
	"gioui.org/op"
	"gioui.org/op/clip"
	"gioui.org/unit"
	"gioui.org/widget"
	"gioui.org/widget/material"
	"golang.org/x/exp/shiny/materialdesign/icons"

	"chat/protocol"
)

// Acting on a message (issue 15). On a desktop or in a browser, pointing
// at a message shows its actions in a small bar at its top corner: reply,
// react, edit and delete (our own; delete also for the room's
// operators), copy its text, copy a link to it. On a touch screen a long
// press shows the same bar, which stays until another message is pressed
// or an action is taken. React opens the picker of protocol.Reactions;
// the reactions show as chips under the text ("👍 2", ours highlighted),
// a click on one toggles ours, and pointing at it names who reacted.
//
// A link to a message is chat://ROOM/SEQ (ROOM the canonical room name,
// SEQ its number): it shows as a link in a message, and a click on it
// opens the conversation at that message.

// longPress is how long a touch must stay down to show a message's actions.
const longPress = 500 * time.Millisecond

// flashFor is how long a message jumped to stays highlighted.
const flashFor = 2 * time.Second

// messageLinkPrefix starts a link to a message.
const messageLinkPrefix = "chat://"

// MessageLink is the link to message seq of room.
func MessageLink(room string, seq uint64) string {
	return messageLinkPrefix + protocol.Key(room) + "/" + strconv.FormatUint(seq, 10)
}

// parseMessageLink reads a link made by MessageLink.
func parseMessageLink(s string) (room string, seq uint64, ok bool) {
	rest, found := strings.CutPrefix(s, messageLinkPrefix)
	if !found {
		return "", 0, false
	}
	i := strings.LastIndexByte(rest, '/')
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.ParseUint(rest[i+1:], 10, 64)
	if err != nil || n == 0 {
		return "", 0, false
	}
	return rest[:i], n, true
}

// actionIcons are the icons of the message actions.
type actionIcons struct {
	reply, react, edit, del, copy, link *widget.Icon
}

func loadActionIcons() actionIcons {
	return actionIcons{
		reply: mustIcon(icons.ContentReply),
		react: mustIcon(icons.EditorInsertEmoticon),
		edit:  mustIcon(icons.EditorModeEdit),
		del:   mustIcon(icons.ActionDelete),
		copy:  mustIcon(icons.ContentContentCopy),
		link:  mustIcon(icons.ContentLink),
	}
}

// rowActions are a shown row's action buttons and gestures.
type rowActions struct {
	hover                                   gesture.Hover
	reply, react, edit, del, copy, linkCopy widget.Clickable
	quote                                   widget.Clickable
	chips, picks                            [len(protocol.Reactions)]widget.Clickable
	press                                   pressTracker
}

// pressTracker tells a long press of a touch on a row.
type pressTracker struct {
	down   bool
	at     time.Time
	fired  bool
	origin image.Point
}

// update reads the row area's pointer events and reports whether a long
// press just completed.
func (p *pressTracker) update(gtx layout.Context, tag any) bool {
	for {
		ev, ok := gtx.Event(pointer.Filter{Target: tag, Kinds: pointer.Press | pointer.Release | pointer.Cancel | pointer.Drag})
		if !ok {
			break
		}
		e, ok := ev.(pointer.Event)
		if !ok || e.Source != pointer.Touch {
			continue
		}
		switch e.Kind {
		case pointer.Press:
			p.down, p.at, p.fired, p.origin = true, gtx.Now, false, e.Position.Round()
		case pointer.Drag:
			if d := e.Position.Round().Sub(p.origin); d.X*d.X+d.Y*d.Y > gtx.Dp(10)*gtx.Dp(10) {
				p.down = false // a scroll, not a press
			}
		default:
			p.down = false
		}
	}
	if !p.down || p.fired {
		return false
	}
	if left := p.at.Add(longPress).Sub(gtx.Now); left > 0 {
		gtx.Execute(op.InvalidateCmd{At: gtx.Now.Add(left)})
		return false
	}
	p.fired = true
	return true
}

// actions returns the row's action state, made on first use.
func (v *rowView) actions() *rowActions {
	if v.act == nil {
		v.act = &rowActions{}
	}
	return v.act
}

// canEdit reports whether the user may edit row r; canDelete whether
// they may delete it.
func (c *chatScreen) canEdit(r *row) bool {
	return r.own && r.stored() && !r.deleted && r.kind == rowMessage
}

func (c *chatScreen) canDelete(r *row) bool {
	return r.stored() && !r.deleted && r.kind == rowMessage && (r.own || c.operator)
}

// rowInput handles the clicks of row i's actions, quote and chips.
func (c *chatScreen) rowInput(gtx layout.Context, u *UI, r *row) {
	a := r.shown().actions()
	if a.press.update(gtx, a) {
		c.pinned, c.picker = r.seq, 0
	}
	if a.reply.Clicked(gtx) {
		c.startReply(r)
		c.pinned, c.picker = 0, 0
	}
	if a.react.Clicked(gtx) {
		if c.picker == r.seq {
			c.picker = 0
		} else {
			c.picker, c.pinned = r.seq, r.seq
		}
	}
	if a.edit.Clicked(gtx) && c.canEdit(r) {
		c.startEdit(r)
		c.pinned, c.picker = 0, 0
	}
	if a.del.Clicked(gtx) && c.canDelete(r) {
		u.emit(DeleteIntent{Room: c.room, Seq: r.seq})
		c.pinned, c.picker = 0, 0
	}
	if a.copy.Clicked(gtx) {
		copyText(gtx, r.text)
		c.pinned, c.picker = 0, 0
	}
	if a.linkCopy.Clicked(gtx) {
		copyText(gtx, MessageLink(c.room, r.seq))
		c.pinned, c.picker = 0, 0
	}
	if a.quote.Clicked(gtx) && r.reply != 0 {
		c.showMessage(r.reply, u.now())
	}
	for k := range a.chips {
		if a.chips[k].Clicked(gtx) {
			c.toggleReaction(u, r, protocol.Reactions[k])
		}
	}
	for k := range a.picks {
		if a.picks[k].Clicked(gtx) {
			c.toggleReaction(u, r, protocol.Reactions[k])
			c.picker, c.pinned = 0, 0
		}
	}
}

// toggleReaction adds our reaction emoji to r, or takes it back.
func (c *chatScreen) toggleReaction(u *UI, r *row, emoji string) {
	on := true
	for _, x := range r.reactions {
		if x.Emoji == emoji && x.Mine {
			on = false
		}
	}
	u.emit(ReactIntent{Room: c.room, Seq: r.seq, Emoji: emoji, On: on})
}

// showMessage scrolls to message seq, loading the history around it if
// the window does not hold it, and highlights it a moment.
func (c *chatScreen) showMessage(seq uint64, now time.Time) {
	c.log.jumpTo(seq)
	c.flash, c.flashUntil = seq, now.Add(flashFor)
}

// startReply makes the composer answer r.
func (c *chatScreen) startReply(r *row) {
	c.cancelCompose() // an edit ends with what was typed before it back: not sent as the reply
	c.replyTo = r.seq
	c.focusComposer = true
}

// startEdit puts r's text in the composer to edit it. What was typed is
// kept and comes back when the edit is done or cancelled.
func (c *chatScreen) startEdit(r *row) {
	if c.editing == 0 {
		c.draft = c.composer.Text()
	}
	c.replyTo, c.editing = 0, r.seq
	c.composer.SetText(r.text)
	c.composer.SetCaret(c.composer.Len(), c.composer.Len())
	c.focusComposer = true
}

// editLast edits our newest message in the window (Up arrow in an empty
// composer), reporting whether there was one.
func (c *chatScreen) editLast() bool {
	for i := len(c.log.rows) - 1; i >= 0; i-- {
		if r := &c.log.rows[i]; c.canEdit(r) {
			c.startEdit(r)
			return true
		}
	}
	return false
}

// cancelCompose ends a reply or an edit, reporting whether there was one.
func (c *chatScreen) cancelCompose() bool {
	switch {
	case c.editing != 0:
		c.editing = 0
		c.composer.SetText(c.draft)
		c.composer.SetCaret(c.composer.Len(), c.composer.Len())
		c.draft = ""
	case c.replyTo != 0:
		c.replyTo = 0
	default:
		return false
	}
	c.focusComposer = true
	return true
}

// quoteText is what a reply shows of message seq.
func (c *chatScreen) quoteText(seq uint64) string {
	q, ok := c.log.quoteOf(seq)
	if !ok {
		return "an earlier message"
	}
	return q.sender + ": " + snippet(q.line, 80)
}

// snippet is s cut to about n characters, at a word when it can be.
func snippet(s string, n int) string {
	s = strings.TrimSpace(s)
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	cut := string(r[:n])
	if i := strings.LastIndexByte(cut, ' '); i > n/2 {
		cut = cut[:i]
	}
	return strings.TrimRight(cut, " ,.;:") + "…"
}

// quoteLine is the quoted snippet above a reply's text: a bar and
// "↩ alice: first words…"; a click jumps to the message answered.
func quoteLine(gtx layout.Context, u *UI, c *chatScreen, r *row) layout.Dimensions {
	th := u.th
	a := r.shown().actions()
	txt := c.quoteText(r.reply)
	return a.quote.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
		semantic.DescriptionOp("Go to the message answered").Add(gtx.Ops)
		pointer.CursorPointer.Add(gtx.Ops)
		return layout.Flex{}.Layout(gtx,
			layout.Rigid(func(gtx layout.Context) layout.Dimensions {
				size := image.Pt(gtx.Dp(3), gtx.Dp(18))
				fillRounded(gtx.Ops, size, gtx.Dp(1), th.Accent)
				return layout.Dimensions{Size: size}
			}),
			layout.Rigid(layout.Spacer{Width: 6}.Layout),
			layout.Rigid(func(gtx layout.Context) layout.Dimensions {
				l := label(th, 12, "↩ "+txt, th.Muted)
				l.MaxLines = 1
				return l.Layout(gtx)
			}),
		)
	})
}

// chips are a message's reactions: "👍 2" each, ours in the accent color;
// pointing at one says who reacted.
func chips(gtx layout.Context, u *UI, r *row) layout.Dimensions {
	th := u.th
	a := r.shown().actions()
	var children []layout.FlexChild
	who := ""
	for _, x := range r.reactions {
		k := reactionIndex(x.Emoji)
		if k < 0 || x.Count <= 0 {
			continue
		}
		btn := &a.chips[k]
		if btn.Hovered() {
			who = x.Emoji + " " + strings.Join(x.Names, ", ")
			if more := x.Count - len(x.Names); more > 0 {
				who += " and " + strconv.Itoa(more) + " more"
			}
		}
		x := x
		children = append(children, layout.Rigid(func(gtx layout.Context) layout.Dimensions {
			return layout.Inset{Right: 4, Top: 4}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
				border, bg, fg := th.Divider, th.Bg, th.Fg
				if x.Mine {
					border, bg, fg = th.Accent, withAlpha(th.Accent, 0x30), th.Accent
				}
				was := btn.Hovered()
				defer func() {
					if btn.Hovered() != was {
						gtx.Execute(op.InvalidateCmd{}) // show or hide who reacted
					}
				}()
				return btn.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
					desc := x.Emoji + " " + strconv.Itoa(x.Count) + ": " + strings.Join(x.Names, ", ")
					if x.Mine {
						desc += " (yours)"
					}
					semantic.DescriptionOp(desc).Add(gtx.Ops)
					pointer.CursorPointer.Add(gtx.Ops)
					return widget.Border{Color: border, CornerRadius: 10, Width: 1}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
						return background(gtx, bg, 10, func(gtx layout.Context) layout.Dimensions {
							return layout.Inset{Top: 2, Bottom: 2, Left: 7, Right: 7}.Layout(gtx,
								label(th, 13, x.Emoji+" "+strconv.Itoa(x.Count), fg).Layout)
						})
					})
				})
			})
		}))
	}
	if len(children) == 0 {
		return layout.Dimensions{}
	}
	dims := layout.Flex{Alignment: layout.Middle}.Layout(gtx, children...)
	if who != "" {
		// Who reacted, as a tooltip over the text above the chips: it
		// must not change the row's size, which would move the chip
		// from under the pointer.
		m := op.Record(gtx.Ops)
		gtx.Constraints.Min = image.Point{}
		tip := widget.Border{Color: th.Divider, CornerRadius: 6, Width: 1}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
			return background(gtx, th.Surface, 6, func(gtx layout.Context) layout.Dimensions {
				return layout.Inset{Top: 3, Bottom: 3, Left: 6, Right: 6}.Layout(gtx, label(th, 12, who, th.Fg).Layout)
			})
		})
		call := m.Stop()
		defer op.Offset(image.Pt(0, -tip.Size.Y)).Push(gtx.Ops).Pop()
		call.Add(gtx.Ops)
	}
	return dims
}

func reactionIndex(emoji string) int {
	for k, e := range protocol.Reactions {
		if e == emoji {
			return k
		}
	}
	return -1
}

// actionBar is the bar of row r's actions, or its emoji picker.
func (c *chatScreen) actionBar(gtx layout.Context, u *UI, r *row) layout.Dimensions {
	th := u.th
	a := r.shown().actions()
	gtx.Constraints.Min = image.Point{}
	var children []layout.FlexChild
	if c.picker == r.seq {
		for k, e := range protocol.Reactions {
			children = append(children, layout.Rigid(func(gtx layout.Context) layout.Dimensions {
				return a.picks[k].Layout(gtx, func(gtx layout.Context) layout.Dimensions {
					semantic.DescriptionOp("React " + e).Add(gtx.Ops)
					pointer.CursorPointer.Add(gtx.Ops)
					return layout.UniformInset(5).Layout(gtx, label(th, 18, e, th.Fg).Layout)
				})
			}))
		}
	} else {
		btn := func(b *widget.Clickable, ic *widget.Icon, desc string) layout.FlexChild {
			return layout.Rigid(func(gtx layout.Context) layout.Dimensions {
				s := material.IconButton(&th.Theme, b, ic, desc)
				s.Background = th.Surface
				s.Color = th.Fg
				s.Size = 18
				s.Inset = layout.UniformInset(6)
				return s.Layout(gtx)
			})
		}
		ic := u.actionIcons
		children = append(children, btn(&a.reply, ic.reply, "Reply"), btn(&a.react, ic.react, "React"))
		if c.canEdit(r) {
			children = append(children, btn(&a.edit, ic.edit, "Edit"))
		}
		if c.canDelete(r) {
			children = append(children, btn(&a.del, ic.del, "Delete"))
		}
		children = append(children, btn(&a.copy, ic.copy, "Copy text"), btn(&a.linkCopy, ic.link, "Copy link"))
	}
	return widget.Border{Color: th.Divider, CornerRadius: 8, Width: 1}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
		return background(gtx, th.Surface, 8, func(gtx layout.Context) layout.Dimensions {
			return layout.UniformInset(unit.Dp(2)).Layout(gtx, func(gtx layout.Context) layout.Dimensions {
				return layout.Flex{Alignment: layout.Middle}.Layout(gtx, children...)
			})
		})
	})
}

// withActions lays out a message row (w) under its hover and long-press
// area, with its action bar over its top corner while shown.
func (c *chatScreen) withActions(gtx layout.Context, u *UI, r *row, w layout.Widget) layout.Dimensions {
	if r.kind != rowMessage || !r.stored() || r.deleted {
		return w(gtx)
	}
	a := r.shown().actions()
	c.rowInput(gtx, u, r)
	m := op.Record(gtx.Ops)
	dims := w(gtx)
	call := m.Stop()
	area := clip.Rect{Max: dims.Size}.Push(gtx.Ops)
	a.hover.Add(gtx.Ops)
	// The long press's events; the text's own (selection, links) are
	// in areas inside this one, which get them too.
	event.Op(gtx.Ops, a)
	call.Add(gtx.Ops)
	hovered := a.hover.Update(gtx.Source)
	switch {
	case hovered:
		c.hover = r.seq
	case c.hover == r.seq:
		c.hover = 0
	}
	if c.hover == r.seq || c.pinned == r.seq || c.picker == r.seq {
		bm := op.Record(gtx.Ops)
		bar := c.actionBar(gtx, u, r)
		bcall := bm.Stop()
		x := dims.Size.X - bar.Size.X - gtx.Dp(16)
		if r.own {
			x = gtx.Dp(12)
		}
		st := op.Offset(image.Pt(max(0, x), 0)).Push(gtx.Ops)
		bcall.Add(gtx.Ops)
		st.Pop()
	}
	area.Pop()
	return dims
}
