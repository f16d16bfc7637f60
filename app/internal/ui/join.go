package ui

import (
	"net"
	"strings"

	"gioui.org/io/key"
	"gioui.org/layout"
	"gioui.org/unit"
	"gioui.org/widget"
	"gioui.org/widget/material"

	"chat/protocol"
)

// Field names a join form field, so a failure can put the cursor where
// the fix is.
type Field int

// Form fields.
const (
	NoField Field = iota
	ServerField
	NameField
	RoomField
)

// joinScreen is the form: server, name, room and the Join button.
type joinScreen struct {
	showServer         bool
	server, name, room widget.Editor
	joinBtn            widget.Clickable
	joining            bool   // a JoinIntent is out and no answer came yet
	target             string // server being joined, for the status line
	err                string // why the last join failed
	focus              *widget.Editor
}

func (j *joinScreen) init(cfg Config) {
	j.showServer = cfg.ShowServer
	for _, ed := range []*widget.Editor{&j.server, &j.name, &j.room} {
		ed.SingleLine, ed.Submit = true, true
		ed.InputHint = key.HintText
	}
	j.server.InputHint = key.HintURL
	j.server.SetText(cfg.Server)
	j.name.SetText(cfg.Name)
	room := cfg.Room
	if room == "" {
		room = protocol.DefaultRoom
	}
	j.room.SetText(room)
	j.focus = &j.name
}

func (j *joinScreen) editor(f Field) *widget.Editor {
	switch f {
	case ServerField:
		if j.showServer {
			return &j.server
		}
	case NameField:
		return &j.name
	case RoomField:
		return &j.room
	}
	return nil
}

// fail shows why a join did not work and keeps everything typed.
func (j *joinScreen) fail(reason string, f Field) {
	j.joining, j.err = false, reason
	if ed := j.editor(f); ed != nil {
		j.focus = ed
	}
}

// form checks the fields and returns the join they describe, or the
// problem to show and the field to fix.
func (j *joinScreen) form() (JoinIntent, string, Field) {
	in := JoinIntent{
		Server: strings.TrimSpace(j.server.Text()),
		Name:   strings.TrimSpace(j.name.Text()),
		Room:   strings.TrimSpace(j.room.Text()),
	}
	if j.showServer {
		if in.Server == "" {
			return in, "Enter the server address, like localhost:7878.", ServerField
		}
		if _, _, err := net.SplitHostPort(strings.TrimPrefix(in.Server, "tcp://")); err != nil {
			return in, "The server address needs a host and a port, like localhost:7878.", ServerField
		}
	}
	if in.Name == "" {
		return in, "Enter the name to appear under.", NameField
	}
	if err := protocol.CheckName(in.Name); err != nil {
		return in, "That name cannot be used: it " + err.Error() + ".", NameField
	}
	if in.Room == "" {
		in.Room = protocol.DefaultRoom
	}
	if err := protocol.CheckName(in.Room); err != nil {
		return in, "That room name cannot be used: it " + err.Error() + ".", RoomField
	}
	return in, "", NoField
}

// update handles input. It returns a join to start, or cancel when the
// user stopped the one under way.
func (j *joinScreen) update(gtx layout.Context) (join *JoinIntent, cancel bool) {
	submit := false
	for _, ed := range []*widget.Editor{&j.server, &j.name, &j.room} {
		for {
			ev, ok := ed.Update(gtx)
			if !ok {
				break
			}
			if _, ok := ev.(widget.SubmitEvent); ok {
				submit = true
			}
		}
	}
	clicked := j.joinBtn.Clicked(gtx)
	switch {
	case j.joining && clicked:
		j.joining = false
		return nil, true
	case j.joining:
		return nil, false // Enter again while joining changes nothing
	case submit || clicked:
		in, problem, f := j.form()
		if problem != "" {
			j.fail(problem, f)
			return nil, false
		}
		j.joining, j.err, j.target = true, "", in.Server
		return &in, false
	}
	return nil, false
}

