package ui

import (
	"image"
	"image/color"

	"gioui.org/font"
	"gioui.org/io/semantic"
	"gioui.org/layout"
	"gioui.org/op"
	"gioui.org/op/clip"
	"gioui.org/op/paint"
	"gioui.org/unit"
	"gioui.org/widget"
	"gioui.org/widget/material"
	"golang.org/x/exp/shiny/materialdesign/icons"
)

// iconSet holds the decoded icons; each UI has its own (no package state).
type iconSet struct {
	send, leave, theme, people, down, close, attach *widget.Icon
}

func mustIcon(data []byte) *widget.Icon {
	ic, err := widget.NewIcon(data)
	if err != nil {
		panic(err) // the icon data is compiled in: an error is a programming error
	}
	return ic
}

func loadIcons() iconSet {
	return iconSet{
		send:   mustIcon(icons.ContentSend),
		leave:  mustIcon(icons.ActionExitToApp),
		theme:  mustIcon(icons.ImageBrightness4),
		people: mustIcon(icons.SocialPeople),
		down:   mustIcon(icons.NavigationArrowDownward),
		close:  mustIcon(icons.NavigationClose),
		attach: mustIcon(icons.EditorAttachFile),
	}
}

// label is a material label in the theme's face with an explicit color.
func label(th *Theme, size unit.Sp, txt string, c color.NRGBA) material.LabelStyle {
	l := material.Label(&th.Theme, size, txt)
	l.Color = c
	return l
}

func bold(l material.LabelStyle) material.LabelStyle {
	l.Font.Weight = font.SemiBold
	return l
}

// colorMaterial records a paint color for widgets that take a material.
func colorMaterial(ops *op.Ops, c color.NRGBA) op.CallOp {
	m := op.Record(ops)
	paint.ColorOp{Color: c}.Add(ops)
	return m.Stop()
}

// fillRounded paints a rounded rectangle of the given size at the origin.
//
// A path costs the software rasterizer (Mesa llvmpipe) its whole bounding
// box, while a pixel-aligned rectangle is nearly free. So the straight
// parts are rectangles and only the corners are paths: scrolling a list
// of bubbles costs about 2 ms less per frame at 1.5 px/dp.
func fillRounded(ops *op.Ops, size image.Point, radius int, c color.NRGBA) {
	r := radius
	if r <= 0 {
		paint.FillShape(ops, c, clip.Rect{Max: size}.Op())
		return
	}
	if 2*r > size.X || 2*r > size.Y {
		paint.FillShape(ops, c, clip.UniformRRect(image.Rectangle{Max: size}, r).Op(ops))
		return
	}
	paint.FillShape(ops, c, clip.Rect{Min: image.Pt(r, 0), Max: image.Pt(size.X-r, size.Y)}.Op())
	paint.FillShape(ops, c, clip.Rect{Min: image.Pt(0, r), Max: image.Pt(r, size.Y-r)}.Op())
	paint.FillShape(ops, c, clip.Rect{Min: image.Pt(size.X-r, r), Max: image.Pt(size.X, size.Y-r)}.Op())
	for _, o := range []image.Point{{0, 0}, {size.X - r, 0}, {0, size.Y - r}, {size.X - r, size.Y - r}} {
		// The quarter of a circle that fits the corner square.
		sq := clip.Rect{Min: o, Max: o.Add(image.Pt(r, r))}.Push(ops)
		cx, cy := 0, 0
		if o.X > 0 {
			cx = size.X - 2*r
		}
		if o.Y > 0 {
			cy = size.Y - 2*r
		}
		paint.FillShape(ops, c, clip.Ellipse{Min: image.Pt(cx, cy), Max: image.Pt(cx+2*r, cy+2*r)}.Op(ops))
		sq.Pop()
	}
}

// background lays out w over a filled rounded rectangle of w's size.
func background(gtx layout.Context, c color.NRGBA, radius unit.Dp, w layout.Widget) layout.Dimensions {
	return layout.Background{}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
		fillRounded(gtx.Ops, gtx.Constraints.Min, gtx.Dp(radius), c)
		return layout.Dimensions{Size: gtx.Constraints.Min}
	}, w)
}

// divider is a one-dp horizontal line across the available width.
func divider(gtx layout.Context, c color.NRGBA) layout.Dimensions {
	size := image.Pt(gtx.Constraints.Max.X, max(1, gtx.Dp(1)))
	paint.FillShape(gtx.Ops, c, clip.Rect{Max: size}.Op())
	return layout.Dimensions{Size: size}
}

