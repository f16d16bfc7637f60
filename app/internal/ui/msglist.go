package ui

import (
	"fmt"
	"image"

	"gioui.org/f32"
	"gioui.org/font"
	"gioui.org/gesture"
	"gioui.org/io/pointer"
	"gioui.org/io/semantic"
	"gioui.org/io/system"
	"gioui.org/layout"
	"gioui.org/op"
	"gioui.org/op/clip"
	"gioui.org/op/paint"
	"gioui.org/text"
	"gioui.org/unit"
	"gioui.org/widget"
	"gioui.org/widget/material"
	"golang.org/x/image/math/fixed"

	"chat/client"
)

// The message list: a window of the room's history (see log.go) drawn
// with day separators, selectable text, clickable links and right-to-left
// paragraphs aligned right.
//
// Hooks for the rest of the UI: the chat screen calls messages from its
// layout, page for a client.Page of its room, and log.rejoined for every
// client.Joined of its room (after log.reset when Reset is set); seenUpTo
// tells what the user has seen.

// page takes a page of the room's history the list asked for with a
// LoadOlderIntent. Older messages go above the rows with the view kept on
// the same rows; newer ones below; the newest replace the window after a
// jump to the end. Pages not asked for, or answered after a newer
// request, are ignored.
func (c *chatScreen) page(p client.Page) { c.log.page(p) }

// seenUpTo is the sequence number of the newest message the last frame
// showed (0 if none): what the user has seen, for a read marker. When
// the view shows the room's end it is the newest number known, a
// change's (see readThrough).
func (c *chatScreen) seenUpTo() uint64 {
	l := c.log
	var seen uint64
	for i := max(0, l.viewFirst); i < min(len(l.rows), l.viewFirst+l.viewCount); i++ {
		seen = max(seen, l.rows[i].seq)
	}
	if seen != 0 && l.following && l.viewFirst+l.viewCount >= len(l.rows) {
		seen = l.readThrough(seen)
	}
	return seen
}

// rowView is what a row needs once shown: its selectable text, and its
// links' clicks and glyphs.
type rowView struct {
	sel     widget.Selectable
	clicks  []gesture.Click // one per link
	regions []widget.Region // scratch for Regions
	runs    []glyphRun      // the links' glyphs, drawn again in the link color
	runsFor runsKey
	act     *rowActions // the actions' buttons and gestures, made on first use
	fc      *fileControls
}

// glyphRun is glyphs of one line, shaped as one path at off.
type glyphRun struct {
	off    f32.Point
	glyphs []text.Glyph
}

// runsKey is what the links' glyphs depend on.
type runsKey struct {
	font               font.Font
	size               fixed.Int26_6
	minWidth, maxWidth int
	dir                system.TextDirection
}

// shown returns the row's view, made on first use.
func (r *row) shown() *rowView {
	if r.view == nil {
		r.view = &rowView{}
		r.view.sel.SetText(r.text)
		if len(r.links) > 0 {
			r.view.clicks = make([]gesture.Click, len(r.links))
		}
	}
	return r.view
}

