package ui

import (
	"fmt"
	"image"
	"strings"
	"time"

	"gioui.org/io/key"
	"gioui.org/io/semantic"
	"gioui.org/layout"
	"gioui.org/op"
	"gioui.org/widget"
	"gioui.org/widget/material"

	"chat/protocol"
)

// listDelay is how long the room panel waits after a keystroke before it
// asks the server for the rooms matching what was typed.
const listDelay = 300 * time.Millisecond

// directoryPanel joins or creates a room: a name field that filters the
// server's room list, and the list.
type directoryPanel struct {
	query     widget.Editor
	list      widget.List
	rooms     []DirectoryRoom // the last answer
	answered  bool            // an answer came since the panel opened
	again     bool            // ask again: the connection came back unanswered
	asked     string          // the query last sent
	typedAt   time.Time       // when the field last changed, zero once asked
	lastQuery string
	btns      []widget.Clickable
	createBtn widget.Clickable
	err       string
}

func (p *directoryPanel) init() {
	p.query.SingleLine, p.query.Submit = true, true
	p.query.InputHint = key.HintText
	p.list.Axis = layout.Vertical
}

// opened starts the panel afresh, asking for the whole room list.
func (p *directoryPanel) opened(u *UI) {
	p.query.SetText("")
	p.lastQuery, p.asked, p.err, p.answered, p.again = "", "", "", false, false
	p.typedAt = time.Time{}
	u.emit(ListRoomsIntent{})
}

func (p *directoryPanel) answer(d Directory) {
	if protocol.Key(d.Query) != protocol.Key(p.asked) {
		return // an older query's answer
	}
	p.rooms, p.answered = d.Rooms, true
}

// typed is the field's room name, without a leading '#'.
func (p *directoryPanel) typed() string {
	return strings.TrimPrefix(strings.TrimSpace(p.query.Text()), "#")
}

// shown are the rooms matching what is typed: the server's answer, also
// filtered here so the list follows the typing at once.
func (p *directoryPanel) shown() []DirectoryRoom {
	q := protocol.Key(p.typed())
	var out []DirectoryRoom
	for _, r := range p.rooms {
		if strings.Contains(protocol.Key(r.Room), q) {
			out = append(out, r)
		}
	}
	return out
}

func (p *directoryPanel) update(gtx layout.Context, u *UI, s *shell) {
	submit := false
	for {
		ev, ok := p.query.Update(gtx)
		if !ok {
			break
		}
		if _, ok := ev.(widget.SubmitEvent); ok {
			submit = true
		}
	}
	if q := p.typed(); q != p.lastQuery {
		p.lastQuery, p.typedAt, p.err = q, gtx.Now, ""
	}
	if p.again {
		// Asked while offline, the question was lost (the client sends
		// nothing without a connection): ask it again now.
		p.again = false
		u.emit(ListRoomsIntent{Query: p.asked})
	}
	if !p.typedAt.IsZero() {
		if wait := p.typedAt.Add(listDelay).Sub(gtx.Now); wait > 0 {
			gtx.Execute(op.InvalidateCmd{At: gtx.Now.Add(wait)})
		} else {
			p.typedAt, p.asked = time.Time{}, p.lastQuery
			u.emit(ListRoomsIntent{Query: p.asked})
		}
	}
	shown := p.shown()
	for i := range min(len(p.btns), len(shown)) {
		if p.btns[i].Clicked(gtx) {
			p.err = s.joinRoom(u, shown[i].Room)
			return
		}
	}
	if p.createBtn.Clicked(gtx) || submit {
		name := p.typed()
		if submit && name == "" && len(shown) > 0 {
			name = shown[0].Room
		}
		p.err = s.joinRoom(u, name)
	}
}

