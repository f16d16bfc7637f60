package ui

import (
	"fmt"
	"image"

	"gioui.org/io/semantic"
	"gioui.org/layout"
	"gioui.org/op"
	"gioui.org/op/clip"
	"gioui.org/text"
	"gioui.org/unit"
	"gioui.org/widget"
	"gioui.org/widget/material"
)

func (c *chatScreen) messages(gtx layout.Context, th *Theme) layout.Dimensions {
	gtx.Constraints.Min = gtx.Constraints.Max
	if len(c.log.rows) == 0 {
		return layout.Center.Layout(gtx, label(th, 14, "No messages yet. Say hello!", th.Muted).Layout)
	}
	l := material.List(&th.Theme, &c.list)
	return l.Layout(gtx, len(c.log.rows), func(gtx layout.Context, i int) layout.Dimensions {
		return c.row(gtx, th, i)
	})
}

func (c *chatScreen) jumpButton(gtx layout.Context, u *UI) layout.Dimensions {
	th := u.th
	txt := "1 new message"
	if c.unseen > 1 {
		txt = fmt.Sprintf("%d new messages", c.unseen)
	}
	b := material.ButtonLayout(&th.Theme, &c.jumpBtn)
	b.CornerRadius = 18
	return b.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
		return layout.Inset{Top: 8, Bottom: 8, Left: 14, Right: 14}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
			return iconLabel(gtx, th, u.icons.down, 18, 6, txt, th.ContrastFg)
		})
	})
}

// row draws the list's row i.
func (c *chatScreen) row(gtx layout.Context, th *Theme, i int) layout.Dimensions {
	r := &c.log.rows[i]
	if r.kind == rowNotice {
		return layout.Inset{Top: 6, Bottom: 2, Left: 16, Right: 16}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
			gtx.Constraints.Min.X = gtx.Constraints.Max.X
			l := label(th, 12, r.text+" · "+r.clock, th.Muted)
			l.Alignment = text.Middle
			return l.Layout(gtx)
		})
	}
	top := unit.Dp(10)
	if r.cont {
		top = 3
	}
	last := i == len(c.log.rows)-1
	bottom := unit.Dp(0)
	if last {
		bottom = 10
	}
	return layout.Inset{Top: top, Bottom: bottom, Left: 12, Right: 16}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
		width := gtx.Constraints.Max.X
		gtx.Constraints = layout.Constraints{Max: image.Pt(min(width*4/5, gtx.Dp(560)), gtx.Constraints.Max.Y)}
		m := op.Record(gtx.Ops)
		dims := layout.Inset{Top: 6, Bottom: 6, Left: 12, Right: 12}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
			return bubble(gtx, th, r)
		})
		call := m.Stop()
		x := 0
		if r.own {
			x = width - dims.Size.X
		}
		defer op.Offset(image.Pt(x, 0)).Push(gtx.Ops).Pop()
		bg := th.Surface
		if r.own {
			bg = th.Own
		}
		fillRounded(gtx.Ops, dims.Size, gtx.Dp(12), bg)
		call.Add(gtx.Ops)
		return layout.Dimensions{Size: image.Pt(width, dims.Size.Y)}
	})
}

// bubble lays out a message's name line, text and time. The time (or
// "sending…") goes to the right under the text, so the bubble is as wide
// as its widest part.
func bubble(gtx layout.Context, th *Theme, r *row) layout.Dimensions {
	gtx.Constraints.Min = image.Point{}
	var nameDims layout.Dimensions
	var nameCall op.CallOp
	if !r.cont {
		m := op.Record(gtx.Ops)
		l := bold(label(th, 13, r.sender, th.Accent))
		l.MaxLines = 1
		nameDims = l.Layout(gtx)
		nameCall = m.Stop()
	}

	m := op.Record(gtx.Ops)
	if r.sel == nil {
		r.sel = new(widget.Selectable)
		r.sel.SetText(r.text)
	}
	textCol := th.Fg
	if r.status == statusPending {
		textCol = th.Muted
	}
	textDims := r.sel.Layout(gtx, th.Shaper, fontOf(th), th.TextSize,
		colorMaterial(gtx.Ops, textCol), colorMaterial(gtx.Ops, withAlpha(th.ContrastBg, 0x60)))
	// Selectable text has no semantic label of its own; give it one so
	// screen readers (and the tests) can see what is shown.
	area := clip.Rect{Max: textDims.Size}.Push(gtx.Ops)
	semantic.LabelOp(r.text).Add(gtx.Ops)
	area.Pop()
	textCall := m.Stop()

	m = op.Record(gtx.Ops)
	var meta layout.Dimensions
	switch r.status {
	case statusPending:
		meta = label(th, 11, "sending…", th.Muted).Layout(gtx)
	case statusFailed:
		meta = label(th, 11, "not sent: "+r.reason, th.Error).Layout(gtx)
	default:
		meta = label(th, 11, r.clock, th.Muted).Layout(gtx)
	}
	metaCall := m.Stop()

	w := max(nameDims.Size.X, textDims.Size.X, meta.Size.X)
	y := 0
	if !r.cont {
		nameCall.Add(gtx.Ops)
		y = nameDims.Size.Y + gtx.Dp(2)
	}
	st := op.Offset(image.Pt(0, y)).Push(gtx.Ops)
	textCall.Add(gtx.Ops)
	st.Pop()
	y += textDims.Size.Y + gtx.Dp(2)
	st = op.Offset(image.Pt(w-meta.Size.X, y)).Push(gtx.Ops)
	metaCall.Add(gtx.Ops)
	st.Pop()
	y += meta.Size.Y
	return layout.Dimensions{Size: image.Pt(w, y)}
}
