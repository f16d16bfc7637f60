package ui

import "gioui.org/text"

// SetShaper makes both themes draw text with s from this frame on. The
// platform's font loader makes a new shaper when faces for another script
// arrive (a message in Hebrew, an emoji); text widgets see the new shaper
// and shape their text again, now with real glyphs.
func (u *UI) SetShaper(s *text.Shaper) {
	u.light.Shaper = s
	u.dark.Shaper = s
}
