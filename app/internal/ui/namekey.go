package ui

import (
	"io"
	"strings"
	"unicode"

	"gioui.org/io/clipboard"
	"gioui.org/io/key"
	"gioui.org/layout"
	"gioui.org/unit"
	"gioui.org/widget"
)

// Name key limits. The protocol asks clients for at least 16 random bytes;
// this app's keys are 32 hex digits. Keys of other clients may be written
// otherwise (base64…), so only the length and the characters are checked.
const (
	minNameKey = 16
	maxNameKey = 256
)

// nameKeyPanel sits under the name field: a link that opens it, this
// device's name key to copy to another device, and the way to adopt the
// key of another device, confirmed first because it replaces this one's.
type nameKeyPanel struct {
	key      string // this device's name key
	open     bool
	entering bool   // the field for another device's key shows
	confirm  string // a checked key waiting for the user's confirmation
	copied   bool
	problem  string // what is wrong with the key entered
	note     string // what the last change did

	shown  widget.Selectable
	editor widget.Editor
	focus  bool // the editor is to be focused by UI.moveFocus

	toggleBtn, copyBtn, otherBtn, useBtn, replaceBtn, keepBtn, cancelBtn widget.Clickable
}

func (p *nameKeyPanel) init(k string) {
	p.setKey(k)
	p.editor.SingleLine, p.editor.Submit = true, true
	p.editor.InputHint = key.HintText
}

func (p *nameKeyPanel) setKey(k string) {
	p.key = k
	p.shown.SetText(k)
}

// checkNameKey returns the key the user entered, cleaned, or what is wrong
// with it. White space anywhere is dropped: it comes from copying a key
// across lines or typing it in groups, and no key has any.
func checkNameKey(s, current string) (string, string) {
	k := strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
	switch {
	case k == "":
		return "", "Paste or type the name key shown on your other device."
	case strings.IndexFunc(k, func(r rune) bool { return r < 0x21 || r > 0x7e }) >= 0:
		return "", "A name key has only letters, digits and punctuation: check what was pasted."
	case len(k) < minNameKey:
		return "", "That is too short for a name key: they have at least 16 characters (this app's have 32)."
	case len(k) > maxNameKey:
		return "", "That is too long for a name key: paste only the key."
	case k == current:
		return "", "That is already this device's name key."
	}
	return k, ""
}

// update handles the panel's input. It reports whether the panel grew, so
// the form can scroll it into view.
func (p *nameKeyPanel) update(gtx layout.Context, u *UI) (grew bool) {
	if p.toggleBtn.Clicked(gtx) {
		grew = !p.open
		p.open = !p.open
		p.copied, p.note = false, ""
		if !p.open {
			p.entering, p.confirm, p.problem = false, "", ""
		}
	}
	if p.copyBtn.Clicked(gtx) {
		copyText(gtx, p.key)
		p.copied = true
	}
	if p.otherBtn.Clicked(gtx) {
		p.entering, p.note = true, ""
		p.focus, grew = true, true
	}
	submit := false
	for {
		ev, ok := p.editor.Update(gtx)
		if !ok {
			break
		}
		switch ev.(type) {
		case widget.SubmitEvent:
			submit = true
		case widget.ChangeEvent:
			p.problem = "" // the user is fixing it
		}
	}
	if (p.useBtn.Clicked(gtx) || submit) && p.entering && p.confirm == "" {
		k, problem := checkNameKey(p.editor.Text(), p.key)
		p.problem, p.confirm = problem, k
		if problem != "" {
			p.focus = true
		}
		grew = true // the question or the problem must be seen
	}
	if p.keepBtn.Clicked(gtx) {
		p.confirm = ""
	}
	if p.cancelBtn.Clicked(gtx) {
		p.entering, p.confirm, p.problem = false, "", ""
	}
	if p.replaceBtn.Clicked(gtx) && p.confirm != "" {
		u.emit(NameKeyIntent{Key: p.confirm})
		p.setKey(p.confirm)
		p.editor.SetText("")
		p.entering, p.confirm, p.copied = false, "", false
		p.note = "This device now uses the name key from your other device."
	}
	return grew
}

