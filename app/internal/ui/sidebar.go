package ui

import (
	"fmt"
	"image"
	"image/color"

	"gioui.org/font"
	"gioui.org/io/semantic"
	"gioui.org/layout"
	"gioui.org/text"
	"gioui.org/widget"
	"gioui.org/widget/material"
)

// sidebar is the conversation list: who we are and the connection, the
// rooms, the direct conversations. In the narrow layout it is a screen
// of its own.
func (s *shell) sidebar(gtx layout.Context, u *UI) layout.Dimensions {
	th := u.th
	content := func(gtx layout.Context) layout.Dimensions {
		return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
			layout.Rigid(func(gtx layout.Context) layout.Dimensions { return s.sideHeader(gtx, u) }),
			layout.Rigid(func(gtx layout.Context) layout.Dimensions { return divider(gtx, th.Divider) }),
			layout.Flexed(1, func(gtx layout.Context) layout.Dimensions { return s.sideList(gtx, u) }),
		)
	}
	bg := th.Surface
	if s.narrow {
		bg = th.Bg
	}
	return background(gtx, bg, 0, func(gtx layout.Context) layout.Dimensions {
		gtx.Constraints.Min = gtx.Constraints.Max
		return content(gtx)
	})
}

// sideHeader is our name with the connection state, the theme switch and
// the sign-out button.
func (s *shell) sideHeader(gtx layout.Context, u *UI) layout.Dimensions {
	th := u.th
	return layout.Inset{Top: 8, Bottom: 8, Left: 16, Right: 4}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
		return layout.Flex{Alignment: layout.Middle}.Layout(gtx,
			layout.Flexed(1, func(gtx layout.Context) layout.Dimensions {
				return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
					layout.Rigid(func(gtx layout.Context) layout.Dimensions {
						l := bold(label(th, 17, s.name, th.Fg))
						l.MaxLines = 1
						return l.Layout(gtx)
					}),
					layout.Rigid(func(gtx layout.Context) layout.Dimensions { return s.conn.status(gtx, th) }),
				)
			}),
			layout.Rigid(iconButton(th, &u.themeBtn, u.icons.theme, "Switch theme").Layout),
			layout.Rigid(iconButton(th, &s.signOutBtn, u.shellIcons.signOut, "Sign out").Layout),
		)
	})
}

// sideList is the scrolling part of the list.
func (s *shell) sideList(gtx layout.Context, u *UI) layout.Dimensions {
	th := u.th
	var items []layout.Widget
	add := func(w layout.Widget) { items = append(items, w) }
	if s.askNotify {
		add(func(gtx layout.Context) layout.Dimensions {
			return material.Clickable(gtx, &s.notifyBtn, func(gtx layout.Context) layout.Dimensions {
				gtx.Constraints.Min.X = gtx.Constraints.Max.X
				return layout.Inset{Top: 10, Bottom: 10, Left: 16, Right: 16}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
					return iconLabel(gtx, th, u.shellIcons.bell, 18, 8, "Turn on notifications", th.Accent)
				})
			})
		})
	}
	add(func(gtx layout.Context) layout.Dimensions {
		return s.section(gtx, u, "Rooms", &s.addRoomBtn, "Join or create a room")
	})
	for _, c := range s.rooms {
		add(func(gtx layout.Context) layout.Dimensions { return s.sideRow(gtx, u, c) })
	}
	if len(s.rooms) == 0 {
		add(func(gtx layout.Context) layout.Dimensions {
			return layout.Inset{Left: 16, Top: 2, Bottom: 6}.Layout(gtx, label(th, 13, "No rooms yet.", th.Muted).Layout)
		})
	}
	add(func(gtx layout.Context) layout.Dimensions {
		return s.section(gtx, u, "Direct messages", &s.addDMBtn, "Message someone")
	})
	for _, c := range s.dms {
		add(func(gtx layout.Context) layout.Dimensions { return s.sideRow(gtx, u, c) })
	}
	l := material.List(&th.Theme, &s.side)
	l.AnchorStrategy = material.Overlay // the rows' highlight reaches the edge
	return l.Layout(gtx, len(items), func(gtx layout.Context, i int) layout.Dimensions {
		return items[i](gtx)
	})
}