func (j *joinScreen) layout(gtx layout.Context, u *UI) layout.Dimensions {
	if j.focus != nil {
		gtx.Execute(key.FocusCmd{Tag: j.focus})
		j.focus = nil
	}
	th := u.th
	return layout.Stack{Alignment: layout.N}.Layout(gtx,
		layout.Expanded(func(gtx layout.Context) layout.Dimensions {
			return layout.Dimensions{Size: gtx.Constraints.Min}
		}),
		layout.Stacked(func(gtx layout.Context) layout.Dimensions {
			gtx.Constraints.Max.X = min(gtx.Constraints.Max.X, gtx.Dp(420))
			gtx.Constraints.Min.X = gtx.Constraints.Max.X
			return layout.UniformInset(24).Layout(gtx, func(gtx layout.Context) layout.Dimensions {
				return j.form2(gtx, th)
			})
		}),
		layout.Stacked(func(gtx layout.Context) layout.Dimensions {
			// The theme toggle sits in the top right corner of the window.
			gtx.Constraints.Min.X = gtx.Constraints.Max.X
			return layout.NE.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
				return layout.UniformInset(4).Layout(gtx, iconButton(th, &u.themeBtn, u.icons.theme, "Switch theme").Layout)
			})
		}),
	)
}

// form2 draws the fields, the button and the status line.
func (j *joinScreen) form2(gtx layout.Context, th *Theme) layout.Dimensions {
	var children []layout.FlexChild
	add := func(w layout.Widget) { children = append(children, layout.Rigid(w)) }
	space := func(h unit.Dp) { add(layout.Spacer{Height: h}.Layout) }
	add(func(gtx layout.Context) layout.Dimensions {
		l := bold(label(th, 28, "Chat", th.Fg))
		return l.Layout(gtx)
	})
	space(4)
	add(label(th, 14, "Join a room to start talking.", th.Muted).Layout)
	space(24)
	if j.showServer {
		add(func(gtx layout.Context) layout.Dimensions { return field(gtx, th, "Server", &j.server, "host:port") })
		space(16)
	}
	add(func(gtx layout.Context) layout.Dimensions { return field(gtx, th, "Name", &j.name, "Your name") })
	space(16)
	add(func(gtx layout.Context) layout.Dimensions {
		return field(gtx, th, "Room", &j.room, protocol.DefaultRoom)
	})
	space(24)
	add(func(gtx layout.Context) layout.Dimensions {
		txt := "Join"
		if j.joining {
			txt = "Cancel"
		}
		b := material.Button(&th.Theme, &j.joinBtn, txt)
		b.TextSize = 15
		b.Inset = layout.UniformInset(12)
		gtx.Constraints.Min.X = gtx.Constraints.Max.X
		return b.Layout(gtx)
	})
	space(16)
	switch {
	case j.err != "":
		add(label(th, 14, j.err, th.Error).Layout)
	case j.joining && j.target != "":
		add(label(th, 14, "Connecting to "+j.target+"…", th.Muted).Layout)
	case j.joining:
		add(label(th, 14, "Connecting…", th.Muted).Layout)
	}
	return layout.Flex{Axis: layout.Vertical}.Layout(gtx, children...)
}

// field is a caption over an outlined single-line editor.
func field(gtx layout.Context, th *Theme, caption string, ed *widget.Editor, hint string) layout.Dimensions {
	return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
		layout.Rigid(bold(label(th, 13, caption, th.Muted)).Layout),
		layout.Rigid(layout.Spacer{Height: 6}.Layout),
		layout.Rigid(func(gtx layout.Context) layout.Dimensions {
			border := th.Divider
			width := unit.Dp(1)
			if gtx.Focused(ed) {
				border, width = th.Accent, 2
			}
			gtx.Constraints.Min.X = gtx.Constraints.Max.X
			return widget.Border{Color: border, CornerRadius: 8, Width: width}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
				return background(gtx, th.Surface, 8, func(gtx layout.Context) layout.Dimensions {
					return layout.Inset{Top: 10, Bottom: 10, Left: 12, Right: 12}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
						e := material.Editor(&th.Theme, ed, hint)
						e.HintColor = th.Muted
						return e.Layout(gtx)
					})
				})
			})
		}),
	)
}