func (p *nameKeyPanel) layout(gtx layout.Context, th *Theme) layout.Dimensions {
	var rows []layout.FlexChild
	add := func(w layout.Widget) { rows = append(rows, layout.Rigid(w)) }
	space := func(h unit.Dp) { add(layout.Spacer{Height: h}.Layout) }
	add(func(gtx layout.Context) layout.Dimensions {
		txt := "Name key: use your name on another device"
		if p.open {
			txt = "Hide the name key"
		}
		return linkButton(gtx, th, &p.toggleBtn, txt)
	})
	if !p.open {
		return layout.Flex{Axis: layout.Vertical}.Layout(gtx, rows...)
	}
	var inner []layout.FlexChild
	in := func(w layout.Widget) { inner = append(inner, layout.Rigid(w)) }
	inSpace := func(h unit.Dp) { in(layout.Spacer{Height: h}.Layout) }
	in(label(th, 13, "The first time you join a server with a name, this device's name key claims the name there. "+
		"To use the name on another device, copy the key to it. Keep it private: whoever has it can use your names.", th.Fg).Layout)
	inSpace(8)
	in(label(th, 13, "This device's name key", th.Muted).Layout)
	in(func(gtx layout.Context) layout.Dimensions { return mono(gtx, th, &p.shown, th.Fg) })
	inSpace(8)
	in(func(gtx layout.Context) layout.Dimensions {
		copyTxt := "Copy name key"
		if p.copied {
			copyTxt = "Name key copied"
		}
		return outlinedButton(gtx, th, &p.copyBtn, copyTxt, th.Accent)
	})
	if p.note != "" {
		inSpace(8)
		in(label(th, 13, p.note, th.Fg).Layout)
	}
	inSpace(12)
	switch {
	case !p.entering:
		in(func(gtx layout.Context) layout.Dimensions {
			return linkButton(gtx, th, &p.otherBtn, "Use a name key from another device")
		})
	case p.confirm != "":
		in(bold(label(th, 14, "Replace this device's name key?", th.Fg)).Layout)
		inSpace(4)
		in(label(th, 13, "Names this device claimed with its current key will then work only where that key is. "+
			"Copy the current key first if you may need it again.", th.Fg).Layout)
		inSpace(8)
		in(func(gtx layout.Context) layout.Dimensions {
			return buttonPair(gtx, th, &p.replaceBtn, "Replace my name key", &p.keepBtn, "Keep the current key")
		})
	default:
		in(bold(label(th, 13, "Name key from your other device", th.Muted)).Layout)
		inSpace(6)
		in(func(gtx layout.Context) layout.Dimensions {
			return editorBox(gtx, th, &p.editor, "Paste the name key")
		})
		if p.problem != "" {
			inSpace(6)
			in(label(th, 13, p.problem, th.Error).Layout)
		}
		inSpace(8)
		in(func(gtx layout.Context) layout.Dimensions {
			return buttonPair(gtx, th, &p.useBtn, "Use this key", &p.cancelBtn, "Cancel")
		})
	}
	space(4)
	add(func(gtx layout.Context) layout.Dimensions {
		return card(gtx, th, th.Divider, th.Surface, func(gtx layout.Context) layout.Dimensions {
			return layout.Flex{Axis: layout.Vertical}.Layout(gtx, inner...)
		})
	})
	return layout.Flex{Axis: layout.Vertical}.Layout(gtx, rows...)
}

// copyText puts s on the clipboard.
func copyText(gtx layout.Context, s string) {
	gtx.Execute(clipboard.WriteCmd{Type: "application/text", Data: io.NopCloser(strings.NewReader(s))})
}