// section is a heading of the list with its add button.
func (s *shell) section(gtx layout.Context, u *UI, title string, btn *widget.Clickable, desc string) layout.Dimensions {
	th := u.th
	return layout.Inset{Top: 8, Left: 16, Right: 4}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
		return layout.Flex{Alignment: layout.Middle}.Layout(gtx,
			layout.Flexed(1, bold(label(th, 13, title, th.Muted)).Layout),
			layout.Rigid(func(gtx layout.Context) layout.Dimensions {
				b := iconButton(th, btn, u.shellIcons.add, desc)
				b.Color = th.Muted
				b.Size = 20
				b.Inset = layout.UniformInset(7)
				return b.Layout(gtx)
			}),
		)
	})
}

// sideRow is a conversation in the list: its name, bold when it has
// unread messages, and its badges: the unread count, in the accent color
// when it concerns us (a direct message, a mention), and "@" for mentions.
func (s *shell) sideRow(gtx layout.Context, u *UI, c *chatScreen) layout.Dimensions {
	th := u.th
	n, m := c.unread.count(), c.unread.mentionCount()
	open := c == s.open && !(s.narrow && s.showList)
	return material.Clickable(gtx, &c.sideBtn, func(gtx layout.Context) layout.Dimensions {
		semantic.DescriptionOp(sideDescription(c, n, m)).Add(gtx.Ops)
		gtx.Constraints.Min.X = gtx.Constraints.Max.X
		var bg color.NRGBA
		if open {
			bg = withAlpha(th.ContrastBg, 0x2a)
		}
		return background(gtx, bg, 0, func(gtx layout.Context) layout.Dimensions {
			gtx.Constraints.Min.X = gtx.Constraints.Max.X
			return layout.Inset{Top: 7, Bottom: 7, Left: 16, Right: 12}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
				return layout.Flex{Alignment: layout.Middle}.Layout(gtx,
					layout.Flexed(1, func(gtx layout.Context) layout.Dimensions {
						col := th.Muted
						if n > 0 || open {
							col = th.Fg
						}
						l := label(th, 15, c.title(), col)
						if n > 0 {
							l.Font.Weight = font.Bold
						}
						if c.gone != "" {
							l.Color = th.Error
						}
						l.MaxLines = 1
						l.Truncator = "…"
						return l.Layout(gtx)
					}),
					layout.Rigid(func(gtx layout.Context) layout.Dimensions {
						if m == 0 || c.dm {
							return layout.Dimensions{}
						}
						return layout.Inset{Left: 6}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
							return badge(gtx, th, "@", th.ContrastBg, th.ContrastFg)
						})
					}),
					layout.Rigid(func(gtx layout.Context) layout.Dimensions {
						if n == 0 {
							return layout.Dimensions{}
						}
						bg, fg := th.Divider, th.Fg
						if c.dm || m > 0 {
							bg, fg = th.ContrastBg, th.ContrastFg
						}
						return layout.Inset{Left: 6}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
							return badge(gtx, th, countText(n), bg, fg)
						})
					}),
				)
			})
		})
	})
}

// sideDescription says what a row shows, for screen readers: the name,
// the unread and mention counts.
func sideDescription(c *chatScreen, unread, mentions int) string {
	d := c.title()
	if c.dm {
		d = "Direct messages with " + c.peerName
	}
	switch {
	case unread == 1:
		d += ": 1 unread"
	case unread > 1:
		d += fmt.Sprintf(": %d unread", unread)
	}
	switch {
	case mentions == 1 && !c.dm:
		d += ", 1 mention"
	case mentions > 1 && !c.dm:
		d += fmt.Sprintf(", %d mentions", mentions)
	}
	return d
}

// countText is a badge's number: past 99 the exact count stops mattering.
func countText(n int) string {
	if n > 99 {
		return "99+"
	}
	return fmt.Sprint(n)
}

// badge is a pill with a short text.
func badge(gtx layout.Context, th *Theme, txt string, bg, fg color.NRGBA) layout.Dimensions {
	return layout.Stack{Alignment: layout.Center}.Layout(gtx,
		layout.Expanded(func(gtx layout.Context) layout.Dimensions {
			fillRounded(gtx.Ops, gtx.Constraints.Min, gtx.Constraints.Min.Y/2, bg)
			return layout.Dimensions{Size: gtx.Constraints.Min}
		}),
		layout.Stacked(func(gtx layout.Context) layout.Dimensions {
			gtx.Constraints.Min = image.Pt(gtx.Dp(22), 0)
			return layout.Inset{Top: 2, Bottom: 2, Left: 7, Right: 7}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
				l := bold(label(th, 12, txt, fg))
				l.Alignment = text.Middle
				gtx.Constraints.Min.X = max(0, gtx.Constraints.Min.X-gtx.Dp(14))
				return l.Layout(gtx)
			})
		}),
	)
}