func (c *chatScreen) messages(gtx layout.Context, u *UI) layout.Dimensions {
	th := u.th
	l := c.log
	gtx.Constraints.Min = gtx.Constraints.Max
	pos := &c.list.Position
	// Rows came or went above the view since the last frame: stay on the
	// same rows.
	pos.First += l.takeShift()
	switch {
	case l.toEnd:
		l.toEnd = false
		pos.BeforeEnd = false
	case l.scrollTo >= 0:
		// A jump to a message (a reply's quote, a search hit, a link):
		// it goes near the top of the view.
		pos.First, pos.Offset, pos.BeforeEnd = max(0, min(l.scrollTo, len(l.rows)-1)-1), 0, true
		l.scrollTo = -1
	case l.detached && !l.jumping && !pos.BeforeEnd:
		// The list was sent to its end (the jump button, a message sent),
		// but the window does not reach the room's end: the newest page
		// replaces it.
		l.jumpToEnd()
	}
	var dims layout.Dimensions
	if len(l.rows) == 0 {
		dims = layout.Center.Layout(gtx, label(th, 14, "No messages yet. Say hello!", th.Muted).Layout)
	} else {
		now := l.now()
		today := dayOf(now)
		dims = material.List(&th.Theme, &c.list).Layout(gtx, len(l.rows), func(gtx layout.Context, i int) layout.Dimensions {
			return c.row(gtx, u, i, today)
		})
		// "Today" becomes "Yesterday" at midnight.
		gtx.Execute(op.InvalidateCmd{At: gtx.Now.Add(nextMidnight(now).Sub(now))})
	}
	l.viewed(pos.First, pos.Count, !pos.BeforeEnd)
	l.trim()
	pos.First += l.takeShift()
	if l.detached && !l.jumping {
		// More rows will come below: a list at its end would follow them
		// to their end, past a whole page.
		pos.BeforeEnd = true
	}
	if before, ok := l.request(); ok {
		u.emit(LoadOlderIntent{Room: c.room, Before: before, Limit: pageSize})
	}
	return dims
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

// row draws the list's row i, under a day separator if it starts a day.
func (c *chatScreen) row(gtx layout.Context, u *UI, i int, today int32) layout.Dimensions {
	r := &c.log.rows[i]
	if !r.dayBreak {
		return c.rowBody(gtx, u, i)
	}
	sep := daySeparator(gtx, u.th, c.log.days.label(r.day, today))
	st := op.Offset(image.Pt(0, sep.Size.Y)).Push(gtx.Ops)
	dims := c.rowBody(gtx, u, i)
	st.Pop()
	return layout.Dimensions{Size: image.Pt(max(sep.Size.X, dims.Size.X), sep.Size.Y+dims.Size.Y)}
}

// daySeparator is a day's name between two thin lines across the list.
func daySeparator(gtx layout.Context, th *Theme, day string) layout.Dimensions {
	return layout.Inset{Top: 14, Bottom: 4, Left: 16, Right: 16}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
		gtx.Constraints.Min.X = gtx.Constraints.Max.X
		m := op.Record(gtx.Ops)
		l := bold(label(th, 12, day, th.Muted))
		l.MaxLines = 1
		gtx.Constraints.Min.X = 0
		txt := l.Layout(gtx)
		call := m.Stop()
		width := gtx.Constraints.Max.X
		gap := gtx.Dp(10)
		x := max(0, (width-txt.Size.X)/2)
		y := txt.Size.Y / 2
		line := max(1, gtx.Dp(1))
		if x-gap > 0 {
			paint.FillShape(gtx.Ops, th.Divider, clip.Rect{Min: image.Pt(0, y), Max: image.Pt(x-gap, y+line)}.Op())
			paint.FillShape(gtx.Ops, th.Divider, clip.Rect{Min: image.Pt(x+txt.Size.X+gap, y), Max: image.Pt(width, y+line)}.Op())
		}
		st := op.Offset(image.Pt(x, 0)).Push(gtx.Ops)
		call.Add(gtx.Ops)
		st.Pop()
		return layout.Dimensions{Size: image.Pt(width, txt.Size.Y)}
	})
}

// rowBody draws row i itself: a notice, or a message's bubble.
func (c *chatScreen) rowBody(gtx layout.Context, u *UI, i int) layout.Dimensions {
	th := u.th
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
	return c.withActions(gtx, u, r, func(gtx layout.Context) layout.Dimensions {
		return c.bubbleRow(gtx, u, r, top, bottom)
	})
}

// bubbleRow is a message's bubble in its row, to the right for our own.
func (c *chatScreen) bubbleRow(gtx layout.Context, u *UI, r *row, top, bottom unit.Dp) layout.Dimensions {
	th := u.th
	return layout.Inset{Top: top, Bottom: bottom, Left: 12, Right: 16}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
		width := gtx.Constraints.Max.X
		gtx.Constraints = layout.Constraints{Max: image.Pt(min(width*4/5, gtx.Dp(560)), gtx.Constraints.Max.Y)}
		m := op.Record(gtx.Ops)
		dims := layout.Inset{Top: 6, Bottom: 6, Left: 12, Right: 12}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
			return bubble(gtx, u, c, r, c.operator)
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
		if r.seq != 0 && r.seq == c.flash {
			if left := c.flashUntil.Sub(gtx.Now); left > 0 {
				bg = withAlpha(th.Accent, 0x50) // the message jumped to
				gtx.Execute(op.InvalidateCmd{At: c.flashUntil})
			}
		}
		fillRounded(gtx.Ops, dims.Size, gtx.Dp(12), bg)
		call.Add(gtx.Ops)
		return layout.Dimensions{Size: image.Pt(width, dims.Size.Y)}
	})
}