func (p *directoryPanel) layout(gtx layout.Context, u *UI) layout.Dimensions {
	th := u.th
	shown := p.shown()
	if len(p.btns) < len(shown) {
		p.btns = append(p.btns, make([]widget.Clickable, len(shown)-len(p.btns))...)
	}
	name := p.typed()
	exact := false
	for _, r := range shown {
		exact = exact || protocol.Key(r.Room) == protocol.Key(name)
	}
	return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
		layout.Rigid(func(gtx layout.Context) layout.Dimensions {
			return editorBox(gtx, th, &p.query, "Room name")
		}),
		layout.Rigid(func(gtx layout.Context) layout.Dimensions {
			if p.err == "" {
				return layout.Dimensions{}
			}
			return layout.Inset{Top: 6}.Layout(gtx, label(th, 13, p.err, th.Error).Layout)
		}),
		layout.Rigid(func(gtx layout.Context) layout.Dimensions {
			if name == "" || exact {
				return layout.Dimensions{}
			}
			return layout.Inset{Top: 8}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
				return outlinedButton(gtx, th, &p.createBtn, "Create #"+name, th.Accent)
			})
		}),
		layout.Rigid(layout.Spacer{Height: 8}.Layout),
		layout.Rigid(func(gtx layout.Context) layout.Dimensions {
			switch {
			case len(shown) == 0 && !p.answered && u.shell != nil && u.shell.conn.state != Connected:
				return label(th, 13, "Not connected: the rooms show once the connection is back.", th.Muted).Layout(gtx)
			case len(shown) == 0 && !p.answered:
				return label(th, 13, "Looking for rooms…", th.Muted).Layout(gtx)
			case len(shown) == 0 && name == "":
				return label(th, 13, "There are no rooms yet: type a name to create one.", th.Muted).Layout(gtx)
			case len(shown) == 0:
				return label(th, 13, "No room has that in its name.", th.Muted).Layout(gtx)
			}
			now := u.now()
			return material.List(&th.Theme, &p.list).Layout(gtx, len(shown), func(gtx layout.Context, i int) layout.Dimensions {
				r := shown[i]
				return material.Clickable(gtx, &p.btns[i], func(gtx layout.Context) layout.Dimensions {
					gtx.Constraints.Min.X = gtx.Constraints.Max.X
					return layout.Inset{Top: 8, Bottom: 8, Left: 4, Right: 4}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
						return layout.Flex{Alignment: layout.Middle}.Layout(gtx,
							layout.Flexed(1, bold(label(th, 15, "#"+r.Room, th.Fg)).Layout),
							layout.Rigid(label(th, 12, roomFacts(r, now), th.Muted).Layout),
						)
					})
				})
			})
		}),
	)
}

// roomFacts is a room's member count and last activity, in words.
func roomFacts(r DirectoryRoom, now time.Time) string {
	s := fmt.Sprintf("%d members", r.Members)
	if r.Members == 1 {
		s = "1 member"
	}
	if !r.LastActive.IsZero() {
		s += " · " + ago(now.Sub(r.LastActive))
	}
	return s
}

// ago says how long ago something happened, roughly.
func ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "active now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d/time.Hour))
	}
	return fmt.Sprintf("%d days ago", int(d/(24*time.Hour)))
}

// directPanel starts a direct conversation with a name.
type directPanel struct {
	name  widget.Editor
	goBtn widget.Clickable
	err   string
}

func (p *directPanel) init() {
	p.name.SingleLine, p.name.Submit = true, true
	p.name.InputHint = key.HintText
}

func (p *directPanel) update(gtx layout.Context, u *UI, s *shell) {
	submit := false
	for {
		ev, ok := p.name.Update(gtx)
		if !ok {
			break
		}
		if _, ok := ev.(widget.SubmitEvent); ok {
			submit = true
		}
	}
	if p.goBtn.Clicked(gtx) || submit {
		if p.err = s.direct(u, p.name.Text()); p.err == "" {
			p.name.SetText("")
		}
	}
}