// iconButton is a flat icon button in the theme's foreground color.
func iconButton(th *Theme, btn *widget.Clickable, ic *widget.Icon, desc string) material.IconButtonStyle {
	b := material.IconButton(&th.Theme, btn, ic, desc)
	b.Background = color.NRGBA{}
	b.Color = th.Fg
	b.Size = 22
	b.Inset = layout.UniformInset(9)
	return b
}

func fontOf(th *Theme) font.Font { return font.Font{Typeface: th.Face} }

func withAlpha(c color.NRGBA, a uint8) color.NRGBA {
	c.A = a
	return c
}

// monoFace is the typeface for fingerprints and keys, where every
// character must be told apart (0 and O, l and 1) and columns line up.
const monoFace = "Go Mono"

// mono lays out selectable text in the monospaced face: what people
// compare or copy character by character.
func mono(gtx layout.Context, th *Theme, s *widget.Selectable, c color.NRGBA) layout.Dimensions {
	f := font.Font{Typeface: monoFace}
	dims := s.Layout(gtx, th.Shaper, f, 14, colorMaterial(gtx.Ops, c), colorMaterial(gtx.Ops, withAlpha(th.ContrastBg, 0x60)))
	// Selectable text has no semantic label of its own: give it one, for
	// screen readers (and tests).
	defer clip.Rect{Max: dims.Size}.Push(gtx.Ops).Pop()
	semantic.LabelOp(s.Text()).Add(gtx.Ops)
	return dims
}

// outlinedButton is a secondary action: text in c inside a thin border.
func outlinedButton(gtx layout.Context, th *Theme, btn *widget.Clickable, txt string, c color.NRGBA) layout.Dimensions {
	gtx.Constraints.Min = image.Point{} // as wide as its words, in any column
	return widget.Border{Color: c, CornerRadius: 4, Width: 1}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
		return material.Clickable(gtx, btn, func(gtx layout.Context) layout.Dimensions {
			return layout.Inset{Top: 9, Bottom: 9, Left: 14, Right: 14}.Layout(gtx, label(th, 14, txt, c).Layout)
		})
	})
}

// buttonPair is a dialog's choice: the main action as a filled button,
// the other beside it outlined.
func buttonPair(gtx layout.Context, th *Theme, main *widget.Clickable, mainTxt string, other *widget.Clickable, otherTxt string) layout.Dimensions {
	return layout.Flex{Alignment: layout.Middle}.Layout(gtx,
		layout.Rigid(func(gtx layout.Context) layout.Dimensions {
			b := material.Button(&th.Theme, main, mainTxt)
			b.TextSize = 14
			return b.Layout(gtx)
		}),
		layout.Rigid(layout.Spacer{Width: 8}.Layout),
		layout.Rigid(func(gtx layout.Context) layout.Dimensions {
			return outlinedButton(gtx, th, other, otherTxt, th.Accent)
		}),
	)
}

// iconLabel is an icon of size dp, then gap dp, then txt, all in c.
func iconLabel(gtx layout.Context, th *Theme, icon *widget.Icon, size, gap unit.Dp, txt string, c color.NRGBA) layout.Dimensions {
	return layout.Flex{Alignment: layout.Middle}.Layout(gtx,
		layout.Rigid(func(gtx layout.Context) layout.Dimensions {
			gtx.Constraints.Min = image.Pt(gtx.Dp(size), gtx.Dp(size))
			gtx.Constraints.Max = gtx.Constraints.Min
			return icon.Layout(gtx, c)
		}),
		layout.Rigid(layout.Spacer{Width: gap}.Layout),
		layout.Rigid(label(th, 14, txt, c).Layout),
	)
}

// linkButton is a quiet action in running text: accent-colored words.
func linkButton(gtx layout.Context, th *Theme, btn *widget.Clickable, txt string) layout.Dimensions {
	gtx.Constraints.Min = image.Point{}
	return material.Clickable(gtx, btn, func(gtx layout.Context) layout.Dimensions {
		return layout.Inset{Top: 6, Bottom: 6}.Layout(gtx, label(th, 13, txt, th.Accent).Layout)
	})
}

// card is a bordered, filled box around w with some padding.
func card(gtx layout.Context, th *Theme, border, bg color.NRGBA, w layout.Widget) layout.Dimensions {
	gtx.Constraints.Min.X = gtx.Constraints.Max.X
	return widget.Border{Color: border, CornerRadius: 10, Width: 1}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
		return background(gtx, bg, 10, func(gtx layout.Context) layout.Dimensions {
			return layout.UniformInset(14).Layout(gtx, w)
		})
	})
}
