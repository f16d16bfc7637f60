package ui

import (
	"image"

	"gioui.org/io/semantic"
	"gioui.org/layout"
	"gioui.org/widget"
	"gioui.org/widget/material"

	"chat/protocol"
)

// memberRow is a member's name in the member list: a click on it opens
// the direct conversation with them.
func (c *chatScreen) memberRow(gtx layout.Context, u *UI, name string) layout.Dimensions {
	th := u.th
	k := protocol.Key(name)
	b := c.memberBtns[k]
	if b == nil {
		b = new(widget.Clickable)
		c.memberBtns[k] = b
	}
	return material.Clickable(gtx, b, func(gtx layout.Context) layout.Dimensions {
		semantic.DescriptionOp("Message " + name).Add(gtx.Ops)
		gtx.Constraints.Min.X = gtx.Constraints.Max.X
		return layout.Inset{Top: 4, Bottom: 4}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
			return layout.Flex{Alignment: layout.Middle}.Layout(gtx,
				layout.Flexed(1, label(th, 14, name, th.Fg).Layout),
				layout.Rigid(func(gtx layout.Context) layout.Dimensions {
					gtx.Constraints.Min = image.Pt(gtx.Dp(18), gtx.Dp(18))
					gtx.Constraints.Max = gtx.Constraints.Min
					return u.shellIcons.message.Layout(gtx, th.Muted)
				}),
			)
		})
	})
}