func (p *directPanel) layout(gtx layout.Context, u *UI) layout.Dimensions {
	th := u.th
	return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
		layout.Rigid(func(gtx layout.Context) layout.Dimensions {
			return editorBox(gtx, th, &p.name, "Their name")
		}),
		layout.Rigid(func(gtx layout.Context) layout.Dimensions {
			if p.err == "" {
				return layout.Dimensions{}
			}
			return layout.Inset{Top: 6}.Layout(gtx, label(th, 13, p.err, th.Error).Layout)
		}),
		layout.Rigid(layout.Spacer{Height: 10}.Layout),
		layout.Rigid(func(gtx layout.Context) layout.Dimensions {
			b := material.Button(&th.Theme, &p.goBtn, "Open conversation")
			b.TextSize = 14
			return b.Layout(gtx)
		}),
		layout.Rigid(layout.Spacer{Height: 6}.Layout),
		layout.Rigid(label(th, 12, "Only the two of you can read a direct conversation. It opens for them with your first message.", th.Muted).Layout),
	)
}

// jumpList is the Ctrl+K panel: a filter over the conversations' names;
// Up and Down choose, Enter opens.
type jumpList struct {
	query widget.Editor
	sel   int
	list  widget.List
	btns  []widget.Clickable
}

func (j *jumpList) init() {
	j.query.SingleLine, j.query.Submit = true, true
	j.query.InputHint = key.HintText
	j.list.Axis = layout.Vertical
}

// matches are the conversations whose name contains the filter, those
// with unread messages first.
func (j *jumpList) matches(s *shell) []*chatScreen {
	q := protocol.Key(strings.TrimPrefix(strings.TrimSpace(j.query.Text()), "#"))
	var unread, read []*chatScreen
	for _, c := range s.all() {
		if !strings.Contains(protocol.Key(c.title()), q) {
			continue
		}
		if c.unread.count() > 0 {
			unread = append(unread, c)
		} else {
			read = append(read, c)
		}
	}
	return append(unread, read...)
}

func (j *jumpList) update(gtx layout.Context, u *UI, s *shell) {
	// The arrows move the choice, before the field would take them.
	for {
		ev, ok := gtx.Event(
			key.Filter{Focus: &j.query, Name: key.NameUpArrow},
			key.Filter{Focus: &j.query, Name: key.NameDownArrow},
		)
		if !ok {
			break
		}
		if e, ok := ev.(key.Event); ok && e.State == key.Press {
			if e.Name == key.NameUpArrow {
				j.sel--
			} else {
				j.sel++
			}
		}
	}
	submit, changed := false, false
	for {
		ev, ok := j.query.Update(gtx)
		if !ok {
			break
		}
		switch ev.(type) {
		case widget.SubmitEvent:
			submit = true
		case widget.ChangeEvent:
			changed = true
		}
	}
	m := j.matches(s)
	if changed {
		j.sel = 0
	}
	j.sel = max(0, min(j.sel, len(m)-1))
	for i := range min(len(j.btns), len(m)) {
		if j.btns[i].Clicked(gtx) {
			s.openConv(u, m[i])
			return
		}
	}
	if submit && len(m) > 0 {
		s.openConv(u, m[j.sel])
	}
}