// bubble lays out a message's name line, text and time. The time (or
// "sending…") goes to the right under the text, so the bubble is as wide
// as its widest part. A right-to-left paragraph is laid out right to left
// and goes to the right edge.
//
// For an operator of the room (seqs) a stored message's time has its
// number in front ("#42 · 15:04"), which /delete takes.
func bubble(gtx layout.Context, u *UI, c *chatScreen, r *row, seqs bool) layout.Dimensions {
	th := u.th
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
	var quoteDims layout.Dimensions
	var quoteCall op.CallOp
	if r.reply != 0 && !r.deleted {
		m := op.Record(gtx.Ops)
		quoteDims = layout.Inset{Bottom: 4}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
			return quoteLine(gtx, u, c, r)
		})
		quoteCall = m.Stop()
	}

	var fileDims layout.Dimensions
	var fileCall op.CallOp
	if (r.file != nil || r.upName != "") && !r.deleted {
		m := op.Record(gtx.Ops)
		fileDims = layout.Inset{Bottom: 4}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
			return attachment(gtx, u, c, r)
		})
		fileCall = m.Stop()
	}

	m := op.Record(gtx.Ops)
	v := r.shown()
	tgtx := gtx
	if r.rtl {
		tgtx.Locale = system.Locale{Direction: system.RTL}
	}
	textCol := th.Fg
	if r.status == statusPending || r.deleted {
		textCol = th.Muted
	}
	var textDims layout.Dimensions
	if r.text != "" || fileDims.Size.Y == 0 {
		// A file without a caption shows no empty line.
		textDims = v.sel.Layout(tgtx, th.Shaper, fontOf(th), th.TextSize,
			colorMaterial(gtx.Ops, textCol), colorMaterial(gtx.Ops, withAlpha(th.ContrastBg, 0x60)))
	}
	// Selectable text has no semantic label of its own; give it one so
	// screen readers (and the tests) can see what is shown.
	area := clip.Rect{Max: textDims.Size}.Push(gtx.Ops)
	semantic.LabelOp(r.text).Add(gtx.Ops)
	area.Pop()
	if len(r.links) > 0 {
		drawLinks(tgtx, u, r, v)
	}
	textCall := m.Stop()

	m = op.Record(gtx.Ops)
	chipDims := chips(gtx, u, r)
	chipCall := m.Stop()

	m = op.Record(gtx.Ops)
	var meta layout.Dimensions
	switch r.status {
	case statusPending:
		meta = label(th, 11, "sending…", th.Muted).Layout(gtx)
	case statusFailed:
		meta = label(th, 11, "not sent: "+r.reason, th.Error).Layout(gtx)
	default:
		clock := r.clock
		if seqs && r.seqClock != "" {
			clock = r.seqClock
		}
		if r.edited && !r.deleted {
			clock += " (edited)"
		}
		meta = label(th, 11, clock, th.Muted).Layout(gtx)
	}
	metaCall := m.Stop()

	w := max(nameDims.Size.X, quoteDims.Size.X, fileDims.Size.X, textDims.Size.X, chipDims.Size.X, meta.Size.X)
	y := 0
	if !r.cont {
		nameCall.Add(gtx.Ops)
		y = nameDims.Size.Y + gtx.Dp(2)
	}
	if quoteDims.Size.Y > 0 {
		st := op.Offset(image.Pt(0, y)).Push(gtx.Ops)
		quoteCall.Add(gtx.Ops)
		st.Pop()
		y += quoteDims.Size.Y
	}
	if fileDims.Size.Y > 0 {
		st := op.Offset(image.Pt(0, y)).Push(gtx.Ops)
		fileCall.Add(gtx.Ops)
		st.Pop()
		y += fileDims.Size.Y
	}
	x := 0
	if r.rtl {
		x = w - textDims.Size.X
	}
	st := op.Offset(image.Pt(x, y)).Push(gtx.Ops)
	textCall.Add(gtx.Ops)
	st.Pop()
	y += textDims.Size.Y + gtx.Dp(2)
	if chipDims.Size.Y > 0 {
		st = op.Offset(image.Pt(0, y)).Push(gtx.Ops)
		chipCall.Add(gtx.Ops)
		st.Pop()
		y += chipDims.Size.Y + gtx.Dp(2)
	}
	st = op.Offset(image.Pt(w-meta.Size.X, y)).Push(gtx.Ops)
	metaCall.Add(gtx.Ops)
	st.Pop()
	y += meta.Size.Y
	return layout.Dimensions{Size: image.Pt(w, y)}
}

