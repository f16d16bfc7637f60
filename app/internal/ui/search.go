package ui

import (
	"image"
	"time"
	"unicode/utf8"

	"gioui.org/io/key"
	"gioui.org/io/pointer"
	"gioui.org/io/semantic"
	"gioui.org/layout"
	"gioui.org/op"
	"gioui.org/op/clip"
	"gioui.org/op/paint"
	"gioui.org/widget"
	"gioui.org/widget/material"

	"chat/protocol"
)

// Search (issue 15): Ctrl+F or the header's search button opens a panel
// with a field; Enter asks the server (a SearchIntent) for the messages
// matching the words in every conversation the user may read. The
// results list the newest first, each with its conversation, sender and
// time and its text with the matched words highlighted; "Older results"
// asks for the next page. A click on one opens its conversation at that
// message (loading the history around it) and closes the panel.

// maxSearchHits bounds the hits the panel holds (pages of older results
// add to them).
const maxSearchHits = 500

// searchPanel is the search panel's state.
type searchPanel struct {
	query   widget.Editor
	list    widget.List
	asked   string // the query last sent
	waiting bool
	hits    []searchHitView
	more    bool
	err     string
	moreBtn widget.Clickable
}

// searchHitView is a hit with its widgets.
type searchHitView struct {
	SearchHit
	btn  widget.Clickable
	sel  widget.Selectable
	runs [][2]int // the matches, as rune ranges of Text
	regs []widget.Region
}

func (p *searchPanel) init() {
	p.query.SingleLine, p.query.Submit = true, true
	p.query.InputHint = key.HintText
	p.list.Axis = layout.Vertical
}

// answer takes a SearchResults for the query last asked.
func (p *searchPanel) answer(r SearchResults) {
	if r.Query != p.asked {
		return
	}
	p.waiting = false
	if r.Err != "" {
		p.err = r.Err
		return
	}
	p.err = ""
	if r.Before.IsZero() {
		p.hits = nil
	}
	for _, h := range r.Hits {
		if len(p.hits) >= maxSearchHits {
			r.More = false
			break
		}
		v := searchHitView{SearchHit: h, runs: runeSpans(h.Text, h.Matches)}
		v.sel.SetText(h.Text)
		v.sel.MaxLines = 3
		p.hits = append(p.hits, v)
	}
	p.more = r.More
}

// runeSpans turns byte spans of s into rune spans (widget.Selectable
// counts runes); spans outside s or not on a character boundary are left
// out.
func runeSpans(s string, spans []protocol.Span) [][2]int {
	var out [][2]int
	for _, sp := range spans {
		if sp.Start >= sp.End || sp.End > uint64(len(s)) {
			continue
		}
		a, b := int(sp.Start), int(sp.End)
		if !utf8.RuneStart(s[a]) || (b < len(s) && !utf8.RuneStart(s[b])) {
			continue
		}
		start := utf8.RuneCountInString(s[:a])
		out = append(out, [2]int{start, start + utf8.RuneCountInString(s[a:b])})
	}
	return out
}

func (p *searchPanel) update(gtx layout.Context, u *UI, s *shell) {
	for {
		ev, ok := p.query.Update(gtx)
		if !ok {
			break
		}
		if _, ok := ev.(widget.SubmitEvent); ok {
			p.ask(u, time.Time{})
		}
	}
	if p.moreBtn.Clicked(gtx) && len(p.hits) > 0 && !p.waiting {
		p.ask(u, p.hits[len(p.hits)-1].Time)
	}
	for i := range p.hits {
		if p.hits[i].btn.Clicked(gtx) {
			h := p.hits[i].SearchHit
			s.closePanels()
			s.openMessage(u, h.Room, h.Seq)
			return
		}
	}
}

// ask sends the field's query, from the newest hits, or (before set) the
// query the hits answer, older than before: the field may have changed
// since, and its answer would not be taken for these hits.
func (p *searchPanel) ask(u *UI, before time.Time) {
	q := p.query.Text()
	if !before.IsZero() {
		q = p.asked
	}
	if before.IsZero() {
		p.asked, p.hits, p.more = q, nil, false
	}
	if q == "" {
		p.err = "Type the words to look for."
		return
	}
	p.err, p.waiting = "", true
	u.emit(SearchIntent{Query: q, Before: before})
}