func (j *jumpList) layout(gtx layout.Context, u *UI, s *shell) layout.Dimensions {
	th := u.th
	m := j.matches(s)
	if len(j.btns) < len(m) {
		j.btns = append(j.btns, make([]widget.Clickable, len(m)-len(j.btns))...)
	}
	return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
		layout.Rigid(func(gtx layout.Context) layout.Dimensions {
			return editorBox(gtx, th, &j.query, "Conversation name")
		}),
		layout.Rigid(layout.Spacer{Height: 8}.Layout),
		layout.Rigid(func(gtx layout.Context) layout.Dimensions {
			if len(m) == 0 {
				return label(th, 13, "No conversation has that in its name.", th.Muted).Layout(gtx)
			}
			return material.List(&th.Theme, &j.list).Layout(gtx, len(m), func(gtx layout.Context, i int) layout.Dimensions {
				c := m[i]
				return material.Clickable(gtx, &j.btns[i], func(gtx layout.Context) layout.Dimensions {
					gtx.Constraints.Min.X = gtx.Constraints.Max.X
					bg := th.Surface
					if i == j.sel {
						bg = withAlpha(th.ContrastBg, 0x2a)
					}
					return background(gtx, bg, 6, func(gtx layout.Context) layout.Dimensions {
						gtx.Constraints.Min.X = gtx.Constraints.Max.X
						return layout.Inset{Top: 8, Bottom: 8, Left: 8, Right: 8}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
							return layout.Flex{Alignment: layout.Middle}.Layout(gtx,
								layout.Flexed(1, label(th, 15, c.title(), th.Fg).Layout),
								layout.Rigid(func(gtx layout.Context) layout.Dimensions {
									if n := c.unread.count(); n > 0 {
										return badge(gtx, th, countText(n), th.Divider, th.Fg)
									}
									return layout.Dimensions{}
								}),
							)
						})
					})
				})
			})
		}),
	)
}

// panelLayout draws the open panel over a dimmed window; a click on the
// dimmed part closes it.
func (s *shell) panelLayout(gtx layout.Context, u *UI) layout.Dimensions {
	th := u.th
	var title string
	var content layout.Widget
	switch s.panel {
	case roomPanel:
		title = "Join or create a room"
		content = func(gtx layout.Context) layout.Dimensions { return s.roomForm.layout(gtx, u) }
	case dmPanel:
		title = "Message someone"
		content = func(gtx layout.Context) layout.Dimensions { return s.dmForm.layout(gtx, u) }
	case jumpPanel:
		title = "Jump to a conversation"
		content = func(gtx layout.Context) layout.Dimensions { return s.jump.layout(gtx, u, s) }
	case searchPanelKind:
		title = "Search"
		content = func(gtx layout.Context) layout.Dimensions { return s.search.layout(gtx, u, s) }
	}
	size := gtx.Constraints.Max
	s.scrim.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
		semantic.DescriptionOp("Close the panel").Add(gtx.Ops)
		fillRounded(gtx.Ops, size, 0, withAlpha(rgb(0), 0x66))
		return layout.Dimensions{Size: size}
	})
	return layout.N.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
		return layout.Inset{Top: 48, Left: 12, Right: 12}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
			gtx.Constraints.Max.X = min(gtx.Constraints.Max.X, gtx.Dp(440))
			gtx.Constraints.Max.Y = min(gtx.Constraints.Max.Y-gtx.Dp(60), gtx.Dp(520))
			gtx.Constraints.Min.X = gtx.Constraints.Max.X
			// The card takes the clicks on it: none reaches the scrim.
			return s.panelCard.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
				return s.panelBox(gtx, th, u, title, content)
			})
		})
	})
}

// panelBox is the panel's card: its title, close button and content.
func (s *shell) panelBox(gtx layout.Context, th *Theme, u *UI, title string, content layout.Widget) layout.Dimensions {
	return card(gtx, th, th.Divider, th.Surface, func(gtx layout.Context) layout.Dimensions {
		return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
			layout.Rigid(func(gtx layout.Context) layout.Dimensions {
				return layout.Flex{Alignment: layout.Middle}.Layout(gtx,
					layout.Flexed(1, bold(label(th, 16, title, th.Fg)).Layout),
					layout.Rigid(iconButton(th, &s.closePanel, u.icons.close, "Close").Layout),
				)
			}),
			layout.Rigid(layout.Spacer{Height: 8}.Layout),
			layout.Rigid(func(gtx layout.Context) layout.Dimensions {
				gtx.Constraints.Min = image.Point{}
				return content(gtx)
			}),
		)
	})
}