// drawLinks draws the row's links over its text, which v.sel has just
// laid out: their glyphs again in the link color, an underline, and over
// each a click area (a hand cursor) that emits an OpenURLIntent. The
// areas are above the text's own, so a press on a link opens it rather
// than starting a selection; a selection started elsewhere extends over
// links as over any text.
func drawLinks(gtx layout.Context, u *UI, r *row, v *rowView) {
	th := u.th
	col := th.Accent
	for k, lk := range r.links {
		for {
			e, ok := v.clicks[k].Update(gtx.Source)
			if !ok {
				break
			}
			if e.Kind == gesture.KindClick {
				if room, seq, ok := parseMessageLink(lk.url); ok {
					u.shell.openMessage(u, room, seq)
					continue
				}
				u.emit(OpenURLIntent{URL: lk.url})
			}
		}
	}
	runs := v.linkRuns(gtx, th, r)
	for _, run := range runs {
		t := op.Affine(f32.AffineId().Offset(run.off)).Push(gtx.Ops)
		outline := clip.Outline{Path: th.Shaper.Shape(run.glyphs)}.Op().Push(gtx.Ops)
		paint.ColorOp{Color: col}.Add(gtx.Ops)
		paint.PaintOp{}.Add(gtx.Ops)
		outline.Pop()
		t.Pop()
	}
	thick := max(1, gtx.Dp(1))
	for k, lk := range r.links {
		v.regions = v.sel.Regions(lk.start, lk.end, v.regions[:0])
		for j, rg := range v.regions {
			b := rg.Bounds
			base := b.Max.Y - rg.Baseline
			paint.FillShape(gtx.Ops, col, clip.Rect{Min: image.Pt(b.Min.X, base+thick), Max: image.Pt(b.Max.X, base+2*thick)}.Op())
			area := clip.Rect(b).Push(gtx.Ops)
			pointer.CursorPointer.Add(gtx.Ops)
			v.clicks[k].Add(gtx.Ops)
			if j == 0 {
				semantic.LabelOp(r.text[lk.from:lk.to]).Add(gtx.Ops)
			}
			area.Pop()
		}
	}
}

// linkRuns returns the glyphs of the row's links, found by laying the
// text out again as its Selectable did (the same shaper and parameters
// give the same glyphs at the same places; the shaper caches the layout)
// and keeping those inside the links' regions. It is computed again only
// when the width, size, font or direction changes.
func (v *rowView) linkRuns(gtx layout.Context, th *Theme, r *row) []glyphRun {
	key := runsKey{font: fontOf(th), size: fixed.I(gtx.Sp(th.TextSize)), minWidth: gtx.Constraints.Min.X,
		maxWidth: gtx.Constraints.Max.X, dir: gtx.Locale.Direction}
	if v.runs != nil && v.runsFor == key {
		return v.runs
	}
	var boxes []image.Rectangle
	for _, lk := range r.links {
		v.regions = v.sel.Regions(lk.start, lk.end, v.regions[:0])
		for _, rg := range v.regions {
			boxes = append(boxes, rg.Bounds)
		}
	}
	th.Shaper.LayoutString(text.Parameters{
		Font: key.font, PxPerEm: key.size, MinWidth: key.minWidth, MaxWidth: key.maxWidth, Locale: gtx.Locale,
	}, r.text)
	runs := []glyphRun{}
	open := false
	for {
		g, ok := th.Shaper.NextGlyph()
		if !ok {
			break
		}
		p := image.Pt((g.X + g.Advance/2).Round(), int(g.Y))
		in := false
		for _, b := range boxes {
			if p.X >= b.Min.X && p.X <= b.Max.X && p.Y >= b.Min.Y && p.Y <= b.Max.Y {
				in = true
				break
			}
		}
		switch {
		case !in:
			open = false
		case !open:
			runs = append(runs, glyphRun{off: f32.Pt(float32(g.X)/64, float32(g.Y))})
			open = true
			fallthrough
		default:
			run := &runs[len(runs)-1]
			run.glyphs = append(run.glyphs, g)
		}
		if g.Flags&text.FlagLineBreak != 0 {
			open = false
		}
	}
	v.runs, v.runsFor = runs, key
	return runs
}