func (p *searchPanel) layout(gtx layout.Context, u *UI, s *shell) layout.Dimensions {
	th := u.th
	return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
		layout.Rigid(func(gtx layout.Context) layout.Dimensions {
			return field(gtx, th, "Words to look for", &p.query, "in every conversation you are in")
		}),
		layout.Rigid(func(gtx layout.Context) layout.Dimensions {
			var txt string
			col := th.Muted
			switch {
			case p.err != "":
				txt, col = p.err, th.Error
			case p.waiting && len(p.hits) == 0:
				txt = "Searching…"
			case p.asked != "" && len(p.hits) == 0:
				txt = "No messages match “" + p.asked + "”."
			default:
				return layout.Dimensions{}
			}
			return layout.Inset{Top: 8}.Layout(gtx, label(th, 13, txt, col).Layout)
		}),
		layout.Rigid(layout.Spacer{Height: 6}.Layout),
		layout.Flexed(1, func(gtx layout.Context) layout.Dimensions {
			n := len(p.hits)
			if p.more {
				n++
			}
			return material.List(&th.Theme, &p.list).Layout(gtx, n, func(gtx layout.Context, i int) layout.Dimensions {
				if i == len(p.hits) {
					return linkButton(gtx, th, &p.moreBtn, "Older results")
				}
				return p.hitRow(gtx, u, s, &p.hits[i])
			})
		}),
	)
}

// hitRow is one result: where and who, then the text with the matched
// words highlighted.
func (p *searchPanel) hitRow(gtx layout.Context, u *UI, s *shell, h *searchHitView) layout.Dimensions {
	th := u.th
	where := "#" + h.Room
	if peer, ok := protocol.DMPeer(h.Room, s.name); ok {
		where = peer
		if c := s.byKey[protocol.Key(h.Room)]; c != nil {
			where = c.title()
		}
	}
	head := where + " · " + h.Sender + " · " + h.Time.Local().Format("2 Jan 15:04")
	gtx.Constraints.Min.X = gtx.Constraints.Max.X
	return layout.Inset{Top: 4, Bottom: 4}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
		return h.btn.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
			pointer.CursorPointer.Add(gtx.Ops)
			semantic.DescriptionOp("Open " + head).Add(gtx.Ops)
			return layout.UniformInset(6).Layout(gtx, func(gtx layout.Context) layout.Dimensions {
				return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
					layout.Rigid(label(th, 12, head, th.Muted).Layout),
					layout.Rigid(func(gtx layout.Context) layout.Dimensions {
						return highlighted(gtx, th, h)
					}),
				)
			})
		})
	})
}

// highlighted lays out a hit's text with its matches on a highlight.
func highlighted(gtx layout.Context, th *Theme, h *searchHitView) layout.Dimensions {
	// Laid out once to know where the matches are, then drawn over
	// their highlight.
	m := op.Record(gtx.Ops)
	dims := h.sel.Layout(gtx, th.Shaper, fontOf(th), 14, colorMaterial(gtx.Ops, th.Fg), colorMaterial(gtx.Ops, withAlpha(th.ContrastBg, 0x60)))
	call := m.Stop()
	for _, r := range h.runs {
		h.regs = h.sel.Regions(r[0], r[1], h.regs[:0])
		for _, rg := range h.regs {
			paint.FillShape(gtx.Ops, withAlpha(th.Accent, 0x70), clip.Rect(rg.Bounds).Op())
		}
	}
	call.Add(gtx.Ops)
	area := clip.Rect{Max: dims.Size}.Push(gtx.Ops)
	semantic.LabelOp(h.Text).Add(gtx.Ops)
	area.Pop()
	return layout.Dimensions{Size: image.Pt(dims.Size.X, dims.Size.Y)}
}
