package ui

import (
	"image/color"

	"gioui.org/font"
	"gioui.org/text"
	"gioui.org/widget/material"
)

// Theme is a material theme plus the few extra colors a chat needs.
type Theme struct {
	material.Theme
	Dark bool

	Surface color.NRGBA // header, other people's bubbles, input fields
	Own     color.NRGBA // the user's own bubbles
	Muted   color.NRGBA // times, notices, hints
	Error   color.NRGBA
	Warn    color.NRGBA // behind a security warning: a faint red
	Divider color.NRGBA
	Accent  color.NRGBA // sender names, focus rings
	Online  color.NRGBA // the "connected" dot
}

func rgb(c uint32) color.NRGBA {
	return color.NRGBA{R: uint8(c >> 16), G: uint8(c >> 8), B: uint8(c), A: 0xff}
}

// NewTheme returns the light or dark theme drawing text with shaper, asking
// for face first. Both themes of a window share its shaper.
func NewTheme(shaper *text.Shaper, face font.Typeface, dark bool) *Theme {
	th := &Theme{Theme: *material.NewTheme(), Dark: dark}
	th.Shaper = shaper
	th.Face = face
	th.TextSize = 15
	if dark {
		th.Palette = material.Palette{Bg: rgb(0x121317), Fg: rgb(0xe6e7ea), ContrastBg: rgb(0x8c9eff), ContrastFg: rgb(0x0d1030)}
		th.Surface, th.Own = rgb(0x1f2128), rgb(0x2b3566)
		th.Muted, th.Error, th.Divider, th.Accent = rgb(0x9a9ea6), rgb(0xff8a80), rgb(0x2e3139), rgb(0xa9b6ff)
		th.Online = rgb(0x81c784)
		th.Warn = rgb(0x3a1f22)
	} else {
		th.Palette = material.Palette{Bg: rgb(0xf3f4f6), Fg: rgb(0x1b1c1f), ContrastBg: rgb(0x3f51b5), ContrastFg: rgb(0xffffff)}
		th.Surface, th.Own = rgb(0xffffff), rgb(0xdce3ff)
		th.Muted, th.Error, th.Divider, th.Accent = rgb(0x676b72), rgb(0xc62828), rgb(0xdfe1e6), rgb(0x3445a8)
		th.Online = rgb(0x2e7d32)
		th.Warn = rgb(0xfdecea)
	}
	return th
}
